/**
 * Options of {@link ConfigCenter}: defaults, and `resolveConfigOptions`, which merges,
 * validates (naming the field and the bad value) and freezes them; and the checks of
 * namespace names and keys.
 */
import { InvalidOptionError } from '../errors.js';
import type { Store } from '../store/Store.js';
import { checkInt, checkName, checkObject } from '../validate.js';

/** Options of {@link ConfigCenter}. */
export interface ConfigOptions {
  /** The store shared by every process of the fleet: `memoryStore()` or `redisStore(url)`. */
  store: Store;
  /**
   * The namespace calls use when they name none (Apollo's and Nacos' namespaces: one per
   * environment or application). Letters, digits, `_`, `.` and `-`; at most 64 characters.
   * @default 'default'
   */
  namespace?: string;
  /**
   * Other namespaces calls may name with `{ namespace }`. A call naming any other namespace
   * fails with `NotFoundError` (`ERR_NOT_FOUND`), so a typo cannot create a namespace.
   * @default []
   */
  namespaces?: readonly string[];
  /**
   * Largest value accepted, in UTF-8 bytes of its JSON text.
   * @default 262_144 (256 KiB)
   */
  maxValueBytes?: number;
  /**
   * Longest key accepted, in characters.
   * @default 256
   */
  maxKeyLength?: number;
  /**
   * Versions kept per key (for `history` and `rollback`).
   * @default 50
   */
  historyLimit?: number;
  /**
   * Changes kept in each namespace's change log, from which watchers catch up; a watcher
   * that missed more reads a snapshot instead.
   * @default 1_000
   */
  logLimit?: number;
  /**
   * How often each watch re-reads its position from the store: the bound on how long a
   * missed notification stays missed.
   * @default 1_000
   */
  pollIntervalMs?: number;
}

/** {@link ConfigOptions} with every default applied. */
export interface ResolvedConfigOptions {
  readonly store: Store;
  readonly namespace: string;
  readonly namespaces: readonly string[];
  readonly maxValueBytes: number;
  readonly maxKeyLength: number;
  readonly historyLimit: number;
  readonly logLimit: number;
  readonly pollIntervalMs: number;
}

/** Defaults of {@link ConfigOptions}. */
export const DEFAULT_CONFIG_OPTIONS = Object.freeze({
  namespace: 'default',
  namespaces: Object.freeze([] as string[]),
  maxValueBytes: 262_144,
  maxKeyLength: 256,
  historyLimit: 50,
  logLimit: 1_000,
  pollIntervalMs: 1_000,
});

/** Hard ceiling of `maxValueBytes` (the store keeps `historyLimit` copies of each value). */
export const MAX_VALUE_BYTES = 16 * 1024 * 1024;

const NAMESPACE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/**
 * A namespace name: letters, digits, `_`, `.`, `-`, starting with a letter or digit, 1 to 64 characters.
 * @throws {InvalidOptionError} naming `field`.
 */
export function checkNamespaceName(field: string, value: unknown): string {
  if (typeof value !== 'string' || !NAMESPACE.test(value)) {
    throw new InvalidOptionError(
      field,
      value,
      'must be 1 to 64 letters, digits, _, . or -, starting with a letter or digit',
    );
  }
  return value;
}

/** Lone UTF-16 surrogates and control characters: not allowed in keys. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
const BAD_CHARS = /[\u0000-\u001f\u007f]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/**
 * A key (or, with `allowEmpty`, a prefix): a string of at most `maxLength` characters without
 * control characters or lone surrogates.
 * @throws {TypeError} when `value` is not a string.
 * @throws {InvalidOptionError} naming `field` for an empty or oversize key or a bad character.
 */
export function checkKey(field: string, value: unknown, maxLength: number, allowEmpty = false): string {
  if (typeof value !== 'string') throw new TypeError(`${field} must be a string, got ${typeof value}`);
  if (!(allowEmpty && value === '')) checkName(field, value, maxLength);
  if (BAD_CHARS.test(value)) {
    throw new InvalidOptionError(field, value, 'must not contain control characters or lone surrogates');
  }
  return value;
}

/**
 * Merges `options` with {@link DEFAULT_CONFIG_OPTIONS}, checks every field and freezes the result.
 * @throws {InvalidOptionError} naming the field and the bad value.
 */
export function resolveConfigOptions(options: ConfigOptions): ResolvedConfigOptions {
  const opts = checkObject('options', options) as Partial<ConfigOptions>;
  const store = opts.store;
  if (
    typeof store !== 'object' ||
    store === null ||
    typeof (store as Partial<Store>).config !== 'object' ||
    typeof (store as Partial<Store>).onRestart !== 'function'
  ) {
    throw new InvalidOptionError('store', store, 'must be a store from memoryStore() or redisStore()');
  }
  const namespace = checkNamespaceName('namespace', opts.namespace ?? DEFAULT_CONFIG_OPTIONS.namespace);
  const others = opts.namespaces ?? DEFAULT_CONFIG_OPTIONS.namespaces;
  if (!Array.isArray(others)) throw new InvalidOptionError('namespaces', others, 'must be an array of namespace names');
  const namespaces = Object.freeze([
    ...new Set([namespace, ...others.map((n, i) => checkNamespaceName(`namespaces[${i}]`, n))]),
  ]);
  return Object.freeze({
    store,
    namespace,
    namespaces,
    maxValueBytes: checkInt(
      'maxValueBytes',
      opts.maxValueBytes ?? DEFAULT_CONFIG_OPTIONS.maxValueBytes,
      16,
      MAX_VALUE_BYTES,
    ),
    maxKeyLength: checkInt('maxKeyLength', opts.maxKeyLength ?? DEFAULT_CONFIG_OPTIONS.maxKeyLength, 1, 4_096),
    historyLimit: checkInt('historyLimit', opts.historyLimit ?? DEFAULT_CONFIG_OPTIONS.historyLimit, 1, 10_000),
    logLimit: checkInt('logLimit', opts.logLimit ?? DEFAULT_CONFIG_OPTIONS.logLimit, 1, 100_000),
    pollIntervalMs: checkInt(
      'pollIntervalMs',
      opts.pollIntervalMs ?? DEFAULT_CONFIG_OPTIONS.pollIntervalMs,
      10,
      3_600_000,
    ),
  });
}
