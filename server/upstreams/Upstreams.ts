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
import { type EndpointInput, resolveEndpoint } from '../../src/balancer/Endpoint.js';
import type { ResolvedRoute, ResolvedService, RouteStrategy } from '../config/GatewayConfig.js';
import type { UpstreamPools } from '../proxy/UpstreamPools.js';

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
      if (!/^https?:\/\//.test(inst.address)) throw new Error(`address ${inst.address} is not an http(s) URL`);
      new URL(inst.address);
    } catch (err) {
      events.invalidInstance?.(service, String(inst.id), (err as Error).message);
      continue;
    }
    seen.add(inst.id);
    out.push(input);
  }
  return out;
}

/** Services, their instances and their balancers. */
export class Upstreams {
  readonly #services = new Map<string, ServiceEntry>();
  readonly #pools: UpstreamPools;
  readonly #source: InstanceSource | undefined;
  readonly #events: UpstreamEvents;
  #closed = false;

  constructor(pools: UpstreamPools, source: InstanceSource | undefined, events: UpstreamEvents = {}) {
    this.#pools = pools;
    this.#source = source;
    this.#events = events;
  }

  /**
   * Makes the services and balancers match a configuration: new services start (and their
   * registry watches), changed ones rebuild their balancers, unused ones stop. Returns each
   * route's balancer, in route order.
   */
  apply(services: ReadonlyMap<string, ResolvedService>, routes: readonly ResolvedRoute[]): Balancer[] {
    for (const [name, entry] of this.#services) {
      const next = services.get(name);
      if (
        next === undefined ||
        fingerprint(next) !== entry.fingerprint ||
        (next.static === undefined) !== (entry.config.static === undefined)
      ) {
        this.#stop(entry);
        this.#services.delete(name);
      }
    }
    for (const [name, config] of services) {
      const existing = this.#services.get(name);
      if (existing !== undefined) {
        existing.config = config;
        if (config.static !== undefined && JSON.stringify(config.static) !== JSON.stringify(existing.endpoints)) {
          this.#setEndpoints(existing, config.static);
        }
        continue;
      }
      const entry: ServiceEntry = {
        config,
        fingerprint: fingerprint(config),
        endpoints: config.static ?? [],
        balancers: new Map(),
        watch: undefined,
      };
      this.#services.set(name, entry);
      if (config.static === undefined && this.#source !== undefined) {
        entry.watch = this.#source.watch(name, (instances) => {
          if (this.#services.get(name) !== entry) return;
          const endpoints = toEndpoints(name, instances, this.#events);
          this.#events.instances?.(name, endpoints.length);
          this.#setEndpoints(entry, endpoints);
        });
      }
    }
    const out = routes.map((r) => this.#balancer(this.#services.get(r.service) as ServiceEntry, r.strategy));
    // Balancers no route uses any more are closed (their health checks stop).
    const used = new Set(out);
    for (const entry of this.#services.values()) {
      for (const [strategy, b] of entry.balancers) {
        if (!used.has(b)) {
          b.close();
          entry.balancers.delete(strategy);
        }
      }
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

  #balancer(entry: ServiceEntry, strategy: RouteStrategy): Balancer {
    const hit = entry.balancers.get(strategy);
    if (hit !== undefined) return hit;
    const c = entry.config;
    const b = createBalancer({
      strategy,
      endpoints: entry.endpoints,
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
    entry.balancers.set(strategy, b);
    return b;
  }

  #setEndpoints(entry: ServiceEntry, endpoints: readonly EndpointInput[]): void {
    entry.endpoints = endpoints;
    for (const b of entry.balancers.values()) b.update(endpoints);
    this.#retainPools();
  }

  #retainPools(): void {
    if (this.#closed) return;
    const inUse: string[] = [];
    for (const entry of this.#services.values()) for (const e of entry.endpoints) inUse.push(e.address);
    this.#pools.retain(inUse);
  }

  #stop(entry: ServiceEntry): void {
    entry.watch?.close();
    entry.watch = undefined;
    for (const b of entry.balancers.values()) b.close();
    entry.balancers.clear();
  }

  /** Stops watches, health checks and balancers. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const entry of this.#services.values()) this.#stop(entry);
    this.#services.clear();
  }
}
