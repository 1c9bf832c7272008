/**
 * LockManager and Lock behaviour, run against the memory store and the shared Redis.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  InvalidOptionError,
  LockLostError,
  LockNotHeldError,
  LockTimeoutError,
  RingwayError,
  StoreUnavailableError,
} from '../../src/errors.js';
import { fullJitterDelay } from '../../src/lock/backoff.js';
import type { Lock } from '../../src/lock/Lock.js';
import { LockManager } from '../../src/lock/LockManager.js';
import { memoryStore } from '../../src/store/memory/MemoryStore.js';
import { redisStore } from '../../src/store/redis/RedisStore.js';
import type { Store } from '../../src/store/Store.js';
import { deletePrefix, redisUrl, requireRedis, testPrefix } from '../helpers/redis.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
let n = 0;
const fresh = (what: string) => `${what}:${++n}:${Math.random().toString(36).slice(2, 8)}`;

const redisAvailable = await requireRedis('LockManager on Redis');
const prefix = testPrefix('lock-manager');

const backends: [string, () => Store][] = [['memory', () => memoryStore()]];
if (redisAvailable) backends.push(['redis', () => redisStore(redisUrl(), { prefix })]);

afterAll(async () => {
  if (redisAvailable) await deletePrefix(redisUrl(), prefix);
});

describe.each(backends)('LockManager on %s', (_name, makeStore) => {
  let store: Store;
  let locks: LockManager;
  let rival: LockManager;
  beforeAll(() => {
    store = makeStore();
    locks = new LockManager({ store });
    rival = new LockManager({ store });
  });
  afterAll(async () => {
    locks.close();
    rival.close();
    await store.close();
  });

  it('acquires, reports the holder, releases; releasing twice is harmless', async () => {
    const name = fresh('basic');
    const lock = await locks.acquire(name, { ttlMs: 5_000 });
    expect(lock.name).toBe(name);
    expect(lock.token).toBeGreaterThan(0);
    expect(lock.remainingMs).toBeGreaterThan(4_000);
    expect(lock.remainingMs).toBeLessThanOrEqual(5_000);
    expect(locks.held.includes(lock)).toBe(true);
    const state = await locks.inspect(name);
    expect(state.holder).toBe(lock.holder);
    expect(state.token).toBe(lock.token);
    expect(await lock.release()).toBe(true);
    expect(await lock.release()).toBe(false);
    expect(lock.released).toBe(true);
    expect(lock.lost).toBe(false);
    expect(locks.held.includes(lock)).toBe(false);
    expect((await locks.inspect(name)).holder).toBeUndefined();
  });

  it('held lists the locks still held, newest first, as they are released in any order', async () => {
    const own = new LockManager({ store });
    const [a, b, c, d] = await Promise.all(['a', 'b', 'c', 'd'].map((x) => own.acquire(fresh(x))));
    const names = () => own.held.map((l) => l.name);
    expect(new Set(names())).toEqual(new Set([a!.name, b!.name, c!.name, d!.name]));
    await c!.release();
    await a!.release();
    expect(new Set(names())).toEqual(new Set([b!.name, d!.name]));
    await d!.release();
    await b!.release();
    expect(own.held).toEqual([]);
    own.close();
  });

  it('a held lock makes others time out with ERR_LOCK_TIMEOUT; tokens increase per grant', async () => {
    const name = fresh('timeout');
    const first = await locks.acquire(name, { ttlMs: 5_000 });
    const err = await rival.acquire(name, { waitMs: 0 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LockTimeoutError);
    expect(err).toMatchObject({ code: 'ERR_LOCK_TIMEOUT' });
    await expect(rival.acquire(name, { waitMs: 60 })).rejects.toMatchObject({ code: 'ERR_LOCK_TIMEOUT' });
    await first.release();
    const second = await rival.acquire(name, { waitMs: 0 });
    expect(second.token).toBeGreaterThan(first.token);
    await second.release();
  });

  it('a waiter gets the lock as soon as the holder releases it', async () => {
    const name = fresh('handoff');
    const first = await locks.acquire(name, { ttlMs: 30_000 });
    const waiting = rival.acquire(name, { waitMs: 10_000 });
    await sleep(50);
    await first.release();
    const second = await waiting;
    expect(second.token).toBeGreaterThan(first.token);
    await second.release();
  });

  it('a waiter gets the lock when the lease of a crashed holder ends', async () => {
    const name = fresh('expiry');
    await locks.acquire(name, { ttlMs: 60 }); // never released: its holder "crashed"
    const second = await rival.acquire(name, { waitMs: 5_000 });
    expect(second.token).toBeGreaterThan(0);
    await second.release();
  });

  it('extend keeps the lock; extend after release is ERR_LOCK_NOT_HELD', async () => {
    const name = fresh('extend');
    const lock = await locks.acquire(name, { ttlMs: 600 });
    for (let i = 0; i < 4; i++) {
      await sleep(200);
      await lock.extend();
    }
    await lock.extend(5_000);
    expect(lock.ttlMs).toBe(5_000);
    await expect(rival.acquire(name, { waitMs: 0 })).rejects.toBeInstanceOf(LockTimeoutError);
    await lock.release();
    const err = await lock.extend().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LockNotHeldError);
    expect(err).toMatchObject({ code: 'ERR_LOCK_NOT_HELD' });
  });

  it('extend after the lease ended and someone else took it is ERR_LOCK_LOST, and stays lost', async () => {
    const name = fresh('lost');
    const lock = await locks.acquire(name, { ttlMs: 50 });
    const signal = lock.signal;
    await sleep(120);
    const other = await rival.acquire(name, { waitMs: 0 });
    expect(lock.lost).toBe(true);
    expect(signal.aborted).toBe(true);
    expect(signal.reason).toBeInstanceOf(LockLostError);
    await expect(lock.extend()).rejects.toMatchObject({ code: 'ERR_LOCK_LOST' });
    await expect(lock.extend()).rejects.toBeInstanceOf(LockLostError);
    expect(await lock.release()).toBe(false); // not ours: the rival's lease is untouched
    expect((await locks.inspect(name)).holder).toBe(other.holder);
    await other.release();
  });

  it('extend finds a lock taken over in the store and reports it lost', async () => {
    const name = fresh('taken');
    const lock = await locks.acquire(name, { ttlMs: 5_000 });
    // Simulate the lease vanishing in the store (e.g. evicted) and a rival taking it.
    await store.locks.release(name, lock.holder);
    const other = await rival.acquire(name, { waitMs: 0 });
    await expect(lock.extend()).rejects.toBeInstanceOf(LockLostError);
    expect(lock.signal.aborted).toBe(true);
    await other.release();
  });

  it('lock.signal aborts when the lease runs out locally without an extend', async () => {
    const lock = await locks.acquire(fresh('local'), { ttlMs: 40 });
    const aborted = new Promise((resolve) => lock.signal.addEventListener('abort', resolve));
    await aborted;
    expect(lock.lost).toBe(true);
    expect(lock.remainingMs).toBe(0);
  });

  it('an aborted signal stops waiting with its reason', async () => {
    const name = fresh('abort');
    const held = await locks.acquire(name, { ttlMs: 10_000 });
    const controller = new AbortController();
    const waiting = rival.acquire(name, { waitMs: 10_000, signal: controller.signal, fair: true });
    await sleep(40);
    controller.abort(new Error('user gave up'));
    await expect(waiting).rejects.toThrow('user gave up');
    await sleep(20);
    expect((await locks.inspect(name)).queue).toEqual([]); // a fair waiter leaves the queue
    await expect(rival.acquire(name, { signal: AbortSignal.abort() })).rejects.toMatchObject({ name: 'AbortError' });
    await held.release();
  });

  it('withLock extends while the callback runs, returns its result and releases', async () => {
    const name = fresh('with');
    const result = await locks.withLock(name, { ttlMs: 300 }, async (lock, signal) => {
      for (let i = 0; i < 6; i++) {
        await sleep(100);
        await expect(rival.acquire(name, { waitMs: 0 })).rejects.toBeInstanceOf(LockTimeoutError);
      }
      expect(signal.aborted).toBe(false);
      return lock.token;
    });
    expect(result).toBeGreaterThan(0);
    expect((await locks.inspect(name)).holder).toBeUndefined();
  });

  it('withLock passes the callback error through and still releases', async () => {
    const name = fresh('with-error');
    await expect(
      locks.withLock(name, {}, () => {
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect((await locks.inspect(name)).holder).toBeUndefined();
  });

  it('withLock aborts the signal and rejects with ERR_LOCK_LOST when the lock is lost', async () => {
    const name = fresh('with-lost');
    let other: Lock | undefined;
    const err = await locks
      .withLock(name, { ttlMs: 90, extendEveryMs: 30 }, async (lock, signal) => {
        await store.locks.release(name, lock.holder);
        other = await rival.acquire(name, { waitMs: 0, ttlMs: 5_000 });
        await new Promise((resolve) => signal.addEventListener('abort', resolve));
        return 'finished anyway';
      })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LockLostError);
    expect((await locks.inspect(name)).holder).toBe(other?.holder);
    await other?.release();
  });

  it('fair mode grants waiters in arrival order', async () => {
    const name = fresh('fair');
    const managers = Array.from({ length: 4 }, () => new LockManager({ store, fair: true }));
    const first = await locks.acquire(name, { ttlMs: 10_000 });
    const order: number[] = [];
    const waiting = managers.map(async (m, i) => {
      await sleep(40 * i); // arrive one after another
      const lock = await m.acquire(name, { waitMs: 10_000, ttlMs: 10_000 });
      order.push(i);
      await sleep(10);
      await lock.release();
    });
    await sleep(40 * managers.length + 60);
    expect((await locks.inspect(name)).queue).toHaveLength(4);
    await first.release();
    await Promise.all(waiting);
    expect(order).toEqual([0, 1, 2, 3]);
    for (const m of managers) m.close();
  });

  it('a fair waiter that misses the hand-over message learns of it at its next poll', async () => {
    const name = fresh('deaf');
    // A backend whose announcements never arrive (as while the subscriber reconnects).
    const deaf = {
      onRestart: store.onRestart.bind(store),
      locks: new Proxy(store.locks, {
        get(target, prop) {
          if (prop === 'onReleased') return () => ({ ready: Promise.resolve(), close: () => {} });
          const value = Reflect.get(target, prop, target);
          return typeof value === 'function' ? value.bind(target) : value;
        },
      }),
    };
    const waiting = new LockManager({ store: deaf, fair: true, retryMaxMs: 20, queueTtlMs: 300 });
    const first = await locks.acquire(name, { ttlMs: 10_000 });
    const pending = waiting.acquire(name, { waitMs: 10_000, ttlMs: 10_000 });
    await sleep(50);
    await first.release(); // handed over to the waiter in the store; nobody tells it
    const handed = await locks.inspect(name);
    const lock = await pending;
    expect(lock.token).toBe(handed.token);
    expect(lock.token).toBeGreaterThan(first.token);
    expect(lock.remainingMs).toBeGreaterThan(5_000);
    await lock.release();
    waiting.close();
  });

  it('rejects bad names, ttls and options with ERR_INVALID_OPTION (wrong types: TypeError)', async () => {
    await expect(locks.acquire('')).rejects.toBeInstanceOf(InvalidOptionError);
    await expect(locks.acquire('x'.repeat(1025))).rejects.toMatchObject({ code: 'ERR_INVALID_OPTION', field: 'name' });
    await expect(locks.acquire(42 as unknown as string)).rejects.toBeInstanceOf(TypeError);
    for (const ttlMs of [0, 5, 1.5, -1, Number.NaN, 2 ** 31, '100']) {
      await expect(locks.acquire('x', { ttlMs: ttlMs as number })).rejects.toMatchObject({
        code: 'ERR_INVALID_OPTION',
        field: 'ttlMs',
      });
    }
    await expect(locks.acquire('x', { waitMs: -1 })).rejects.toMatchObject({ field: 'waitMs' });
    await expect(locks.acquire('x', { fair: 'yes' as unknown as boolean })).rejects.toMatchObject({ field: 'fair' });
    await expect(locks.acquire('x', { signal: {} as AbortSignal })).rejects.toMatchObject({ field: 'signal' });
    await expect(locks.acquire('x', null as unknown as object)).rejects.toMatchObject({ field: 'options' });
    await expect(locks.withLock('x', { extendEveryMs: 0 }, () => 1)).rejects.toMatchObject({ field: 'extendEveryMs' });
    await expect(locks.withLock('x', {}, 'nope' as unknown as () => number)).rejects.toBeInstanceOf(TypeError);
    const lock = await locks.acquire(fresh('bad-extend'));
    await expect(lock.extend(3)).rejects.toMatchObject({ field: 'ttlMs' });
    await lock.release();
  });
});

describe('LockManager options', () => {
  it('resolves defaults and rejects bad values, naming the field', () => {
    const m = new LockManager();
    expect(m.options).toEqual({
      ttlMs: 10_000,
      waitMs: 5_000,
      fair: false,
      retryBaseMs: 10,
      retryMaxMs: 250,
      queueTtlMs: 2_000,
      driftFactor: 0.01,
    });
    expect(Object.isFrozen(m.options)).toBe(true);
    m.close();
    const bad: [object, string][] = [
      [{ ttlMs: 1 }, 'ttlMs'],
      [{ waitMs: 1.5 }, 'waitMs'],
      [{ fair: 1 }, 'fair'],
      [{ retryBaseMs: 0 }, 'retryBaseMs'],
      [{ retryBaseMs: 100, retryMaxMs: 50 }, 'retryMaxMs'],
      [{ retryMaxMs: 500, queueTtlMs: 500 }, 'queueTtlMs'],
      [{ driftFactor: 0.9 }, 'driftFactor'],
      [{ store: {} }, 'store'],
    ];
    for (const [options, field] of bad) {
      expect(() => new LockManager(options as never), field).toThrow(InvalidOptionError);
      try {
        new LockManager(options as never);
      } catch (err) {
        expect((err as InvalidOptionError).field).toBe(field);
      }
    }
    expect(() => new LockManager(null as never)).toThrow(InvalidOptionError);
  });

  it('managers without a store share the process memory store', async () => {
    const a = new LockManager();
    const b = new LockManager();
    const name = fresh('shared');
    const lock = await a.acquire(name);
    await expect(b.acquire(name, { waitMs: 0 })).rejects.toBeInstanceOf(LockTimeoutError);
    await lock.release();
    a.close();
    b.close();
  });

  it('a closed manager refuses to acquire; a closed store surfaces ERR_STORE_UNAVAILABLE', async () => {
    const store = memoryStore();
    const m = new LockManager({ store });
    const lock = await m.acquire(fresh('closing'));
    m.close();
    m.close();
    await expect(m.acquire('x')).rejects.toBeInstanceOf(StoreUnavailableError);
    await store.close();
    await expect(lock.extend()).rejects.toMatchObject({ code: 'ERR_STORE_UNAVAILABLE' });
    const m2 = new LockManager({ store });
    await expect(m2.acquire('x', { waitMs: 50 })).rejects.toBeInstanceOf(StoreUnavailableError);
    m2.close();
  });

  it('closing a manager ends its waiting acquires with ERR_STORE_UNAVAILABLE', async () => {
    const store = memoryStore();
    const holder = new LockManager({ store });
    const waiting = new LockManager({ store });
    const name = fresh('close-waiting');
    const lock = await holder.acquire(name);
    const pending = waiting.acquire(name, { waitMs: 10_000 });
    await sleep(30);
    waiting.close();
    await expect(pending).rejects.toBeInstanceOf(StoreUnavailableError);
    await lock.release();
    holder.close();
    await store.close();
  });

  it('every error is a RingwayError with a stable code', async () => {
    const m = new LockManager({ store: memoryStore() });
    const name = fresh('codes');
    await m.acquire(name);
    const err = await m.acquire(name, { waitMs: 0 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RingwayError);
    m.close();
  });
});

describe('fullJitterDelay', () => {
  it('stays within [0, min(cap, base x 2^attempt)]', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 100 }),
        fc.integer({ min: 1, max: 1_000 }),
        fc.integer({ min: 1, max: 100_000 }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (attempt, base, cap, r) => {
          const d = fullJitterDelay(attempt, base, cap, () => r);
          return Number.isInteger(d) && d >= 0 && d <= Math.min(cap, base * 2 ** Math.min(attempt, 30));
        },
      ),
    );
    expect(fullJitterDelay(3, 10, 1_000, () => 0.999_999)).toBe(80);
    expect(fullJitterDelay(50, 10, 250, () => 0.999_999)).toBe(250);
  });
});
