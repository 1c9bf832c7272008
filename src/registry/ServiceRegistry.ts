/**
 * `ServiceRegistry`: instances register with a TTL lease and heartbeat; clients look
 * instances up from a local copy per service and watch them change. Written once against
 * the {@link Store} interface, so it works in one process on `memoryStore()` and across
 * processes and machines on `redisStore()`.
 *
 * The references users know, and what is taken from each: Consul (catalog, TTL checks, a
 * per-service index with blocking-query catch-up), Eureka (heartbeats, lease expiry, a
 * client cache that outlives the server, self-preservation), etcd (leases, watching from a
 * revision). See `../store/RegistryStorage.ts` for the guarantees of the store side and
 * `ServiceView.ts` for how a client never misses a change.
 *
 * @example
 * ```ts
 * const registry = new ServiceRegistry({ store, ttlMs: 15_000 });
 * const reg = await registry.register({ service: 'users', id: 'users-1', address: 'http://127.0.0.1:3001' });
 * const healthy = await registry.instances('users', { healthyOnly: true });
 * const watch = registry.watch('users', (instances, change) => balancer.update(instances));
 * // ... on shutdown
 * watch.close();
 * await reg.deregister();
 * await registry.close();
 * ```
 */

import { InvalidOptionError, StoreUnavailableError } from '../errors.js';
import { OutageTracker } from '../store/OutageTracker.js';
import type { RegistryLimits, RenewStatus } from '../store/RegistryStorage.js';
import { checkObject } from '../validate.js';
import { Registration, type RegistrationHost } from './Registration.js';
import { type RegistryOptions, type ResolvedRegistryOptions, resolveRegistryOptions } from './RegistryOptions.js';
import {
  checkRegistration,
  checkRegistryName,
  encodeRecord,
  type RegistrationInput,
  type ServiceInstance,
} from './ServiceInstance.js';
import { type RegistryWatchCallback, ServiceView, type ViewHost } from './ServiceView.js';

/**
 * The failure source of one-off calls (services()): its next success clears it. Each view and
 * each registration is a source of its own, cleared by its own next successful store call.
 */
const CALLS = 'calls';

/** Filters of {@link ServiceRegistry.instances}. */
export interface InstanceQuery {
  /** Only instances marked healthy. @default false */
  healthyOnly?: boolean;
  /** Only instances carrying every one of these tags. @default [] */
  tags?: readonly string[];
  /** Only instances in this zone. @default any zone */
  zone?: string;
}

/** Something the registry wants its owner to know (see {@link ServiceRegistry.onEvent}). */
export type RegistryEvent =
  /** A store call failed: lookups are served from the last known state. */
  | { readonly type: 'degraded'; readonly source: string; readonly error: unknown }
  /** Every store call succeeds again. */
  | { readonly type: 'recovered' }
  /** More than the set share of a service expired within the window (`active`), or that ended. */
  | {
      readonly type: 'self-preservation';
      readonly service: string;
      readonly active: boolean;
      readonly expired: number;
      readonly total: number;
    }
  /** A registration was written again (it had expired or the store lost it), updated, or superseded. */
  | { readonly type: 'reregistered' | 'updated' | 'superseded'; readonly service: string; readonly id: string }
  /** A watch callback threw. */
  | { readonly type: 'listener-error'; readonly service: string; readonly error: unknown };

/** A watch on one service; `close()` stops it. */
export interface RegistryWatch {
  readonly service: string;
  /** Resolves once the current state was delivered (or the watch closed). */
  readonly ready: Promise<void>;
  /** Stops the callbacks. Calling it twice is harmless. */
  close(): void;
}

/** What {@link ServiceRegistry.health} reports. */
export interface RegistryHealth {
  /** True while some store call fails: lookups come from the last known state. */
  readonly degraded: boolean;
  /** Local time (ms) since which the registry is degraded. */
  readonly since: number | undefined;
  /** The latest store failure while degraded. */
  readonly lastError: unknown;
  /** Every service this registry caches or watches. */
  readonly services: readonly {
    readonly service: string;
    readonly loaded: boolean;
    readonly index: number;
    readonly instances: number;
    readonly watchers: number;
    /** Local time of the last successful sync (0: never). */
    readonly syncedAt: number;
    readonly selfPreservation: boolean;
  }[];
  /** Every active registration made through this registry. */
  readonly registrations: readonly {
    readonly service: string;
    readonly id: string;
    readonly epoch: number;
    readonly lastHeartbeatAt: number;
    readonly expiresAt: number;
  }[];
}

/** Service registry over a {@link Store}: see the module comment. */
export class ServiceRegistry {
  /** The resolved options. */
  readonly options: ResolvedRegistryOptions;
  readonly #limits: RegistryLimits;
  readonly #views = new Map<string, ServiceView>();
  readonly #registrations = new Set<Registration>();
  readonly #outage = new OutageTracker((change) => this.#emit(change));
  readonly #listeners = new Set<(event: RegistryEvent) => void>();
  readonly #offRestart: () => void;
  #lastServices: string[] | undefined;
  #closed = false;
  /**
   * Coarse local time (ms), set when a view is made and at each idle sweep: what a lookup
   * stamps on its view (cheaper than reading the clock on every lookup).
   */
  #clock = Date.now();
  /** Drops views nobody watches or looks up (see {@link RegistryOptions.idleViewMs}). */
  readonly #idleSweep: NodeJS.Timeout;
  readonly #viewHost: ViewHost;
  readonly #registrationHost: RegistrationHost;

  /**
   * @throws {InvalidOptionError} for a bad option, naming it.
   */
  constructor(options: RegistryOptions) {
    this.options = resolveRegistryOptions(options);
    const { store, logLimit, tombstoneMs, sweepIntervalMs, selfPreservation } = this.options;
    this.#limits = Object.freeze({ logLimit, tombstoneMs });
    const storage = store.registry;
    const report = (source: string, error: unknown) => this.#report(source, error);
    this.#viewHost = {
      storage,
      limits: this.#limits,
      sweepIntervalMs,
      selfPreservation,
      report,
      preservation: (service, active, expired, total) =>
        this.#emit({ type: 'self-preservation', service, active, expired, total }),
      listenerError: (service, error) => this.#emit({ type: 'listener-error', service, error }),
    };
    this.#registrationHost = {
      storage,
      limits: this.#limits,
      report,
      outcome: (registration, status) => this.#outcome(registration, status),
      wrote: (service, index) => this.#caughtUp(service, index),
      ended: (registration) => {
        this.#registrations.delete(registration);
        this.#report(`registration:${registration.service}/${registration.id}`, undefined);
      },
    };
    // A store that restarted may have lost everything: re-read every view, re-register now.
    this.#offRestart = store.onRestart(() => {
      for (const view of this.#views.values()) void view.resync();
      for (const registration of this.#registrations) registration.heartbeat().catch(() => undefined);
    });
    this.#idleSweep = setInterval(() => this.#dropIdle(), sweepIntervalMs).unref();
  }

  /** True once {@link ServiceRegistry.close} was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /** True while some store call fails (lookups then come from the last known state). */
  get degraded(): boolean {
    return this.#outage.degraded;
  }

  /**
   * Registers an instance and starts its heartbeats (every ttl / 3, until `deregister()`).
   * A registration of an id that is already registered replaces it (the older one finds
   * itself superseded at its next heartbeat).
   * @throws {InvalidOptionError} for a bad field, naming it.
   * @throws {StoreUnavailableError} when the store cannot be reached or the registry is closed
   *   (also when it closes while the store writes the registration: that is then removed again).
   * @example
   * ```ts
   * const reg = await registry.register({ service: 'users', id: 'users-1',
   *   address: 'http://127.0.0.1:3001', weight: 1, tags: ['v2'], meta: {}, zone: 'a' });
   * ```
   */
  async register(input: RegistrationInput): Promise<Registration> {
    const registered = checkRegistration(input, this.options.ttlMs);
    this.#assertOpen();
    const result = await this.options.store.registry.register({
      service: registered.service,
      id: registered.id,
      record: encodeRecord(registered),
      ttlMs: registered.ttlMs,
      ...this.#limits,
    });
    if (this.#closed) {
      // close() ran while the store wrote it, and could not deregister what it did not know
      // of: remove it here (best effort: else it expires after its ttl, as nothing heartbeats
      // it) and fail as a register() after close() does.
      await this.options.store.registry
        .deregister(registered.service, registered.id, result.epoch, this.#limits)
        .catch(() => undefined);
      throw closedError();
    }
    const registration = new Registration(this.#registrationHost, registered, result.epoch, result.expiresAt);
    this.#registrations.add(registration);
    await this.#caughtUp(registered.service, result.index);
    return registration;
  }

  /**
   * The live instances of `service`, sorted by id, from the local copy (no store round trip
   * once the service is cached; the first call reads it). While the store is unreachable,
   * the last known instances are returned and {@link ServiceRegistry.degraded} is true.
   * @throws {TypeError} when `service` is not a string.
   * @throws {InvalidOptionError} for an empty or oversize name or a bad filter.
   * @throws {StoreUnavailableError} when the service was never read and the store cannot be reached.
   */
  async instances(service: string, query?: InstanceQuery): Promise<readonly ServiceInstance[]> {
    // Fast path: a cached service (its name was checked when its view was made).
    const cached = this.#closed ? undefined : this.#views.get(service);
    if (cached?.loaded === true) {
      cached.usedAt = this.#clock;
      if (query === undefined) return cached.instances();
      const key = queryKey(query);
      if (key !== undefined) return cached.filtered(key, () => checkQuery(query));
    }
    checkRegistryName('service', service, true);
    const filter = checkQuery(query ?? {});
    this.#assertOpen();
    const view = this.#view(service);
    view.usedAt = this.#clock;
    if (!view.loaded) {
      // Pinned while it loads: a burst of other names cannot drop it before it answers.
      view.pins++;
      try {
        await view.sync();
      } finally {
        view.pins--;
      }
      if (!view.loaded) {
        throw view.lastError instanceof Error
          ? view.lastError
          : new StoreUnavailableError(`registry: service ${service} could not be read`);
      }
    }
    return query === undefined ? view.instances() : filter(view.instances());
  }

  /**
   * Names of the services with at least one live instance, sorted. While the store is
   * unreachable, the last answer (when there was one).
   * @throws {StoreUnavailableError} when the store cannot be reached and there is no earlier answer.
   */
  async services(): Promise<string[]> {
    this.#assertOpen();
    try {
      this.#lastServices = await this.options.store.registry.services();
      this.#report(CALLS, undefined);
    } catch (err) {
      this.#report(CALLS, err);
      if (!(err instanceof StoreUnavailableError) || this.#lastServices === undefined) throw err;
    }
    return [...this.#lastServices];
  }

  /**
   * Calls `callback(instances, change)` with the current state first (`change.type` is
   * `snapshot`, reason `initial`), then after every change, in index order; a
   * resynchronisation (the change log no longer covered a gap, or the store restarted) is a
   * `snapshot` with reason `resync`. Several watches of one service share one local copy.
   * @throws {TypeError} when `service` is not a string or `callback` not a function.
   * @throws {InvalidOptionError} for an empty or oversize name.
   */
  watch(service: string, callback: RegistryWatchCallback): RegistryWatch {
    checkRegistryName('service', service, true);
    if (typeof callback !== 'function') throw new TypeError(`callback must be a function, got ${typeof callback}`);
    this.#assertOpen();
    const view = this.#view(service);
    let delivered: () => void = () => {};
    const ready = new Promise<void>((resolve) => {
      delivered = resolve;
    });
    let open = true;
    const off = view.watch((instances, change) => {
      delivered();
      if (open) callback(instances, change);
    });
    return {
      service,
      ready,
      close: () => {
        if (open) view.usedAt = Date.now();
        open = false;
        off();
        delivered();
      },
    };
  }

  /** Degraded state, every cached service and every active registration. */
  health(): RegistryHealth {
    return {
      degraded: this.degraded,
      since: this.#outage.since,
      lastError: this.#outage.lastError,
      services: [...this.#views.values()].map((view) => ({
        service: view.service,
        loaded: view.loaded,
        index: view.position?.index ?? 0,
        instances: view.instances().length,
        watchers: view.watchers,
        syncedAt: view.syncedAt,
        selfPreservation: view.preserving,
      })),
      registrations: [...this.#registrations].map((r) => ({
        service: r.service,
        id: r.id,
        epoch: r.epoch,
        lastHeartbeatAt: r.lastHeartbeatAt,
        expiresAt: r.expiresAt,
      })),
    };
  }

  /**
   * Calls `listener` for each {@link RegistryEvent} (degraded/recovered, self-preservation,
   * re-registrations, superseded registrations, watch callbacks that threw). Returns the remover.
   */
  onEvent(listener: (event: RegistryEvent) => void): () => void {
    if (typeof listener !== 'function') throw new TypeError(`listener must be a function, got ${typeof listener}`);
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  /**
   * Deregisters every active registration made here (best effort: one the store cannot
   * remove now expires after its ttl), stops every view and watch. The store stays open (it
   * is the caller's). Calling it twice is harmless.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#offRestart();
    clearInterval(this.#idleSweep);
    for (const view of this.#views.values()) view.close();
    this.#views.clear();
    await Promise.allSettled([...this.#registrations].map((r) => r.deregister()));
    for (const r of this.#registrations) r.stop();
    this.#registrations.clear();
    this.#listeners.clear();
  }

  #assertOpen(): void {
    if (this.#closed) throw closedError();
  }

  #view(service: string): ServiceView {
    let view = this.#views.get(service);
    if (view === undefined) {
      this.#clock = Date.now();
      view = new ServiceView(service, this.#viewHost);
      view.usedAt = this.#clock;
      this.#views.set(service, view);
      this.#boundIdle(view);
    }
    return view;
  }

  /** A view nobody watches and no lookup waits for. */
  #idle(view: ServiceView): boolean {
    return view.watchers === 0 && view.pins === 0;
  }

  /**
   * Keeps at most `maxIdleViews` views that nobody watches (besides `made`, which its
   * caller is about to use): drops those looked up least recently. Views pinned by a
   * lookup are left for the next sweep.
   */
  #boundIdle(made: ServiceView | undefined): void {
    const max = this.options.maxIdleViews;
    if (this.#views.size <= max) return;
    const idle: ServiceView[] = [];
    for (const view of this.#views.values()) if (view !== made && this.#idle(view)) idle.push(view);
    if (idle.length < max) return;
    // Oldest first; Map order (creation) breaks ties of the coarse clock.
    idle.sort((a, b) => a.usedAt - b.usedAt);
    for (let i = 0; i <= idle.length - max; i++) this.#drop(idle[i] as ServiceView);
  }

  /** Drops the views nobody watched or looked up for `idleViewMs`, then those past `maxIdleViews`. */
  #dropIdle(): void {
    const now = Date.now();
    this.#clock = now;
    const oldest = now - this.options.idleViewMs;
    for (const view of this.#views.values()) if (view.usedAt <= oldest && this.#idle(view)) this.#drop(view);
    this.#boundIdle(undefined);
  }

  /** Stops and forgets a view; a store failure it reported no longer counts (the registry may recover). */
  #drop(view: ServiceView): void {
    view.close();
    this.#views.delete(view.service);
    this.#report(view.source, undefined);
  }

  /** After our own write at `index` (undefined: unknown), a cached view reads it before we return (read your writes). */
  async #caughtUp(service: string, index: number | undefined): Promise<void> {
    const view = this.#views.get(service);
    if (view === undefined || !view.loaded) return;
    if (index === undefined || (view.position?.index ?? 0) < index) await view.sync();
  }

  #outcome(registration: Registration, status: RenewStatus): void {
    if (status === 'renewed') return;
    this.#emit({ type: status, service: registration.service, id: registration.id });
  }

  #report(source: string, error: unknown): void {
    this.#outage.report(source, error);
  }

  #emit(event: RegistryEvent): void {
    for (const listener of this.#listeners) {
      try {
        listener(event);
      } catch {
        // A listener's failure is its own; the registry carries on.
      }
    }
  }
}

/** What every call after {@link ServiceRegistry.close} fails with. */
function closedError(): StoreUnavailableError {
  return new StoreUnavailableError('the registry is closed');
}

/**
 * A memo key for a well-formed query (`healthyOnly`, `zone`, `tags` of the right types);
 * undefined otherwise, so that a bad query takes the checked path and fails there.
 */
function queryKey(query: InstanceQuery): string | undefined {
  if (typeof query !== 'object' || query === null) return undefined;
  const { healthyOnly, zone, tags } = query;
  if (healthyOnly !== undefined && typeof healthyOnly !== 'boolean') return undefined;
  if (zone !== undefined && typeof zone !== 'string') return undefined;
  let key = `${healthyOnly === true ? 'h' : '-'}${zone === undefined ? '' : `z${zone.length}:${zone}`}`;
  if (tags !== undefined) {
    if (!Array.isArray(tags)) return undefined;
    for (const tag of tags) {
      if (typeof tag !== 'string') return undefined;
      key += `t${tag.length}:${tag}`;
    }
  }
  return key;
}

/** Checks {@link InstanceQuery} and returns the filter it describes. */
function checkQuery(query: InstanceQuery): (all: readonly ServiceInstance[]) => readonly ServiceInstance[] {
  const q = checkObject('query', query) as InstanceQuery;
  if (q.healthyOnly !== undefined && typeof q.healthyOnly !== 'boolean') {
    throw new InvalidOptionError('healthyOnly', q.healthyOnly, 'must be a boolean');
  }
  if (q.tags !== undefined && (!Array.isArray(q.tags) || q.tags.some((t) => typeof t !== 'string'))) {
    throw new InvalidOptionError('tags', q.tags, 'must be an array of strings');
  }
  if (q.zone !== undefined && typeof q.zone !== 'string') {
    throw new InvalidOptionError('zone', q.zone, 'must be a string');
  }
  const healthyOnly = q.healthyOnly === true;
  const tags = q.tags ?? [];
  const zone = q.zone;
  if (!healthyOnly && tags.length === 0 && zone === undefined) return (all) => all;
  return (all) =>
    all.filter(
      (i) =>
        (!healthyOnly || i.healthy) && (zone === undefined || i.zone === zone) && tags.every((t) => i.tags.includes(t)),
    );
}
