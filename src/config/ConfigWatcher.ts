/**
 * One `ConfigCenter.watch`: the keys under a prefix of one namespace as this client knows
 * them, at a known position (generation, revision), kept current by the store's change
 * notifications and a periodic sync. The same scheme as the registry's `ServiceView`
 * (etcd's watch from a revision): a notification is applied only when it is exactly the next
 * revision; anything else makes the watcher sync from its position, and the store answers
 * with the missed changes (values read back from each key's history) or, when its log or a
 * key's history no longer covers them, a snapshot that the watcher diffs against what it knew.
 *
 * When the store comes back empty (a restart without persistence: a new generation) the
 * watcher does not report its keys deleted: it keeps their last values, reports them lost,
 * and reports them again as soon as someone writes them. A store outage never turns into a
 * configuration that vanished.
 */
import { CatchUpSync } from '../store/CatchUpSync.js';
import type { ConfigPosition, ConfigStorage, ConfigSync, StoredConfigChange } from '../store/ConfigStorage.js';
import type { JsonValue } from './jsonValue.js';

/** What a watcher is told. */
export interface ConfigChange {
  readonly namespace: string;
  readonly key: string;
  /** `set` for a write, `delete` for a delete. */
  readonly type: 'set' | 'delete';
  /** The new value (undefined for a delete). */
  readonly value: JsonValue | undefined;
  /** The key's version after the change (for a delete seen in a resync: the last version known). */
  readonly version: number;
  /** Store time of the change, ms since the epoch. */
  readonly updatedAt: number;
  /**
   * `initial`: the key's value when the watch started; `change`: a write, in revision order;
   * `resync`: found while catching up after the change log no longer covered a gap.
   */
  readonly reason: 'initial' | 'change' | 'resync';
}

/** Called for each change under the watched prefix. */
export type ConfigWatchCallback = (change: ConfigChange) => void;

/** Hooks into the owning config center. */
export interface WatcherHost {
  readonly storage: ConfigStorage;
  readonly pollIntervalMs: number;
  /** A store call failed (`error`) or succeeded (undefined). */
  report(source: string, error: unknown): void;
  /** The watcher learnt the newest version of a key (undefined: deleted). */
  seen(namespace: string, key: string, entry: StoredConfigChange | undefined): void;
  /** The store lost these keys (new generation); the watcher keeps their last values. */
  lost(namespace: string, keys: readonly string[]): void;
  /** The callback threw. */
  listenerError(namespace: string, key: string, error: unknown): void;
}

interface Known {
  readonly version: number;
  readonly value: string;
  readonly updatedAt: number;
}

/** Follows the keys under one prefix of one namespace. */
export class ConfigWatcher {
  readonly namespace: string;
  readonly prefix: string;
  readonly exact: boolean;
  readonly #host: WatcherHost;
  readonly #callback: ConfigWatchCallback;
  #pos: ConfigPosition | undefined;
  readonly #known = new Map<string, Known>();
  /** Keys the store lost in a restart, kept with their last values until written again. */
  readonly #lost = new Set<string>();
  readonly #catchUp: CatchUpSync<ConfigSync, StoredConfigChange>;
  readonly #unsubscribe: () => void;
  readonly #timer: NodeJS.Timeout;
  readonly #ready: Promise<void>;
  #resolveReady!: () => void;

  constructor(host: WatcherHost, namespace: string, prefix: string, exact: boolean, callback: ConfigWatchCallback) {
    this.#host = host;
    this.namespace = namespace;
    this.prefix = prefix;
    this.exact = exact;
    this.#callback = callback;
    this.#ready = new Promise((resolve) => {
      this.#resolveReady = resolve;
    });
    this.#catchUp = new CatchUpSync({
      read: (snapshot) => host.storage.sync(namespace, prefix, snapshot ? undefined : this.#pos),
      failed: (err) => host.report(this.#source, err),
      succeeded: (result) => {
        host.report(this.#source, undefined);
        this.#applySync(result);
      },
      changed: (change) => this.#onChange(change),
    });
    this.#unsubscribe = host.storage.onChange(namespace, (change) => this.#catchUp.offer(change));
    this.#timer = setInterval(() => void this.sync(), host.pollIntervalMs).unref();
    void this.sync();
  }

  /** Resolves once the current values were delivered (or the watch closed). */
  get ready(): Promise<void> {
    return this.#ready;
  }

  /** True once the first state was read. */
  get loaded(): boolean {
    return this.#pos !== undefined;
  }

  /** Position in the namespace's history. */
  get position(): ConfigPosition | undefined {
    return this.#pos;
  }

  /** The keys this watcher knows, with their versions. */
  versions(): ReadonlyMap<string, number> {
    return new Map([...this.#known].map(([key, k]) => [key, k.version]));
  }

  /** Keys the store lost in a restart whose last values the watcher still holds. */
  lostKeys(): readonly string[] {
    return [...this.#lost];
  }

  /** Whether `key` is under this watch. */
  covers(key: string): boolean {
    return this.exact ? key === this.prefix : key.startsWith(this.prefix);
  }

  /** Syncs with the store now; failures are reported to the host, not thrown. */
  sync(): Promise<void> {
    return this.#catchUp.sync();
  }

  /** Makes the next sync read a snapshot (the store restarted). */
  resync(): Promise<void> {
    return this.#catchUp.resync();
  }

  /** Stops listening and syncing. Calling it twice is harmless. */
  close(): void {
    if (this.#catchUp.closed) return;
    this.#catchUp.close();
    clearInterval(this.#timer);
    this.#unsubscribe();
    this.#resolveReady();
  }

  get #source(): string {
    return `watch:${this.namespace}/${this.prefix}`;
  }

  /** A notification, offered while no sync runs: apply it if it is the next revision, else catch up. */
  #onChange(change: StoredConfigChange): void {
    const pos = this.#pos;
    if (pos === undefined) return; // the first sync has not succeeded yet; the next tick runs it
    if (change.gen === pos.gen && change.rev <= pos.rev) return; // already applied
    const next = change.rev === pos.rev + 1 && (change.gen === pos.gen || (pos.gen === '' && pos.rev === 0));
    if (next) {
      this.#apply(change, 'change');
      return;
    }
    void this.sync(); // a gap, or another generation: catch up from the position
  }

  #applySync(result: ConfigSync): void {
    if (result.kind === 'current') return;
    if (result.kind === 'changes') {
      for (const change of result.changes) {
        if (this.#pos !== undefined && change.rev > this.#pos.rev) this.#apply(change, 'change');
      }
      this.#pos = { gen: result.gen, rev: result.rev };
      return;
    }
    const pos = this.#pos;
    const initial = pos === undefined;
    if (!initial && pos.gen === result.gen && pos.rev === result.rev) return; // same state
    const generationChanged = !initial && pos.gen !== '' && pos.gen !== result.gen;
    this.#pos = { gen: result.gen, rev: result.rev };
    const present = new Set<string>();
    for (const entry of result.entries) {
      if (!this.covers(entry.key)) continue;
      present.add(entry.key);
      const known = this.#known.get(entry.key);
      if (known !== undefined && known.version === entry.version && known.value === entry.value) continue;
      this.#lost.delete(entry.key);
      this.#deliver({ ...entry, gen: result.gen, rev: result.rev }, initial ? 'initial' : 'resync');
    }
    const lost: string[] = [];
    for (const [key, known] of this.#known) {
      if (present.has(key)) continue;
      if (generationChanged || this.#lost.has(key)) {
        if (!this.#lost.has(key)) lost.push(key);
        this.#lost.add(key);
        continue;
      }
      this.#deliver(
        {
          key,
          version: known.version,
          updatedAt: known.updatedAt,
          deleted: true,
          value: 'null',
          gen: result.gen,
          rev: result.rev,
        },
        'resync',
      );
    }
    if (lost.length > 0) this.#host.lost(this.namespace, lost);
    if (initial) this.#resolveReady();
  }

  #apply(change: StoredConfigChange, reason: 'change'): void {
    this.#pos = { gen: change.gen, rev: change.rev };
    if (!this.covers(change.key)) return;
    this.#lost.delete(change.key);
    this.#deliver(change, reason);
  }

  #deliver(change: StoredConfigChange, reason: ConfigChange['reason']): void {
    let value: JsonValue | undefined;
    if (change.deleted) {
      this.#known.delete(change.key);
      this.#host.seen(this.namespace, change.key, undefined);
    } else {
      this.#known.set(change.key, { version: change.version, value: change.value, updatedAt: change.updatedAt });
      this.#host.seen(this.namespace, change.key, change);
      value = JSON.parse(change.value) as JsonValue;
    }
    try {
      this.#callback({
        namespace: this.namespace,
        key: change.key,
        type: change.deleted ? 'delete' : 'set',
        value,
        version: change.version,
        updatedAt: change.updatedAt,
        reason,
      });
    } catch (err) {
      this.#host.listenerError(this.namespace, change.key, err);
    }
  }
}
