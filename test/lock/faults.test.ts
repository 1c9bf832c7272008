/**
 * Faults: a redis-server killed and restarted mid-run, Redlock members going down, and the
 * Redlock token write-back under clock skew. Servers are started here on free ports and
 * stopped by PID.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { InvalidOptionError, LockLostError, LockTimeoutError, StoreUnavailableError } from '../../src/errors.js';
import type { Lock } from '../../src/lock/Lock.js';
import { LockManager } from '../../src/lock/LockManager.js';
import { RedlockStore, redlockStore } from '../../src/lock/RedlockStore.js';
import { type MemoryStore, memoryStore } from '../../src/store/memory/MemoryStore.js';
import { type RedisStore, redisStore } from '../../src/store/redis/RedisStore.js';
import type { Store } from '../../src/store/Store.js';
import { haveRedisServerBinary, type RedisServer, startRedisServer } from '../helpers/redis.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const canStart = haveRedisServerBinary();
const servers: RedisServer[] = [];

afterAll(async () => {
  for (const s of servers) await s.stop();
});

async function until(check: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check() && Date.now() < deadline) await sleep(10);
}

describe.skipIf(!canStart)('redis-server killed and restarted mid-run', () => {
  it('workers carry on; a lock held across the restart is reported lost; tokens keep increasing', async () => {
    const server = await startRedisServer();
    servers.push(server);
    const options = { commandTimeoutMs: 300, redisOptions: { retryStrategy: () => 30 } };
    const stores: RedisStore[] = [];
    const newManager = () => {
      const store = redisStore(server.url, options);
      stores.push(store);
      return new LockManager({ store, retryMaxMs: 50 });
    };

    // A long lease held across the restart: only restart detection can tell it is gone.
    const keeper = newManager();
    const held = await keeper.acquire('held-across', { ttlMs: 60_000 });
    await sleep(100); // the watcher has read the first run id

    // The protected resource, in this process: accepts only increasing tokens.
    let highest = 0;
    const refused: Lock[] = [];
    const write = (lock: Lock) => {
      if (lock.token <= highest) refused.push(lock);
      else highest = lock.token;
    };
    let stop = false;
    const tokensBefore: number[] = [];
    const tokensAfter: number[] = [];
    let restarted = false;
    const errors: unknown[] = [];
    const workers = Array.from({ length: 4 }, async () => {
      const locks = newManager();
      while (!stop) {
        try {
          await locks.withLock('busy', { ttlMs: 2_000, waitMs: 3_000 }, async (lock) => {
            (restarted ? tokensAfter : tokensBefore).push(lock.token);
            write(lock);
            await sleep(3);
          });
        } catch (err) {
          errors.push(err);
          await sleep(20);
        }
      }
      locks.close();
    });

    await sleep(300);
    await server.restart();
    restarted = true;
    await until(() => held.lost && tokensAfter.length >= 10, 10_000);
    stop = true;
    await Promise.all(workers);

    expect(held.lost).toBe(true);
    expect(held.signal.reason).toBeInstanceOf(LockLostError);
    expect(tokensBefore.length).toBeGreaterThan(0);
    expect(tokensAfter.length).toBeGreaterThanOrEqual(10);
    // The server forgot every counter, yet tokens continue above all earlier ones.
    expect(Math.min(...tokensAfter)).toBeGreaterThan(Math.max(...tokensBefore));
    expect(refused).toEqual([]);
    // The outage surfaced as typed errors, nothing else.
    for (const err of errors) {
      expect([StoreUnavailableError, LockLostError, LockTimeoutError].some((E) => err instanceof E)).toBe(true);
    }
    const again = await keeper.acquire('held-across', { waitMs: 0 });
    expect(again.token).toBeGreaterThan(held.token);
    await again.release();
    keeper.close();
    for (const s of stores) await s.close();
  }, 60_000);
});

describe.skipIf(!canStart)('Redlock over three self-started masters', () => {
  it('works with one member down, fails cleanly with two down, recovers when they return', async () => {
    const members = [await startRedisServer(), await startRedisServer(), await startRedisServer()];
    servers.push(...members);
    const store = redlockStore(
      members.map((m) => m.url),
      { storeOptions: { commandTimeoutMs: 300, redisOptions: { retryStrategy: () => 30 } } },
    );
    expect(store.locks.quorum).toBe(2);
    const locks = new LockManager({ store });
    const rival = new LockManager({ store });

    const a = await locks.acquire('res', { ttlMs: 5_000 });
    await expect(rival.acquire('res', { waitMs: 0 })).rejects.toBeInstanceOf(LockTimeoutError);
    expect((await locks.inspect('res')).holder).toBe(a.holder);
    await a.extend();
    expect(await a.release()).toBe(true);

    await members[0]!.stop();
    const b = await locks.acquire('res', { ttlMs: 5_000 });
    expect(b.token).toBeGreaterThan(a.token);
    await expect(rival.acquire('res', { waitMs: 0 })).rejects.toBeInstanceOf(LockTimeoutError);
    await b.extend();
    expect(await b.release()).toBe(true);

    await members[1]!.stop();
    const err = await locks.acquire('res', { waitMs: 200 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreUnavailableError);
    expect((err as Error).message).toMatch(/quorum of 2 is impossible/);

    await members[0]!.start();
    await members[1]!.start();
    let c: Lock | undefined;
    for (let i = 0; i < 100 && c === undefined; i++) {
      c = await locks.acquire('res', { waitMs: 0 }).catch(() => undefined);
      if (c === undefined) await sleep(50);
    }
    expect(c).toBeDefined();
    expect(c!.token).toBeGreaterThan(b.token);
    await c!.release();

    await expect(locks.acquire('res', { fair: true })).rejects.toBeInstanceOf(InvalidOptionError);
    locks.close();
    rival.close();
    await store.close();
    await store.close();
  }, 60_000);

  it('an acquire that failed leaves no grant behind on a member that answered too late (found in review)', async () => {
    const server = await startRedisServer();
    servers.push(server);
    const late = redisStore(server.url, { commandTimeoutMs: 200 });
    const [a, b] = [memoryStore(), memoryStore()];
    const store = redlockStore([late, a, b]);
    const locks = new LockManager({ store });
    await (await locks.acquire('warm')).release(); // the lock scripts are known to the server
    // No majority: a refuses (held by another), b grants, the Redis member answers too late.
    await a.locks.acquire({ resource: 'job', holder: 'other', ttlMs: 30_000, fair: false, queueTtlMs: 1_000 });
    const pid = server.pid;
    process.kill(pid, 'SIGSTOP');
    try {
      await expect(locks.acquire('job', { waitMs: 0, ttlMs: 30_000 })).rejects.toBeInstanceOf(LockTimeoutError);
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    await sleep(100); // the late replies arrive
    expect((await b.locks.inspect('job')).holder).toBeUndefined();
    expect((await late.locks.inspect('job')).holder).toBeUndefined();
    locks.close();
    await late.close();
    await a.close();
    await b.close();
  });

  it('keeps mutual exclusion under contention', async () => {
    const members = [await startRedisServer(), await startRedisServer(), await startRedisServer()];
    servers.push(...members);
    const store = redlockStore(members.map((m) => m.url));
    let inside = 0;
    let overlaps = 0;
    let highest = 0;
    let stale = 0;
    let grants = 0;
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        const locks = new LockManager({ store });
        for (let i = 0; i < 10; i++) {
          await locks.withLock('contended', { waitMs: 20_000 }, async (lock) => {
            grants++;
            if (++inside !== 1) overlaps++;
            if (lock.token <= highest) stale++;
            highest = Math.max(highest, lock.token);
            await sleep(1);
            inside--;
          });
        }
        locks.close();
      }),
    );
    expect(grants).toBe(40);
    expect(overlaps).toBe(0);
    expect(stale).toBe(0);
    await store.close();
  }, 60_000);
});

describe('Redlock token write-back', () => {
  it('tokens keep increasing when the member with the fastest clock drops out', async () => {
    const hour = 3_600_000;
    const ahead = memoryStore({ clock: () => Date.now() + hour });
    const b = memoryStore();
    const c = memoryStore();
    const store = redlockStore([ahead, b, c]);
    const locks = new LockManager({ store });
    const first = await locks.acquire('r');
    // The quorum's token comes from the member whose clock runs an hour ahead...
    expect(first.token).toBeGreaterThan((Date.now() + hour - 1_000) * 1000);
    await first.release();
    await ahead.close(); // ...and that member is gone now.
    const second = await locks.acquire('r');
    // Without the write-back, b and c would grant from their own clocks, an hour lower.
    expect(second.token).toBeGreaterThan(first.token);
    await second.release();
    locks.close();
    await b.close();
    await c.close();
  });

  it('an acquire slower than the lease (minus drift) fails and is undone everywhere', async () => {
    const inner = [memoryStore(), memoryStore(), memoryStore()];
    // Each member answers acquires 60 ms late; everything else passes straight through.
    const slow = (s: MemoryStore): Store => {
      const locks = new Proxy(s.locks, {
        get(target, prop) {
          if (prop === 'acquire') {
            return async (r: Parameters<MemoryStore['locks']['acquire']>[0]) => {
              const out = await target.acquire(r);
              await sleep(60);
              return out;
            };
          }
          const value = Reflect.get(target, prop, target);
          return typeof value === 'function' ? value.bind(target) : value;
        },
      });
      return new Proxy(s, {
        get(target, prop) {
          if (prop === 'locks') return locks;
          const value = Reflect.get(target, prop, target);
          return typeof value === 'function' ? value.bind(target) : value;
        },
      });
    };
    // Validity of a 100 ms lease with driftFactor 0.5: 100 - 50 - 2 = 48 ms < 60 ms.
    const store = new RedlockStore(inner.map(slow), { driftFactor: 0.5 });
    const locks = new LockManager({ store });
    await expect(locks.acquire('r', { ttlMs: 100, waitMs: 0 })).rejects.toBeInstanceOf(LockTimeoutError);
    for (const s of inner) expect((await s.locks.inspect('r')).holder).toBeUndefined();
    locks.close();
    for (const s of inner) await s.close();
  });

  it('rejects an empty member list and bad members', () => {
    expect(() => redlockStore([])).toThrow(InvalidOptionError);
    expect(() => redlockStore([42 as unknown as string])).toThrow(/members\[0\]/);
    expect(() => redlockStore([memoryStore()], { driftFactor: 2 })).toThrow(/driftFactor/);
  });
});
