/**
 * The proxy's Prometheus metrics, in a prom-client registry of their own that the admin API
 * serves at `/metrics`.
 *
 * The two metrics every request touches (requests by route, status and upstream; latency
 * by route) are counted in plain typed arrays per route and turned into prom-client's
 * format only when scraped: prom-client's labelled children hash their labels again on every
 * `inc`/`observe`, which costs more than the rest of the bookkeeping of a request. Rarer
 * events (retries, failures, ejections, refusals) use prom-client counters directly.
 */
import { Counter, type Metric, Registry } from 'prom-client';

/** Latency buckets in seconds: 0.5 ms to 10 s. */
export const LATENCY_BUCKETS: readonly number[] = Object.freeze([
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
]);

/** Why a try was retried or failed, as metric labels. */
export type FailureReason = 'connect-failure' | 'reset' | 'timeout' | 'status' | 'other';

/** Counts of one route, updated on the request path. */
export class RouteStats {
  readonly route: string;
  /** upstream id ('' when no instance was tried) -> counts indexed by status (100..599). */
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
      counts = new Float64Array(600);
      this.requests.set(upstream, counts);
    }
    if (status >= 100 && status < 600) counts[status] = (counts[status] as number) + 1;
    const b = this.buckets;
    let i = 0;
    while (i < LATENCY_BUCKETS.length && seconds > (LATENCY_BUCKETS[i] as number)) i++;
    b[i] = (b[i] as number) + 1;
    this.sum += seconds;
    this.count++;
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
  readonly #routes = new Map<string, RouteStats>();
  #inFlightSource: (() => number) | undefined;

  constructor(registry: Registry = new Registry()) {
    this.registry = registry;
    const registers = [registry];
    const routes = this.#routes;
    const register = (m: ScrapedMetric): void => registry.registerMetric(m as unknown as Metric);
    register(
      new ScrapedMetric(
        'ringway_gateway_requests_total',
        'Proxied requests answered, by route, status and upstream instance ("" when none was tried)',
        'counter',
        () => {
          const out: ScrapedValue[] = [];
          for (const stats of routes.values()) {
            for (const [upstream, counts] of stats.requests) {
              for (let status = 100; status < 600; status++) {
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
  }

  /** Where the in-flight gauge reads its value when scraped. */
  trackInFlight(source: () => number): void {
    this.#inFlightSource = source;
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

  /** Drops the counters of routes that no longer exist. */
  forgetRoutes(keep: ReadonlySet<string>): void {
    for (const name of this.#routes.keys()) if (!keep.has(name)) this.#routes.delete(name);
  }
}
