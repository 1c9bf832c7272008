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
import type { LockStorage } from '../../src/store/LockStorage.js';
import { memoryStore } from '../../src/store/memory/MemoryStore.js';
import { redisStore } from '../../src/store/redis/RedisStore.js';
import type { LockBackend, Store } from '../../src/store/Store.js';
import { deletePrefix, redisUrl, requireRedis, testPrefix } from '../helpers/redis.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
let n = 0;
const fresh = (what: string) => `${what}:${++n}:${Math.random().toString(36).slice(2, 8)}`;

async function until(check: () => boolean | Promise<boolean>, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check()) && Date.now() < deadline) await sleep(5);
}

/** `store` with some lock methods replaced; everything else passes straight through. */
function withLocks(store: Store, overrides: Partial<LockStorage>): LockBackend {
  return {
    onRestart: store.onRestart.bind(store),
    locks: new Proxy(store.locks, {
      get(target, prop) {
        if (prop in overrides) return overrides[prop as keyof LockStorage];
        const value = Reflect.get(target, prop, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    }),
  };
}

/** Keeps the event loop busy for `ms`: no timer runs meanwhile. */
function busyWait(ms: number): void {
  const end = performance.now() + ms;
  let spins = 0;
  while (performance.now() < end) spins++;
  if (spins < 0) throw new Error('unreachable');
}

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

  /**
   * W (through a store that loses the reply to one refused poll, after `meanwhile` ran) queued
   * fair ahead of X; the trap is armed once both wait.
   */
  async function lostReplyAhead(name: string, meanwhile: (holder: string) => Promise<void>) {
    let trap = false;
    const flaky = withLocks(store, {
      acquire: async (request) => {
        const outcome = await store.locks.acquire(request);
        if (!trap || outcome.acquired) return outcome;
        trap = false;
        await meanwhile(request.holder);
        throw new StoreUnavailableError('redis: no reply within 300 ms (commandTimeoutMs)');
      },
    });
    const options = { fair: true, retryMaxMs: 10, queueTtlMs: 150 };
    const w = new LockManager({ store: flaky, ...options });
    const x = new LockManager({ store, ...options });
    const wWaits = w.acquire(name, { waitMs: 5_000, ttlMs: 10_000 });
    await until(async () => (await locks.inspect(name)).queue.length === 1, 2_000);
    const xWaits = x.acquire(name, { waitMs: 5_000, ttlMs: 10_000 });
    await until(async () => (await locks.inspect(name)).queue.length === 2, 2_000);
    trap = true;
    return { w, x, wWaits, xWaits };
  }

  it('a fair waiter handed the lock by a poll whose reply is lost keeps it; the next waiter does not get it too (found in review)', async () => {
    const name = fresh('lost-reply');
    const held = await locks.acquire(name, { ttlMs: 10_000 });
    // W's poll is refused, then the holder releases (handing the lock to W), and W's reply is lost.
    const { w, x, wWaits, xWaits } = await lostReplyAhead(name, async () => {
      await held.release();
    });
    const wLock = await wWaits;
    expect(wLock.lost).toBe(false);
    const xFirst = await Promise.race([xWaits.then(() => 'granted too'), sleep(150).then(() => 'waiting')]);
    expect(xFirst).toBe('waiting');
    expect((await locks.inspect(name)).holder).toBe(wLock.holder);
    await wLock.release();
    const xLock = await xWaits;
    expect(xLock.token).toBeGreaterThan(wLock.token);
    await xLock.release();
    w.close();
    x.close();
  });

  it('a hand-over for a grant given back meanwhile is checked with the store, not trusted (found in review)', async () => {
    const name = fresh('given-back');
    const held = await locks.acquire(name, { ttlMs: 10_000 });
    // W is handed the lock, which then goes on to X (as a give-back of W's grant would), and
    // W's reply is lost; the hand-over message to W still arrives.
    const { w, x, wWaits, xWaits } = await lostReplyAhead(name, async (holder) => {
      await held.release();
      await store.locks.release(name, holder, true);
    });
    const xLock = await xWaits;
    const wFirst = await Promise.race([wWaits.then(() => 'granted too'), sleep(150).then(() => 'waiting')]);
    expect(wFirst).toBe('waiting');
    expect((await locks.inspect(name)).holder).toBe(xLock.holder);
    await xLock.release();
    const wLock = await wWaits;
    expect(wLock.token).toBeGreaterThan(xLock.token);
    expect((await locks.inspect(name)).holder).toBe(wLock.holder);
    await wLock.release();
    w.close();
    x.close();
  });

  it('a late hand-over message about a grant the waiter already found gone is not taken (found in review)', async () => {
    const name = fresh('late-message');
    const held = await locks.acquire(name, { ttlMs: 10_000 });
    let holdBack = true;
    const heldBack: (() => void)[] = [];
    let slowReply = false;
    const late = withLocks(store, {
      onReleased: (listener, owner) =>
        store.locks.onReleased((resource, holder, token) => {
          if (holdBack) heldBack.push(() => listener(resource, holder, token));
          else listener(resource, holder, token);
        }, owner),
      acquire: async (request) => {
        const outcome = await store.locks.acquire(request);
        if (outcome.acquired && slowReply) {
          slowReply = false;
          await sleep(250); // the poll that finds the hand-over answers after its 200 ms lease
        }
        return outcome;
      },
    });
    const w = new LockManager({ store: late, fair: true, retryMaxMs: 20, queueTtlMs: 600 });
    const x = new LockManager({ store, fair: true, retryMaxMs: 20, queueTtlMs: 150 });
    const wWaits = w.acquire(name, { waitMs: 5_000, ttlMs: 200 });
    await until(async () => (await locks.inspect(name)).queue.length === 1, 2_000);
    const xWaits = x.acquire(name, { waitMs: 5_000, ttlMs: 10_000 });
    await until(async () => (await locks.inspect(name)).queue.length === 2, 2_000);
    slowReply = true;
    await held.release(); // handed to W; the message is held back, W's poll finds the grant too late
    const xLock = await xWaits; // W's lease ran out: X, next in line, has it
    await until(async () => (await locks.inspect(name)).queue.length === 1, 2_000); // W queued again
    for (const message of heldBack.splice(0)) message();
    const wFirst = await Promise.race([wWaits.then(() => 'granted too'), sleep(150).then(() => 'waiting')]);
    expect(wFirst).toBe('waiting');
    expect((await locks.inspect(name)).holder).toBe(xLock.holder);
    holdBack = false;
    await xLock.release();
    const wLock = await wWaits;
    expect(wLock.token).toBeGreaterThan(xLock.token);
    await wLock.release();
    w.close();
    x.close();
  });

  it('a plain attempt without a reply is given back before the next attempt, whose grant then holds', async () => {
    const name = fresh('give-back-first');
    let lose = true;
    const flaky = withLocks(store, {
      acquire: async (request) => {
        const outcome = await store.locks.acquire(request);
        if (!lose) return outcome;
        lose = false;
        throw new StoreUnavailableError('redis: no reply within 300 ms (commandTimeoutMs)'); // granted, reply lost
      },
      release: async (resource, holder, fair) => {
        await sleep(30); // a give-back that takes a while (on Redis, PLAIN_RELEASE then RELEASE)
        return store.locks.release(resource, holder, fair);
      },
    });
    const m = new LockManager({ store: flaky, retryBaseMs: 1, retryMaxMs: 1 });
    const lock = await m.acquire(name, { waitMs: 2_000, ttlMs: 10_000 });
    await sleep(60);
    expect(lock.lost).toBe(false);
    expect((await locks.inspect(name)).holder).toBe(lock.holder);
    await lock.release();
    m.close();
  });

  it('withLock rejects with ERR_LOCK_LOST when the lease ran out while no timer could run (found in review)', async () => {
    const name = fresh('with-expired');
    let other: Lock | undefined;
    const err = await locks
      .withLock(name, { ttlMs: 100 }, async () => {
        busyWait(200); // the lease runs out; the expiry timer cannot fire
        other = await rival.acquire(name, { waitMs: 0 });
        return 'as if nothing happened';
      })
      .catch((e: unknown) => e);
    expect(other).toBeDefined();
    expect(err).toBeInstanceOf(LockLostError);
    expect((await locks.inspect(name)).holder).toBe(other?.holder);
    await other?.release();
  });

  it('an abort while an attempt is in flight ends the wait at once; the fair waiter leaves the queue (found in review)', async () => {
    const name = fresh('abort-in-flight');
    const held = await locks.acquire(name, { ttlMs: 60_000 });
    const controller = new AbortController();
    const slow = withLocks(store, {
      acquire: async (request) => {
        const outcome = store.locks.acquire(request);
        controller.abort(new Error('user gave up')); // while the attempt is in flight
        await sleep(20);
        return outcome;
      },
    });
    const w = new LockManager({ store: slow, queueTtlMs: 30_000 });
    const started = performance.now();
    const pending = w.acquire(name, { fair: true, ttlMs: 60_000, waitMs: 20_000, signal: controller.signal });
    await expect(pending).rejects.toThrow('user gave up');
    expect(performance.now() - started).toBeLessThan(2_000);
    expect((await locks.inspect(name)).queue).toEqual([]);
    await held.release();
    w.close();
  });

  it('close() while an attempt is in flight, or while waiting, ends the wait at once (found in review)', async () => {
    const name = fresh('close-in-flight');
    const held = await locks.acquire(name, { ttlMs: 60_000 });
    let onAttempt = () => {};
    const slow = withLocks(store, {
      acquire: async (request) => {
        const outcome = store.locks.acquire(request);
        onAttempt();
        await sleep(20);
        return outcome;
      },
    });
    const w = new LockManager({ store: slow, queueTtlMs: 30_000 });
    onAttempt = () => w.close();
    let started = performance.now();
    const fair = w.acquire(name, { fair: true, ttlMs: 60_000, waitMs: 20_000 });
    await expect(fair).rejects.toBeInstanceOf(StoreUnavailableError);
    expect(performance.now() - started).toBeLessThan(2_000);
    expect((await locks.inspect(name)).queue).toEqual([]);
    // A plain waiter asleep between attempts (long backoff) is woken too.
    const plain = new LockManager({ store, retryBaseMs: 10_000, retryMaxMs: 10_000 });
    started = performance.now();
    const waiting = plain.acquire(name, { waitMs: 20_000 });
    await sleep(50);
    plain.close();
    await expect(waiting).rejects.toBeInstanceOf(StoreUnavailableError);
    expect(performance.now() - started).toBeLessThan(2_000);
    await held.release();
  });

  it('held drops locks whose lease ran out unreleased (found in review)', async () => {
    const own = new LockManager({ store });
    await Promise.all(Array.from({ length: 100 }, (_, i) => own.acquire(fresh(`leak${i}`), { ttlMs: 10 })));
    const kept = await own.acquire(fresh('kept'), { ttlMs: 10_000 });
    await sleep(50);
    expect(own.held).toHaveLength(1);
    expect(own.held[0]).toBe(kept);
    await kept.release();
    expect(own.held).toEqual([]);
    own.close();
  });

  it('extendEveryMs is at most half the time a lease is trusted; the default is unchanged (found in review)', async () => {
    const name = fresh('extend-every');
    // ttlMs 100: trusted for 100 - 1 - 2 = 97 ms, so extended at least every 48 ms.
    for (const extendEveryMs of [99, 49]) {
      const err = await locks.withLock(name, { ttlMs: 100, extendEveryMs }, () => sleep(150)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(InvalidOptionError);
      expect(err).toMatchObject({ field: 'extendEveryMs', message: expect.stringContaining('48') });
    }
    expect((await locks.inspect(name)).holder).toBeUndefined(); // refused before acquiring
    const slept = async () => {
      await sleep(150);
      return 'done';
    };
    expect(await locks.withLock(name, { ttlMs: 100, extendEveryMs: 48 }, slept)).toBe('done');
    expect(await locks.withLock(name, { ttlMs: 100 }, slept)).toBe('done');
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
