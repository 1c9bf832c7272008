import { describe, expect, it } from 'vitest';
import { InvalidOptionError } from '../../src/errors.js';
import { MemoryStore, memoryStore } from '../../src/store/memory/MemoryStore.js';
import { run } from './contract.js';

run('memory', async () => memoryStore());

describe('memoryStore', () => {
  it('rejects bad options, naming the field', () => {
    expect(() => memoryStore({ sweepIntervalMs: 0 })).toThrow(InvalidOptionError);
    expect(() => memoryStore({ sweepIntervalMs: 1.5 })).toThrow(/sweepIntervalMs/);
    expect(() => memoryStore({ fenceRetentionMs: -1 })).toThrow(/fenceRetentionMs/);
    expect(() => memoryStore({ clock: 42 as unknown as () => number })).toThrow(/clock/);
    expect(() => memoryStore(null as unknown as object)).toThrow(/options/);
  });

  it('changes: no listener is called after its unsubscribe or after close(), as on Redis (found in review)', async () => {
    const store = new MemoryStore();
    const got: string[] = [];
    const off = await store.changes.subscribe('c', (m) => got.push(m));
    const published = store.changes.publish('c', 'a'); // queued for delivery...
    await off(); // ...and unsubscribed before it is delivered
    await published;
    const other: string[] = [];
    await store.changes.subscribe('d', (m) => other.push(m));
    const queued = store.changes.publish('d', 'b');
    const closed = store.close(); // closed before the queued message is delivered
    await queued;
    await closed;
    await new Promise((r) => setTimeout(r, 10));
    expect(got).toEqual([]);
    expect(other).toEqual([]);
  });

  it('follows an injected clock: leases end and fencing counters are forgotten by it', async () => {
    let now = 1_000_000;
    const store = new MemoryStore({ clock: () => now, fenceRetentionMs: 1_000 });
    const req = { resource: 'r', ttlMs: 100, fair: false, queueTtlMs: 50 };
    const a = await store.locks.acquire({ ...req, holder: 'a' });
    expect(a).toEqual({ acquired: true, token: now * 1000 });
    expect(await store.locks.acquire({ ...req, holder: 'b' })).toEqual({
      acquired: false,
      retryAfterMs: 100,
      position: -1,
    });
    now += 99;
    expect((await store.locks.acquire({ ...req, holder: 'b' })).acquired).toBe(false);
    now += 1;
    const b = await store.locks.acquire({ ...req, holder: 'b' });
    expect(b.acquired).toBe(true);
    // The clock steps back: the counter still keeps tokens increasing.
    await store.locks.release('r', 'b');
    now -= 500_000;
    const c = await store.locks.acquire({ ...req, holder: 'c' });
    expect(c.acquired && b.acquired && c.token === b.token + 1).toBe(true);
    await store.close();
  });

  it('the fencing counter outlives a lease held past fenceRetentionMs by extends (found in review)', async () => {
    let now = 1_000_000;
    const store = new MemoryStore({ clock: () => now, fenceRetentionMs: 1_000 });
    const req = { resource: 'r', ttlMs: 1_000, fair: false, queueTtlMs: 50 };
    const a = await store.locks.acquire({ ...req, holder: 'a' });
    for (let i = 0; i < 3; i++) {
      now += 600;
      expect(await store.locks.extend('r', 'a', 1_000)).toBe(true);
    }
    await store.locks.release('r', 'a');
    store.locks.sweep();
    now -= 5_000; // the clock steps back: only the counter keeps the next token above a's
    const b = await store.locks.acquire({ ...req, holder: 'b' });
    expect(a.acquired && b.acquired && b.token === a.token + 1).toBe(true);
    await store.close();
  });

  it('a raiseToken that raises nothing does not keep the counter longer (as on Redis)', async () => {
    let now = 1_000_000;
    const store = new MemoryStore({ clock: () => now, fenceRetentionMs: 1_000 });
    const req = { resource: 'r', ttlMs: 600, fair: false, queueTtlMs: 50 };
    const a = await store.locks.acquire({ ...req, holder: 'a' });
    if (!a.acquired) throw new Error('not acquired');
    now += 500;
    expect(await store.locks.raiseToken('r', 'a', a.token - 1)).toBe(true);
    now += 700; // 1200 ms after the grant, 700 after the raise; a's lease ended at 600
    const b = await store.locks.acquire({ ...req, holder: 'b' });
    // The counter is gone: the token comes from the clock (µs), as Redis gives it.
    expect(b).toEqual({ acquired: true, token: now * 1000 });
    await store.close();
  });

  it('sweep drops expired leases, counters and queued waiters', async () => {
    let now = 5_000;
    const store = new MemoryStore({ clock: () => now, fenceRetentionMs: 1_000 });
    await store.locks.acquire({ resource: 'r', holder: 'a', ttlMs: 100, fair: false, queueTtlMs: 50 });
    await store.locks.acquire({ resource: 'r', holder: 'b', ttlMs: 100, fair: true, queueTtlMs: 50 });
    now += 2_000;
    store.locks.sweep();
    expect(await store.locks.inspect('r')).toEqual({ holder: undefined, token: 0, ttlMs: 0, queue: [] });
    await store.close();
  });

  it('onRestart never fires and its remover is harmless', () => {
    const store = memoryStore();
    const off = store.onRestart(() => {
      throw new Error('never');
    });
    off();
    off();
    return store.close();
  });
});
