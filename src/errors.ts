/**
 * Every error ringway throws on purpose is a {@link RingwayError} with a stable `code`.
 * A key or argument of the wrong type is a plain `TypeError` instead, as Node does.
 *
 * `instanceof` works across two copies of the package: each class carries a
 * `Symbol.for` brand that `Symbol.hasInstance` checks (as undici does).
 */

/** Every code a {@link RingwayError} can carry. The README's table lists the same ones. */
export const ERROR_CODES = {
  ERR_INVALID_OPTION: 'An option or argument is out of range; the message names the field and the value.',
  ERR_LOCK_TIMEOUT: 'A lock could not be acquired within `waitMs`.',
  ERR_LOCK_LOST: 'A lock expired or was taken by someone else while it was held.',
  ERR_LOCK_NOT_HELD: 'The lock is not held by this holder (released, never acquired, or expired).',
  ERR_VERSION_CONFLICT: 'A compare-and-set failed: the stored version is not the expected one.',
  ERR_VALIDATION: 'A value does not match its schema; the message points at the field.',
  ERR_NOT_FOUND: 'The named entity does not exist.',
  ERR_STORE_UNAVAILABLE: 'The store (e.g. Redis) cannot be reached or did not answer in time.',
  ERR_NO_ENDPOINT: 'No healthy endpoint is available to serve the request.',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

const BRAND = Symbol.for('ringway.error');

/** Options shared by every ringway error. */
export interface RingwayErrorOptions {
  /** The underlying error, if any. */
  cause?: unknown;
  /** Suggested HTTP status when the error reaches an HTTP client. @default 500 */
  statusCode?: number;
}

/** Base class of every error ringway throws on purpose. */
export class RingwayError extends Error {
  readonly code: ErrorCode;
  /** Suggested HTTP status for servers that surface this error. */
  readonly statusCode: number;

  constructor(code: ErrorCode, message: string, options: RingwayErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.statusCode = options.statusCode ?? 500;
    this.name = new.target.name;
    Object.defineProperty(this, BRAND, { value: true });
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    if (this === RingwayError) {
      return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[BRAND] === true;
    }
    return Function.prototype[Symbol.hasInstance].call(this, value) || brandedAs(value, this.name);
  }
}

function brandedAs(value: unknown, name: string): boolean {
  return (
    typeof value === 'object' &&
    value !== null &&
    (value as Record<symbol, unknown>)[BRAND] === true &&
    (value as Error).name === name
  );
}

/** An option or argument is out of range (`ERR_INVALID_OPTION`). */
export class InvalidOptionError extends RingwayError {
  /** The option or argument at fault, e.g. `vnodes` or `endpoints[2].weight`. */
  readonly field: string;
  constructor(field: string, value: unknown, expected: string) {
    super('ERR_INVALID_OPTION', `${field} ${expected}, got ${describe(value)}`, { statusCode: 400 });
    this.field = field;
  }
}

/** A lock could not be acquired within its wait time (`ERR_LOCK_TIMEOUT`). */
export class LockTimeoutError extends RingwayError {
  constructor(message: string, options: RingwayErrorOptions = {}) {
    super('ERR_LOCK_TIMEOUT', message, { statusCode: 409, ...options });
  }
}

/** A held lock expired or was taken over (`ERR_LOCK_LOST`). */
export class LockLostError extends RingwayError {
  constructor(message: string, options: RingwayErrorOptions = {}) {
    super('ERR_LOCK_LOST', message, { statusCode: 409, ...options });
  }
}

/** The caller does not hold the lock (`ERR_LOCK_NOT_HELD`). */
export class LockNotHeldError extends RingwayError {
  constructor(message: string, options: RingwayErrorOptions = {}) {
    super('ERR_LOCK_NOT_HELD', message, { statusCode: 409, ...options });
  }
}

/** A compare-and-set found another version (`ERR_VERSION_CONFLICT`). */
export class VersionConflictError extends RingwayError {
  /** The version the caller expected. */
  readonly expected: number | undefined;
  /** The version in the store (0 when the key does not exist). */
  readonly actual: number;
  constructor(message: string, expected: number | undefined, actual: number) {
    super('ERR_VERSION_CONFLICT', message, { statusCode: 412 });
    this.expected = expected;
    this.actual = actual;
  }
}

/** A value fails its schema (`ERR_VALIDATION`). */
export class ValidationError extends RingwayError {
  /** JSON pointer to the offending field, '' for the whole value. */
  readonly path: string;
  constructor(message: string, path = '', options: RingwayErrorOptions = {}) {
    super('ERR_VALIDATION', message, { statusCode: 400, ...options });
    this.path = path;
  }
}

/** The named entity does not exist (`ERR_NOT_FOUND`). */
export class NotFoundError extends RingwayError {
  constructor(message: string, options: RingwayErrorOptions = {}) {
    super('ERR_NOT_FOUND', message, { statusCode: 404, ...options });
  }
}

/** The store cannot be reached (`ERR_STORE_UNAVAILABLE`). */
export class StoreUnavailableError extends RingwayError {
  constructor(message: string, options: RingwayErrorOptions = {}) {
    super('ERR_STORE_UNAVAILABLE', message, { statusCode: 503, ...options });
  }
}

/** No healthy endpoint can take the request (`ERR_NO_ENDPOINT`). */
export class NoEndpointError extends RingwayError {
  constructor(message: string, options: RingwayErrorOptions = {}) {
    super('ERR_NO_ENDPOINT', message, { statusCode: 503, ...options });
  }
}

/** Short, safe rendering of a bad value for error messages. */
export function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 64 ? `${value.slice(0, 64)}…` : value);
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (Array.isArray(value)) return `array(${value.length})`;
  return typeof value;
}
