/**
 * The proxy's Prometheus metrics, in a prom-client registry of their own that the admin API
 * serves at `/metrics`.
 *
 * The two metrics every request touches (requests by route, status and upstream; latency
 * by route) are counted in plain typed arrays per route and turned into prom-client's
 * format only when scraped: prom-client's labelled children hash their labels again on every
 * `inc`/`observe`, which costs more than the rest of the bookkeeping of a request. Rarer
 * events (retries, failures, ejections, refusals, admin API lock and registry operations)
 * use prom-client counters directly. State (in-flight requests, breaker states, lock waits)
 * is read from its owner only when scraped, so keeping it costs the owner nothing.
 */
import { Counter, type Metric, Registry } from 'prom-client';
import type { BreakerState } from '../../src/balancer/CircuitBreaker.js';
import type { Upstreams } from '../upstreams/Upstreams.js';

/** Latency buckets in seconds: 0.5 ms to 10 s. */
export const LATENCY_BUCKETS: readonly number[] = Object.freeze([
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
]);

/** Why a try was retried or failed, as metric labels. */
export type FailureReason = 'connect-failure' | 'reset' | 'timeout' | 'status' | 'other';

/** Counts of one route, updated on the request path. */
export class RouteStats {
  readonly route: string;
  /** upstream id ('' when no instance was tried) -> counts indexed by status (100..999, as Node allows). */
  readonly requests = new Map<string, Float64Array>();
  /** Per latency bucket (non-cumulative), then the +Inf bucket. */
  readonly buckets = new Float64Array(LATENCY_BUCKETS.length + 1);
  sum = 0;
  count = 0;

  constructor(route: string) {
    this.route = route;
  }

  /** A request got its answer (status) after `seconds`, from `upstream`. */
  observe(upstream: string, status: number, seconds: number): void {
    let counts = this.requests.get(upstream);
    if (counts === undefined) {
      counts = new Float64Array(1000);
      this.requests.set(upstream, counts);
    }
    if (status >= 100 && status < 1000) counts[status] = (counts[status] as number) + 1;
    const b = this.buckets;
    let i = 0;
    while (i < LATENCY_BUCKETS.length && seconds > (LATENCY_BUCKETS[i] as number)) i++;
    b[i] = (b[i] as number) + 1;
    this.sum += seconds;
    this.count++;
  }
}

/** A lock operation of the admin API. */
export type LockOp = 'acquire' | 'extend' | 'release' | 'inspect';

/** A registry operation of the admin API. */
export type RegistryOp = 'register' | 'renew' | 'deregister' | 'read' | 'list';

/**
 * How an admin API operation ended: `ok`; `timeout` (a lock stayed taken for the whole
 * wait); `not_held` (the token no longer holds the lock); `not_found`; `superseded` (a newer
 * registration of the instance exists); `aborted` (the client left, or the admin API
 * closed, while it waited); `invalid` (refused by a check past the schemas);
 * `unavailable` (the store could not be reached); `error` (anything else).
 */
export type OpResult =
  | 'ok'
  | 'timeout'
  | 'not_held'
  | 'not_found'
  | 'superseded'
  | 'aborted'
  | 'invalid'
  | 'unavailable'
  | 'error';

/** The value of `ringway_gateway_breaker_state` for each breaker state. */
export const BREAKER_STATE_VALUES: Readonly<Record<BreakerState, number>> = Object.freeze({
  closed: 0,
  'half-open': 1,
  open: 2,
});

/** One endpoint's breaker, as the breaker gauge reports it. */
export interface BreakerSample {
  readonly service: string;
  /** The balancing strategy: a service has one balancer (and one breaker per instance) per strategy its routes use. */
  readonly strategy: string;
  readonly upstream: string;
  readonly state: BreakerState;
}

/** The breakers of every balancer of `upstreams` now (endpoints without a breaker are left out). */
export function* breakersOf(upstreams: Pick<Upstreams, 'serviceNames' | 'balancers'>): Generator<BreakerSample> {
  for (const service of upstreams.serviceNames) {
    for (const [strategy, balancer] of upstreams.balancers(service)) {
      for (const e of balancer.status().endpoints) {
        if (e.breaker !== undefined) yield { service, strategy, upstream: e.endpoint.id, state: e.breaker };
      }
    }
  }
}

/** One sample as prom-client's registry formats it. */
interface ScrapedValue {
  value: number;
  labels: Record<string, string | number>;
  /** For histograms: `<name>_bucket`, `_sum`, `_count`. */
  metricName?: string;
}

/** What prom-client's registry reads from a metric at scrape time. */
interface Snapshot {
  name: string;
  help: string;
  type: string;
  values: ScrapedValue[];
  aggregator: 'sum';
}

/** A metric computed at scrape time, registered beside prom-client's own. */
class ScrapedMetric {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'gauge' | 'histogram';
  readonly aggregator = 'sum' as const;
  readonly #values: () => ScrapedValue[];

  constructor(name: string, help: string, type: 'counter' | 'gauge' | 'histogram', values: () => ScrapedValue[]) {
    this.name = name;
    this.help = help;
    this.type = type;
    this.#values = values;
  }

  get(): Promise<Snapshot> {
    return Promise.resolve({
      name: this.name,
      help: this.help,
      type: this.type,
      values: this.#values(),
      aggregator: this.aggregator,
    });
  }

  reset(): void {}
}

/** The gateway's metrics. */
export class GatewayMetrics {
  readonly registry: Registry;
  readonly retries: Counter<'route' | 'reason'>;
  readonly upstreamFailures: Counter<'route' | 'upstream' | 'reason'>;
  readonly rateLimited: Counter<'route'>;
  readonly rejected: Counter<'code'>;
  readonly ejections: Counter<'service' | 'upstream'>;
  /** Lock operations of the admin API, by operation and result. */
  readonly lockOps: Counter<'op' | 'result'>;
  /** Registry operations of the admin API, by operation and result. */
  readonly registryOps: Counter<'op' | 'result'>;
  readonly #routes = new Map<string, RouteStats>();
  #inFlightSource: (() => number) | undefined;
  #liveUpstreams: (() => ReadonlySet<string>) | undefined;
  /** The routes and services live now, once {@link GatewayMetrics.forgetRoutes} said so. */
  #liveRoutes: ReadonlySet<string> | undefined;
  #liveServices: ReadonlySet<string> | undefined;
  #breakerSource: (() => Iterable<BreakerSample>) | undefined;
  #lockWaitSource: (() => number) | undefined;
  #rateLimitFailureSource: (() => number) | undefined;
  /** Set while {@link GatewayMetrics.#pruneGone} starts its own read of a counter. */
  #reading = false;

  constructor(registry: Registry = new Registry()) {
    this.registry = registry;
    const metrics = this;
    // The upstream-labelled counters prune the instances that left at every scrape, like
    // requests_total: a count that arrives after an instance left (a try in flight when it
    // was deregistered, an ejection of an endpoint just removed) would otherwise bring its
    // series back after the cleanup that ran on the change, for good. The same goes for the
    // route- and service-labelled ones and the routes and services that live changes removed.
    function collect(this: Counter<string>): Promise<void> {
      return metrics.#pruneGone(this);
    }
    const registers = [registry];
    const routes = this.#routes;
    const register = (m: ScrapedMetric): void => registry.registerMetric(m as unknown as Metric);
    register(
      new ScrapedMetric(
        'ringway_gateway_requests_total',
        'Proxied requests, by route, status (499: the client left before the answer) and upstream instance ("" when none was tried)',
        'counter',
        () => {
          const out: ScrapedValue[] = [];
          // Instances that left every balancer lose their series here, at the scrape, so a
          // request still in flight when one left cannot bring its series back for good.
          const live = this.#liveUpstreams?.();
          for (const stats of routes.values()) {
            for (const [upstream, counts] of stats.requests) {
              if (live !== undefined && upstream !== '' && !live.has(upstream)) {
                stats.requests.delete(upstream);
                continue;
              }
              for (let status = 100; status < 1000; status++) {
                const value = counts[status] as number;
                if (value > 0) out.push({ labels: { route: stats.route, status, upstream }, value });
              }
            }
          }
          return out;
        },
      ),
    );
    register(
      new ScrapedMetric(
        'ringway_gateway_request_duration_seconds',
        'Time from the request to the response headers (or the error answer), retries included, by route',
        'histogram',
        () => {
          const name = 'ringway_gateway_request_duration_seconds';
          const out: ScrapedValue[] = [];
          for (const stats of routes.values()) {
            let acc = 0;
            for (let i = 0; i <= LATENCY_BUCKETS.length; i++) {
              acc += stats.buckets[i] as number;
              const le = i < LATENCY_BUCKETS.length ? (LATENCY_BUCKETS[i] as number) : '+Inf';
              out.push({ metricName: `${name}_bucket`, labels: { route: stats.route, le }, value: acc });
            }
            out.push({ metricName: `${name}_sum`, labels: { route: stats.route }, value: stats.sum });
            out.push({ metricName: `${name}_count`, labels: { route: stats.route }, value: stats.count });
          }
          return out;
        },
      ),
    );
    register(
      new ScrapedMetric('ringway_gateway_in_flight_requests', 'Requests being proxied now', 'gauge', () => [
        { labels: {}, value: this.#inFlightSource?.() ?? 0 },
      ]),
    );
    this.retries = new Counter({
      name: 'ringway_gateway_retries_total',
      help: 'Retries started, by route and the reason of the failed try',
      labelNames: ['route', 'reason'],
      registers,
      collect,
    });
    this.upstreamFailures = new Counter({
      name: 'ringway_gateway_upstream_failures_total',
      help: 'Failed tries, by route, upstream instance and reason',
      labelNames: ['route', 'upstream', 'reason'],
      registers,
      collect,
    });
    this.rateLimited = new Counter({
      name: 'ringway_gateway_rate_limited_total',
      help: 'Requests refused by a rate limit, by route',
      labelNames: ['route'],
      registers,
      collect,
    });
    this.rejected = new Counter({
      name: 'ringway_gateway_rejected_total',
      help: 'Requests refused before routing or proxying, by error code',
      labelNames: ['code'],
      registers,
    });
    this.ejections = new Counter({
      name: 'ringway_gateway_ejections_total',
      help: 'Upstream instances ejected by outlier detection, by service and instance',
      labelNames: ['service', 'upstream'],
      registers,
      collect,
    });
    register(
      new ScrapedMetric(
        'ringway_gateway_breaker_state',
        'Circuit breaker state of each upstream instance (0 closed, 1 half-open, 2 open), by service, strategy and instance',
        'gauge',
        () => {
          const out: ScrapedValue[] = [];
          const source = this.#breakerSource;
          if (source === undefined) return out;
          for (const b of source()) {
            out.push({
              labels: { service: b.service, strategy: b.strategy, upstream: b.upstream },
              value: BREAKER_STATE_VALUES[b.state],
            });
          }
          return out;
        },
      ),
    );
    this.lockOps = new Counter({
      name: 'ringway_gateway_lock_operations_total',
      help: 'Lock operations through the admin API, by operation (acquire, extend, release, inspect) and result',
      labelNames: ['op', 'result'],
      registers,
    });
    register(
      new ScrapedMetric(
        'ringway_gateway_rate_limit_store_failures_total',
        'Rate-limit checks that could not reach the store and let the request through (fail open)',
        'counter',
        () => [{ labels: {}, value: this.#rateLimitFailureSource?.() ?? 0 }],
      ),
    );
    register(
      new ScrapedMetric(
        'ringway_gateway_lock_waiters',
        'Lock acquires through the admin API waiting now',
        'gauge',
        () => [{ labels: {}, value: this.#lockWaitSource?.() ?? 0 }],
      ),
    );
    this.registryOps = new Counter({
      name: 'ringway_gateway_registry_operations_total',
      help: 'Service registry operations through the admin API, by operation (register, renew, deregister, read, list) and result',
      labelNames: ['op', 'result'],
      registers,
    });
  }

  /** Where the breaker gauge reads the breakers when scraped. */
  trackBreakers(source: () => Iterable<BreakerSample>): void {
    this.#breakerSource = source;
  }

  /** Where the lock-waiters gauge reads its value when scraped. */
  trackLockWaits(source: () => number): void {
    this.#lockWaitSource = source;
  }

  /** Where the rate-limit store-failure counter reads its value when scraped. */
  trackRateLimitFailures(source: () => number): void {
    this.#rateLimitFailureSource = source;
  }

  /** Where the in-flight gauge reads its value when scraped. */
  trackInFlight(source: () => number): void {
    this.#inFlightSource = source;
  }

  /** Where the scrape reads the upstream ids in use (requests_total drops the others). */
  trackUpstreams(source: () => ReadonlySet<string>): void {
    this.#liveUpstreams = source;
  }

  /** The counters of `route` (created on first use; the same object for the same name). */
  route(name: string): RouteStats {
    let s = this.#routes.get(name);
    if (s === undefined) {
      s = new RouteStats(name);
      this.#routes.set(name, s);
    }
    return s;
  }

  /**
   * Drops the counters of routes that no longer exist. With `services` (those the routes use),
   * the series of routes and services not in `keep` / `services` then go from the other
   * counters too (retries, failures, rate limits, ejections), at the next
   * {@link GatewayMetrics.forgetUpstreams} or scrape: route names and services that come and
   * go with live changes would otherwise grow those series for ever.
   */
  forgetRoutes(keep: ReadonlySet<string>, services?: ReadonlySet<string>): void {
    for (const name of this.#routes.keys()) if (!keep.has(name)) this.#routes.delete(name);
    if (services !== undefined) {
      this.#liveRoutes = keep;
      this.#liveServices = services;
    }
  }

  /**
   * Drops the series of upstream instances that are gone (not in `live`), so that instances
   * that come and go (pods named anew on every deploy) do not grow the series for ever; and
   * those of routes and services {@link GatewayMetrics.forgetRoutes} removed.
   */
  async forgetUpstreams(live: ReadonlySet<string>): Promise<void> {
    // requests_total prunes itself at each scrape (see trackUpstreams), and here too: its
    // counts are 8 KB per route and upstream, and a gateway that nobody scrapes would keep
    // them for every instance that ever answered (found by the soak test: 174 of them per
    // route after 200 pods had come and gone).
    for (const stats of this.#routes.values()) {
      for (const upstream of stats.requests.keys()) {
        if (upstream !== '' && !live.has(upstream)) stats.requests.delete(upstream);
      }
    }
    await this.#pruneGone(this.upstreamFailures as Counter<string>, live);
    await this.#pruneGone(this.ejections as Counter<string>, live);
    await this.#pruneGone(this.retries as Counter<string>, live);
    await this.#pruneGone(this.rateLimited as Counter<string>, live);
  }

  /**
   * Removes the series of `counter` whose upstream is not in `live` (by default: the tracked
   * set, read only when a series has an upstream label), or whose route or service is no
   * longer live (once forgetRoutes said which are).
   */
  async #pruneGone(counter: Counter<string>, live?: ReadonlySet<string>): Promise<void> {
    // counter.get() calls its collect() (this method) first: that inner call does nothing.
    const routes = this.#liveRoutes;
    const services = this.#liveServices;
    const liveSource = this.#liveUpstreams;
    if ((live === undefined && liveSource === undefined && routes === undefined) || this.#reading) return;
    let read: ReturnType<Counter<string>['get']>;
    this.#reading = true;
    try {
      read = counter.get();
    } finally {
      this.#reading = false;
    }
    const { values } = await read;
    for (const { labels } of values) {
      const { upstream, route, service } = labels;
      if (typeof upstream === 'string') live ??= liveSource?.();
      if (
        (live !== undefined && typeof upstream === 'string' && !live.has(upstream)) ||
        (routes !== undefined && typeof route === 'string' && !routes.has(route)) ||
        (services !== undefined && typeof service === 'string' && !services.has(service))
      ) {
        counter.remove(labels as Record<string, string>);
      }
    }
  }
}
