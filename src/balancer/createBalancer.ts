/**
 * The entry point of the balancer.
 */
import { Balancer } from './Balancer.js';
import type { BalancerOptions } from './options.js';

/**
 * Creates a load balancer over `endpoints` with the named strategy, outlier detection on,
 * and active health checks and circuit breakers when configured. It needs no server: the
 * gateway uses it, and so can any Node service that calls upstreams itself.
 *
 * `acquire(ctx?)` returns a lease `{ endpoint, release(result) }`, or undefined when no
 * endpoint can take the request (use `acquireOrThrow` for a `NoEndpointError` with
 * `code: 'ERR_NO_ENDPOINT'`). Call `close()` when done if health checks run.
 *
 * @example
 * ```ts
 * const lb = createBalancer({
 *   strategy: 'p2c',
 *   endpoints: [
 *     { id: 'users-1', address: 'http://127.0.0.1:3001' },
 *     { id: 'users-2', address: 'http://127.0.0.1:3002', weight: 2 },
 *   ],
 *   outlierDetection: { consecutiveFailures: 5, baseEjectionMs: 30_000, maxEjectionPercent: 50 },
 *   healthCheck: { type: 'http', path: '/healthz', intervalMs: 5_000, timeoutMs: 1_000 },
 * });
 * lb.on('ejected', ({ endpoint, durationMs }) => log.warn(`${endpoint.id} ejected for ${durationMs} ms`));
 * const lease = lb.acquireOrThrow();
 * const started = performance.now();
 * const res = await fetch(lease.endpoint.address);
 * lease.release({ ok: res.status < 500, latencyMs: performance.now() - started });
 * ```
 * @throws {InvalidOptionError} (`ERR_INVALID_OPTION`) naming the field and the value: an
 *   unknown strategy, a repeated endpoint id, a weight <= 0, a threshold out of range...
 */
export function createBalancer(options: BalancerOptions = {}): Balancer {
  return new Balancer(options);
}
