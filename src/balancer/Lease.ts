/**
 * A lease: one request's hold on an endpoint, from `acquire` to `release`.
 */
import { InvalidOptionError } from '../errors.js';
import type { BreakerTicket } from './CircuitBreaker.js';
import type { Endpoint } from './Endpoint.js';
import type { EndpointState } from './EndpointState.js';

/** The outcome of a request, given to {@link Lease.release}. */
export interface ReleaseResult {
  /**
   * Whether the request succeeded. What counts as a failure is the caller's call: for HTTP,
   * Envoy counts 5xx, resets and connect failures (not 4xx).
   */
  readonly ok: boolean;
  /**
   * How long the request took, in ms (feeds `ewma`). When absent, the balancer measures
   * from `acquire` to `release` with its clock.
   */
  readonly latencyMs?: number;
}

/** One request's hold on an endpoint. */
export interface Lease {
  /** The endpoint to send the request to. */
  readonly endpoint: Endpoint;
  /** Whether the lease was taken as a retry (counted against the retry budget). */
  readonly retry: boolean;
  /** Whether {@link release} was called. */
  readonly released: boolean;
  /**
   * Ends the request: the in-flight count drops and the result, if given, feeds latency
   * (ewma), outlier detection and the circuit breaker. Without a result (an abandoned
   * request) only the in-flight count changes. Releasing twice is harmless: the second call
   * does nothing and returns false.
   * @returns whether this call released the lease.
   * @throws {TypeError} when `result.ok` is not a boolean.
   * @throws {InvalidOptionError} when `result.latencyMs` is not a finite number >= 0.
   */
  release(result?: ReleaseResult): boolean;
}

/** What a lease calls back into: the balancer's bookkeeping. */
export interface LeaseHost {
  finish(lease: BalancerLease, result: ReleaseResult | undefined): void;
}

/** The balancer's lease. */
export class BalancerLease implements Lease {
  readonly endpoint: Endpoint;
  readonly state: EndpointState;
  readonly ticket: BreakerTicket;
  readonly retry: boolean;
  /** Clock at acquire when the strategy wants latencies (else NaN, or the clock if it was read). */
  readonly startedAt: number;
  private done = false;
  private readonly host: LeaseHost;

  constructor(host: LeaseHost, state: EndpointState, ticket: BreakerTicket, retry: boolean, startedAt: number) {
    this.host = host;
    this.state = state;
    this.endpoint = state.endpoint;
    this.ticket = ticket;
    this.retry = retry;
    this.startedAt = startedAt;
  }

  get released(): boolean {
    return this.done;
  }

  release(result?: ReleaseResult): boolean {
    if (this.done) return false;
    if (result !== undefined) checkResult(result);
    this.done = true;
    this.host.finish(this, result);
    return true;
  }
}

function checkResult(result: ReleaseResult): void {
  if (typeof result !== 'object' || result === null || typeof result.ok !== 'boolean') {
    throw new TypeError('release(result): result must be { ok: boolean, latencyMs?: number }');
  }
  const latency = result.latencyMs;
  if (latency !== undefined && !(typeof latency === 'number' && latency >= 0 && latency < Number.POSITIVE_INFINITY)) {
    throw new InvalidOptionError('latencyMs', latency, 'must be a finite number >= 0');
  }
}
