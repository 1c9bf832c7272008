/**
 * The balancer: a strategy picking among the endpoints in rotation, and around it what
 * decides the rotation: active health checks, passive outlier detection, per-endpoint
 * circuit breakers and Envoy's panic threshold; plus the retry budget.
 *
 * An endpoint is in rotation when it is healthy (or no active checks run), not ejected,
 * and its breaker (if any) is not open. When the share in rotation falls below
 * `panicThreshold` percent, every endpoint is (Envoy's panic mode: better to try unhealthy
 * endpoints than to fail every request). With no endpoint in rotation and no panic,
 * `acquire` returns undefined and `acquireOrThrow` throws a `NoEndpointError`
 * (`ERR_NO_ENDPOINT`) that says why.
 *
 * The rotation is recomputed only when something changes (a health transition, an
 * ejection or return, a breaker transition, `update`), so a pick costs what its strategy
 * costs. Timed returns (ejections ending, breakers half-opening) are checked against the
 * injectable clock on the next `acquire`, and an unref'd timer fires them when no traffic
 * comes, so events arrive either way.
 */
import { EventEmitter } from 'node:events';
import { NoEndpointError } from '../errors.js';
import { type BreakerState, CircuitBreaker, CLOSED_TICKET, REFUSED_TICKET } from './CircuitBreaker.js';
import { type Endpoint, type EndpointInput, resolveEndpoints } from './Endpoint.js';
import { EndpointState } from './EndpointState.js';
import { HealthChecker } from './HealthChecker.js';
import { BalancerLease, type Lease, type LeaseHost, type ReleaseResult } from './Lease.js';
import { MAX_DURATION_MS } from './limits.js';
import { OutlierDetector } from './OutlierDetector.js';
import {
  type BalancerOptions,
  checkEndpointsForStrategy,
  type ResolvedBalancerOptions,
  resolveBalancerOptions,
} from './options.js';
import { RetryBudget } from './RetryBudget.js';
import { createStrategy } from './strategies/createStrategy.js';
import type { PickContext, Skip, Strategy, StrategyName } from './strategies/Strategy.js';

/** What `acquire` may be told about the request. */
export interface AcquireContext extends PickContext {
  /**
   * Endpoint ids to avoid when another endpoint is available (a retry should go elsewhere);
   * if every endpoint in rotation is to be avoided, one of them is picked anyway.
   */
  readonly avoid?: readonly string[] | undefined;
  /** Marks the request as a retry, counted against the retry budget while in flight. */
  readonly retry?: boolean | undefined;
}

/** Payload of `ejected`. */
export interface EjectedEvent {
  readonly endpoint: Endpoint;
  /** Ejections of this endpoint so far, this one included. */
  readonly ejections: number;
  /** Length of this ejection, in ms. */
  readonly durationMs: number;
}

/** Payload of `restored`, `healthy`. */
export interface EndpointEvent {
  readonly endpoint: Endpoint;
}

/** Payload of `unhealthy`. */
export interface UnhealthyEvent {
  readonly endpoint: Endpoint;
  /** What the last failed probe saw: `ECONNREFUSED`, `HTTP 500`, `timeout after 1000 ms`... */
  readonly reason: string;
}

/** Payload of `breaker`. */
export interface BreakerEvent {
  readonly endpoint: Endpoint;
  readonly from: BreakerState;
  readonly to: BreakerState;
}

/** Payload of `panic`. */
export interface PanicEvent {
  /** Whether the balancer is now panicking (balancing over every endpoint). */
  readonly active: boolean;
  /** Endpoints available (healthy, not ejected, breaker not open). */
  readonly available: number;
  readonly total: number;
}

/** The events of a {@link Balancer}, for `lb.on(name, listener)`. */
export interface BalancerEvents {
  /** Outlier detection took an endpoint out of rotation. */
  ejected: [EjectedEvent];
  /**
   * An ejected endpoint is back in rotation (if healthy): its time is up, or `update()`
   * shrank the set and its ejection, of those ending soonest, ended early to keep the cap.
   */
  restored: [EndpointEvent];
  /** Active checks passed `healthyThreshold` times in a row. */
  healthy: [EndpointEvent];
  /** Active checks failed `unhealthyThreshold` times in a row. */
  unhealthy: [UnhealthyEvent];
  /** A circuit breaker changed state. */
  breaker: [BreakerEvent];
  /**
   * Panic mode started or ended. A balancer that is in panic mode from its creation (say,
   * with `healthCheck.initiallyHealthy: false`) raises no event for it: read the initial
   * state from {@link Balancer.panic}; the end of that panic is an event.
   */
  panic: [PanicEvent];
}

/** One endpoint's state, for dashboards and admin APIs. */
export interface EndpointStatus {
  readonly endpoint: Endpoint;
  readonly inFlight: number;
  /** Active health (true when no checks run). */
  readonly healthy: boolean;
  /** Why the active check last failed ('' when healthy). */
  readonly healthReason: string;
  readonly ejected: boolean;
  /** When the ejection ends, on the balancer's clock (undefined when not ejected). */
  readonly ejectedUntil: number | undefined;
  /** Ejections so far. */
  readonly ejections: number;
  /** Breaker state (undefined without breakers). */
  readonly breaker: BreakerState | undefined;
  /** The `ewma` latency estimate in ms (undefined with other strategies). */
  readonly latencyMs: number | undefined;
  /** Whether the strategy picks from it now. */
  readonly inRotation: boolean;
}

/** The balancer's state, for dashboards and admin APIs. */
export interface BalancerStatus {
  readonly strategy: StrategyName;
  readonly total: number;
  /** Endpoints available (healthy, not ejected, breaker not open). */
  readonly available: number;
  readonly panic: boolean;
  readonly inFlight: number;
  readonly retries: { readonly active: number; readonly activeRetries: number; readonly maxRetries: number };
  /** Outliers left in service because the ejection cap was reached (Envoy's `ejections_overflow`). */
  readonly ejectionOverflows: number;
  readonly closed: boolean;
  readonly endpoints: readonly EndpointStatus[];
}

type QueuedEvent = { [K in keyof BalancerEvents]: [K, ...BalancerEvents[K]] }[keyof BalancerEvents];

/**
 * A load balancer over a set of endpoints. Create one with {@link createBalancer}.
 *
 * @example
 * ```ts
 * const lb = createBalancer({ strategy: 'p2c', endpoints: [{ id: 'a', address: 'http://127.0.0.1:3001' }] });
 * const lease = lb.acquire();
 * if (lease === undefined) throw new Error('no upstream');
 * try { await send(lease.endpoint.address); lease.release({ ok: true }); }
 * catch { lease.release({ ok: false }); }
 * ```
 */
export class Balancer extends EventEmitter<BalancerEvents> {
  /** The resolved options (`endpoints` as given at creation; see {@link endpoints} for now). */
  readonly options: ResolvedBalancerOptions;
  /** The retry budget leases count against; see {@link canRetry}. */
  readonly retryBudget: RetryBudget;
  private readonly strategy: Strategy;
  private readonly detector: OutlierDetector | undefined;
  private readonly checker: HealthChecker | undefined;
  private readonly now: () => number;
  private states: EndpointState[] = [];
  private byId = new Map<string, EndpointState>();
  private rotation: readonly EndpointState[] = [];
  private availableCount = 0;
  private panicking = false;
  /** Half-open breakers in rotation: while > 0, picks check trial places. */
  private halfOpen = 0;
  private nextDeadline = Number.POSITIVE_INFINITY;
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Number.POSITIVE_INFINITY;
  private isClosed = false;
  private inFlightTotal = 0;
  private readonly queue: QueuedEvent[] = [];
  private dirty = false;
  private avoiding: readonly string[] | undefined;
  private readonly skip: Skip;
  private readonly host: LeaseHost;

  /**
   * Prefer {@link createBalancer}.
   * @throws {InvalidOptionError} naming the field and the value.
   */
  constructor(options: BalancerOptions = {}) {
    super();
    const o = resolveBalancerOptions(options);
    this.options = o;
    this.now = o.now;
    this.strategy = createStrategy(o);
    this.retryBudget = new RetryBudget(o.retryBudget);
    this.detector = o.outlierDetection === undefined ? undefined : new OutlierDetector(o.outlierDetection, o.random);
    this.checker =
      o.healthCheck === undefined
        ? undefined
        : new HealthChecker(o.healthCheck, (id, healthy, reason) => this.onHealth(id, healthy, reason), o.random);
    this.skip = (s) =>
      (s.breaker !== undefined && !this.panicking && !s.breaker.allows()) || this.avoiding?.includes(s.id) === true;
    this.host = { finish: (lease, result) => this.finish(lease, result) };
    for (const endpoint of o.endpoints) this.states.push(this.newState(endpoint));
    this.byId = new Map(this.states.map((s) => [s.id, s]));
    // No listener can be there yet: the initial panic state raises no event (see `panic`).
    this.rebuild(true, false);
  }

  /** The strategy's name. */
  get strategyName(): StrategyName {
    return this.strategy.name;
  }

  /** The endpoints now, in the order last given. */
  get endpoints(): readonly Endpoint[] {
    return this.states.map((s) => s.endpoint);
  }

  /** Endpoints available now (healthy, not ejected, breaker not open). */
  get available(): number {
    return this.availableCount;
  }

  /** Whether the balancer is in panic mode (balancing over every endpoint). */
  get panic(): boolean {
    return this.panicking;
  }

  /** Whether {@link close} was called. */
  get closed(): boolean {
    return this.isClosed;
  }

  /**
   * Picks an endpoint and takes a lease on it; `release` the lease when the request ends.
   * Returns undefined when no endpoint can take the request (none at all, none available
   * and no panic, or the balancer is closed); {@link acquireOrThrow} says why instead.
   * @throws {TypeError} when a `ring-hash` or `maglev` key is neither a string nor bytes.
   */
  acquire(ctx?: AcquireContext): Lease | undefined {
    if (this.isClosed) return undefined;
    const strategy = this.strategy;
    let now = Number.NaN;
    if (this.nextDeadline !== Number.POSITIVE_INFINITY) {
      now = this.now();
      if (now >= this.nextDeadline) this.expire(now);
    }
    // One clock read serves the deadline check, the ewma pick and the lease's start.
    if (strategy.usesLatency && Number.isNaN(now)) now = this.now();
    const s = this.select(ctx, now);
    if (s === undefined) return undefined;
    let ticket = CLOSED_TICKET;
    if (s.breaker !== undefined && !this.panicking) {
      ticket = s.breaker.tryAcquire();
      if (ticket === REFUSED_TICKET) ticket = CLOSED_TICKET;
    }
    s.inFlight++;
    this.inFlightTotal++;
    if (strategy.usesLoad) strategy.loadChanged(s);
    const retry = ctx?.retry === true;
    this.retryBudget.started(retry);
    return new BalancerLease(this.host, s, ticket, retry, now);
  }

  /**
   * As {@link acquire}, but throws instead of returning undefined.
   * @throws {NoEndpointError} (`ERR_NO_ENDPOINT`, status 503) saying why no endpoint was available.
   */
  acquireOrThrow(ctx?: AcquireContext): Lease {
    const lease = this.acquire(ctx);
    if (lease === undefined) throw new NoEndpointError(this.whyNone());
    return lease;
  }

  /** Whether one more retry fits the retry budget now (Envoy's retry_budget); see {@link RetryBudget}. */
  canRetry(): boolean {
    return this.retryBudget.canRetry();
  }

  /**
   * Replaces the endpoints. Endpoints whose id stays keep their state (in-flight count,
   * latency estimate, ejection, breaker, health); a changed address restarts its health
   * checks. Leases of removed endpoints can still be released.
   * @throws {InvalidOptionError} naming the field (`endpoints[i].weight`...) and the value;
   *   the balancer is then unchanged.
   */
  update(endpoints: readonly EndpointInput[]): void {
    const resolved = resolveEndpoints('endpoints', endpoints);
    checkEndpointsForStrategy('endpoints', resolved, this.options);
    const next: EndpointState[] = [];
    const nextById = new Map<string, EndpointState>();
    let weightChanged = false;
    for (const endpoint of resolved) {
      let s = this.byId.get(endpoint.id);
      if (s === undefined) {
        s = this.newState(endpoint);
      } else {
        const moved = s.endpoint.address !== endpoint.address;
        if (s.replace(endpoint)) weightChanged = true;
        if (moved && !this.isClosed) this.checker?.add(endpoint, s.healthy);
      }
      next.push(s);
      nextById.set(s.id, s);
    }
    for (const s of this.states) {
      if (nextById.has(s.id)) continue;
      s.removed = true;
      s.inRotation = false;
      this.detector?.forget(s.outlier);
      this.checker?.remove(s.id);
    }
    this.states = next;
    this.byId = nextById;
    this.keepEjectionCap();
    this.settle(weightChanged);
  }

  /** A snapshot of the balancer and every endpoint. */
  status(): BalancerStatus {
    const usesLatency = this.strategy.usesLatency;
    return {
      strategy: this.strategy.name,
      total: this.states.length,
      available: this.availableCount,
      panic: this.panicking,
      inFlight: this.inFlightTotal,
      retries: {
        active: this.retryBudget.active,
        activeRetries: this.retryBudget.activeRetries,
        maxRetries: this.retryBudget.maxRetries,
      },
      ejectionOverflows: this.detector?.overflows ?? 0,
      closed: this.isClosed,
      endpoints: this.states.map((s) => ({
        endpoint: s.endpoint,
        inFlight: s.inFlight,
        healthy: s.healthy,
        healthReason: this.healthReason(s),
        ejected: s.outlier.ejected,
        ejectedUntil: s.outlier.ejected ? s.outlier.ejectedUntil : undefined,
        ejections: s.outlier.ejections,
        breaker: s.breaker?.state,
        latencyMs: usesLatency && !Number.isNaN(s.costStamp) ? s.cost : undefined,
        inRotation: s.inRotation,
      })),
    };
  }

  /**
   * Stops health checks and timers; afterwards `acquire` returns undefined. Leases still out
   * can be released. Idempotent.
   */
  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.checker?.close();
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = Number.POSITIVE_INFINITY;
  }

  /**
   * Why an unhealthy endpoint's active check last failed: the checker's last failed probe,
   * which also covers an endpoint that started unhealthy (`initiallyHealthy: false`) and
   * never turned unhealthy; else the reason it turned unhealthy with.
   */
  private healthReason(s: EndpointState): string {
    if (s.healthy) return '';
    const lastFailure = this.checker?.status(s.id)?.lastFailure;
    return lastFailure === undefined || lastFailure === '' ? s.healthReason : lastFailure;
  }

  private newState(endpoint: Endpoint): EndpointState {
    const s = new EndpointState(endpoint);
    const checker = this.checker;
    if (checker !== undefined) {
      s.healthy = checker.options.initiallyHealthy;
      if (!this.isClosed) checker.add(endpoint, s.healthy);
    }
    const breaker = this.options.circuitBreaker;
    if (breaker !== undefined) {
      s.breaker = new CircuitBreaker(breaker, (from, to) => {
        if (s.removed) return;
        this.queue.push(['breaker', { endpoint: s.endpoint, from, to }]);
        this.dirty = true;
      });
    }
    return s;
  }

  private select(ctx: AcquireContext | undefined, now: number): EndpointState | undefined {
    const avoid = ctx?.avoid;
    const strategy = this.strategy;
    if (this.halfOpen === 0 && (avoid === undefined || avoid.length === 0)) return strategy.pick(ctx, undefined, now);
    this.avoiding = avoid !== undefined && avoid.length > 0 ? avoid : undefined;
    try {
      let s = strategy.pick(ctx, this.skip, now);
      if (s === undefined && this.avoiding !== undefined) {
        // Nothing but avoided endpoints: one of them beats no answer.
        this.avoiding = undefined;
        s = strategy.pick(ctx, this.halfOpen === 0 ? undefined : this.skip, now);
      }
      return s;
    } finally {
      this.avoiding = undefined;
    }
  }

  private finish(lease: BalancerLease, result: ReleaseResult | undefined): void {
    const s = lease.state;
    s.inFlight--;
    this.inFlightTotal--;
    const strategy = this.strategy;
    if (strategy.usesLoad) strategy.loadChanged(s);
    this.retryBudget.finished(lease.retry);
    const breaker = s.breaker;
    if (result === undefined || s.removed) {
      breaker?.cancel(lease.ticket);
      return;
    }
    let now = Number.NaN;
    if (strategy.usesLatency) {
      now = this.now();
      strategy.observe(s, result.latencyMs ?? Math.max(0, now - lease.startedAt), now);
    }
    if (result.ok) {
      this.detector?.onSuccess(s.outlier);
      breaker?.record(lease.ticket, true, now);
    } else {
      if (Number.isNaN(now)) now = this.now();
      const detector = this.detector;
      if (detector !== undefined) {
        const verdict = detector.onFailure(s.outlier, this.states.length, now);
        if (verdict === 'ejected') {
          const o = s.outlier;
          this.queue.push([
            'ejected',
            { endpoint: s.endpoint, ejections: o.ejections, durationMs: o.ejectedUntil - now },
          ]);
          this.dirty = true;
        }
      }
      breaker?.record(lease.ticket, false, now);
    }
    if (this.dirty) this.settle(false);
  }

  private onHealth(id: string, healthy: boolean, reason: string): void {
    const s = this.byId.get(id);
    if (s === undefined || this.isClosed) return;
    s.healthy = healthy;
    s.healthReason = healthy ? '' : reason;
    this.queue.push(healthy ? ['healthy', { endpoint: s.endpoint }] : ['unhealthy', { endpoint: s.endpoint, reason }]);
    this.settle(false);
  }

  /**
   * A smaller set can leave more endpoints ejected than `maxEjectionPercent` allows (the cap
   * is checked when ejecting): ends the ejections that end soonest, as if their time were
   * up, until the cap holds again.
   */
  private keepEjectionCap(): void {
    const detector = this.detector;
    if (detector === undefined || !detector.overCap(this.states.length)) return;
    const now = this.now();
    while (detector.overCap(this.states.length)) {
      let soonest: EndpointState | undefined;
      for (const s of this.states) {
        if (s.outlier.ejected && (soonest === undefined || s.outlier.ejectedUntil < soonest.outlier.ejectedUntil)) {
          soonest = s;
        }
      }
      if (soonest === undefined) return;
      detector.restore(soonest.outlier, now);
      this.queue.push(['restored', { endpoint: soonest.endpoint }]);
    }
  }

  /** Ends the ejections and breaker cool-downs that are due. */
  private expire(now: number): void {
    const detector = this.detector;
    for (const s of this.states) {
      if (detector?.expire(s.outlier, now)) {
        this.queue.push(['restored', { endpoint: s.endpoint }]);
      }
      s.breaker?.expire(now);
    }
    this.settle(false);
  }

  /** Recomputes the rotation (and the strategy if it changed), then emits queued events. */
  private settle(force: boolean): void {
    this.dirty = false;
    this.rebuild(force);
    if (this.queue.length === 0) return;
    const events = this.queue.splice(0);
    for (const [name, payload] of events) (this.emit as (n: string, p: unknown) => boolean)(name, payload);
  }

  /** `announce`: queue a `panic` event when panic mode starts or ends (not for the initial state). */
  private rebuild(force: boolean, announce = true): void {
    const states = this.states;
    const available: EndpointState[] = [];
    let halfOpen = 0;
    let next = Number.POSITIVE_INFINITY;
    for (const s of states) {
      const o = s.outlier;
      const b = s.breaker;
      if (o.ejected && o.ejectedUntil < next) next = o.ejectedUntil;
      const open = b !== undefined && b.state === 'open';
      if (open && b.openUntil < next) next = b.openUntil;
      if (s.healthy && !o.ejected && !open) {
        available.push(s);
        if (b !== undefined && b.state === 'half-open') halfOpen++;
      }
    }
    const total = states.length;
    const threshold = this.options.panicThreshold;
    const panic = threshold > 0 && total > 0 && available.length * 100 < threshold * total;
    const rotation = panic ? states : available;
    for (const s of this.rotation) s.inRotation = false;
    for (const s of rotation) s.inRotation = true;
    this.availableCount = available.length;
    this.halfOpen = panic ? 0 : halfOpen;
    if (force || !sameMembers(rotation, this.rotation)) this.strategy.setEndpoints(rotation);
    this.rotation = rotation;
    if (panic !== this.panicking) {
      this.panicking = panic;
      if (announce) this.queue.push(['panic', { active: panic, available: available.length, total }]);
    }
    this.setDeadline(next);
  }

  private setDeadline(at: number): void {
    this.nextDeadline = at;
    if (this.isClosed || at === this.timerAt) return;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = at;
    if (at === Number.POSITIVE_INFINITY) return;
    // The clock may be injected: the timer only prompts a check against it.
    const delay = Math.min(MAX_DURATION_MS, Math.max(1, Math.ceil(at - this.now())));
    this.timer = setTimeout(() => this.onTimer(), delay);
    this.timer.unref();
  }

  private onTimer(): void {
    this.timer = undefined;
    this.timerAt = Number.POSITIVE_INFINITY;
    if (this.isClosed) return;
    const now = this.now();
    if (now >= this.nextDeadline) this.expire(now);
    else this.setDeadline(this.nextDeadline);
  }

  private whyNone(): string {
    if (this.isClosed) return 'no endpoint: the balancer is closed';
    const total = this.states.length;
    if (total === 0) return 'no endpoint: the balancer has no endpoints';
    let unhealthy = 0;
    let ejected = 0;
    let open = 0;
    let busy = 0;
    for (const s of this.states) {
      if (!s.healthy) unhealthy++;
      if (s.outlier.ejected) ejected++;
      if (s.breaker?.state === 'open') open++;
      else if (s.breaker !== undefined && !s.breaker.allows()) busy++;
    }
    return (
      `no endpoint available of ${total}: ${unhealthy} failing health checks, ${ejected} ejected, ` +
      `${open} with an open circuit breaker, ${busy} half-open with every trial place taken` +
      (this.options.panicThreshold > 0 ? '' : ' (panicThreshold is 0: no panic mode)')
    );
  }
}

function sameMembers(a: readonly EndpointState[], b: readonly EndpointState[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
