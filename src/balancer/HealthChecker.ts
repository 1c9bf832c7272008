/**
 * Active health checks: every `intervalMs` (plus jitter) each endpoint is probed with an HTTP
 * GET or a TCP connect; `unhealthyThreshold` failed probes in a row mark a healthy endpoint
 * unhealthy, `healthyThreshold` passed probes in a row mark an unhealthy one healthy again,
 * as Envoy's and nginx's active checks do.
 *
 * Jitter: each wait is `intervalMs` plus a random 0 .. `jitterPercent`% of it (Envoy's
 * `interval_jitter_percent`), and the first probe of each endpoint comes at a random point
 * of that jitter window, so that a fleet of checkers started together does not probe in phase.
 *
 * Timers and sockets are unref'd: the checker never keeps a process alive. `close()` stops
 * every timer and destroys every socket in flight.
 */
import { InvalidOptionError } from '../errors.js';
import { checkInt, checkName, checkNumber, checkObject, checkOneOf } from '../validate.js';
import type { Endpoint } from './Endpoint.js';
import { parseProbeTarget, runProbe } from './healthProbe.js';
import { MAX_DURATION_MS } from './limits.js';

/** Kinds of active check. */
export const HEALTH_CHECK_TYPES = ['http', 'tcp'] as const;
export type HealthCheckType = (typeof HEALTH_CHECK_TYPES)[number];

/** A healthy HTTP status: one code, or an inclusive `[low, high]` range. */
export type ExpectedStatus = number | readonly [number, number];

/** Options of active health checks. */
export interface HealthCheckOptions {
  /** `http`: a GET of `path`; `tcp`: a connect. @default 'http' */
  type?: HealthCheckType;
  /** Path of the HTTP check, starting with `/`. @default '/healthz' */
  path?: string;
  /** HTTP statuses that count as healthy. @default [[200, 299]] */
  expectedStatuses?: readonly ExpectedStatus[];
  /** Time between probes of one endpoint, in ms (before jitter). @default 5_000 */
  intervalMs?: number;
  /** A probe that takes longer fails, in ms. @default 1_000 */
  timeoutMs?: number;
  /** Passed probes in a row that make an unhealthy endpoint healthy. @default 2 */
  healthyThreshold?: number;
  /** Failed probes in a row that make a healthy endpoint unhealthy. @default 3 */
  unhealthyThreshold?: number;
  /** Extra random wait per probe, 0 .. this percent of `intervalMs`. @default 10 */
  jitterPercent?: number;
  /**
   * Whether endpoints start healthy (and serve before their first probe) or unhealthy (and
   * serve only after `healthyThreshold` passed probes).
   * @default true
   */
  initiallyHealthy?: boolean;
}

/** Resolved, frozen health check options. */
export interface ResolvedHealthCheckOptions {
  readonly type: HealthCheckType;
  readonly path: string;
  readonly expectedStatuses: readonly (readonly [number, number])[];
  readonly intervalMs: number;
  readonly timeoutMs: number;
  readonly healthyThreshold: number;
  readonly unhealthyThreshold: number;
  readonly jitterPercent: number;
  readonly initiallyHealthy: boolean;
}

/** Defaults of {@link HealthCheckOptions}. */
export const DEFAULT_HEALTH_CHECK_OPTIONS: ResolvedHealthCheckOptions = Object.freeze({
  type: 'http',
  path: '/healthz',
  expectedStatuses: Object.freeze([Object.freeze([200, 299] as const)]),
  intervalMs: 5_000,
  timeoutMs: 1_000,
  healthyThreshold: 2,
  unhealthyThreshold: 3,
  jitterPercent: 10,
  initiallyHealthy: true,
});

/**
 * Merges defaults into `partial`, checks every field and freezes the result.
 * @throws {InvalidOptionError} naming the field (prefixed with `field`) and the value.
 */
export function resolveHealthCheckOptions(
  partial: HealthCheckOptions = {},
  field = 'healthCheck',
): ResolvedHealthCheckOptions {
  const o = checkObject(field, partial) as HealthCheckOptions;
  const d = DEFAULT_HEALTH_CHECK_OPTIONS;
  const path = checkName(`${field}.path`, o.path ?? d.path, 2048);
  if (!path.startsWith('/')) throw new InvalidOptionError(`${field}.path`, path, "must start with '/'");
  const initiallyHealthy = o.initiallyHealthy ?? d.initiallyHealthy;
  if (typeof initiallyHealthy !== 'boolean') {
    throw new InvalidOptionError(`${field}.initiallyHealthy`, initiallyHealthy, 'must be a boolean');
  }
  return Object.freeze({
    type: checkOneOf(`${field}.type`, o.type ?? d.type, HEALTH_CHECK_TYPES),
    path,
    expectedStatuses:
      o.expectedStatuses === undefined
        ? d.expectedStatuses
        : resolveStatuses(`${field}.expectedStatuses`, o.expectedStatuses),
    intervalMs: checkInt(`${field}.intervalMs`, o.intervalMs ?? d.intervalMs, 1, MAX_DURATION_MS),
    timeoutMs: checkInt(`${field}.timeoutMs`, o.timeoutMs ?? d.timeoutMs, 1, MAX_DURATION_MS),
    healthyThreshold: checkInt(`${field}.healthyThreshold`, o.healthyThreshold ?? d.healthyThreshold, 1, 1_000),
    unhealthyThreshold: checkInt(`${field}.unhealthyThreshold`, o.unhealthyThreshold ?? d.unhealthyThreshold, 1, 1_000),
    jitterPercent: checkNumber(`${field}.jitterPercent`, o.jitterPercent ?? d.jitterPercent, 0, 100),
    initiallyHealthy,
  });
}

function resolveStatuses(field: string, input: unknown): readonly (readonly [number, number])[] {
  if (!Array.isArray(input) || input.length === 0) {
    throw new InvalidOptionError(field, input, 'must be a non-empty array of statuses or [low, high] ranges');
  }
  return Object.freeze(
    input.map((entry: unknown, i) => {
      if (Array.isArray(entry)) {
        const low = checkInt(`${field}[${i}][0]`, entry[0], 100, 599);
        const high = checkInt(`${field}[${i}][1]`, entry[1], low, 599);
        if (entry.length !== 2) throw new InvalidOptionError(`${field}[${i}]`, entry, 'must be [low, high]');
        return Object.freeze([low, high] as const);
      }
      const status = checkInt(`${field}[${i}]`, entry, 100, 599);
      return Object.freeze([status, status] as const);
    }),
  );
}

/** Health of one endpoint as the checker sees it. */
export interface HealthStatus {
  readonly healthy: boolean;
  /** Passed probes in a row. */
  readonly successes: number;
  /** Failed probes in a row. */
  readonly failures: number;
  /** Why the last failed probe failed ('' if none failed yet). */
  readonly lastFailure: string;
  /** Probes finished so far. */
  readonly checks: number;
}

/** Called when an endpoint turns healthy or unhealthy; `reason` is the last probe's failure. */
export type HealthListener = (id: string, healthy: boolean, reason: string) => void;

interface Target {
  endpoint: Endpoint;
  healthy: boolean;
  successes: number;
  failures: number;
  lastFailure: string;
  checks: number;
  timer: NodeJS.Timeout | undefined;
  cancel: (() => void) | undefined;
  removed: boolean;
}

/**
 * Probes a set of endpoints on a schedule and reports changes of health.
 *
 * @example
 * ```ts
 * const checker = new HealthChecker(resolveHealthCheckOptions({ type: 'tcp', intervalMs: 2_000 }),
 *   (id, healthy, reason) => console.log(id, healthy ? 'up' : `down: ${reason}`));
 * checker.add({ id: 'db-1', address: '10.0.0.7:5432', weight: 1, zone: undefined, meta: {} });
 * checker.close();
 * ```
 */
export class HealthChecker {
  readonly options: ResolvedHealthCheckOptions;
  private readonly targets = new Map<string, Target>();
  private readonly listener: HealthListener;
  private readonly random: () => number;
  private isClosed = false;

  constructor(options: ResolvedHealthCheckOptions, listener: HealthListener, random: () => number = Math.random) {
    this.options = options;
    this.listener = listener;
    this.random = random;
  }

  /** Whether {@link close} was called. */
  get closed(): boolean {
    return this.isClosed;
  }

  /**
   * Starts probing an endpoint (replacing any earlier probing of the same id). Its first
   * probe comes within the jitter window. `healthy` is its health until the probes say
   * otherwise. Does nothing once closed.
   */
  add(endpoint: Endpoint, healthy: boolean = this.options.initiallyHealthy): void {
    if (this.isClosed) return;
    this.remove(endpoint.id);
    const target: Target = {
      endpoint,
      healthy,
      successes: 0,
      failures: 0,
      lastFailure: '',
      checks: 0,
      timer: undefined,
      cancel: undefined,
      removed: false,
    };
    this.targets.set(endpoint.id, target);
    this.schedule(target, this.jitter());
  }

  /** Stops probing an endpoint; returns whether it was probed. */
  remove(id: string): boolean {
    const target = this.targets.get(id);
    if (target === undefined) return false;
    this.stop(target);
    this.targets.delete(id);
    return true;
  }

  /** Health of an endpoint, or undefined when it is not probed. */
  status(id: string): HealthStatus | undefined {
    const t = this.targets.get(id);
    if (t === undefined) return undefined;
    return {
      healthy: t.healthy,
      successes: t.successes,
      failures: t.failures,
      lastFailure: t.lastFailure,
      checks: t.checks,
    };
  }

  /** Stops every timer and every probe in flight. Idempotent. */
  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    for (const target of this.targets.values()) this.stop(target);
    this.targets.clear();
  }

  private stop(target: Target): void {
    target.removed = true;
    if (target.timer !== undefined) clearTimeout(target.timer);
    target.timer = undefined;
    target.cancel?.();
    target.cancel = undefined;
  }

  private jitter(): number {
    return (this.options.intervalMs * this.options.jitterPercent * this.random()) / 100;
  }

  private schedule(target: Target, delayMs: number): void {
    target.timer = setTimeout(() => this.probe(target), Math.min(MAX_DURATION_MS, Math.max(0, delayMs)));
    target.timer.unref();
  }

  private probe(target: Target): void {
    target.timer = undefined;
    if (target.removed) return;
    const spec = this.options;
    const address = parseProbeTarget(target.endpoint.address);
    const done = (ok: boolean, reason: string): void => {
      target.cancel = undefined;
      if (target.removed) return;
      this.record(target, ok, reason);
      if (!target.removed) this.schedule(target, spec.intervalMs + this.jitter());
    };
    if (address === undefined) {
      // Not a parsable host:port: fail every probe, on the same schedule, so the reason shows.
      const timer = setTimeout(() => done(false, `cannot probe address ${JSON.stringify(target.endpoint.address)}`), 0);
      timer.unref();
      target.cancel = () => clearTimeout(timer);
      return;
    }
    target.cancel = runProbe(address, spec, done);
  }

  private record(target: Target, ok: boolean, reason: string): void {
    target.checks++;
    if (ok) {
      target.failures = 0;
      target.successes++;
      if (!target.healthy && target.successes >= this.options.healthyThreshold) {
        target.healthy = true;
        this.listener(target.endpoint.id, true, '');
      }
      return;
    }
    target.successes = 0;
    target.failures++;
    target.lastFailure = reason;
    if (target.healthy && target.failures >= this.options.unhealthyThreshold) {
      target.healthy = false;
      this.listener(target.endpoint.id, false, reason);
    }
  }
}
