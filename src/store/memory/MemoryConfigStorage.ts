/**
 * The memory store's {@link ConfigStorage}: the same semantics as the Redis scripts in
 * `../redis/configScripts.ts`, step for step, on plain maps. Each method runs synchronously
 * inside its call, so it is atomic by construction.
 */
import {
  type ConfigPosition,
  type ConfigStorage,
  type ConfigSync,
  type ConfigWrite,
  type ConfigWriteResult,
  configChannel,
  decodeStoredVersion,
  encodeStoredVersion,
  parseConfigChange,
  parseConfigLogEntry,
  type StoredConfigChange,
  type StoredConfigEntry,
} from '../ConfigStorage.js';
import type { MemoryContext } from './MemoryContext.js';

interface Namespace {
  /** Key -> its newest version (stored text). */
  current: Map<string, string>;
  /** Key -> versions, newest first (stored text). */
  history: Map<string, string[]>;
  gen: string;
  rev: number;
  /** Change entries (JSON, without values), newest first. */
  log: string[];
}

/** In-process namespaced, versioned config keys. */
export class MemoryConfigStorage implements ConfigStorage {
  readonly #ctx: MemoryContext;
  readonly #namespaces = new Map<string, Namespace>();

  constructor(ctx: MemoryContext) {
    this.#ctx = ctx;
  }

  async get(namespace: string, key: string): Promise<StoredConfigEntry | undefined> {
    this.#ctx.assertOpen();
    const text = this.#namespaces.get(namespace)?.current.get(key);
    if (text === undefined) return undefined;
    const entry = decodeStoredVersion(key, text);
    return entry.deleted ? undefined : entry;
  }

  async write(write: ConfigWrite): Promise<ConfigWriteResult> {
    this.#ctx.assertOpen();
    const now = this.#ctx.now();
    const ns = this.#namespace(write.namespace);
    const text = ns.current.get(write.key);
    const current = text === undefined ? undefined : decodeStoredVersion(write.key, text);
    const version = current?.version ?? 0;
    const live = current === undefined || current.deleted ? 0 : current.version;
    if (write.expectedVersion !== undefined && write.expectedVersion !== live)
      return { status: 'conflict', actual: live };
    const deleted = write.value === undefined;
    if (deleted && live === 0) return { status: 'absent' };
    const next = version + 1;
    const updatedAt = Math.floor(now);
    const value = write.value ?? 'null';
    const stored = encodeStoredVersion(next, updatedAt, deleted, value);
    ns.current.set(write.key, stored);
    let history = ns.history.get(write.key);
    if (history === undefined) {
      history = [];
      ns.history.set(write.key, history);
    }
    history.unshift(stored);
    if (history.length > write.historyLimit) history.length = write.historyLimit;
    if (ns.gen === '') ns.gen = String(Math.floor(now * 1000));
    ns.rev += 1;
    const entry = JSON.stringify({ gen: ns.gen, rev: ns.rev, key: write.key, version: next, at: updatedAt, deleted });
    ns.log.unshift(entry);
    if (ns.log.length > write.logLimit) ns.log.length = write.logLimit;
    this.#ctx.feed.emit(configChannel(write.namespace), `${entry}\n${value}`);
    return { status: 'written', version: next, updatedAt, rev: ns.rev };
  }

  async history(namespace: string, key: string, limit: number): Promise<StoredConfigEntry[]> {
    this.#ctx.assertOpen();
    const history = this.#namespaces.get(namespace)?.history.get(key) ?? [];
    return history.slice(0, limit).map((text) => decodeStoredVersion(key, text));
  }

  async sync(namespace: string, prefix: string, from: ConfigPosition | undefined): Promise<ConfigSync> {
    this.#ctx.assertOpen();
    const ns = this.#namespaces.get(namespace);
    if (ns === undefined) return { kind: 'snapshot', gen: '', rev: 0, entries: [] };
    const { gen, rev } = ns;
    if (from !== undefined && (from.gen === gen || (from.gen === '' && from.rev === 0)) && from.rev <= rev) {
      if (from.rev === rev) return { kind: 'current', gen, rev };
      const missed = rev - from.rev;
      if (missed <= ns.log.length) {
        const changes = this.#changes(ns, prefix, missed);
        if (changes !== undefined) return { kind: 'changes', gen, rev, changes };
      }
    }
    const entries: StoredConfigEntry[] = [];
    for (const [key, text] of ns.current) {
      if (!key.startsWith(prefix)) continue;
      const entry = decodeStoredVersion(key, text);
      if (!entry.deleted) entries.push(entry);
    }
    entries.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    return { kind: 'snapshot', gen, rev, entries };
  }

  onChange(namespace: string, listener: (change: StoredConfigChange) => void): () => void {
    return this.#ctx.feed.on(configChannel(namespace), (message) => {
      const change = parseConfigChange(message);
      if (change !== undefined) listener(change);
    });
  }

  #namespace(name: string): Namespace {
    let ns = this.#namespaces.get(name);
    if (ns === undefined) {
      ns = { current: new Map(), history: new Map(), gen: '', rev: 0, log: [] };
      this.#namespaces.set(name, ns);
    }
    return ns;
  }

  /** The last `missed` changes under `prefix` with their values, oldest first; undefined when history lost one. */
  #changes(ns: Namespace, prefix: string, missed: number): StoredConfigChange[] | undefined {
    const changes: StoredConfigChange[] = [];
    for (let i = missed - 1; i >= 0; i--) {
      const entry = parseConfigLogEntry(ns.log[i] as string);
      if (entry === undefined) return undefined;
      if (!entry.key.startsWith(prefix)) continue;
      const history = ns.history.get(entry.key) ?? [];
      const head = history[0] === undefined ? undefined : decodeStoredVersion(entry.key, history[0]);
      const text = head === undefined ? undefined : history[head.version - entry.version];
      if (text === undefined) return undefined;
      const stored = decodeStoredVersion(entry.key, text);
      if (stored.version !== entry.version) return undefined;
      changes.push({ ...entry, value: stored.value });
    }
    return changes;
  }
}
