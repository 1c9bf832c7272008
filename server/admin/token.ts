/**
 * The admin API's bearer token: chosen by the operator (`--admin-token`,
 * `RINGWAY_ADMIN_TOKEN`) or generated at start, and compared in constant time.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { InvalidOptionError } from '../../src/errors.js';

/** Shortest token accepted, in characters. */
export const MIN_TOKEN_LENGTH = 16;

/** Longest token accepted, in characters. */
export const MAX_TOKEN_LENGTH = 1_024;

/** A new random token: 32 bytes, base64url (43 characters). */
export function generateToken(): string {
  return randomBytes(32).toString('base64url');
}

/**
 * Checks an operator-chosen token.
 * @throws {InvalidOptionError} naming `field` when it is not a string of 16 to 1024
 *   printable ASCII characters without spaces.
 */
export function checkToken(field: string, value: unknown): string {
  if (
    typeof value !== 'string' ||
    value.length < MIN_TOKEN_LENGTH ||
    value.length > MAX_TOKEN_LENGTH ||
    !/^[\x21-\x7e]+$/.test(value)
  ) {
    throw new InvalidOptionError(
      field,
      typeof value === 'string' ? `${value.length} characters` : value,
      `must be ${MIN_TOKEN_LENGTH} to ${MAX_TOKEN_LENGTH} printable ASCII characters without spaces`,
    );
  }
  return value;
}

/**
 * Compares presented credentials with the token in constant time. Both sides are hashed
 * first (SHA-256), so `timingSafeEqual` always compares two 32-byte digests and neither the
 * token's length nor its first differing byte shows in the time taken.
 */
export class TokenCheck {
  readonly #digest: Buffer;

  constructor(token: string) {
    this.#digest = createHash('sha256').update(token).digest();
  }

  /** Whether `authorization` is `Bearer <token>` (scheme case-insensitive, RFC 6750 section 2.1). */
  matches(authorization: string | undefined): boolean {
    if (authorization === undefined) return false;
    const m = /^Bearer +(\S+)$/i.exec(authorization);
    const presented = createHash('sha256')
      .update(m?.[1] ?? '')
      .digest();
    return timingSafeEqual(presented, this.#digest) && m !== null;
  }
}
