/**
 * The config part of a {@link Store}: namespaced keys holding JSON values, each key with
 * gapless integer versions and a bounded history, and a per-namespace revision with a
 * bounded change log for watchers. Each method is one atomic step in the store (one Lua
 * script or one read on Redis). Arguments arrive validated by `ConfigCenter`: keys and
 * namespaces are checked names, values are JSON text within the size limit.
 *
 * Semantics every backend keeps (the config contract suite checks them):
 * - A key's versions are 1, 2, 3, ... with no gap: every successful write, and every delete,
 *   takes the next one (a delete is a version too, so that history and rollback see it). A
 *   write with `expectedVersion` succeeds only when the key's live version equals it; 0
 *   means "no live value" (never written, or deleted).
 * - A key keeps its last `historyLimit` versions, newest first.
 * - Every write bumps the namespace's **revision** by exactly one and pushes one entry on the
 *   namespace's change log (at most `logLimit` entries), atomically, as etcd's revision does
 *   for its keyspace; the revision lives in a **generation** named after the store time when
 *   it was created, so a store that lost its data is detected rather than continued.
 * - The change (with its value) is published on {@link configChannel}`(namespace)`, best
 *   effort. `sync(namespace, prefix, from)` returns the changes after `from` with their
 *   values when log and history still hold them, otherwise a snapshot of the prefix:
 *   watchers that missed messages catch up from their last revision.
 * - A namespace lives on one Redis Cluster slot (all its keys share its hash tag), which is
 *   what makes a revision across its keys atomic.
 */

/** The channel (under the store's prefix) on which a namespace's changes are published. */
export function configChannel(namespace: string): string {
  return `config:${namespace}`;
}

/** One version of a key as stored. */
export interface StoredConfigEntry {
  readonly key: string;
  readonly version: number;
  /** Store time of the write, ms since the epoch. */
  readonly updatedAt: number;
  /** True for the version a delete created. */
  readonly deleted: boolean;
  /** The value as JSON text ('null' for a delete). */
  readonly value: string;
}

/** One change of a namespace, with its value. */
export interface StoredConfigChange extends StoredConfigEntry {
  /** Generation of the namespace's revision. */
  readonly gen: string;
  /** The revision this change produced. */
  readonly rev: number;
}

/** Where a reader stands in a namespace's history. */
export interface ConfigPosition {
  readonly gen: string;
  readonly rev: number;
}

/** What {@link ConfigStorage.sync} returns. */
export type ConfigSync =
  /** Nothing changed since the position given. */
  | { readonly kind: 'current'; readonly gen: string; readonly rev: number }
  /** The changes to keys under the prefix since the position given, oldest first (the empty position ('', 0) follows into the first generation). */
  | { readonly kind: 'changes'; readonly gen: string; readonly rev: number; readonly changes: StoredConfigChange[] }
  /** Every live key under the prefix, sorted by key. */
  | { readonly kind: 'snapshot'; readonly gen: string; readonly rev: number; readonly entries: StoredConfigEntry[] };

/** A write (or a delete, when `value` is undefined). */
export interface ConfigWrite {
  readonly namespace: string;
  readonly key: string;
  /** JSON text; undefined deletes the key. */
  readonly value: string | undefined;
  /** Compare-and-set: the live version the key must have (0: no live value); undefined: no check. */
  readonly expectedVersion: number | undefined;
  /** Versions kept per key. */
  readonly historyLimit: number;
  /** Entries kept in the namespace's change log. */
  readonly logLimit: number;
}

/** Outcome of {@link ConfigStorage.write}. */
export type ConfigWriteResult =
  | { readonly status: 'written'; readonly version: number; readonly updatedAt: number; readonly rev: number }
  /** The compare-and-set failed; `actual` is the live version (0 when none). */
  | { readonly status: 'conflict'; readonly actual: number }
  /** A delete found no live value (and no expected version to fail). */
  | { readonly status: 'absent' };

/** The config part of a store. */
export interface ConfigStorage {
  /**
   * The live value of a key; undefined when never written or deleted.
   * @throws {StoreUnavailableError} when the store cannot be reached.
   */
  get(namespace: string, key: string): Promise<StoredConfigEntry | undefined>;
  /**
   * Writes (or deletes) one key, checking `expectedVersion` first.
   * @throws {StoreUnavailableError}
   */
  write(write: ConfigWrite): Promise<ConfigWriteResult>;
  /**
   * Up to `limit` versions of a key (deletes included), newest first.
   * @throws {StoreUnavailableError}
   */
  history(namespace: string, key: string, limit: number): Promise<StoredConfigEntry[]>;
  /**
   * Tells a reader at `from` what changed under `prefix` (see {@link ConfigSync}); with no
   * position, a snapshot. `list(prefix)` is `sync(namespace, prefix, undefined)`.
   * @throws {StoreUnavailableError}
   */
  sync(namespace: string, prefix: string, from: ConfigPosition | undefined): Promise<ConfigSync>;
  /**
   * Calls `listener` with every change of `namespace` published from now on, in any process
   * (best effort: see the module comment). Returns the remover.
   */
  onChange(namespace: string, listener: (change: StoredConfigChange) => void): () => void;
}

/** `<version>:<updatedAt>:<0|1>:<value>`: how both backends store one version of a key. */
const STORED = /^(\d+):(\d+):([01]):/;

/** Encodes one version of a key as both backends store it. */
export function encodeStoredVersion(version: number, updatedAt: number, deleted: boolean, value: string): string {
  return `${version}:${updatedAt}:${deleted ? 1 : 0}:${value}`;
}

/** Decodes {@link encodeStoredVersion}'s text; throws on anything else (a corrupt store). */
export function decodeStoredVersion(key: string, text: string): StoredConfigEntry {
  const m = STORED.exec(text);
  if (m === null) throw new Error(`config: unreadable stored version of key ${JSON.stringify(key)}`);
  return {
    key,
    version: Number(m[1]),
    updatedAt: Number(m[2]),
    deleted: m[3] === '1',
    value: text.slice(m[0].length),
  };
}

/**
 * The change message both backends publish: the change entry as one line of JSON
 * (`{"gen","rev","key","version","at","deleted"}`, which holds no raw newline), a newline,
 * then the value's JSON text as stored. Returns undefined for anything else.
 */
export function parseConfigChange(message: string): StoredConfigChange | undefined {
  const cut = message.indexOf('\n');
  if (cut < 0) return undefined;
  const entry = parseConfigLogEntry(message.slice(0, cut));
  return entry === undefined ? undefined : { ...entry, value: message.slice(cut + 1) };
}

/** Parses one change-log entry (without its value); undefined when it is not one. */
export function parseConfigLogEntry(text: string): Omit<StoredConfigChange, 'value'> | undefined {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof raw !== 'object' || raw === null) return undefined;
  const e = raw as Record<string, unknown>;
  if (
    typeof e.gen !== 'string' ||
    typeof e.rev !== 'number' ||
    typeof e.key !== 'string' ||
    typeof e.version !== 'number' ||
    typeof e.at !== 'number' ||
    typeof e.deleted !== 'boolean'
  ) {
    return undefined;
  }
  return { gen: e.gen, rev: e.rev, key: e.key, version: e.version, updatedAt: e.at, deleted: e.deleted };
}
