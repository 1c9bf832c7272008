import { describe, expect, it } from 'vitest';
import { CatchUpSync } from '../../src/store/CatchUpSync.js';

/** A deferred read: the test decides when and how each store read ends. */
interface Read {
  readonly snapshot: boolean;
  resolve(result: string): void;
  reject(error: unknown): void;
}

/** A follower that records what the loop tells it, with reads the test settles by hand. */
function follower(onChanged?: (change: number, sync: CatchUpSync<string, number>) => void) {
  const reads: Read[] = [];
  const log: string[] = [];
  const loop: CatchUpSync<string, number> = new CatchUpSync<string, number>({
    read: (snapshot) =>
      new Promise<string>((resolve, reject) => {
        reads.push({ snapshot, resolve, reject });
      }),
    failed: (error) => log.push(`failed:${String(error)}`),
    succeeded: (result) => log.push(`synced:${result}`),
    changed: (change) => {
      log.push(`change:${change}`);
      onChanged?.(change, loop);
    },
  });
  return { loop, reads, log };
}

/** Lets the loop run up to its next await. */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('CatchUpSync', () => {
  it('concurrent sync() calls share one run, and a request during it runs exactly one more', async () => {
    const { loop, reads, log } = follower();
    const first = loop.sync();
    const second = loop.sync();
    const third = loop.sync();
    expect(second).toBe(first);
    expect(third).toBe(first);
    await settle();
    expect(reads).toHaveLength(1);
    reads[0]?.resolve('a');
    await settle();
    // sync() was asked again during the first read: one more read, not two.
    expect(reads).toHaveLength(2);
    reads[1]?.resolve('b');
    await first;
    expect(log).toEqual(['synced:a', 'synced:b']);
    expect(reads).toHaveLength(2);
    // Done: the next sync() starts a new run.
    const next = loop.sync();
    expect(next).not.toBe(first);
    await settle();
    reads[2]?.resolve('c');
    await next;
    expect(log).toEqual(['synced:a', 'synced:b', 'synced:c']);
  });

  it('offers a change at once while no sync runs', () => {
    const { loop, reads, log } = follower();
    loop.offer(1);
    loop.offer(2);
    expect(log).toEqual(['change:1', 'change:2']);
    expect(reads).toHaveLength(0);
  });

  it('changes arriving mid-sync are held back and replayed in order right after it', async () => {
    const { loop, reads, log } = follower();
    const running = loop.sync();
    await settle();
    loop.offer(1);
    loop.offer(2);
    loop.offer(3);
    expect(log).toEqual([]);
    reads[0]?.resolve('a');
    await running;
    expect(log).toEqual(['synced:a', 'change:1', 'change:2', 'change:3']);
    expect(reads).toHaveLength(1);
    // Replayed once, not kept: the next sync replays nothing.
    const next = loop.sync();
    await settle();
    reads[1]?.resolve('b');
    await next;
    expect(log).toEqual(['synced:a', 'change:1', 'change:2', 'change:3', 'synced:b']);
  });

  it('a replayed change that asks for a sync gets one more run; one arriving during the replay is replayed too', async () => {
    const { loop, reads, log } = follower((change, sync) => {
      if (change === 2) void sync.sync(); // a gap: catch up
      if (change === 3) sync.offer(4); // a notification while the loop still runs
    });
    const running = loop.sync();
    await settle();
    loop.offer(2);
    loop.offer(3);
    reads[0]?.resolve('a');
    await settle();
    expect(log).toEqual(['synced:a', 'change:2', 'change:3', 'change:4']);
    expect(reads).toHaveLength(2);
    reads[1]?.resolve('b');
    await running;
    expect(log).toEqual(['synced:a', 'change:2', 'change:3', 'change:4', 'synced:b']);
  });

  it('a failed read keeps the held-back changes for the next successful sync', async () => {
    const { loop, reads, log } = follower();
    const first = loop.sync();
    await settle();
    loop.offer(1);
    reads[0]?.reject('down');
    await first;
    expect(log).toEqual(['failed:down']);
    const second = loop.sync();
    await settle();
    reads[1]?.resolve('a');
    await second;
    expect(log).toEqual(['failed:down', 'synced:a', 'change:1']);
  });

  it('closing during the replay stops it', async () => {
    const { loop, reads, log } = follower((change, sync) => {
      if (change === 1) sync.close();
    });
    const running = loop.sync();
    await settle();
    loop.offer(1);
    loop.offer(2);
    reads[0]?.resolve('a');
    await running;
    expect(log).toEqual(['synced:a', 'change:1']);
  });

  it('a failing read clears the in-flight state: the next sync() starts afresh', async () => {
    const { loop, reads, log } = follower();
    const first = loop.sync();
    loop.sync(); // asked again: dropped by the failure, like the original loop
    await settle();
    reads[0]?.reject(new Error('down'));
    await expect(first).resolves.toBeUndefined();
    expect(log).toEqual(['failed:Error: down']);
    expect(reads).toHaveLength(1);
    // Not running any more: a change is offered at once, and sync() reads again.
    loop.offer(7);
    expect(log.at(-1)).toBe('change:7');
    const second = loop.sync();
    expect(second).not.toBe(first);
    await settle();
    expect(reads).toHaveLength(2);
    reads[1]?.resolve('ok');
    await second;
    expect(log.at(-1)).toBe('synced:ok');
  });

  it('resync() makes the next read, and only it, a snapshot; a failed snapshot read is retried as one', async () => {
    const { loop, reads } = follower();
    const a = loop.resync();
    await settle();
    expect(reads[0]?.snapshot).toBe(true);
    reads[0]?.reject(new Error('down'));
    await a;
    const b = loop.sync();
    await settle();
    expect(reads[1]?.snapshot).toBe(true);
    reads[1]?.resolve('s');
    await b;
    const c = loop.sync();
    await settle();
    expect(reads[2]?.snapshot).toBe(false);
    reads[2]?.resolve('d');
    await c;
  });

  it('after close() nothing starts, a running read is dropped and changes are ignored', async () => {
    const { loop, reads, log } = follower();
    const running = loop.sync();
    loop.sync();
    await settle();
    loop.offer(1);
    loop.close();
    expect(loop.closed).toBe(true);
    reads[0]?.resolve('late');
    await running;
    expect(log).toEqual([]);
    expect(reads).toHaveLength(1);
    await loop.sync();
    loop.offer(2);
    expect(reads).toHaveLength(1);
    expect(log).toEqual([]);
  });
});

describe('CatchUpSync: a follower that throws', () => {
  it('a throw while applying a sync result or a replayed change goes to failed(), never out of sync()', async () => {
    const { loop, reads, log } = follower((change) => {
      if (change === 2) throw new Error('corrupt change');
    });
    const run = loop.sync();
    await settle();
    loop.offer(1);
    loop.offer(2);
    loop.offer(3);
    reads[0]?.resolve('a');
    await expect(run).resolves.toBeUndefined();
    // The throw stops the replay (what follows is found by the next sync) and is reported.
    expect(log).toEqual(['synced:a', 'change:1', 'change:2', 'failed:Error: corrupt change']);
  });
});

describe('CatchUpSync: a change that throws outside a sync', () => {
  it('goes to failed(), not into the notifier', () => {
    const { loop, log } = follower(() => {
      throw new Error('corrupt change');
    });
    expect(() => loop.offer(7)).not.toThrow();
    expect(log).toEqual(['change:7', 'failed:Error: corrupt change']);
  });
});
