/**
 * Distributed locks with fencing tokens over any store: `memoryStore()` in one process,
 * `redisStore(...)` across processes and machines, `redlockStore([...])` over independent
 * Redis masters.
 *
 * @example
 * ```ts
 * const locks = new LockManager({ store: redisStore(process.env.REDIS_URL!) });
 * await locks.withLock('invoice:7', { ttlMs: 10_000 }, async (lock, signal) => {
 *   await db.update(invoice, { fencingToken: lock.token, signal });
 * });
 * ```
 */
import { randomBytes } from 'node:crypto';
import { InvalidOptionError, LockLostError, LockTimeoutError, StoreUnavailableError } from '../errors.js';
import type { AcquireOutcome, AcquireRequest, LockState, ReleaseSubscription } from '../store/LockStorage.js';
import { MemoryStore } from '../store/memory/MemoryStore.js';
import type { LockBackend } from '../store/Store.js';
import { checkInt, checkObject } from '../validate.js';
import { fullJitterDelay } from './backoff.js';
import { Lock, type LockOwner } from './Lock.js';
import {
  type AcquireOptions,
  checkBoolean,
  checkLockName,
  checkTtl,
  type LockManagerOptions,
  MAX_MS,
  type ResolvedLockManagerOptions,
  resolveLockManagerOptions,
  type WithLockOptions,
} from './options.js';

let sharedMemoryStore: MemoryStore | undefined;

/**
 * `withLock`'s `extendEveryMs`: an integer from 1 to `maxMs`, half of the `validityMs` a
 * lease of `ttlMs` is trusted (a larger one lets the lease run out between extends).
 */
function checkExtendEvery(value: unknown, maxMs: number, ttlMs: number, validityMs: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > maxMs) {
    throw new InvalidOptionError(
      'extendEveryMs',
      value,
      `must be an integer in [1, ${maxMs}]: at most half of the ${validityMs} ms a ${ttlMs} ms lease is trusted`,
    );
  }
  return value;
}

/** The memory store used by managers created without a store: one per process. */
function defaultStore(): MemoryStore {
  if (sharedMemoryStore === undefined || sharedMemoryStore.closed) sharedMemoryStore = new MemoryStore();
  return sharedMemoryStore;
}

const now = () => performance.now();

/** A resolved acquire: what one `acquire` call needs. */
interface Attempt {
  readonly ttlMs: number;
  readonly waitMs: number;
  readonly fair: boolean;
  readonly signal: AbortSignal | undefined;
}

/** A fair acquire waiting in the queue. */
interface Waiter {
  /** Ends the current sleep. */
  wake: (() => void) | undefined;
  /** Told of a hand-over while not asleep. */
  woken: boolean;
  /** Token of the grant handed over to it, 0 until then. */
  token: number;
  /** When its last refused attempt was sent (monotonic ms). */
  refusedAt: number;
  /** Highest token of a grant to it already dealt with: a late message about it is stale. */
  seen: number;
  /**
   * An attempt got no reply: what the store did meanwhile is unknown, so from then on a
   * hand-over is confirmed with the store before it is trusted.
   */
  unsure: boolean;
}

/** Acquires, extends and releases named locks in a store. */
export class LockManager {
  /** The resolved defaults. */
  readonly options: ResolvedLockManagerOptions;
  /** The backend locks live in. */
  readonly backend: LockBackend;
  readonly #owner: LockOwner;
  readonly #defaults: Attempt;
  /** Prefix of every holder id of this manager: 72 random bits. */
  readonly #id = randomBytes(9).toString('base64url');
  #sequence = 0;
  /** Poll interval of a fair waiter behind the head: well inside its place's lifetime. */
  readonly #keepAliveMs: number;
  /** Holder id -> this manager's waiter with that id. */
  readonly #waiters = new Map<string, Waiter>();
  /** Ends the sleep of every acquire asleep between attempts, plain or fair (for close()). */
  readonly #sleepers = new Set<() => void>();
  /** A plain attempt that got no reply -> the release of what it may have been granted. */
  readonly #givingBack = new WeakMap<AcquireRequest, Promise<void>>();
  #releases: ReleaseSubscription | undefined;
  readonly #stopRestart: () => void;
  #closed = false;

  /**
   * @throws {InvalidOptionError} for a bad option, naming it.
   */
  constructor(options: LockManagerOptions = {}) {
    const o = checkObject('options', options) as LockManagerOptions;
    this.options = resolveLockManagerOptions(o);
    const backend = o.store ?? defaultStore();
    if (typeof backend !== 'object' || backend === null || typeof backend.locks?.acquire !== 'function') {
      throw new InvalidOptionError('store', backend, 'must be a store (memoryStore(), redisStore(), redlockStore())');
    }
    this.backend = backend;
    const { driftFactor } = this.options;
    this.#owner = {
      backend,
      // Redlock's allowance: ttl x drift factor, plus 2 ms for the granularity of expiry.
      validityMs: (ttlMs) => ttlMs - Math.ceil(ttlMs * driftFactor) - 2,
      firstHeld: undefined,
      heldCount: 0,
      pruneAt: 0,
    };
    this.#keepAliveMs = Math.max(1, Math.floor(this.options.queueTtlMs / 3));
    this.#defaults = Object.freeze({
      ttlMs: this.options.ttlMs,
      waitMs: this.options.waitMs,
      fair: this.options.fair,
      signal: undefined,
    });
    this.#stopRestart = backend.onRestart(() => {
      void this.#verifyHeld();
    });
  }

  /** Locks this manager holds now (acquired, not released, not known lost), newest first. */
  get held(): readonly Lock[] {
    return Lock.heldBy(this.#owner);
  }

  /**
   * Acquires `name`. A plain acquire retries with exponential backoff and full jitter until
   * `waitMs` has passed; a fair one waits in the resource's FIFO queue, and the release
   * before its turn hands the lock straight to it.
   * @throws {LockTimeoutError} when the lock stayed taken for `waitMs`.
   * @throws {StoreUnavailableError} when the store could not be reached until `waitMs` passed.
   * @throws {InvalidOptionError} for a bad name, ttl or option; {@link TypeError} when `name` is not a string.
   * @throws the signal's reason when `options.signal` aborts.
   */
  acquire(name: string, options?: AcquireOptions): Promise<Lock> {
    let request: AcquireRequest;
    let attempt: Attempt;
    try {
      const resource = checkLockName(name);
      attempt = options === undefined ? this.#defaults : this.#resolve(options);
      this.#assertOpen();
      attempt.signal?.throwIfAborted();
      request = {
        resource,
        holder: `${this.#id}.${++this.#sequence}`,
        ttlMs: attempt.ttlMs,
        fair: attempt.fair,
        queueTtlMs: this.options.queueTtlMs,
      };
    } catch (err) {
      return Promise.reject(err);
    }
    if (request.fair) return this.#acquireFair(request, attempt);
    // The common case, a free resource: one attempt, one round trip, no await in between.
    const sentAt = now();
    return this.backend.locks.acquire(request).then(
      (first) =>
        first.acquired ? this.#grant(request, first, sentAt) : this.#wait(request, attempt, sentAt, first, undefined),
      (err: unknown) => this.#wait(request, attempt, sentAt, this.#unavailable(err, request), undefined),
    );
  }

  /**
   * A fair acquire: listens for hand-overs before its first attempt (one announced between
   * that attempt and the wait would otherwise be missed), then waits in the queue.
   */
  async #acquireFair(request: AcquireRequest, attempt: Attempt): Promise<Lock> {
    // Without announcements (store unreachable) fair waiters still poll, and a poll finds a
    // hand-over too.
    await this.#listenForReleases().catch(() => {});
    const waiter: Waiter = { wake: undefined, woken: false, token: 0, refusedAt: 0, seen: 0, unsure: false };
    this.#waiters.set(request.holder, waiter);
    try {
      const sentAt = now();
      let first: AcquireOutcome | StoreUnavailableError;
      try {
        first = await this.backend.locks.acquire(request);
      } catch (err) {
        first = this.#unavailable(err, request);
      }
      if (!(first instanceof StoreUnavailableError) && first.acquired) return this.#grant(request, first, sentAt);
      waiter.refusedAt = sentAt;
      return await this.#wait(request, attempt, sentAt, first, waiter);
    } finally {
      this.#waiters.delete(request.holder);
    }
  }

  /** Retries a refused acquire until granted, `waitMs` passes or `signal` aborts. */
  async #wait(
    request: AcquireRequest,
    attempt: Attempt,
    started: number,
    first: AcquireOutcome | StoreUnavailableError,
    waiter: Waiter | undefined,
  ): Promise<Lock> {
    const locks = this.backend.locks;
    const { resource, holder } = request;
    const deadline = started + attempt.waitMs;
    // A queued waiter polls often enough that, when the resource is handed over to it, its
    // last refused poll (from which the lease is counted) is recent.
    const queuedPollMs = Math.max(1, Math.min(this.#keepAliveMs, Math.floor(request.ttlMs / 4)));
    let last = first;
    let granted = false;
    if (waiter !== undefined && first instanceof StoreUnavailableError) waiter.unsure = true;
    try {
      for (let tries = 0; ; tries++) {
        if (waiter !== undefined && waiter.token > 0) {
          const lock = await this.#handedOver(request, waiter);
          if (lock !== undefined) {
            granted = true;
            return lock;
          }
        }
        const remaining = deadline - now();
        if (remaining <= 0) {
          if (last instanceof StoreUnavailableError) throw last;
          throw new LockTimeoutError(
            `lock "${resource}" is held by another holder: not acquired within ${attempt.waitMs} ms`,
          );
        }
        let delay: number;
        if (last instanceof StoreUnavailableError || last.acquired || last.position < 0) {
          // Plain waiter (or store trouble): backoff with full jitter, but no longer than
          // the holder's lease still runs.
          delay = fullJitterDelay(tries, this.options.retryBaseMs, this.options.retryMaxMs);
          if (!(last instanceof StoreUnavailableError) && !last.acquired && last.retryAfterMs > 0) {
            delay = Math.min(delay, last.retryAfterMs);
          }
        } else {
          // Queued: the release hands the resource over and tells us, so poll only to keep
          // our place, and (at the head) for a lease that ends without a release.
          delay = queuedPollMs;
          if (last.position === 0 && last.retryAfterMs > 0) delay = Math.min(delay, last.retryAfterMs);
        }
        // An abort or close() while the last attempt was in flight ends the wait now.
        attempt.signal?.throwIfAborted();
        this.#assertOpen();
        // A waiter told of its hand-over while its last attempt was in flight goes on at once.
        if (waiter?.woken === true) waiter.woken = false;
        else await this.#sleep(waiter, Math.min(delay, Math.ceil(remaining)), attempt.signal);
        attempt.signal?.throwIfAborted();
        this.#assertOpen();
        if (waiter !== undefined && waiter.token > 0) continue;
        const givingBack = this.#givingBack.get(request);
        if (givingBack !== undefined) {
          // A plain attempt's give-back may take two scripts; the next attempt goes after
          // it, or the give-back could free the grant that attempt reports as ours.
          this.#givingBack.delete(request);
          await givingBack;
          attempt.signal?.throwIfAborted();
          this.#assertOpen();
        }
        const sentAt = now();
        try {
          last = await locks.acquire(request);
        } catch (err) {
          last = this.#unavailable(err, request);
          if (waiter !== undefined) waiter.unsure = true;
        }
        if (!(last instanceof StoreUnavailableError) && last.acquired) {
          // A grant found by polling may be a hand-over whose message we missed: it has
          // already run part of its lease.
          if (waiter !== undefined) waiter.seen = Math.max(waiter.seen, last.token);
          const lock = await this.#confirmed(this.#grant(request, last, sentAt), request.ttlMs, false);
          if (lock !== undefined) {
            granted = true;
            return lock;
          }
        }
        if (waiter !== undefined && !(last instanceof StoreUnavailableError)) waiter.refusedAt = sentAt;
      }
    } finally {
      // Giving up (timeout, abort, error): leave the fair queue so the next waiter goes on;
      // a resource handed to us meanwhile is handed on, and a message about it is no longer
      // ours to accept.
      if (waiter !== undefined) this.#waiters.delete(holder);
      if (!granted && request.fair) await locks.leaveQueue(resource, holder).catch(() => {});
    }
  }

  /**
   * The lock handed over to `waiter` by a release. Its lease began after our last refused
   * poll was sent (a poll executed after the hand-over would have found us the holder), so
   * it is trusted from then.
   *
   * The message alone is trusted only while nothing of ours could have given that grant back
   * or changed the store unseen: a live attempt never gives back its grant (see
   * `#unavailable`; it leaves the queue only once it stops accepting messages), a grant
   * this attempt already dealt with is not taken twice, and after an attempt without a
   * reply the grant is confirmed with the store first.
   */
  #handedOver(request: AcquireRequest, waiter: Waiter): Promise<Lock | undefined> {
    const { resource, holder, ttlMs } = request;
    const lock = new Lock(this.#owner, resource, holder, waiter.token, ttlMs, waiter.refusedAt, ttlMs, true);
    waiter.seen = Math.max(waiter.seen, waiter.token);
    waiter.token = 0;
    return this.#confirmed(lock, ttlMs, waiter.unsure);
  }

  /**
   * A granted lock with less than half its ttl left (its lease is counted from an old poll),
   * or any when `always`, is confirmed by one extend. Undefined when that finds it gone: keep
   * waiting.
   */
  async #confirmed(lock: Lock, ttlMs: number, always: boolean): Promise<Lock | undefined> {
    if (!always && lock.remainingMs >= ttlMs / 2) return lock;
    try {
      await lock.extend(ttlMs);
      return lock;
    } catch (err) {
      if (err instanceof LockLostError) return undefined;
      // Not confirmed: nobody will use this lock object; the caller gives the grant back.
      lock.markLost(new LockLostError(`lock "${lock.name}" could not be confirmed`, { cause: err }));
      throw err;
    }
  }

  /** A Lock for a granted attempt sent at `sentAt` (a grant made earlier says what is left). */
  #grant(request: AcquireRequest, outcome: { token: number; remainingMs?: number }, sentAt: number): Lock {
    const { resource, holder, ttlMs, fair } = request;
    return new Lock(this.#owner, resource, holder, outcome.token, ttlMs, sentAt, outcome.remainingMs ?? ttlMs, fair);
  }

  /**
   * A failed attempt: StoreUnavailableError is returned (the caller retries until `waitMs`),
   * anything else is thrown. The script may have run although no reply came.
   * - Plain: a lease of ours is released in the background (the next attempt waits for that).
   * - Fair: nothing is released. The store may have handed the resource to us meanwhile,
   *   and the message telling us so may still come; releasing would hand it on to the next
   *   waiter while we take it too. Our next poll (or that message) reports the grant, and
   *   giving up leaves the queue, which gives it back.
   */
  #unavailable(err: unknown, request: AcquireRequest): StoreUnavailableError {
    if (!(err instanceof StoreUnavailableError)) throw err;
    if (!request.fair) {
      const release = this.backend.locks.release(request.resource, request.holder, false);
      this.#givingBack.set(
        request,
        release.then(
          () => {},
          () => {},
        ),
      );
    }
    return err;
  }

  /**
   * Acquires `name`, runs `fn(lock, signal)` while extending the lease every
   * `extendEveryMs`, then releases. `signal` aborts (reason: {@link LockLostError}) if the
   * lock is lost meanwhile; `withLock` then rejects with that error once `fn` settles, since
   * `fn` did not run under the lock throughout. A failed release is ignored: the lease ends
   * by itself.
   * @throws {LockTimeoutError} / {@link StoreUnavailableError} as {@link LockManager.acquire}.
   * @throws {LockLostError} when the lock was lost while `fn` ran.
   * @throws whatever `fn` throws, when the lock was not lost.
   */
  async withLock<T>(
    name: string,
    options: WithLockOptions | undefined,
    fn: (lock: Lock, signal: AbortSignal) => Promise<T> | T,
  ): Promise<T> {
    if (typeof fn !== 'function') throw new TypeError('withLock(name, options, fn): fn must be a function');
    const ttlMs = options?.ttlMs ?? this.options.ttlMs;
    checkTtl('ttlMs', ttlMs);
    // Extended at least twice per validity: an extend that fails for want of a reply is
    // retried while the lease is still trusted. The default, ttlMs / 3, is capped the same
    // way (which changes it only for a driftFactor above 0.16).
    const validityMs = this.#owner.validityMs(ttlMs);
    const maxEveryMs = Math.max(1, Math.floor(validityMs / 2));
    const every =
      options?.extendEveryMs === undefined
        ? Math.max(1, Math.min(Math.floor(ttlMs / 3), maxEveryMs))
        : checkExtendEvery(options.extendEveryMs, maxEveryMs, ttlMs, validityMs);
    const lock = await this.acquire(name, options);
    const signal = lock.signal;
    let timer: NodeJS.Timeout | undefined;
    let done = false;
    const schedule = (delay: number) => {
      if (done || signal.aborted) return;
      timer = setTimeout(tick, delay);
    };
    const tick = () => {
      lock.extend(ttlMs).then(
        () => schedule(every),
        (err: unknown) => {
          // Unreachable store: try again soon, while the lease is still trusted. A lost lock
          // has already aborted `signal`.
          if (err instanceof StoreUnavailableError) schedule(Math.max(5, Math.min(every, lock.remainingMs / 4)));
        },
      );
    };
    schedule(every);
    try {
      const result = await fn(lock, signal);
      // `lost`, not `signal.aborted`: it also notices a lease that ran out while no timer
      // could run (a callback that kept the event loop busy), and aborts the signal then.
      if (lock.lost) throw signal.reason;
      return result;
    } catch (err) {
      if (lock.lost && !(err instanceof LockLostError)) throw signal.reason;
      throw err;
    } finally {
      done = true;
      if (timer !== undefined) clearTimeout(timer);
      await lock.release().catch(() => {});
    }
  }

  /**
   * The current holder id, fencing token, remaining lease and fair queue of `name`.
   * @throws {StoreUnavailableError}
   */
  inspect(name: string): Promise<LockState> {
    return this.backend.locks.inspect(checkLockName(name));
  }

  /**
   * Stops listening to the store; acquires still waiting reject with StoreUnavailableError.
   * Held locks stay held until released or expired; the store stays open (it is the
   * caller's). Calling it twice is harmless.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#stopRestart();
    this.#releases?.close();
    this.#releases = undefined;
    for (const wake of [...this.#sleepers]) wake();
  }

  #assertOpen(): void {
    if (this.#closed) throw new StoreUnavailableError('the LockManager is closed');
  }

  #resolve(options: AcquireOptions): Attempt {
    if (typeof options !== 'object' || options === null) {
      throw new InvalidOptionError('options', options, 'must be an object');
    }
    const d = this.#defaults;
    const { signal } = options;
    if (signal !== undefined && !(signal instanceof AbortSignal)) {
      throw new InvalidOptionError('signal', signal, 'must be an AbortSignal');
    }
    return {
      ttlMs: options.ttlMs === undefined ? d.ttlMs : checkTtl('ttlMs', options.ttlMs),
      waitMs: options.waitMs === undefined ? d.waitMs : checkInt('waitMs', options.waitMs, 0, MAX_MS),
      fair: options.fair === undefined ? d.fair : checkBoolean('fair', options.fair),
      signal,
    };
  }

  /**
   * Subscribes (once) to the store's hand-over announcements (which name the waiter that
   * now holds the resource, and its token). Resolves when announcements flow.
   */
  #listenForReleases(): Promise<void> {
    if (this.#releases === undefined) {
      if (this.#closed) return Promise.resolve();
      // Only hand-overs to this manager's holder ids (`<id>.<n>`): other processes' turns
      // are not sent here.
      this.#releases = this.backend.locks.onReleased((_resource, holder, token) => {
        const waiter = this.#waiters.get(holder);
        if (waiter === undefined || waiter.token > 0 || token <= waiter.seen) return;
        waiter.token = token;
        if (waiter.wake !== undefined) waiter.wake();
        else waiter.woken = true;
      }, this.#id);
    }
    return this.#releases.ready;
  }

  /** Waits `ms`, or less if the waiter is woken (its turn came), or until `signal` aborts. */
  #sleep(waiter: Waiter | undefined, ms: number, signal: AbortSignal | undefined): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      // An abort listener added to an aborted signal never runs.
      if (signal?.aborted === true) {
        reject(signal.reason);
        return;
      }
      const finish = () => {
        clearTimeout(timer);
        if (waiter !== undefined) waiter.wake = undefined;
        this.#sleepers.delete(wake);
        signal?.removeEventListener('abort', onAbort);
      };
      const onAbort = () => {
        finish();
        reject(signal?.reason);
      };
      const wake = () => {
        finish();
        resolve();
      };
      if (waiter !== undefined) waiter.wake = wake;
      this.#sleepers.add(wake);
      const timer = setTimeout(wake, ms);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /**
   * After a store restart: every held lock the store no longer shows as ours is lost. (A
   * lock taken on the restarted server just before we noticed is rightly kept.)
   */
  async #verifyHeld(): Promise<void> {
    for (const lock of Lock.heldBy(this.#owner)) {
      try {
        const state = await this.backend.locks.inspect(lock.name);
        if (state.holder !== lock.holder) {
          lock.markLost(new LockLostError(`lock "${lock.name}" was lost: the store restarted and no longer holds it`));
        }
      } catch {
        // Unreachable again: the next extend (or the lease's end) decides.
      }
    }
  }
}
