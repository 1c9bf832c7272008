/**
 * The lock part of a {@link Store}: leases with fencing tokens and an optional FIFO queue per
 * resource. Each method is one atomic step in the store (one Lua script on Redis). Arguments
 * arrive validated by `LockManager`; `holder` is an id unique to one acquisition, without spaces.
 *
 * Semantics every backend keeps (the contract suite checks them):
 * - A resource has at most one holder; its lease ends `ttlMs` after the last acquire or
 *   extend, as measured by the store's clock.
 * - Each grant carries a fencing token strictly greater than every token granted before for
 *   that resource: `last + 1` while the per-resource counter lives (it is kept
 *   {@link LockStorageOptions.fenceRetentionMs} after the last grant), the store's time in
 *   microseconds once it is gone (a Redis restart without persistence, or retention ran
 *   out). A counter that started from the clock never runs ahead of it (one grant takes well
 *   over a microsecond), so tokens keep increasing across the loss as long as the store's
 *   clock does not step back.
 * - `extend` and `release` act only while `holder` still holds the resource.
 * - In fair mode a waiter that was refused joins a queue; the resource is granted only to
 *   the head of the queue (when the queue is empty, to anyone). A queued waiter that has not
 *   polled for `queueTtlMs` is dropped, so a crashed waiter cannot block the queue.
 * - Releasing a resource with a queue hands it over at once to the first waiter still in
 *   it, for the ttl that waiter asked for, and announces the hand-over through
 *   {@link LockStorage.onReleased}. An acquire by a holder id that already holds the
 *   resource reports that grant (how a waiter that missed the announcement learns of it).
 * - Plain (non-fair) acquires also wait their turn behind a non-empty queue.
 */

import { InvalidOptionError } from '../errors.js';

/** Outcome of one acquire attempt. */
export type AcquireOutcome =
  | {
      readonly acquired: true;
      readonly token: number;
      /** Set when the grant was made earlier (handed over): what is left of its lease, in ms. */
      readonly remainingMs?: number;
    }
  | {
      readonly acquired: false;
      /** How long the current holder's lease still runs, in ms (0 when free but not our turn). */
      readonly retryAfterMs: number;
      /**
       * Our place in the fair queue (0: next in line), or -1 for a plain attempt. A waiter
       * behind the head is woken by {@link LockStorage.onReleased} when its turn comes and
       * need only poll now and then to keep its place.
       */
      readonly position: number;
    };

/** One attempt to take a resource. */
export interface AcquireRequest {
  /** The resource name, e.g. `invoice:7`. */
  readonly resource: string;
  /** Unique id of this acquisition (and of its place in a fair queue). */
  readonly holder: string;
  /** Lease length. */
  readonly ttlMs: number;
  /** Join / respect the FIFO queue. */
  readonly fair: boolean;
  /** A queued waiter that does not poll again within this time loses its place. */
  readonly queueTtlMs: number;
}

/** What {@link LockStorage.inspect} reports about a resource. */
export interface LockState {
  /** The holder id, or undefined when the resource is free. */
  readonly holder: string | undefined;
  /** Fencing token of the current holder (0 when free). */
  readonly token: number;
  /** Remaining lease in ms (0 when free). */
  readonly ttlMs: number;
  /** Waiter ids in the fair queue, head first. */
  readonly queue: readonly string[];
}

/** A listener registered with {@link LockStorage.onReleased}. */
export interface ReleaseSubscription {
  /**
   * Settles once announcements reach the listener (Redis: the SUBSCRIBE was confirmed);
   * rejects when the store cannot be reached. Read it again later for the current state.
   */
  readonly ready: Promise<void>;
  /** Removes the listener; calling it twice is harmless. */
  close(): void;
}

/** Tuning shared by the lock parts of both backends. */
export interface LockStorageOptions {
  /**
   * How long the per-resource fencing counter is kept after the last grant. After it is
   * gone, tokens continue from the store clock (see the module comment).
   * @default 86_400_000 (one day)
   */
  fenceRetentionMs?: number;
}

/**
 * Channel (under the store's prefix) on which hand-overs to the head of a fair queue are
 * announced, as `<holder id> <token> <resource>`. Holder ids must not contain a space. A
 * hand-over to a holder with an owner part is also announced on {@link ownerChannel}.
 */
export const LOCK_RELEASED_CHANNEL = 'lock:released';

/**
 * The owner part of a holder id: what comes before its first `.` (a LockManager's holder ids
 * are `<manager id>.<sequence>`), or undefined when the id has no `.` or starts with one.
 * Hand-overs to such a holder are also announced on {@link ownerChannel}, so a process
 * listening for its own waiters' turns is not sent every other process' hand-overs.
 */
export function holderOwner(holder: string): string | undefined {
  const dot = holder.indexOf('.');
  return dot > 0 ? holder.slice(0, dot) : undefined;
}

/** Channel (under the store's prefix) of the hand-overs to holders of one owner. */
export function ownerChannel(owner: string): string {
  return `${LOCK_RELEASED_CHANNEL}:${owner}`;
}

/**
 * Checks the `owner` of {@link LockStorage.onReleased}: a non-empty string without `.` or
 * whitespace.
 * @throws {InvalidOptionError}
 */
export function checkOwner(owner: unknown): string {
  if (typeof owner !== 'string' || owner.length === 0 || /[.\s]/.test(owner)) {
    throw new InvalidOptionError('owner', owner, "must be a non-empty string without '.' or whitespace");
  }
  return owner;
}

/** A hand-over announcement, parsed. */
export interface HandOver {
  readonly holder: string;
  readonly token: number;
  readonly resource: string;
}

/** Parses `<holder id> <token> <resource>` (resource names may contain spaces). */
export function parseHandOver(message: string): HandOver | undefined {
  const first = message.indexOf(' ');
  const second = first < 0 ? -1 : message.indexOf(' ', first + 1);
  if (second < 0) return undefined;
  const token = Number(message.slice(first + 1, second));
  if (!Number.isSafeInteger(token) || token <= 0) return undefined;
  return { holder: message.slice(0, first), token, resource: message.slice(second + 1) };
}

/** Default of {@link LockStorageOptions.fenceRetentionMs}. */
export const DEFAULT_FENCE_RETENTION_MS = 86_400_000;

/** The lock part of a store. */
export interface LockStorage {
  /**
   * One acquire attempt: grants the resource to `holder` when free (and, in fair mode, when
   * `holder` is at the head of the queue or the queue is empty).
   * @throws {StoreUnavailableError} when the store cannot be reached.
   */
  acquire(request: AcquireRequest): Promise<AcquireOutcome>;
  /**
   * Sets the lease of `holder` to `ttlMs` from now. Resolves false when `holder` does not hold it.
   * @throws {StoreUnavailableError}
   */
  extend(resource: string, holder: string, ttlMs: number): Promise<boolean>;
  /**
   * Raises the token of `holder`'s grant to `token` (when higher) and the resource's fencing
   * counter with it; resolves false when `holder` does not hold the resource. Redlock uses it
   * to write the quorum's highest token back to a majority, so tokens stay increasing across
   * members (the write-back phase of a quorum register).
   * @throws {StoreUnavailableError}
   */
  raiseToken(resource: string, holder: string, token: number): Promise<boolean>;
  /**
   * Frees the resource if `holder` holds it; resolves false otherwise (harmless).
   * Notifies waiters through {@link LockStorage.onReleased}. `fair` says the lock was taken
   * in fair mode, so waiters likely queue behind it: a hint a backend may use to pick the
   * path that hands over at once (Redis); it never changes the outcome.
   * @throws {StoreUnavailableError}
   */
  release(resource: string, holder: string, fair?: boolean): Promise<boolean>;
  /**
   * Removes a waiter from the fair queue (it gave up). Harmless when absent.
   * @throws {StoreUnavailableError}
   */
  leaveQueue(resource: string, holder: string): Promise<void>;
  /**
   * The resource's current holder, token, remaining lease and queue.
   * @throws {StoreUnavailableError}
   */
  inspect(resource: string): Promise<LockState>;
  /**
   * Calls `listener(resource, holder, token)` when a released resource is handed over to
   * the head of its fair queue, in any process: `holder` now holds it with `token`. Best
   * effort: a waiter that misses the message learns of the grant at its next poll. Plain
   * waiters are not told anything: they poll with backoff.
   * @param owner when given, only hand-overs to holder ids `<owner>.<anything>` are
   *   reported (see {@link holderOwner}); the store then sends this listener only those.
   * @throws {InvalidOptionError} for a bad `owner` (see {@link checkOwner}).
   */
  onReleased(listener: (resource: string, holder: string, token: number) => void, owner?: string): ReleaseSubscription;
}
