/**
 * `ConfigCenter`: namespaced JSON configuration with integer versions, compare-and-set,
 * history, rollback, watches that catch up after a disconnect, and JSON Schemas that refuse
 * bad writes. Written once against the {@link Store} interface, so it works in one process
 * on `memoryStore()` and across processes and machines on `redisStore()`.
 *
 * The references users know, and what is taken from each: Apollo and Nacos (namespaces,
 * versioned releases with history and rollback, notification of changes, a client that keeps
 * the last values when the server is away), etcd (compare-and-set on a version, watching
 * from a revision). See `../store/ConfigStorage.ts` for the guarantees of the store side and
 * `ConfigWatcher.ts` for how a watch never misses a change.
 *
 * @example
 * ```ts
 * const config = new ConfigCenter({ store, namespace: 'prod' });
 * config.define('gateway.routes', { type: 'array', items: { type: 'object', required: ['prefix'] } });
 * const { version } = await config.set('gateway.routes', [{ prefix: '/api' }], { expectedVersion: 0 });
 * const entry = await config.get('gateway.routes'); // { value, version, updatedAt, stale: false }
 * const watch = config.watch('gateway.', (change) => apply(change.key, change.value));
 * ```
 */

import { InvalidOptionError, NotFoundError, StoreUnavailableError, VersionConflictError } from '../errors.js';
import type { ConfigSync, ConfigWriteResult, StoredConfigChange, StoredConfigEntry } from '../store/ConfigStorage.js';
import { OutageTracker } from '../store/OutageTracker.js';
import { checkInt, checkObject } from '../validate.js';
import {
  type ConfigOptions,
  checkKey,
  checkNamespaceName,
  type ResolvedConfigOptions,
  resolveConfigOptions,
} from './ConfigOptions.js';
import { type ConfigChange, type ConfigWatchCallback, ConfigWatcher, type WatcherHost } from './ConfigWatcher.js';
import { encodeJsonValue, type JsonValue } from './jsonValue.js';
import { SchemaRegistry } from './SchemaRegistry.js';

/** A key's live value. */
export interface ConfigEntry {
  readonly key: string;
  readonly value: JsonValue;
  readonly version: number;
  /** Store time of the write, ms since the epoch. */
  readonly updatedAt: number;
  /**
   * True when the store could not be reached and this is the last value this client knew
   * (from an earlier read, write or watch), as Apollo's client serves its local cache.
   */
  readonly stale: boolean;
}

/** One version in a key's history. */
export interface ConfigVersion {
  readonly version: number;
  /** The value (undefined for the version a delete created). */
  readonly value: JsonValue | undefined;
  readonly updatedAt: number;
  readonly deleted: boolean;
}

/** Names the namespace of one call. */
export interface ConfigNamespaceOption {
  /** One of the center's namespaces. @default the center's `namespace` */
  namespace?: string;
}

/** Options of {@link ConfigCenter.set}, {@link ConfigCenter.delete} and {@link ConfigCenter.rollback}. */
export interface ConfigWriteOptions extends ConfigNamespaceOption {
  /**
   * Compare-and-set: the write happens only if the key's live version is this one (0: the
   * key has no live value); otherwise `VersionConflictError`. @default no check
   */
  expectedVersion?: number;
}

/** Options of {@link ConfigCenter.snapshot}. */
export interface ConfigSnapshotOptions extends ConfigNamespaceOption {
  /** A revision an earlier snapshot returned: the snapshot then says whether a key under the prefix changed since. */
  since?: number;
  /**
   * The `generation` of the snapshot that returned `since`: when the namespace's revision is
   * now of another generation (the store lost its data and counts anew), `changed` is true.
   * Without it, `since` is taken as a revision of the current generation. Only read with
   * `since`. @default not checked
   */
  generation?: string;
}

/** What {@link ConfigCenter.snapshot} returns. */
export interface ConfigSnapshot {
  /** Every live key under the prefix, sorted by key. */
  readonly entries: ConfigEntry[];
  /**
   * The namespace's revision the entries were read at (it counts the writes of every key of
   * the namespace; 0 for a namespace never written).
   */
  readonly revision: number;
  /**
   * The generation of `revision`: the store starts a new one when it comes back without its
   * data (a restart without persistence), and counts revisions from 1 again. Opaque; '' for
   * a namespace never written. Give it back as `generation` with `since`.
   */
  readonly generation: string;
  /**
   * With `since`: whether a key under the prefix was written or deleted after revision
   * `since`. True also when the store can no longer tell (its change log or a key's history
   * no longer reaches back that far), when `since` is ahead of the store, and when
   * `generation` was given and is not the current one (a store that lost its data): then
   * the caller should take `entries` as new. Undefined without `since`.
   */
  readonly changed: boolean | undefined;
}

/** Options of {@link ConfigCenter.watch}. */
export interface ConfigWatchOptions extends ConfigNamespaceOption {
  /** Watch exactly this key rather than every key starting with it. @default false */
  exact?: boolean;
}

/** A watch; `close()` stops it. */
export interface ConfigWatch {
  readonly namespace: string;
  readonly prefix: string;
  /** Resolves once the current values were delivered (or the watch closed). */
  readonly ready: Promise<void>;
  /** Stops the callbacks. Calling it twice is harmless. */
  close(): void;
}

/** Something the config center wants its owner to know (see {@link ConfigCenter.onEvent}). */
export type ConfigEvent =
  /** A store call failed: reads are served from the last known values, marked stale. */
  | { readonly type: 'degraded'; readonly source: string; readonly error: unknown }
  /** Every store call succeeds again. */
  | { readonly type: 'recovered' }
  /** The store came back without these keys (a restart without persistence); watches keep their last values. */
  | { readonly type: 'lost'; readonly namespace: string; readonly keys: readonly string[] }
  /** A watch callback threw. */
  | { readonly type: 'listener-error'; readonly namespace: string; readonly key: string; readonly error: unknown };

/** What {@link ConfigCenter.health} reports. */
export interface ConfigHealth {
  /** True while some store call fails: reads come from the last known values. */
  readonly degraded: boolean;
  /** Local time (ms) since which the center is degraded. */
  readonly since: number | undefined;
  /** The latest store failure while degraded. */
  readonly lastError: unknown;
  /** Every watch, with its position. */
  readonly watches: readonly {
    readonly namespace: string;
    readonly prefix: string;
    readonly loaded: boolean;
    readonly rev: number;
    readonly keys: number;
    readonly lost: readonly string[];
  }[];
}

/**
 * The failure source of one-off calls (get, list, writes): any later successful call clears
 * it. Each watch is a source of its own, cleared by its own next successful sync.
 */
const CALLS = 'calls';

/** How many times `rollback` retries a compare-and-set lost to a concurrent writer. */
const ROLLBACK_ATTEMPTS = 5;

/** Versioned, namespaced JSON configuration over a {@link Store}: see the module comment. */
export class ConfigCenter {
  /** The resolved options. */
  readonly options: ResolvedConfigOptions;
  readonly #schemas = new SchemaRegistry();
  /** Namespace -> key -> last known live entry (null: known absent). */
  readonly #cache = new Map<string, Map<string, StoredConfigEntry | null>>();
  readonly #watchers = new Set<ConfigWatcher>();
  readonly #outage = new OutageTracker((change) => this.#emit(change));
  readonly #listeners = new Set<(event: ConfigEvent) => void>();
  readonly #watcherHost: WatcherHost;
  readonly #offRestart: () => void;
  #closed = false;

  /**
   * @throws {InvalidOptionError} for a bad option, naming it.
   */
  constructor(options: ConfigOptions) {
    this.options = resolveConfigOptions(options);
    this.#watcherHost = {
      storage: this.options.store.config,
      pollIntervalMs: this.options.pollIntervalMs,
      report: (source, error) => this.#report(source, error),
      seen: (namespace, key, entry) => this.#remember(namespace, key, entry ?? null),
      lost: (namespace, keys) => this.#emit({ type: 'lost', namespace, keys }),
      listenerError: (namespace, key, error) => this.#emit({ type: 'listener-error', namespace, key, error }),
    };
    this.#offRestart = this.options.store.onRestart(() => {
      for (const watcher of this.#watchers) void watcher.resync();
    });
  }

  /** True once {@link ConfigCenter.close} was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /** True while some store call fails (reads then come from the last known values). */
  get degraded(): boolean {
    return this.#outage.degraded;
  }

  /**
   * Declares a JSON Schema for `key`: later writes of `key` through this center (set and
   * rollback) that fail it are refused with `ValidationError`, and the stored value stays as
   * it was. Replaces an earlier schema of the key. Schemas live in this center (each process
   * declares its own), not in the store.
   * @throws {TypeError} when `key` is not a string.
   * @throws {InvalidOptionError} for a bad key or an invalid schema.
   * @throws {NotFoundError} for a namespace this center does not have.
   */
  define(key: string, jsonSchema: object | boolean, options: ConfigNamespaceOption = {}): void {
    const namespace = this.#namespace(options);
    this.#schemas.define(namespace, this.#key(key), jsonSchema);
  }

  /**
   * Removes the schema of `key`; returns whether there was one.
   * @throws {NotFoundError} for a namespace this center does not have.
   */
  undefine(key: string, options: ConfigNamespaceOption = {}): boolean {
    const namespace = this.#namespace(options);
    return this.#schemas.undefine(namespace, this.#key(key));
  }

  /**
   * The live value of `key`, or undefined when it has none. When the store cannot be
   * reached, the last value this client knew, with `stale: true`.
   * @throws {TypeError} when `key` is not a string.
   * @throws {InvalidOptionError} for an empty or oversize key.
   * @throws {NotFoundError} for a namespace this center does not have.
   * @throws {StoreUnavailableError} when the store cannot be reached and the key was never read.
   */
  async get(key: string, options: ConfigNamespaceOption = {}): Promise<ConfigEntry | undefined> {
    const namespace = this.#namespace(options);
    this.#key(key);
    this.#assertOpen();
    let entry: StoredConfigEntry | undefined;
    try {
      entry = await this.options.store.config.get(namespace, key);
    } catch (err) {
      const cached = this.#cached(namespace, key, err);
      return cached === null ? undefined : toEntry(cached, true);
    }
    this.#report(CALLS, undefined);
    this.#remember(namespace, key, entry ?? null);
    return entry === undefined ? undefined : toEntry(entry, false);
  }

  /**
   * Writes `value` (any JSON value) as the next version of `key`.
   * @throws {TypeError} when `key` is not a string.
   * @throws {InvalidOptionError} for a bad key or expectedVersion.
   * @throws {ValidationError} when `value` is not plain JSON, is over `maxValueBytes`, or
   *   fails the key's schema: the message and `path` point at the offending field.
   * @throws {VersionConflictError} when `expectedVersion` is given and is not the key's live version.
   * @throws {NotFoundError} for a namespace this center does not have.
   * @throws {StoreUnavailableError} when the store cannot be reached.
   * @example
   * ```ts
   * const { version } = await config.set('gateway.routes', routes, { expectedVersion: 3 }); // -> 4
   * ```
   */
  async set(
    key: string,
    value: JsonValue,
    options: ConfigWriteOptions = {},
  ): Promise<{ version: number; updatedAt: number }> {
    const namespace = this.#namespace(options);
    this.#key(key);
    const expectedVersion = checkExpected(options);
    const text = encodeJsonValue(value, this.options.maxValueBytes, `value of ${key}`);
    this.#schemas.check(namespace, key, value);
    this.#assertOpen();
    const result = await this.#write(namespace, key, text, expectedVersion);
    if (result.status !== 'written') throw conflict(namespace, key, expectedVersion, result);
    return { version: result.version, updatedAt: result.updatedAt };
  }

  /**
   * Deletes `key`. The delete takes the next version (history and rollback see it). Resolves
   * false when the key had no live value.
   * @throws {VersionConflictError} when `expectedVersion` is given and is not the key's live version.
   * @throws {NotFoundError} for a namespace this center does not have.
   * @throws {StoreUnavailableError} when the store cannot be reached.
   */
  async delete(key: string, options: ConfigWriteOptions = {}): Promise<boolean> {
    const namespace = this.#namespace(options);
    this.#key(key);
    const expectedVersion = checkExpected(options);
    this.#assertOpen();
    const result = await this.#write(namespace, key, undefined, expectedVersion);
    if (result.status === 'conflict') throw conflict(namespace, key, expectedVersion, result);
    return result.status === 'written';
  }

  /**
   * Every live key starting with `prefix` (all keys for ''), sorted by key. When the store
   * cannot be reached and a loaded watch covers the prefix, its last known values, stale.
   * @throws {NotFoundError} for a namespace this center does not have.
   * @throws {StoreUnavailableError} when the store cannot be reached and no watch covers the prefix.
   */
  async list(prefix = '', options: ConfigNamespaceOption = {}): Promise<ConfigEntry[]> {
    const namespace = this.#namespace(options);
    checkKey('prefix', prefix, this.options.maxKeyLength, true);
    this.#assertOpen();
    let entries: StoredConfigEntry[];
    try {
      const result = await this.options.store.config.sync(namespace, prefix, undefined);
      entries = result.kind === 'snapshot' ? result.entries : [];
    } catch (err) {
      const covering = [...this.#watchers].some(
        (w) => w.namespace === namespace && !w.exact && prefix.startsWith(w.prefix) && w.loaded,
      );
      if (!(err instanceof StoreUnavailableError) || !covering) throw err;
      this.#report(CALLS, err);
      const cache = this.#cache.get(namespace) ?? new Map<string, StoredConfigEntry | null>();
      return [...cache.values()]
        .filter((e): e is StoredConfigEntry => e?.key.startsWith(prefix) === true)
        .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
        .map((e) => toEntry(e, true));
    }
    this.#report(CALLS, undefined);
    for (const entry of entries) this.#remember(namespace, entry.key, entry);
    return entries.map((e) => toEntry(e, false));
  }

  /**
   * Every live key starting with `prefix`, as {@link ConfigCenter.list}, together with the
   * namespace revision (and its generation) they were read at; with `since` (a revision an
   * earlier snapshot returned), also whether a key under the prefix changed after it. This is
   * what a blocking list (etcd's watch from a revision, Consul's `?index=`) is built on.
   * Reads the store (never a cache).
   *
   * A revision alone cannot tell a store that lost its data and counted up again to the same
   * number: pass the earlier snapshot's `generation` with `since`, and a revision of another
   * generation counts as changed. (The empty position, revision 0 of generation '', follows
   * into the first generation, as a watch does.)
   * @example
   * ```ts
   * let last = await config.snapshot('gateway.');
   * // later
   * const next = await config.snapshot('gateway.', { since: last.revision, generation: last.generation });
   * if (next.changed) apply(next.entries);
   * ```
   * @throws {InvalidOptionError} for an oversize prefix, a bad `since` or a `generation` that is not a string.
   * @throws {NotFoundError} for a namespace this center does not have.
   * @throws {StoreUnavailableError} when the store cannot be reached.
   */
  async snapshot(prefix = '', options: ConfigSnapshotOptions = {}): Promise<ConfigSnapshot> {
    const namespace = this.#namespace(options);
    checkKey('prefix', prefix, this.options.maxKeyLength, true);
    const since =
      options.since === undefined ? undefined : checkInt('since', options.since, 0, Number.MAX_SAFE_INTEGER);
    const generation = options.generation;
    if (generation !== undefined && typeof generation !== 'string') {
      throw new InvalidOptionError('generation', generation, 'must be a string (a generation a snapshot returned)');
    }
    this.#assertOpen();
    const storage = this.options.store.config;
    let changed: boolean | undefined;
    let result: ConfigSync;
    try {
      result = await storage.sync(namespace, prefix, undefined);
      if (since !== undefined) {
        const empty = generation === '' && since === 0;
        if (generation !== undefined && generation !== result.gen && !empty) changed = true;
        else if (since === result.rev) changed = false;
        else if (since > result.rev) changed = true;
        else {
          // The changes since `since` within this generation (the store's own revision log).
          const after = await storage.sync(namespace, prefix, { gen: result.gen, rev: since });
          changed = after.kind === 'snapshot' || (after.kind === 'changes' && after.changes.length > 0);
        }
      }
    } catch (err) {
      this.#report(CALLS, err);
      throw err;
    }
    this.#report(CALLS, undefined);
    const entries = result.kind === 'snapshot' ? result.entries : [];
    for (const entry of entries) this.#remember(namespace, entry.key, entry);
    return { entries: entries.map((e) => toEntry(e, false)), revision: result.rev, generation: result.gen, changed };
  }

  /**
   * The key's versions, newest first (deletes included), at most `limit` (and at most
   * `historyLimit`, the number the store keeps).
   * @throws {InvalidOptionError} for a bad limit.
   * @throws {NotFoundError} for a namespace this center does not have.
   * @throws {StoreUnavailableError} when the store cannot be reached.
   */
  async history(key: string, options: ConfigNamespaceOption & { limit?: number } = {}): Promise<ConfigVersion[]> {
    const namespace = this.#namespace(options);
    this.#key(key);
    const limit = checkInt('limit', options.limit ?? this.options.historyLimit, 1, 100_000);
    this.#assertOpen();
    const versions = await this.options.store.config.history(namespace, key, limit);
    return versions.map(toVersion);
  }

  /**
   * Writes, as a new version, the value `key` had at `version` (a rollback to a version
   * that a delete created deletes the key: then `deleted` is true; when the key is already
   * deleted, it writes nothing and answers with the version of the delete that holds, with
   * or without `expectedVersion: 0`). The value is checked against the key's schema
   * as any write is. Without `expectedVersion`, a concurrent write is retried a few times on
   * the newest version; with it, a conflict fails at once.
   * @throws {InvalidOptionError} for a bad version.
   * @throws {NotFoundError} when `version` is not in the key's history (never existed or no
   *   longer kept), or for a namespace this center does not have.
   * @throws {ValidationError} when that value fails the key's current schema.
   * @throws {VersionConflictError} when `expectedVersion` is not the live version.
   * @throws {StoreUnavailableError} when the store cannot be reached.
   */
  async rollback(
    key: string,
    version: number,
    options: ConfigWriteOptions = {},
  ): Promise<{ version: number; updatedAt: number; deleted: boolean }> {
    const namespace = this.#namespace(options);
    this.#key(key);
    checkInt('version', version, 1, Number.MAX_SAFE_INTEGER);
    const expected = checkExpected(options);
    this.#assertOpen();
    for (let attempt = 1; ; attempt++) {
      const versions = await this.options.store.config.history(namespace, key, Number.MAX_SAFE_INTEGER);
      const target = versions.find((v) => v.version === version);
      if (target === undefined) {
        const kept =
          versions.length === 0
            ? 'it has no history'
            : `it keeps versions ${versions.at(-1)?.version} to ${versions[0]?.version}`;
        throw new NotFoundError(`config ${namespace}/${key}: version ${version} is not in its history (${kept})`);
      }
      const head = versions[0] as StoredConfigEntry;
      const live = head.deleted ? 0 : head.version;
      const expectedVersion = expected ?? live;
      let result: ConfigWriteResult;
      if (target.deleted) {
        // Already deleted, and no other version expected: nothing to write (a delete of a key
        // with no live value would write nothing either). Answers with the delete that holds.
        if (live === 0 && (expected === undefined || expected === 0)) {
          return { version: head.version, updatedAt: head.updatedAt, deleted: true };
        }
        result = await this.#write(namespace, key, undefined, expectedVersion);
        // Deleted by another writer since the history was read (expected 0 then held): read
        // it again, to answer as above with the delete that holds now.
        if (result.status === 'absent' && attempt < ROLLBACK_ATTEMPTS) continue;
      } else {
        this.#schemas.check(namespace, key, JSON.parse(target.value));
        result = await this.#write(namespace, key, target.value, expectedVersion);
      }
      if (result.status === 'written') {
        return { version: result.version, updatedAt: result.updatedAt, deleted: target.deleted };
      }
      if (expected !== undefined || attempt >= ROLLBACK_ATTEMPTS)
        throw conflict(namespace, key, expectedVersion, result);
    }
  }

  /**
   * Calls `callback(change)` for every key starting with `prefixOrKey` (or exactly that key
   * with `{ exact: true }`): first each current value (`reason: 'initial'`), then every
   * write and delete in revision order (`change`). A watcher that missed notifications (a
   * disconnect) catches up from its last revision and reports each missed change; when the
   * store no longer holds them, it reports the difference (`resync`).
   * @throws {TypeError} when `prefixOrKey` is not a string or `callback` not a function.
   * @throws {InvalidOptionError} for an oversize prefix.
   * @throws {NotFoundError} for a namespace this center does not have.
   */
  watch(prefixOrKey: string, callback: ConfigWatchCallback, options: ConfigWatchOptions = {}): ConfigWatch {
    const namespace = this.#namespace(options);
    const exact = options.exact === true;
    checkKey('prefixOrKey', prefixOrKey, this.options.maxKeyLength, !exact);
    if (typeof callback !== 'function') throw new TypeError(`callback must be a function, got ${typeof callback}`);
    this.#assertOpen();
    let open = true;
    const watcher = new ConfigWatcher(this.#watcherHost, namespace, prefixOrKey, exact, (change) => {
      if (open) callback(change);
    });
    this.#watchers.add(watcher);
    return {
      namespace,
      prefix: prefixOrKey,
      ready: watcher.ready,
      close: () => {
        open = false;
        watcher.close();
        this.#watchers.delete(watcher);
        this.#report(`watch:${namespace}/${prefixOrKey}`, undefined);
      },
    };
  }

  /** Degraded state and every watch's position. */
  health(): ConfigHealth {
    return {
      degraded: this.degraded,
      since: this.#outage.since,
      lastError: this.#outage.lastError,
      watches: [...this.#watchers].map((w) => ({
        namespace: w.namespace,
        prefix: w.prefix,
        loaded: w.loaded,
        rev: w.position?.rev ?? 0,
        keys: w.versions().size,
        lost: w.lostKeys(),
      })),
    };
  }

  /**
   * Calls `listener` for each {@link ConfigEvent} (degraded/recovered, keys lost in a store
   * restart, watch callbacks that threw). Returns the remover.
   */
  onEvent(listener: (event: ConfigEvent) => void): () => void {
    if (typeof listener !== 'function') throw new TypeError(`listener must be a function, got ${typeof listener}`);
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  /** Stops every watch. The store stays open (it is the caller's). Calling it twice is harmless. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#offRestart();
    for (const watcher of this.#watchers) watcher.close();
    this.#watchers.clear();
    this.#listeners.clear();
  }

  async #write(
    namespace: string,
    key: string,
    value: string | undefined,
    expectedVersion: number | undefined,
  ): Promise<ConfigWriteResult> {
    let result: ConfigWriteResult;
    try {
      result = await this.options.store.config.write({
        namespace,
        key,
        value,
        expectedVersion,
        historyLimit: this.options.historyLimit,
        logLimit: this.options.logLimit,
      });
    } catch (err) {
      this.#report(CALLS, err);
      throw err;
    }
    this.#report(CALLS, undefined);
    if (result.status === 'written') {
      this.#remember(
        namespace,
        key,
        value === undefined
          ? null
          : { key, value, version: result.version, updatedAt: result.updatedAt, deleted: false },
      );
    }
    return result;
  }

  #namespace(options: ConfigNamespaceOption): string {
    const opts = checkObject('options', options) as ConfigNamespaceOption;
    if (opts.namespace === undefined) return this.options.namespace;
    const namespace = checkNamespaceName('namespace', opts.namespace);
    if (!this.options.namespaces.includes(namespace)) {
      throw new NotFoundError(
        `config namespace ${JSON.stringify(namespace)} is not one of this center's namespaces (${this.options.namespaces
          .map((n) => JSON.stringify(n))
          .join(', ')}); add it to options.namespaces`,
      );
    }
    return namespace;
  }

  #key(key: unknown): string {
    return checkKey('key', key, this.options.maxKeyLength);
  }

  #assertOpen(): void {
    if (this.#closed) throw new StoreUnavailableError('the config center is closed');
  }

  /** The cached entry after a failed read: rethrows unless the store is unavailable and the key is known. */
  #cached(namespace: string, key: string, err: unknown): StoredConfigEntry | null {
    const cache = this.#cache.get(namespace);
    if (!(err instanceof StoreUnavailableError) || cache === undefined || !cache.has(key)) {
      if (err instanceof StoreUnavailableError) this.#report(CALLS, err);
      throw err;
    }
    this.#report(CALLS, err);
    return cache.get(key) ?? null;
  }

  #remember(namespace: string, key: string, entry: StoredConfigEntry | StoredConfigChange | null): void {
    let cache = this.#cache.get(namespace);
    if (cache === undefined) {
      cache = new Map();
      this.#cache.set(namespace, cache);
    }
    cache.set(
      key,
      entry === null
        ? null
        : { key, value: entry.value, version: entry.version, updatedAt: entry.updatedAt, deleted: false },
    );
  }

  #report(source: string, error: unknown): void {
    // Only an unreachable store degrades the center; other errors are the caller's.
    if (error !== undefined && !(error instanceof StoreUnavailableError)) return;
    this.#outage.report(source, error);
  }

  #emit(event: ConfigEvent): void {
    for (const listener of this.#listeners) {
      try {
        listener(event);
      } catch {
        // A listener's failure is its own; the center carries on.
      }
    }
  }
}

function checkExpected(options: ConfigWriteOptions): number | undefined {
  const expected = (options as ConfigWriteOptions).expectedVersion;
  if (expected === undefined) return undefined;
  return checkInt('expectedVersion', expected, 0, Number.MAX_SAFE_INTEGER);
}

function conflict(
  namespace: string,
  key: string,
  expected: number | undefined,
  result: ConfigWriteResult,
): VersionConflictError {
  const actual = result.status === 'conflict' ? result.actual : 0;
  return new VersionConflictError(
    `config ${namespace}/${key}: expected version ${expected}, but the live version is ${actual}`,
    expected,
    actual,
  );
}

function toEntry(entry: StoredConfigEntry, stale: boolean): ConfigEntry {
  return {
    key: entry.key,
    value: JSON.parse(entry.value) as JsonValue,
    version: entry.version,
    updatedAt: entry.updatedAt,
    stale,
  };
}

function toVersion(entry: StoredConfigEntry): ConfigVersion {
  return {
    version: entry.version,
    value: entry.deleted ? undefined : (JSON.parse(entry.value) as JsonValue),
    updatedAt: entry.updatedAt,
    deleted: entry.deleted,
  };
}

export type { ConfigChange, ConfigWatchCallback };
