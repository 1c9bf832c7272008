/**
 * The upstream side of the gateway: for each service, where its instances come from (a
 * static list, or the service registry, live) and the balancers that pick among them (one per
 * service and strategy, so routes that share both share health, ejections and in-flight
 * counts). Instances that register or expire reach the balancers without a restart; the
 * connection pools of instances that left are closed once their requests finish.
 *
 * The balancing itself (strategies, health checks, outlier ejection, breakers) is the
 * library's `createBalancer`; nothing here picks an endpoint.
 */

import type { Balancer } from '../../src/balancer/Balancer.js';
import { createBalancer } from '../../src/balancer/createBalancer.js';
import { type Endpoint, type EndpointInput, resolveEndpoint, resolveEndpoints } from '../../src/balancer/Endpoint.js';
import { checkEndpointsForStrategy } from '../../src/balancer/options.js';
import { resolveMaglevStrategyOptions } from '../../src/balancer/strategies/Maglev.js';
import { checkRingEndpoints, resolveRingHashOptions } from '../../src/balancer/strategies/RingHash.js';
import { InvalidOptionError } from '../../src/errors.js';
import type { ResolvedRoute, ResolvedService, RouteStrategy } from '../config/GatewayConfig.js';
import { isUpstreamUrl, type PoolSettings, type PoolUse, type UpstreamPools } from '../proxy/UpstreamPools.js';

/** An instance as a registry reports it (the fields the gateway uses). */
export interface SourceInstance {
  readonly id: string;
  readonly address: string;
  readonly weight?: number | undefined;
  readonly zone?: string | undefined;
  readonly meta?: Readonly<Record<string, unknown>> | undefined;
  /** False when the registry knows the instance is unhealthy. */
  readonly healthy?: boolean | undefined;
}

/** A running watch; `close` stops it. */
export interface SourceWatch {
  /** Resolves once the current instances were delivered. */
  readonly ready?: Promise<void>;
  close(): unknown;
}

/**
 * Where instances of services without a static list come from: the service registry. A
 * watch reports the current instances first, then every change.
 */
export interface InstanceSource {
  watch(service: string, listener: (instances: readonly SourceInstance[]) => void): SourceWatch;
}

/** What the gateway is told about upstream events. */
export interface UpstreamEvents {
  ejected?(service: string, endpointId: string, durationMs: number): void;
  restored?(service: string, endpointId: string): void;
  healthChanged?(service: string, endpointId: string, healthy: boolean, reason: string): void;
  /** Instances of a registry-backed service changed. */
  instances?(service: string, count: number): void;
  /** An instance from the registry was refused (bad address...). */
  invalidInstance?(service: string, instanceId: string, reason: string): void;
}

interface ServiceEntry {
  config: ResolvedService;
  /** Fingerprint of the settings a balancer is built from: a change rebuilds the balancers. */
  fingerprint: string;
  endpoints: readonly EndpointInput[];
  balancers: Map<RouteStrategy, Balancer>;
  watch: SourceWatch | undefined;
}

function fingerprint(s: ResolvedService): string {
  const { static: _static, name: _name, ...rest } = s;
  return JSON.stringify(rest);
}

/** Turns registry instances into endpoints, leaving out unhealthy and invalid ones. */
function toEndpoints(service: string, instances: readonly SourceInstance[], events: UpstreamEvents): EndpointInput[] {
  const out: EndpointInput[] = [];
  const seen = new Set<string>();
  for (const inst of instances) {
    if (inst.healthy === false || seen.has(inst.id)) continue;
    const input: EndpointInput = {
      id: inst.id,
      address: inst.address,
      weight: inst.weight ?? 1,
      ...(inst.zone === undefined ? {} : { zone: inst.zone }),
      ...(inst.meta === undefined ? {} : { meta: inst.meta }),
    };
    try {
      resolveEndpoint('instance', input);
      if (!isUpstreamUrl(inst.address)) throw new Error(`address ${inst.address} is not an http(s) URL`);
    } catch (err) {
      events.invalidInstance?.(service, String(inst.id), (err as Error).message);
      continue;
    }
    seen.add(inst.id);
    out.push(input);
  }
  return out;
}

/**
 * Checks that the proxy can send to `address`: an http(s) URL.
 * @throws {InvalidOptionError} naming `field`.
 */
function checkAddress(field: string, address: string): void {
  if (!isUpstreamUrl(address)) throw new InvalidOptionError(field, address, 'must be an http:// or https:// URL');
}

/**
 * Runs what only the strategy limits (ring points per endpoint, endpoints per maglev table).
 * @throws {InvalidOptionError} naming the endpoint field.
 */
function checkStrategy(strategy: RouteStrategy, c: ResolvedService, endpoints: readonly Endpoint[]): void {
  if (strategy !== 'ring-hash' && strategy !== 'maglev') return;
  const ringHash = resolveRingHashOptions(c.ringHash);
  checkEndpointsForStrategy('endpoints', endpoints, {
    strategy,
    ringHash,
    maglev: resolveMaglevStrategyOptions(c.maglev),
  });
}

/** Services, their instances and their balancers. */
export class Upstreams {
  readonly #services = new Map<string, ServiceEntry>();
  readonly #pools: UpstreamPools;
  readonly #source: InstanceSource | undefined;
  readonly #events: UpstreamEvents;
  /**
   * Balancers a change replaced while requests still held leases on them: they keep serving
   * those requests' retries (README: requests in flight finish on the route they matched),
   * and the pools of their settings stay open, until their last lease is released or
   * {@link RETIRE_MAX_MS} passed. Checked every {@link RETIRE_CHECK_MS}.
   */
  readonly #retiring = new Map<Balancer, Retiring>();
  #retireTimer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(pools: UpstreamPools, source: InstanceSource | undefined, events: UpstreamEvents = {}) {
    this.#pools = pools;
    this.#source = source;
    this.#events = events;
  }

  /**
   * Makes the services and balancers match a configuration: new services start (and their
   * registry watches), changed ones rebuild their balancers, services no route names any more
   * stop. Returns each route's balancer, in route order.
   *
   * Two phases: every balancer the configuration needs is built (or checked, for the ones kept)
   * first; only when all of them are ready does anything running change. So a configuration
   * whose balancers cannot be built throws, and the running services, balancers and watches
   * stay exactly as they were.
   * @throws {InvalidOptionError} when a balancer refuses the settings or the static instances.
   */
  apply(services: ReadonlyMap<string, ResolvedService>, routes: readonly ResolvedRoute[]): Balancer[] {
    // Phase 1: plan and build, touching nothing that runs.
    const named = new Set(routes.map((r) => r.service));
    const plan = new Map<string, { entry: ServiceEntry; fresh: boolean; endpointsChanged: boolean }>();
    for (const name of named) {
      const config = services.get(name);
      if (config === undefined) throw new Error(`route service '${name}' has no settings`);
      const existing = this.#services.get(name);
      const keep =
        existing !== undefined &&
        fingerprint(config) === existing.fingerprint &&
        (config.static === undefined) === (existing.config.static === undefined);
      if (keep) {
        const endpointsChanged =
          config.static !== undefined && JSON.stringify(config.static) !== JSON.stringify(existing.endpoints);
        plan.set(name, { entry: existing, fresh: false, endpointsChanged });
      } else {
        const entry: ServiceEntry = {
          config,
          fingerprint: fingerprint(config),
          endpoints: config.static ?? [],
          balancers: new Map(),
          watch: undefined,
        };
        plan.set(name, { entry, fresh: true, endpointsChanged: false });
      }
    }
    // Static addresses the proxy could not send to (a configuration that skipped the checks of
    // resolveGatewayConfig): refused here rather than failing requests later.
    for (const [name, { fresh, endpointsChanged }] of plan) {
      const list = (fresh || endpointsChanged ? services.get(name)?.static : undefined) ?? [];
      for (const [i, e] of list.entries()) checkAddress(`services.${name}.static[${i}].address`, e.address);
    }
    const built: { entry: ServiceEntry; strategy: RouteStrategy; balancer: Balancer }[] = [];
    const out: Balancer[] = [];
    try {
      for (const r of routes) {
        const { entry, fresh, endpointsChanged } = plan.get(r.service) as {
          entry: ServiceEntry;
          fresh: boolean;
          endpointsChanged: boolean;
        };
        const config = services.get(r.service) as ResolvedService;
        const kept = fresh ? undefined : entry.balancers.get(r.strategy);
        if (kept !== undefined) {
          // Its new static instances must pass its strategy's check before anything changes.
          if (endpointsChanged) checkStrategy(r.strategy, config, resolveEndpoints('endpoints', config.static ?? []));
          out.push(kept);
          continue;
        }
        const pending = built.find((x) => x.entry === entry && x.strategy === r.strategy);
        if (pending !== undefined) {
          out.push(pending.balancer);
          continue;
        }
        const endpoints =
          config.static !== undefined
            ? config.static
            : this.#fit(r.service, r.strategy, config, entry.endpoints, new Set());
        const balancer = this.#create(config, r.strategy, endpoints);
        built.push({ entry, strategy: r.strategy, balancer });
        out.push(balancer);
      }
    } catch (err) {
      for (const b of built) b.balancer.close();
      throw err;
    }

    // Phase 2: swap. Nothing below throws on a configuration.
    for (const [name, entry] of this.#services) {
      if (plan.get(name)?.entry !== entry) {
        this.#stop(entry, true);
        this.#services.delete(name);
      }
    }
    for (const [name, { entry, fresh, endpointsChanged }] of plan) {
      const config = services.get(name) as ResolvedService;
      if (!fresh) {
        entry.config = config;
        if (endpointsChanged) {
          entry.endpoints = config.static ?? [];
          for (const [strategy, b] of entry.balancers) {
            if (out.includes(b)) b.update(entry.endpoints);
            else {
              this.#retire(b, entry);
              entry.balancers.delete(strategy);
            }
          }
        }
      }
      this.#services.set(name, entry);
    }
    for (const { entry, strategy, balancer } of built) entry.balancers.set(strategy, balancer);
    // Balancers no route uses any more are closed (their health checks stop) once the
    // requests that picked from them are done.
    const used = new Set(out);
    for (const entry of this.#services.values()) {
      for (const [strategy, b] of entry.balancers) {
        if (!used.has(b)) {
          this.#retire(b, entry);
          entry.balancers.delete(strategy);
        }
      }
    }
    // Registry watches of new services start last: their first delivery finds the balancers.
    for (const [name, { entry, fresh }] of plan) {
      if (!fresh || entry.config.static !== undefined || this.#source === undefined) continue;
      entry.watch = this.#source.watch(name, (instances) => {
        if (this.#services.get(name) !== entry) return;
        const endpoints = toEndpoints(name, instances, this.#events);
        this.#events.instances?.(name, endpoints.length);
        this.#setEndpoints(entry, endpoints);
      });
    }
    this.#retainPools();
    return out;
  }

  /**
   * Resolves once every registry watch delivered its first state, or after `timeoutMs`
   * (the registry keeps trying; services without instances answer 503 meanwhile).
   */
  async ready(timeoutMs: number): Promise<void> {
    const waits = [...this.#services.values()].flatMap((e) => (e.watch?.ready === undefined ? [] : [e.watch.ready]));
    if (waits.length === 0) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all(waits),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, timeoutMs);
      }),
    ]);
    clearTimeout(timer);
  }

  /** The service's settings, by name. */
  service(name: string): ResolvedService | undefined {
    return this.#services.get(name)?.config;
  }

  /** The balancers of a service, by strategy. */
  balancers(name: string): ReadonlyMap<RouteStrategy, Balancer> {
    return this.#services.get(name)?.balancers ?? new Map();
  }

  /** Names of the services known now. */
  get serviceNames(): string[] {
    return [...this.#services.keys()];
  }

  /**
   * The ids of the instances some balancer has now, retiring balancers included (they still
   * serve the retries of requests that picked from them, so their instances are still in use).
   */
  endpointIds(): Set<string> {
    const ids = new Set<string>();
    for (const entry of this.#services.values()) {
      for (const b of entry.balancers.values()) for (const e of b.endpoints) ids.add(e.id);
    }
    for (const b of this.#retiring.keys()) for (const e of b.endpoints) ids.add(e.id);
    return ids;
  }

  /** A balancer of `strategy` for the service, its events wired to the gateway's. */
  #create(c: ResolvedService, strategy: RouteStrategy, endpoints: readonly EndpointInput[]): Balancer {
    const b = createBalancer({
      strategy,
      endpoints,
      outlierDetection: c.outlierDetection,
      ...(c.healthCheck === undefined ? {} : { healthCheck: c.healthCheck }),
      circuitBreaker: c.circuitBreaker,
      panicThreshold: c.panicThreshold,
      ringHash: c.ringHash,
      maglev: c.maglev,
      ewma: c.ewma,
    });
    const service = c.name;
    b.on('ejected', (e) => this.#events.ejected?.(service, e.endpoint.id, e.durationMs));
    b.on('restored', (e) => this.#events.restored?.(service, e.endpoint.id));
    b.on('healthy', (e) => this.#events.healthChanged?.(service, e.endpoint.id, true, 'passed health checks'));
    b.on('unhealthy', (e) => this.#events.healthChanged?.(service, e.endpoint.id, false, e.reason));
    return b;
  }

  /**
   * The registry instances `strategy` takes: those it refuses (more ring points than an
   * endpoint may have, more endpoints than the maglev table) are left out and reported once
   * per delivery (`reported` holds the ids already reported).
   */
  #fit(
    service: string,
    strategy: RouteStrategy,
    c: ResolvedService,
    endpoints: readonly EndpointInput[],
    reported: Set<string>,
  ): readonly EndpointInput[] {
    if (strategy !== 'ring-hash' && strategy !== 'maglev') return endpoints;
    const ringHash = resolveRingHashOptions(c.ringHash);
    const tableSize = resolveMaglevStrategyOptions(c.maglev).tableSize;
    const kept: EndpointInput[] = [];
    for (const input of endpoints) {
      let reason: string | undefined;
      if (strategy === 'maglev') {
        if (kept.length >= tableSize) reason = `the maglev table (maglev.tableSize ${tableSize}) is full`;
      } else {
        try {
          checkRingEndpoints('weight', [resolveEndpoint('endpoint', input)], ringHash);
        } catch (err) {
          reason = (err as Error).message.replace(/^weight\[0\]\.weight /, 'weight ');
        }
      }
      if (reason === undefined) {
        kept.push(input);
      } else if (!reported.has(input.id)) {
        reported.add(input.id);
        this.#events.invalidInstance?.(service, input.id, `refused by ${strategy}: ${reason}`);
      }
    }
    return kept;
  }

  /**
   * Registry instances changed: every balancer of the service takes the ones its strategy
   * accepts (the others are reported and left out; the old set never stays in place).
   */
  #setEndpoints(entry: ServiceEntry, endpoints: readonly EndpointInput[]): void {
    entry.endpoints = endpoints;
    const reported = new Set<string>();
    for (const [strategy, b] of entry.balancers) {
      b.update(this.#fit(entry.config.name, strategy, entry.config, endpoints, reported));
    }
    this.#retainPools();
  }

  #retainPools(): void {
    if (this.#closed) return;
    const inUse: PoolUse[] = [];
    for (const entry of this.#services.values()) {
      const settings = poolSettings(entry.config);
      for (const e of entry.endpoints) inUse.push({ address: e.address, settings });
    }
    for (const [b, { settings }] of this.#retiring) {
      for (const e of b.endpoints) inUse.push({ address: e.address, settings });
    }
    this.#pools.retain(inUse);
  }

  /**
   * Closes `b` now when no request holds a lease on it, else once the last is released: a
   * retry of a request that picked from it still finds its instances (a closed balancer
   * refuses every pick), over the pools of the settings it was made with.
   */
  #retire(b: Balancer, entry: ServiceEntry): void {
    if (b.closed) return;
    if (b.status().inFlight === 0) {
      b.close();
      return;
    }
    this.#retiring.set(b, { settings: poolSettings(entry.config), until: performance.now() + RETIRE_MAX_MS });
    this.#retireTimer ??= setInterval(this.#checkRetiring, RETIRE_CHECK_MS).unref();
  }

  readonly #checkRetiring = (): void => {
    const now = performance.now();
    let closed = false;
    for (const [b, { until }] of this.#retiring) {
      if (now < until && b.status().inFlight > 0) continue;
      b.close();
      this.#retiring.delete(b);
      closed = true;
    }
    if (this.#retiring.size === 0) this.#stopRetiring();
    if (closed) this.#retainPools();
  };

  #stopRetiring(): void {
    if (this.#retireTimer !== undefined) clearInterval(this.#retireTimer);
    this.#retireTimer = undefined;
  }

  /** Stops the service's watch and its balancers (`retire`: once their requests are done). */
  #stop(entry: ServiceEntry, retire = false): void {
    entry.watch?.close();
    entry.watch = undefined;
    for (const b of entry.balancers.values()) {
      if (retire) this.#retire(b, entry);
      else b.close();
    }
    entry.balancers.clear();
  }

  /** Stops watches, health checks and balancers (retiring ones too). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const entry of this.#services.values()) this.#stop(entry);
    this.#services.clear();
    for (const b of this.#retiring.keys()) b.close();
    this.#retiring.clear();
    this.#stopRetiring();
  }
}

/** A balancer {@link Upstreams} replaced, kept for the requests that still hold its leases. */
interface Retiring {
  /** The pool settings its requests use (they may retry on any of its endpoints). */
  readonly settings: PoolSettings;
  /** performance.now() after which it is closed anyway (a stream may run for hours). */
  readonly until: number;
}

/** How often retiring balancers are checked for their last lease. */
const RETIRE_CHECK_MS = 250;
/** The longest a replaced balancer serves the retries of its requests. */
const RETIRE_MAX_MS = 300_000;

function poolSettings(c: ResolvedService): PoolSettings {
  return { connections: c.connections, connectTimeoutMs: c.connectTimeoutMs };
}
