/**
 * One service as this client sees it: a local copy of its live instances at a known
 * position (generation, index), kept current by the store's change notifications and by a
 * periodic sync that also sweeps expired instances. Lookups read the copy, never the store.
 *
 * How it never misses a change (Consul's blocking queries with an index, etcd's watch from a
 * revision): a notification is applied only when it is exactly the next index; anything else
 * (a gap, another generation, a notification that arrives while a sync runs) makes the view
 * sync from its position, and the store answers with the changes since then, or with a
 * snapshot when its bounded log no longer covers the gap. The periodic sync catches up what
 * pub/sub lost while disconnected.
 *
 * When the store is unreachable the view keeps its copy (it never empties a service because
 * the store went away) and its owner reports itself degraded. When the store comes back
 * empty (a restart without persistence: a new generation), instances missing from the new
 * snapshot are carried over for their ttl so that their heartbeats can re-register them;
 * those that do not come back are then reported expired. Likewise, expiries the view learns
 * within an instance's ttl after it recovered from an outage are carried, not applied at
 * once: when the store was unreachable for everyone, leases ran out only because no
 * heartbeat could arrive (Eureka's self-preservation reasoning).
 */
import { CatchUpSync } from '../store/CatchUpSync.js';
import type {
  RegistryChangeType,
  RegistryLimits,
  RegistryLogEntry,
  RegistryPosition,
  RegistryStorage,
  RegistrySync,
  StoredInstance,
} from '../store/RegistryStorage.js';
import { decodeInstance, type ServiceInstance } from './ServiceInstance.js';

/** What changed, as a watcher is told. */
export type RegistryChange =
  | {
      /** The whole state: first delivery (`initial`) or after a resynchronisation (`resync`). */
      readonly type: 'snapshot';
      readonly reason: 'initial' | 'resync';
      readonly service: string;
      readonly index: number;
    }
  | {
      readonly type: RegistryChangeType;
      readonly service: string;
      readonly index: number;
      readonly id: string;
      /** The instance after a register/update, or as it was when it left. */
      readonly instance: ServiceInstance;
    };

/** Called with the service's instances (sorted by id) after each change. */
export type RegistryWatchCallback = (instances: readonly ServiceInstance[], change: RegistryChange) => void;

/** Hooks into the owning registry. */
export interface ViewHost {
  readonly storage: RegistryStorage;
  readonly limits: RegistryLimits;
  readonly sweepIntervalMs: number;
  readonly selfPreservation: { readonly threshold: number; readonly windowMs: number; readonly minInstances: number };
  /** A store call of this view failed (`error`) or succeeded (undefined). */
  report(source: string, error: unknown): void;
  /** Self-preservation started (true) or ended (false) for the service. */
  preservation(service: string, active: boolean, expired: number, total: number): void;
  /** A watcher's callback threw. */
  listenerError(service: string, error: unknown): void;
}

interface Watcher {
  readonly callback: RegistryWatchCallback;
  delivered: boolean;
}

interface Carried {
  readonly instance: ServiceInstance;
  /** Local time after which it is dropped unless it re-registered. */
  readonly until: number;
}

/** A local, self-updating copy of one service. */
export class ServiceView {
  readonly service: string;
  /**
   * Local time (the owner's coarse clock) of the last lookup, watch or unwatch: the owner
   * drops views that nobody watches and nobody looked up for a while.
   */
  usedAt = 0;
  /** Lookups waiting for this view's first state: while > 0 the owner does not drop it. */
  pins = 0;
  readonly #host: ViewHost;
  #pos: RegistryPosition | undefined;
  readonly #live = new Map<string, ServiceInstance>();
  /** Instances kept over a store restart until they re-register (see the module comment). */
  readonly #carried = new Map<string, Carried>();
  #sorted: readonly ServiceInstance[] | undefined;
  readonly #filtered = new Map<string, { from: readonly ServiceInstance[]; result: readonly ServiceInstance[] }>();
  readonly #watchers = new Set<Watcher>();
  readonly #catchUp: CatchUpSync<RegistrySync, RegistryLogEntry>;
  readonly #unsubscribe: () => void;
  readonly #timer: NodeJS.Timeout;
  #lastError: unknown;
  #syncedAt = 0;
  /** The last sync failed. */
  #failing = false;
  /** Local time of the last recovery from a failing sync (0: never). */
  #recoveredAt = 0;
  readonly #ready: Promise<void>;
  #resolveReady!: () => void;
  /** Local times of recent expiries, with the live count just before each. */
  #expiries: number[] = [];
  #preserving = false;

  constructor(service: string, host: ViewHost) {
    this.service = service;
    this.#host = host;
    this.#ready = new Promise((resolve) => {
      this.#resolveReady = resolve;
    });
    this.#catchUp = new CatchUpSync({
      read: (snapshot) => host.storage.sync(service, snapshot ? undefined : this.#pos, host.limits),
      failed: (err) => this.#failed(err),
      succeeded: (result) => this.#synced(result),
      changed: (entry) => this.#onEntry(entry),
    });
    this.#unsubscribe = host.storage.onChange(service, (entry) => this.#catchUp.offer(entry));
    this.#timer = setInterval(() => this.#tick(), host.sweepIntervalMs).unref();
    void this.sync();
  }

  /** Resolves once the first state was read from the store. */
  get ready(): Promise<void> {
    return this.#ready;
  }

  /** True once the first state was read. */
  get loaded(): boolean {
    return this.#pos !== undefined;
  }

  /** Position in the service's history ({ gen: '', index: 0 } before any registration). */
  get position(): RegistryPosition | undefined {
    return this.#pos;
  }

  /** The last failure of a store call, cleared by the next success. */
  get lastError(): unknown {
    return this.#lastError;
  }

  /** Local time of the last successful sync. */
  get syncedAt(): number {
    return this.#syncedAt;
  }

  /** Whether a self-preservation warning is active. */
  get preserving(): boolean {
    return this.#preserving;
  }

  /** Instances, sorted by id (the same array until the next change). */
  instances(): readonly ServiceInstance[] {
    if (this.#sorted === undefined) {
      const all = [...this.#live.values()];
      for (const [id, carried] of this.#carried) if (!this.#live.has(id)) all.push(carried.instance);
      all.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
      this.#sorted = Object.freeze(all);
    }
    return this.#sorted;
  }

  /**
   * The instances the filter made by `makeFilter` keeps, memoised under `key` until the next
   * change (so that repeated lookups with the same filter allocate nothing). At most 64
   * filters are kept.
   */
  filtered(
    key: string,
    makeFilter: () => (all: readonly ServiceInstance[]) => readonly ServiceInstance[],
  ): readonly ServiceInstance[] {
    const all = this.instances();
    const memo = this.#filtered.get(key);
    if (memo !== undefined && memo.from === all) return memo.result;
    if (this.#filtered.size >= 64) this.#filtered.clear();
    const result = Object.freeze(makeFilter()(all).slice());
    this.#filtered.set(key, { from: all, result });
    return result;
  }

  /** Adds a watcher: it is told the current state first (once loaded), then every change. */
  watch(callback: RegistryWatchCallback): () => void {
    const watcher: Watcher = { callback, delivered: false };
    this.#watchers.add(watcher);
    if (this.loaded) queueMicrotask(() => this.#deliverInitial(watcher));
    return () => {
      this.#watchers.delete(watcher);
    };
  }

  /** Number of watchers. */
  get watchers(): number {
    return this.#watchers.size;
  }

  /**
   * Syncs with the store now (one sync at a time; a request during a sync runs one more after it).
   * Resolves when done; failures are reported to the host, not thrown.
   */
  sync(): Promise<void> {
    return this.#catchUp.sync();
  }

  /** Makes the next sync read a snapshot rather than trust the position (the store restarted). */
  resync(): Promise<void> {
    return this.#catchUp.resync();
  }

  /** Stops listening and syncing. */
  close(): void {
    this.#catchUp.close();
    clearInterval(this.#timer);
    this.#unsubscribe();
    this.#watchers.clear();
    this.#resolveReady();
  }

  #failed(err: unknown): void {
    this.#lastError = err;
    this.#failing = true;
    this.#host.report(this.source, err);
  }

  #synced(result: RegistrySync): void {
    if (this.#failing) {
      this.#failing = false;
      this.#recoveredAt = Date.now();
    }
    this.#lastError = undefined;
    this.#syncedAt = Date.now();
    this.#host.report(this.source, undefined);
    this.#applySync(result);
  }

  /** The name under which this view reports store failures to its owner. */
  get source(): string {
    return `view:${this.service}`;
  }

  #tick(): void {
    this.#dropCarried();
    this.#checkPreservation(Date.now());
    void this.sync();
  }

  /** A notification, offered while no sync runs: apply it if it is the next index, else catch up. */
  #onEntry(entry: RegistryLogEntry): void {
    const pos = this.#pos;
    if (pos === undefined) return; // the first sync is about to run
    if (entry.gen === pos.gen && entry.index <= pos.index) return; // already applied
    const next = entry.index === pos.index + 1 && (entry.gen === pos.gen || (pos.gen === '' && pos.index === 0));
    if (next) {
      this.#apply(entry);
      return;
    }
    void this.sync(); // a gap, or another generation: catch up from the position
  }

  #applySync(result: RegistrySync): void {
    const pos = this.#pos;
    if (result.kind === 'current') return;
    if (result.kind === 'changes') {
      for (const entry of result.changes) {
        if (this.#pos !== undefined && entry.index === this.#pos.index + 1) this.#apply(entry);
      }
      this.#pos = { gen: result.gen, index: result.index };
      return;
    }
    const initial = pos === undefined;
    if (!initial && pos.gen === result.gen && pos.index === result.index) return; // same state
    const before = new Map(this.#live);
    this.#live.clear();
    for (const stored of result.instances) this.#put(stored);
    const now = Date.now();
    // Another generation: the store lost its data. Carry over what it lost (see module comment).
    if (!initial && pos.gen !== '' && pos.gen !== result.gen) {
      for (const [id, instance] of before) {
        if (!this.#live.has(id)) this.#carried.set(id, { instance, until: now + instance.ttlMs });
      }
    }
    this.#pos = { gen: result.gen, index: result.index };
    this.#sorted = undefined;
    if (initial) {
      this.#resolveReady();
      for (const watcher of this.#watchers) this.#deliverInitial(watcher);
      return;
    }
    const change: RegistryChange = { type: 'snapshot', reason: 'resync', service: this.service, index: result.index };
    this.#emit(change);
  }

  #put(stored: StoredInstance): void {
    const ttl = decodeInstance(stored.record, stored.epoch, 0)?.ttlMs ?? 0;
    const instance = decodeInstance(stored.record, stored.epoch, stored.expiresAt - ttl);
    if (instance !== undefined) this.#live.set(stored.id, instance);
  }

  #apply(entry: RegistryLogEntry): void {
    this.#pos = { gen: entry.gen, index: entry.index };
    const removal = entry.type === 'deregister' || entry.type === 'expire';
    const known = this.#live.get(entry.id);
    const decoded = decodeInstance(entry.record, entry.epoch, removal ? (known?.lastSeen ?? entry.at) : entry.at);
    const now = Date.now();
    if (entry.type === 'expire' && known !== undefined && now - this.#recoveredAt < known.ttlMs) {
      // Just back from an outage: the lease may have run out only because the store was away.
      this.#live.delete(entry.id);
      this.#carried.set(entry.id, { instance: known, until: this.#recoveredAt + known.ttlMs });
      this.#sorted = undefined;
      return;
    }
    this.#carried.delete(entry.id);
    if (removal) this.#live.delete(entry.id);
    else if (decoded !== undefined) this.#live.set(entry.id, decoded);
    this.#sorted = undefined;
    if (entry.type === 'expire') this.#noteExpiry(now);
    const instance = decoded ?? known;
    if (instance === undefined) return;
    this.#emit({ type: entry.type, service: this.service, index: entry.index, id: entry.id, instance });
  }

  #dropCarried(): void {
    if (this.#carried.size === 0) return;
    const now = Date.now();
    for (const [id, carried] of this.#carried) {
      if (carried.until > now) continue;
      this.#carried.delete(id);
      if (this.#live.has(id)) continue;
      this.#sorted = undefined;
      this.#noteExpiry(now);
      this.#emit({
        type: 'expire',
        service: this.service,
        index: this.#pos?.index ?? 0,
        id,
        instance: carried.instance,
      });
    }
  }

  #deliverInitial(watcher: Watcher): void {
    if (watcher.delivered || !this.#watchers.has(watcher) || this.#catchUp.closed) return;
    watcher.delivered = true;
    const change: RegistryChange = {
      type: 'snapshot',
      reason: 'initial',
      service: this.service,
      index: this.#pos?.index ?? 0,
    };
    this.#call(watcher, change);
  }

  #emit(change: RegistryChange): void {
    for (const watcher of this.#watchers) if (watcher.delivered) this.#call(watcher, change);
  }

  #call(watcher: Watcher, change: RegistryChange): void {
    try {
      watcher.callback(this.instances(), change);
    } catch (err) {
      this.#host.listenerError(this.service, err);
    }
  }

  /** Self-preservation (Eureka): too large a share of the service expiring within the window. */
  #noteExpiry(now: number): void {
    this.#expiries.push(now);
    this.#checkPreservation(now);
  }

  #checkPreservation(now: number): void {
    const { threshold, windowMs, minInstances } = this.#host.selfPreservation;
    this.#expiries = this.#expiries.filter((t) => t > now - windowMs);
    const expired = this.#expiries.length;
    const total = this.instances().length + expired;
    const active = total >= minInstances && expired / total > threshold;
    if (active !== this.#preserving) {
      this.#preserving = active;
      this.#host.preservation(this.service, active, expired, total);
    }
  }
}
