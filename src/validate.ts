/**
 * Checks shared by every `resolveXOptions`: each names the field and the bad value in an
 * {@link InvalidOptionError} (`ERR_INVALID_OPTION`).
 */
import { InvalidOptionError } from './errors.js';

/** An integer in [min, max]. */
export function checkInt(field: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new InvalidOptionError(field, value, `must be an integer in [${min}, ${max}]`);
  }
  return value;
}

/** A finite number in [min, max] (or (min, max] with `exclusiveMin`). */
export function checkNumber(field: string, value: unknown, min: number, max: number, exclusiveMin = false): number {
  if (
    typeof value !== 'number' ||
    !Number.isFinite(value) ||
    (exclusiveMin ? value <= min : value < min) ||
    value > max
  ) {
    throw new InvalidOptionError(field, value, `must be a number in ${exclusiveMin ? '(' : '['}${min}, ${max}]`);
  }
  return value;
}

/** A non-empty string of at most `maxLength` characters. */
export function checkName(field: string, value: unknown, maxLength = 1024): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > maxLength) {
    throw new InvalidOptionError(field, value, `must be a non-empty string of at most ${maxLength} characters`);
  }
  return value;
}

/** One of the allowed literal values. */
export function checkOneOf<T extends string>(field: string, value: unknown, allowed: readonly T[]): T {
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    throw new InvalidOptionError(field, value, `must be one of ${allowed.map((a) => `'${a}'`).join(', ')}`);
  }
  return value as T;
}

/** A plain object (or undefined, which becomes {}). */
export function checkObject(field: string, value: unknown): Record<string, unknown> {
  if (value === undefined) return {};
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidOptionError(field, value, 'must be an object');
  }
  return value as Record<string, unknown>;
}
