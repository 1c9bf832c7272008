/**
 * The rate-limit part of a {@link Store}: token buckets shared by every process using the
 * same store (as nginx's `limit_req` and Envoy's rate limits do). A bucket holds up to
 * `capacity` tokens, refills at `refillPerSec` tokens a second, and each `take` asks for
 * `cost` of them. A bucket seen for the first time starts full.
 *
 * Semantics every backend keeps (the contract suite checks them):
 * - `take` is one atomic step (one Lua script on Redis): refill by the time elapsed on the
 *   store's clock (Redis `TIME`, so processes with skewed clocks agree), then take `cost`
 *   tokens if that many are there. A refused take takes nothing.
 * - A bucket's limits are those of the call: a call with a smaller `capacity` caps what the
 *   bucket holds.
 * - Buckets are forgotten once they would be full again (a Redis key expiry; a sweep of the
 *   memory store), so keys seen once do not pile up.
 *
 * Unlike the other parts, this one is called directly by library users, so it validates its
 * arguments itself ({@link checkRateLimitTake}).
 */
import { InvalidOptionError } from '../errors.js';
import { checkName, checkNumber, checkObject } from '../validate.js';

/** Largest `capacity` (and so `cost`) of a bucket. */
export const MAX_RATE_LIMIT_CAPACITY = 1_000_000_000;
/** Largest `retryAfterMs` reported (a bucket refilling slower than this is as good as shut). */
export const MAX_RETRY_AFTER_MS = 1_000_000_000_000_000;
/**
 * Tokens a take may be short and still succeed: a millionth of a token. Refills computed in
 * pieces (one per call) do not sum exactly in binary floating point, and Redis keeps 6
 * decimals, so without it a take made exactly when `retryAfterMs` said could be refused.
 * Larger than the rounding at the largest capacity, far below a token. A take let through
 * short owes the shortfall (the bucket may hold down to -TOKEN_EPSILON), so the bound
 * `capacity + refillPerSec x elapsed` holds to within TOKEN_EPSILON however many takes.
 */
export const TOKEN_EPSILON = 0.000001;

/** The limits of one take from a bucket. */
export interface RateLimitRequest {
  /** Most tokens the bucket holds: the largest burst. A number in (0, 1e9]. */
  readonly capacity: number;
  /** Tokens added per second. A number in (0, 1e9]. */
  readonly refillPerSec: number;
  /** Tokens this take needs. A number in (0, capacity]. @default 1 */
  readonly cost?: number;
}

/** Outcome of one take. */
export interface RateLimitOutcome {
  /** True when `cost` tokens were taken. */
  readonly allowed: boolean;
  /** Whole tokens left in the bucket after this take. */
  readonly remaining: number;
  /** 0 when allowed, else the ms (at least 1) until `cost` tokens will be there. */
  readonly retryAfterMs: number;
}

/** Token buckets in the store. */
export interface RateLimitStorage {
  /**
   * Refills the bucket `key` by the store's clock and takes `cost` tokens if it has them.
   * @throws {InvalidOptionError} for a bad key or request, naming the field.
   * @throws {StoreUnavailableError} when the store cannot be reached (or is closed).
   * @example
   * ```ts
   * const { allowed, retryAfterMs } = await store.rateLimits.take(`login|${ip}`, { capacity: 5, refillPerSec: 0.1 });
   * ```
   */
  take(key: string, request: RateLimitRequest): Promise<RateLimitOutcome>;
}

/** A request with its defaults filled in. */
export interface ResolvedRateLimitRequest {
  readonly capacity: number;
  readonly refillPerSec: number;
  readonly cost: number;
}

/**
 * Checks the arguments of {@link RateLimitStorage.take}: a non-empty key of at most 1024
 * characters, and the limits documented on {@link RateLimitRequest}.
 * @throws {InvalidOptionError} naming the field.
 */
export function checkRateLimitTake(key: unknown, request: unknown): ResolvedRateLimitRequest {
  checkName('key', key);
  if (request === undefined) throw new InvalidOptionError('request', request, 'must be an object');
  const r = checkObject('request', request);
  const capacity = checkNumber('capacity', r.capacity, 0, MAX_RATE_LIMIT_CAPACITY, true);
  const refillPerSec = checkNumber('refillPerSec', r.refillPerSec, 0, 1_000_000_000, true);
  const cost = r.cost === undefined ? 1 : checkNumber('cost', r.cost, 0, MAX_RATE_LIMIT_CAPACITY, true);
  if (cost > capacity) throw new InvalidOptionError('cost', cost, `must be at most capacity (${capacity})`);
  return { capacity, refillPerSec, cost };
}
