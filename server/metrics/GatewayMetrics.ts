/**
 * The proxy's Prometheus metrics (prom-client), in a registry of their own that the admin
 * API serves at `/metrics`. The hot path keeps prom-client's labelled children in small maps
 * per route, so a request costs a couple of map lookups and two updates, not a label hash.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** Latency buckets in seconds: 0.5 ms to 10 s. */
export const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** Why a try was retried or failed, as metric labels. */
export type FailureReason = 'connect-failure' | 'reset' | 'timeout' | 'status' | 'other';

/** The children of one route, created on first use. */
class RouteChildren {
  readonly duration: ReturnType<Histogram<'route'>['labels']>;
  /** upstream -> status -> counter */
  readonly requests = new Map<string, Map<number, ReturnType<Counter<string>['labels']>>>();
  constructor(
    readonly route: string,
    readonly metrics: GatewayMetrics,
  ) {
    this.duration = metrics.duration.labels(route);
  }
}

/** The gateway's metrics. */
export class GatewayMetrics {
  readonly registry: Registry;
  readonly requests: Counter<'route' | 'status' | 'upstream'>;
  readonly duration: Histogram<'route'>;
  readonly retries: Counter<'route' | 'reason'>;
  readonly upstreamFailures: Counter<'route' | 'upstream' | 'reason'>;
  readonly rateLimited: Counter<'route'>;
  readonly rejected: Counter<'code'>;
  readonly ejections: Counter<'service' | 'upstream'>;
  readonly inFlight: Gauge;
  readonly #routes = new Map<string, RouteChildren>();
  #inFlightSource: (() => number) | undefined;

  constructor(registry: Registry = new Registry()) {
    this.registry = registry;
    const registers = [registry];
    this.requests = new Counter({
      name: 'ringway_gateway_requests_total',
      help: 'Proxied requests answered, by route, status and upstream instance ("" when none was tried)',
      labelNames: ['route', 'status', 'upstream'],
      registers,
    });
    this.duration = new Histogram({
      name: 'ringway_gateway_request_duration_seconds',
      help: 'Time from the request to the response headers, retries included, by route',
      labelNames: ['route'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.retries = new Counter({
      name: 'ringway_gateway_retries_total',
      help: 'Retries started, by route and the reason of the failed try',
      labelNames: ['route', 'reason'],
      registers,
    });
    this.upstreamFailures = new Counter({
      name: 'ringway_gateway_upstream_failures_total',
      help: 'Failed tries, by route, upstream instance and reason',
      labelNames: ['route', 'upstream', 'reason'],
      registers,
    });
    this.rateLimited = new Counter({
      name: 'ringway_gateway_rate_limited_total',
      help: 'Requests refused by a rate limit, by route',
      labelNames: ['route'],
      registers,
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
    });
    const self = this;
    this.inFlight = new Gauge({
      name: 'ringway_gateway_in_flight_requests',
      help: 'Requests being proxied now',
      registers,
      collect() {
        // Read at scrape time: no gauge update on the request path.
        if (self.#inFlightSource !== undefined) this.set(self.#inFlightSource());
      },
    });
  }

  /** Where the in-flight gauge reads its value when scraped. */
  trackInFlight(source: () => number): void {
    this.#inFlightSource = source;
  }

  #children(route: string): RouteChildren {
    let c = this.#routes.get(route);
    if (c === undefined) {
      c = new RouteChildren(route, this);
      this.#routes.set(route, c);
    }
    return c;
  }

  /** A request of `route` got its response headers (or an error status) after `seconds`. */
  observe(route: string, upstream: string, status: number, seconds: number): void {
    const c = this.#children(route);
    c.duration.observe(seconds);
    let byStatus = c.requests.get(upstream);
    if (byStatus === undefined) {
      byStatus = new Map();
      c.requests.set(upstream, byStatus);
    }
    let counter = byStatus.get(status);
    if (counter === undefined) {
      counter = this.requests.labels(route, String(status), upstream);
      byStatus.set(status, counter);
    }
    counter.inc();
  }

  /** Forgets cached children of routes that no longer exist (their series stay until reset). */
  forgetRoutes(keep: ReadonlySet<string>): void {
    for (const name of this.#routes.keys()) if (!keep.has(name)) this.#routes.delete(name);
  }
}
