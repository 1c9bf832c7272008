/**
 * `redlockStore([a, b, c])`: the Redlock algorithm (Redis documentation, "Distributed Locks
 * with Redis") over N independent Redis masters, as a lock backend for `LockManager`.
 *
 * - Acquire: the same holder id is sent to every member at once; the lock is ours when a
 *   majority granted it and the time spent is below the lease minus a clock-drift allowance
 *   (ttl x driftFactor + 2 ms). Otherwise it is released on every member.
 * - Fencing tokens: each member grants its own (its counter + 1, or its clock in µs when the
 *   counter is gone). The lock's token is
 *   the highest of the majority's, written back to a majority (`raiseToken`) before the
 *   lock counts as acquired: any later majority overlaps this one in at least one member,
 *   whose counter is then already above our token, so later tokens are higher. (This is the
 *   read-then-write-back of quorum registers, Attiya, Bar-Noy & Dolev 1995.) It costs one
 *   more round trip per acquire.
 * - Extend: succeeds when a majority extended; release goes to every member.
 * - Fair queues are not offered: per-member queues can disagree on the order, and no
 *   waiter would then hold a majority of heads.
 *
 * Redlock's safety rests on timing: bounded clock drift between members and client, and a
 * member that restarts without persistence staying down for one ttl before rejoining (or
 * this library noticing its new run id: held locks are then re-checked against the quorum).
 * Use the fencing token at the protected resource for correctness.
 */
import { InvalidOptionError, StoreUnavailableError } from '../errors.js';
import {
  type AcquireOutcome,
  type AcquireRequest,
  checkOwner,
  type LockState,
  type LockStorage,
  type ReleaseSubscription,
} from '../store/LockStorage.js';
import type { RedisClient } from '../store/redis/RedisContext.js';
import { RedisStore } from '../store/redis/RedisStore.js';
import type { LockBackend, RestartEvent, Store } from '../store/Store.js';
import { checkNumber, checkObject } from '../validate.js';

/** A Redlock member: a store, or a URL / ioredis client to make a Redis store of. */
export type RedlockMember = Store | RedisClient | string;

/** Options of {@link redlockStore}. */
export interface RedlockOptions {
  /**
   * Clock-drift allowance: an acquire that took longer than ttl - ttl x driftFactor - 2 ms
   * counts as failed.
   * @default 0.01
   */
  driftFactor?: number;
  /**
   * Options for the Redis stores made from URLs or clients (prefix, commandTimeoutMs...).
   * @default {}
   */
  storeOptions?: ConstructorParameters<typeof RedisStore>[1];
}

type Settled<T> = { ok: true; value: T } | { ok: false; error: unknown };

const now = () => performance.now();

/** Runs `call` on every member at once and reports each outcome. */
function fanOut<T>(members: readonly Store[], call: (store: Store) => Promise<T>): Promise<Settled<T>[]> {
  return Promise.all(
    members.map((member) =>
      call(member).then(
        (value): Settled<T> => ({ ok: true, value }),
        (error: unknown): Settled<T> => ({ ok: false, error }),
      ),
    ),
  );
}

/** The first failure that is not StoreUnavailableError (a bug, not an outage), if any. */
function unexpected(results: readonly Settled<unknown>[]): unknown {
  for (const r of results) if (!r.ok && !(r.error instanceof StoreUnavailableError)) return r.error;
  return undefined;
}

function unreachable(results: readonly Settled<unknown>[]): number {
  let n = 0;
  for (const r of results) if (!r.ok) n++;
  return n;
}

/** The lock part of a Redlock quorum. */
export class RedlockLockStorage implements LockStorage {
  readonly #members: readonly Store[];
  readonly #quorum: number;
  readonly #driftFactor: number;

  constructor(members: readonly Store[], driftFactor: number) {
    this.#members = members;
    this.#quorum = Math.floor(members.length / 2) + 1;
    this.#driftFactor = driftFactor;
  }

  /** Votes needed: a majority of the members. */
  get quorum(): number {
    return this.#quorum;
  }

  async acquire(request: AcquireRequest): Promise<AcquireOutcome> {
    if (request.fair) {
      throw new InvalidOptionError(
        'fair',
        true,
        'is not supported by redlockStore (use a single store for fair locks)',
      );
    }
    const { resource, holder, ttlMs } = request;
    const started = now();
    const votes = await fanOut(this.#members, (m) => m.locks.acquire(request));
    let granted = 0;
    let token = 0;
    let retryAfterMs = 0;
    // A member that already had our grant (a retry after a lost reply) has less left of it.
    let remainingMs: number | undefined;
    for (const v of votes) {
      if (!v.ok) continue;
      if (v.value.acquired) {
        granted++;
        if (v.value.token > token) token = v.value.token;
        const left = v.value.remainingMs;
        if (left !== undefined) remainingMs = Math.min(remainingMs ?? left, left);
      } else if (v.value.retryAfterMs > retryAfterMs) {
        retryAfterMs = v.value.retryAfterMs;
      }
    }
    if (granted >= this.#quorum) {
      // Write the highest token back to a majority, so every later majority sees it.
      const raised = await fanOut(this.#members, (m) => m.locks.raiseToken(resource, holder, token));
      const confirmed = raised.filter((r) => r.ok && r.value).length;
      const validity = ttlMs - Math.ceil(ttlMs * this.#driftFactor) - 2;
      if (confirmed >= this.#quorum && now() - started < validity) {
        return remainingMs === undefined ? { acquired: true, token } : { acquired: true, token, remainingMs };
      }
    }
    // No majority in time: undo what we got, everywhere (a member may have granted without
    // its reply reaching us).
    await fanOut(this.#members, (m) => m.locks.release(resource, holder));
    const bug = unexpected(votes);
    if (bug !== undefined) throw bug;
    if (unreachable(votes) > this.#members.length - this.#quorum) {
      throw this.#noQuorum(votes);
    }
    return { acquired: false, retryAfterMs, position: -1 };
  }

  async extend(resource: string, holder: string, ttlMs: number): Promise<boolean> {
    const results = await fanOut(this.#members, (m) => m.locks.extend(resource, holder, ttlMs));
    if (results.filter((r) => r.ok && r.value).length >= this.#quorum) return true;
    const bug = unexpected(results);
    if (bug !== undefined) throw bug;
    if (unreachable(results) > this.#members.length - this.#quorum) throw this.#noQuorum(results);
    return false;
  }

  async raiseToken(resource: string, holder: string, token: number): Promise<boolean> {
    const results = await fanOut(this.#members, (m) => m.locks.raiseToken(resource, holder, token));
    return results.filter((r) => r.ok && r.value).length >= this.#quorum;
  }

  async release(resource: string, holder: string, fair?: boolean): Promise<boolean> {
    const results = await fanOut(this.#members, (m) => m.locks.release(resource, holder, fair));
    if (results.some((r) => r.ok && r.value)) return true;
    const bug = unexpected(results);
    if (bug !== undefined) throw bug;
    if (unreachable(results) === this.#members.length) throw this.#noQuorum(results);
    return false;
  }

  async leaveQueue(resource: string, holder: string): Promise<void> {
    await fanOut(this.#members, (m) => m.locks.leaveQueue(resource, holder));
  }

  async inspect(resource: string): Promise<LockState> {
    const results = await fanOut(this.#members, (m) => m.locks.inspect(resource));
    if (unreachable(results) > this.#members.length - this.#quorum) throw this.#noQuorum(results);
    const byHolder = new Map<string, LockState[]>();
    for (const r of results) {
      if (!r.ok || r.value.holder === undefined) continue;
      const list = byHolder.get(r.value.holder) ?? [];
      list.push(r.value);
      byHolder.set(r.value.holder, list);
    }
    for (const [holder, states] of byHolder) {
      if (states.length < this.#quorum) continue;
      return {
        holder,
        token: Math.max(...states.map((s) => s.token)),
        // The lock holds while a majority's leases do: the quorum-th longest remaining lease.
        ttlMs: states.map((s) => s.ttlMs).sort((a, b) => b - a)[this.#quorum - 1]!,
        queue: [],
      };
    }
    return { holder: undefined, token: 0, ttlMs: 0, queue: [] };
  }

  onReleased(listener: (resource: string, holder: string, token: number) => void, owner?: string): ReleaseSubscription {
    if (owner !== undefined) checkOwner(owner);
    const subscriptions = this.#members.map((m) => m.locks.onReleased(listener, owner));
    return {
      // Ready when the members' subscriptions have settled (a member down does not block).
      get ready() {
        return Promise.allSettled(subscriptions.map((s) => s.ready)).then(() => undefined);
      },
      close: () => {
        for (const s of subscriptions) s.close();
      },
    };
  }

  #noQuorum(results: readonly Settled<unknown>[]): StoreUnavailableError {
    const down = unreachable(results);
    const first = results.find((r) => !r.ok);
    return new StoreUnavailableError(
      `redlock: ${down} of ${this.#members.length} members unreachable, a quorum of ${this.#quorum} is impossible`,
      { cause: first !== undefined && !first.ok ? first.error : undefined },
    );
  }
}

/** A Redlock quorum of independent stores, usable as `new LockManager({ store })`. */
export class RedlockStore implements LockBackend {
  readonly locks: RedlockLockStorage;
  /** The member stores, in the order given. */
  readonly members: readonly Store[];
  readonly #owned: readonly Store[];
  #closed = false;

  /**
   * Prefer {@link redlockStore}.
   * @throws {InvalidOptionError} for an empty member list or a bad option.
   */
  constructor(members: readonly RedlockMember[], options: RedlockOptions = {}) {
    const o = checkObject('options', options) as RedlockOptions;
    if (!Array.isArray(members) || members.length === 0) {
      throw new InvalidOptionError('members', members, 'must be a non-empty array of stores, URLs or ioredis clients');
    }
    const driftFactor = checkNumber('driftFactor', o.driftFactor ?? 0.01, 0, 0.5);
    const owned: Store[] = [];
    this.members = Object.freeze(
      members.map((m, i) => {
        if (typeof m === 'object' && m !== null && 'locks' in m && 'kind' in m) return m as Store;
        if (typeof m !== 'string' && (typeof m !== 'object' || m === null)) {
          throw new InvalidOptionError(`members[${i}]`, m, 'must be a store, a redis:// URL or an ioredis client');
        }
        const store = new RedisStore(m as RedisClient | string, o.storeOptions ?? {});
        owned.push(store);
        return store;
      }),
    );
    this.#owned = owned;
    this.locks = new RedlockLockStorage(this.members, driftFactor);
  }

  /** True once {@link RedlockStore.close} was called. */
  get closed(): boolean {
    return this.#closed;
  }

  onRestart(listener: (event: RestartEvent) => void): () => void {
    const offs = this.members.map((m) => m.onRestart(listener));
    return () => {
      for (const off of offs) off();
    };
  }

  /** Closes the member stores this quorum created from URLs or clients. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all(this.#owned.map((s) => s.close()));
  }
}

/**
 * A Redlock quorum over independent Redis masters (use an odd number, 3 or 5).
 * @throws {InvalidOptionError} for an empty member list or a bad option.
 * @example
 * ```ts
 * const store = redlockStore(['redis://a:6379', 'redis://b:6379', 'redis://c:6379']);
 * const locks = new LockManager({ store });
 * ```
 */
export function redlockStore(members: readonly RedlockMember[], options: RedlockOptions = {}): RedlockStore {
  return new RedlockStore(members, options);
}
