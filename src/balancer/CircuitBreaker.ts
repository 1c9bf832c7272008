/**
 * A circuit breaker for one endpoint, after the classic three-state machine (Nygard,
 * "Release It!", and cockatiel's CircuitBreakerPolicy with its ConsecutiveBreaker):
 *
 * - `closed`: requests flow; `failureThreshold` failures in a row open the breaker;
 * - `open`: the endpoint gets no requests until `cooldownMs` has passed;
 * - `half-open`: at most `halfOpenMaxRequests` trial requests at a time; `successThreshold`
 *   trial successes in a row close the breaker, any trial failure opens it again for
 *   another cool-down.
 *
 * In half-open, only the trials decide: results of requests sent before the breaker
 * opened are ignored, as are results that arrive while it is open. The breaker has no
 * timers: the balancer asks when the cool-down ends ({@link CircuitBreaker.openUntil})
 * and calls {@link CircuitBreaker.expire} with its clock.
 */
import { checkInt, checkObject } from '../validate.js';
import { MAX_DURATION_MS } from './limits.js';

/** The states of a {@link CircuitBreaker}. */
export type BreakerState = 'closed' | 'open' | 'half-open';

/** Options of the per-endpoint circuit breaker. */
export interface CircuitBreakerOptions {
  /** Failures in a row that open a closed breaker. @default 5 */
  failureThreshold?: number;
  /** Time an open breaker waits before letting trial requests through, in ms. @default 10_000 */
  cooldownMs?: number;
  /** Trial requests in flight at once while half-open. @default 1 */
  halfOpenMaxRequests?: number;
  /** Trial successes in a row that close a half-open breaker. @default 1 */
  successThreshold?: number;
}

/** Resolved, frozen circuit breaker options. */
export interface ResolvedCircuitBreakerOptions {
  readonly failureThreshold: number;
  readonly cooldownMs: number;
  readonly halfOpenMaxRequests: number;
  readonly successThreshold: number;
}

/** Defaults of {@link CircuitBreakerOptions}. */
export const DEFAULT_CIRCUIT_BREAKER_OPTIONS: ResolvedCircuitBreakerOptions = Object.freeze({
  failureThreshold: 5,
  cooldownMs: 10_000,
  halfOpenMaxRequests: 1,
  successThreshold: 1,
});

/**
 * Merges defaults into `partial`, checks every field and freezes the result.
 * @throws {InvalidOptionError} naming the field (prefixed with `field`) and the value.
 */
export function resolveCircuitBreakerOptions(
  partial: CircuitBreakerOptions = {},
  field = 'circuitBreaker',
): ResolvedCircuitBreakerOptions {
  const o = checkObject(field, partial) as CircuitBreakerOptions;
  const d = DEFAULT_CIRCUIT_BREAKER_OPTIONS;
  return Object.freeze({
    failureThreshold: checkInt(`${field}.failureThreshold`, o.failureThreshold ?? d.failureThreshold, 1, 1_000_000),
    cooldownMs: checkInt(`${field}.cooldownMs`, o.cooldownMs ?? d.cooldownMs, 1, MAX_DURATION_MS),
    halfOpenMaxRequests: checkInt(
      `${field}.halfOpenMaxRequests`,
      o.halfOpenMaxRequests ?? d.halfOpenMaxRequests,
      1,
      1_000_000,
    ),
    successThreshold: checkInt(`${field}.successThreshold`, o.successThreshold ?? d.successThreshold, 1, 1_000_000),
  });
}

/** Called on every state change, after the change. */
export type BreakerListener = (from: BreakerState, to: BreakerState) => void;

/** A ticket for a request that {@link CircuitBreaker.tryAcquire} let through: see there. */
export type BreakerTicket = number;

/** The ticket of a request sent while the breaker was closed. */
export const CLOSED_TICKET: BreakerTicket = 0;
/** What {@link CircuitBreaker.tryAcquire} returns when the breaker lets nothing through. */
export const REFUSED_TICKET: BreakerTicket = -1;

/**
 * The breaker of one endpoint. Take a ticket with {@link CircuitBreaker.tryAcquire} before a
 * request and give it back with {@link CircuitBreaker.record} (or {@link CircuitBreaker.cancel}).
 *
 * @example
 * ```ts
 * const breaker = new CircuitBreaker(resolveCircuitBreakerOptions({ failureThreshold: 3 }));
 * const ticket = breaker.tryAcquire(performance.now());
 * if (ticket !== REFUSED_TICKET) breaker.record(ticket, ok, performance.now());
 * ```
 */
export class CircuitBreaker {
  readonly options: ResolvedCircuitBreakerOptions;
  private current: BreakerState = 'closed';
  private failures = 0;
  private successes = 0;
  private trials = 0;
  private until = 0;
  /** Counts the half-open periods, so that a trial of an earlier one is not taken for a current one. */
  private generation = 0;
  private readonly listener: BreakerListener | undefined;

  constructor(options: ResolvedCircuitBreakerOptions = DEFAULT_CIRCUIT_BREAKER_OPTIONS, listener?: BreakerListener) {
    this.options = options;
    this.listener = listener;
  }

  /** The state now (an open breaker whose cool-down ended stays `open` until {@link expire}). */
  get state(): BreakerState {
    return this.current;
  }

  /** When an open breaker's cool-down ends; meaningless in other states. */
  get openUntil(): number {
    return this.until;
  }

  /** Trial requests in flight (half-open only). */
  get trialsInFlight(): number {
    return this.trials;
  }

  /** Whether a request may go through now without changing anything. */
  allows(): boolean {
    return (
      this.current === 'closed' || (this.current === 'half-open' && this.trials < this.options.halfOpenMaxRequests)
    );
  }

  /** Moves an open breaker to half-open once its cool-down has passed. Returns whether it did. */
  expire(now: number): boolean {
    if (this.current !== 'open' || now < this.until) return false;
    this.successes = 0;
    this.trials = 0;
    this.generation++;
    this.transition('half-open');
    return true;
  }

  /**
   * Takes a place for one request: {@link CLOSED_TICKET} for a normal request, a positive
   * ticket for one of the half-open trials, or {@link REFUSED_TICKET} when the breaker lets
   * nothing through now. With `now`, an open breaker whose cool-down is over half-opens first.
   */
  tryAcquire(now?: number): BreakerTicket {
    if (this.current === 'open' && now !== undefined) this.expire(now);
    if (this.current === 'closed') return CLOSED_TICKET;
    if (this.current === 'half-open' && this.trials < this.options.halfOpenMaxRequests) {
      this.trials++;
      return this.generation;
    }
    return REFUSED_TICKET;
  }

  /** Gives back a ticket without a result (the request was abandoned). */
  cancel(ticket: BreakerTicket): void {
    if (this.isCurrentTrial(ticket)) this.trials--;
  }

  /**
   * Records the outcome of a request that held `ticket`. While closed every result counts;
   * while half-open only the current trials do; while open nothing does.
   */
  record(ticket: BreakerTicket, ok: boolean, now: number): void {
    if (this.current === 'closed') {
      if (ok) {
        this.failures = 0;
      } else if (++this.failures >= this.options.failureThreshold) {
        this.open(now);
      }
      return;
    }
    if (!this.isCurrentTrial(ticket)) return;
    this.trials--;
    if (!ok) {
      this.open(now);
    } else if (++this.successes >= this.options.successThreshold) {
      this.failures = 0;
      this.transition('closed');
    }
  }

  /** Opens the breaker now, for one cool-down (also from outside, to hold an endpoint back). */
  open(now: number): void {
    this.until = now + this.options.cooldownMs;
    this.failures = 0;
    this.successes = 0;
    this.trials = 0;
    if (this.current !== 'open') this.transition('open');
  }

  private isCurrentTrial(ticket: BreakerTicket): boolean {
    return this.current === 'half-open' && ticket > 0 && ticket === this.generation && this.trials > 0;
  }

  private transition(to: BreakerState): void {
    const from = this.current;
    this.current = to;
    this.listener?.(from, to);
  }
}
