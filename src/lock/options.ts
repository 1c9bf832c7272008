/**
 * Options of {@link LockManager} and of each acquire, with their defaults, merged and checked
 * in one place. Every error names the field and the value.
 */
import { InvalidOptionError } from '../errors.js';
import type { LockBackend } from '../store/Store.js';
import { checkInt, checkNumber, checkObject } from '../validate.js';

/** Shortest lease accepted: below it the clock-drift allowance leaves no validity. */
export const MIN_TTL_MS = 10;
/** Longest lease, wait or delay accepted (the largest timer Node can set). */
export const MAX_MS = 2_147_483_647;
/** Longest lock name, in UTF-16 code units. */
export const MAX_LOCK_NAME_LENGTH = 1024;

/** Options of {@link LockManager}: the store and the defaults of every acquire. */
export interface LockManagerOptions {
  /**
   * Where locks live: `memoryStore()` / `redisStore(...)` or `redlockStore([...])`.
   * @default a memory store shared by every LockManager of this process
   */
  store?: LockBackend;
  /** Default lease length in ms. @default 10_000 */
  ttlMs?: number;
  /** Default time to keep trying before `LockTimeoutError`, in ms (0: one attempt). @default 5_000 */
  waitMs?: number;
  /** Default for {@link AcquireOptions.fair}. @default false */
  fair?: boolean;
  /** First backoff step in ms; step n waits a random time in [0, min(retryMaxMs, retryBaseMs x 2^n)]. @default 10 */
  retryBaseMs?: number;
  /** Largest backoff step in ms. @default 250 */
  retryMaxMs?: number;
  /**
   * A fair-queue waiter that does not poll again within this time loses its place (so a
   * crashed waiter cannot block the queue). Must exceed `retryMaxMs`.
   * @default max(2_000, 4 x retryMaxMs)
   */
  queueTtlMs?: number;
  /**
   * Clock-drift allowance: a lease is trusted for `ttl - ttl x driftFactor - 2 ms` after the
   * acquire was sent (Redlock, "Safety arguments").
   * @default 0.01
   */
  driftFactor?: number;
}

/** Options of one {@link LockManager.acquire}. */
export interface AcquireOptions {
  /** Lease length in ms. @default the manager's `ttlMs` */
  ttlMs?: number;
  /** How long to keep trying, in ms; 0 makes one attempt. @default the manager's `waitMs` */
  waitMs?: number;
  /**
   * Wait in a FIFO queue kept in the store: waiters are granted in arrival order, so none
   * starves. Every user of one resource should use the same mode; a plain acquire also
   * waits behind a non-empty queue.
   * @default the manager's `fair`
   */
  fair?: boolean;
  /** Stops waiting when aborted: the acquire rejects with the signal's reason. */
  signal?: AbortSignal;
}

/** Options of {@link LockManager.withLock}. */
export interface WithLockOptions extends AcquireOptions {
  /** How often the lease is extended while the callback runs, in ms. @default ttlMs / 3 */
  extendEveryMs?: number;
}

/** Defaults of {@link LockManagerOptions}. */
export const DEFAULT_LOCK_MANAGER_OPTIONS = Object.freeze({
  ttlMs: 10_000,
  waitMs: 5_000,
  fair: false,
  retryBaseMs: 10,
  retryMaxMs: 250,
  driftFactor: 0.01,
});

/** Resolved, frozen manager options (the store is handled by the manager). */
export interface ResolvedLockManagerOptions {
  readonly ttlMs: number;
  readonly waitMs: number;
  readonly fair: boolean;
  readonly retryBaseMs: number;
  readonly retryMaxMs: number;
  readonly queueTtlMs: number;
  readonly driftFactor: number;
}

/**
 * Merges defaults into `partial`, validates every field and freezes the result.
 * @throws {InvalidOptionError} naming the field and the value.
 */
export function resolveLockManagerOptions(partial: LockManagerOptions = {}): ResolvedLockManagerOptions {
  const o = checkObject('options', partial) as LockManagerOptions;
  const d = DEFAULT_LOCK_MANAGER_OPTIONS;
  const ttlMs = checkTtl('ttlMs', o.ttlMs ?? d.ttlMs);
  const waitMs = checkInt('waitMs', o.waitMs ?? d.waitMs, 0, MAX_MS);
  const fair = checkBoolean('fair', o.fair ?? d.fair);
  const retryBaseMs = checkInt('retryBaseMs', o.retryBaseMs ?? d.retryBaseMs, 1, MAX_MS);
  const retryMaxMs = checkInt('retryMaxMs', o.retryMaxMs ?? d.retryMaxMs, retryBaseMs, MAX_MS);
  const queueTtlMs = checkInt('queueTtlMs', o.queueTtlMs ?? Math.max(2_000, 4 * retryMaxMs), retryMaxMs + 1, MAX_MS);
  const driftFactor = checkNumber('driftFactor', o.driftFactor ?? d.driftFactor, 0, 0.5);
  return Object.freeze({ ttlMs, waitMs, fair, retryBaseMs, retryMaxMs, queueTtlMs, driftFactor });
}

/** A lease length: an integer number of ms in [MIN_TTL_MS, MAX_MS]. */
export function checkTtl(field: string, value: unknown): number {
  return checkInt(field, value, MIN_TTL_MS, MAX_MS);
}

/** A boolean. */
export function checkBoolean(field: string, value: unknown): boolean {
  if (typeof value !== 'boolean') throw new InvalidOptionError(field, value, 'must be a boolean');
  return value;
}

/**
 * A lock name: a string of 1 to {@link MAX_LOCK_NAME_LENGTH} code units.
 * @throws {TypeError} when not a string.
 * @throws {InvalidOptionError} when empty or too long.
 */
export function checkLockName(name: unknown): string {
  if (typeof name !== 'string') throw new TypeError(`lock name must be a string, got ${typeof name}`);
  if (name.length === 0 || name.length > MAX_LOCK_NAME_LENGTH) {
    throw new InvalidOptionError(
      'name',
      name,
      `must be a non-empty string of at most ${MAX_LOCK_NAME_LENGTH} characters`,
    );
  }
  return name;
}
