/**
 * Config values are JSON: what goes in comes back equal after a trip through the store.
 * `encodeJsonValue` refuses anything JSON would silently change or drop (undefined,
 * functions, symbols, bigints, NaN and infinities, Dates, Maps and other class instances,
 * sparse arrays, cycles) with a {@link ValidationError} whose `path` is the JSON pointer of
 * the offending field (RFC 6901), and refuses values over the size limit.
 */
import { ValidationError } from '../errors.js';

/** A JSON value. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** Deepest nesting accepted. */
export const MAX_JSON_DEPTH = 128;

/** The JSON pointer of `path` (RFC 6901: `~` becomes `~0`, `/` becomes `~1`). */
export function jsonPointer(path: readonly (string | number)[]): string {
  return path.map((p) => `/${String(p).replaceAll('~', '~0').replaceAll('/', '~1')}`).join('');
}

function describeBad(value: unknown): string {
  if (value === undefined) return 'undefined';
  if (typeof value === 'number') return String(value);
  if (typeof value === 'function') return 'a function';
  if (typeof value === 'symbol') return 'a symbol';
  if (typeof value === 'bigint') return 'a bigint';
  if (typeof value === 'object' && value !== null) {
    const name = (value as object).constructor?.name;
    return name ? `a ${name}` : 'an object with a custom prototype';
  }
  return typeof value;
}

/**
 * Checks that `value` is plain JSON (see the module comment).
 * @throws {ValidationError} naming the JSON pointer of the first offending field.
 */
export function checkJsonValue(value: unknown, what: string): asserts value is JsonValue {
  const path: (string | number)[] = [];
  const open = new Set<object>();
  const fail = (message: string): never => {
    const pointer = jsonPointer(path);
    throw new ValidationError(`${what}${pointer === '' ? '' : ` at ${pointer}`}: ${message}`, pointer);
  };
  const visit = (v: unknown): void => {
    if (v === null || typeof v === 'boolean' || typeof v === 'string') return;
    if (typeof v === 'number') {
      if (!Number.isFinite(v)) fail(`${describeBad(v)} is not a JSON value`);
      return;
    }
    if (typeof v !== 'object') {
      fail(`${describeBad(v)} is not a JSON value`);
      return;
    }
    if (path.length >= MAX_JSON_DEPTH) fail(`nested deeper than ${MAX_JSON_DEPTH} levels`);
    if (open.has(v)) fail('a cycle is not a JSON value');
    open.add(v);
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) {
        path.push(i);
        if (!(i in v)) fail('a hole in a sparse array is not a JSON value');
        visit(v[i]);
        path.pop();
      }
    } else {
      const proto = Object.getPrototypeOf(v);
      if (proto !== Object.prototype && proto !== null)
        fail(`${describeBad(v)} is not a JSON value (plain objects only)`);
      if (Object.getOwnPropertySymbols(v).length > 0) fail('symbol keys are not JSON');
      for (const key of Object.keys(v)) {
        path.push(key);
        visit((v as Record<string, unknown>)[key]);
        path.pop();
      }
    }
    open.delete(v);
  };
  visit(value);
}

/**
 * Checks `value` and returns its JSON text.
 * @throws {ValidationError} for a value that is not plain JSON (with the field's pointer) or
 *   whose JSON text is over `maxBytes` UTF-8 bytes.
 */
export function encodeJsonValue(value: unknown, maxBytes: number, what: string): string {
  checkJsonValue(value, what);
  const text = JSON.stringify(value);
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > maxBytes) {
    throw new ValidationError(`${what} is ${bytes} bytes as JSON, over the limit of ${maxBytes} (maxValueBytes)`, '');
  }
  return text;
}
