/**
 * Passive outlier detection, as Envoy's consecutive-failure detector does it
 * (envoyproxy.io, "Outlier detection"; source/common/upstream/outlier_detection_impl.cc):
 *
 * - every result of a real request counts; `consecutiveFailures` failures in a row make the
 *   endpoint an outlier, and the counter starts again from zero whether or not it is ejected;
 * - an outlier is ejected unless that would put more than `maxEjectionPercent` of the
 *   endpoints out at once; at least one endpoint may always be ejected;
 * - an ejection lasts `baseEjectionMs` x the endpoint's ejection multiplier (1 on the first
 *   ejection, +1 on each next one), capped at `maxEjectionMs`, plus up to
 *   `maxEjectionJitterMs` of random jitter so that ejected endpoints do not all return at once;
 * - the multiplier goes down by one for every `intervalMs` the endpoint spends back in
 *   service, so an endpoint that recovered for good is soon treated as new again.
 *
 * The detector keeps no timers: the balancer asks it when the next ejection ends and checks
 * with its clock (an injectable `now`), so tests move time by hand.
 */
import { InvalidOptionError } from '../errors.js';
import { checkInt, checkNumber, checkObject } from '../validate.js';
import { MAX_DURATION_MS } from './limits.js';

/** Options of passive outlier detection. */
export interface OutlierDetectionOptions {
  /** Failures in a row that eject an endpoint (Envoy's `consecutive_5xx`). @default 5 */
  consecutiveFailures?: number;
  /** Length of a first ejection, in ms (Envoy's `base_ejection_time`). @default 30_000 */
  baseEjectionMs?: number;
  /** Longest ejection, in ms; at least `baseEjectionMs` (Envoy's `max_ejection_time`). @default 300_000 */
  maxEjectionMs?: number;
  /** Random extra ejection time, 0 .. this many ms (Envoy's `max_ejection_time_jitter`). @default 0 */
  maxEjectionJitterMs?: number;
  /**
   * Most endpoints ejected at once, in percent of all endpoints; one endpoint may always be
   * ejected, even when that is more (Envoy's `max_ejection_percent`, whose default is 10).
   * @default 50
   */
  maxEjectionPercent?: number;
  /** Time back in service, in ms, that takes one off the ejection multiplier (Envoy's `interval`). @default 10_000 */
  intervalMs?: number;
}

/** Resolved, frozen outlier detection options. */
export interface ResolvedOutlierDetectionOptions {
  readonly consecutiveFailures: number;
  readonly baseEjectionMs: number;
  readonly maxEjectionMs: number;
  readonly maxEjectionJitterMs: number;
  readonly maxEjectionPercent: number;
  readonly intervalMs: number;
}

/** Defaults of {@link OutlierDetectionOptions}: Envoy's, except a 50% ejection cap. */
export const DEFAULT_OUTLIER_DETECTION_OPTIONS: ResolvedOutlierDetectionOptions = Object.freeze({
  consecutiveFailures: 5,
  baseEjectionMs: 30_000,
  maxEjectionMs: 300_000,
  maxEjectionJitterMs: 0,
  maxEjectionPercent: 50,
  intervalMs: 10_000,
});

/**
 * Merges defaults into `partial`, checks every field and freezes the result.
 * @throws {InvalidOptionError} naming the field (prefixed with `field`) and the value.
 */
export function resolveOutlierDetectionOptions(
  partial: OutlierDetectionOptions = {},
  field = 'outlierDetection',
): ResolvedOutlierDetectionOptions {
  const o = checkObject(field, partial) as OutlierDetectionOptions;
  const d = DEFAULT_OUTLIER_DETECTION_OPTIONS;
  const baseEjectionMs = checkInt(`${field}.baseEjectionMs`, o.baseEjectionMs ?? d.baseEjectionMs, 1, MAX_DURATION_MS);
  const maxEjectionMs = checkInt(
    `${field}.maxEjectionMs`,
    o.maxEjectionMs ?? Math.max(d.maxEjectionMs, baseEjectionMs),
    1,
    MAX_DURATION_MS,
  );
  if (maxEjectionMs < baseEjectionMs) {
    throw new InvalidOptionError(
      `${field}.maxEjectionMs`,
      maxEjectionMs,
      `must be >= baseEjectionMs (${baseEjectionMs})`,
    );
  }
  return Object.freeze({
    consecutiveFailures: checkInt(
      `${field}.consecutiveFailures`,
      o.consecutiveFailures ?? d.consecutiveFailures,
      1,
      1_000_000,
    ),
    baseEjectionMs,
    maxEjectionMs,
    maxEjectionJitterMs: checkInt(
      `${field}.maxEjectionJitterMs`,
      o.maxEjectionJitterMs ?? d.maxEjectionJitterMs,
      0,
      MAX_DURATION_MS,
    ),
    maxEjectionPercent: checkNumber(
      `${field}.maxEjectionPercent`,
      o.maxEjectionPercent ?? d.maxEjectionPercent,
      0,
      100,
    ),
    intervalMs: checkInt(`${field}.intervalMs`, o.intervalMs ?? d.intervalMs, 1, MAX_DURATION_MS),
  });
}

/** Outlier state of one endpoint. */
export class OutlierState {
  /** Failures in a row since the last success, ejection or return. */
  consecutiveFailures = 0;
  /** Whether the endpoint is out of rotation now. */
  ejected = false;
  /** When the current ejection ends (clock of the balancer). */
  ejectedUntil = 0;
  /** The ejection multiplier (Envoy's "eject time backoff"). */
  multiplier = 0;
  /** Ejections so far, over the endpoint's life in the balancer. */
  ejections = 0;
  /** When the endpoint last came back, or undefined if it never was ejected. */
  restoredAt: number | undefined = undefined;
}

/** What {@link OutlierDetector.onFailure} decided. */
export type OutlierVerdict = 'none' | 'ejected' | 'overflow';

/**
 * Envoy's consecutive-failure ejection over one set of endpoints. The caller (the balancer)
 * owns the set and tells the detector its size; the detector counts the ejected ones.
 */
export class OutlierDetector {
  readonly options: ResolvedOutlierDetectionOptions;
  /** Endpoints ejected now. */
  ejectedCount = 0;
  /** Outliers left in service because the ejection cap was reached (Envoy's `ejections_overflow`). */
  overflows = 0;
  private readonly random: () => number;

  constructor(options: ResolvedOutlierDetectionOptions, random: () => number = Math.random) {
    this.options = options;
    this.random = random;
  }

  /** A success: the run of failures is broken. */
  onSuccess(state: OutlierState): void {
    state.consecutiveFailures = 0;
  }

  /**
   * A failure of an endpoint in a set of `total`. Ejects it when the run reaches the threshold
   * and the cap allows; results that arrive while it is ejected are ignored.
   */
  onFailure(state: OutlierState, total: number, now: number): OutlierVerdict {
    if (state.ejected) return 'none';
    state.consecutiveFailures++;
    if (state.consecutiveFailures < this.options.consecutiveFailures) return 'none';
    // As Envoy: the counter restarts after every detection, ejected or not, so that a
    // capped outlier is tried again only after another full run of failures.
    state.consecutiveFailures = 0;
    if (!this.mayEject(total)) {
      this.overflows++;
      return 'overflow';
    }
    this.eject(state, now);
    return 'ejected';
  }

  /** Whether one more endpoint of `total` may be ejected now. */
  mayEject(total: number): boolean {
    // Envoy: (ejected + 1) / total <= max%, or nothing is ejected yet.
    return this.ejectedCount === 0 || (this.ejectedCount + 1) * 100 <= this.options.maxEjectionPercent * total;
  }

  /**
   * Whether more endpoints of `total` are ejected than the cap allows, which only a set that
   * shrank under existing ejections can cause (the caller then restores some: see {@link restore}).
   */
  overCap(total: number): boolean {
    return this.ejectedCount > 1 && this.ejectedCount * 100 > this.options.maxEjectionPercent * total;
  }

  /** Ejects unconditionally (the cap is the caller's business; see {@link mayEject}). */
  eject(state: OutlierState, now: number): void {
    const o = this.options;
    if (state.restoredAt !== undefined && state.multiplier > 0) {
      // Envoy takes one off the multiplier at every interval the endpoint stays in service.
      const intervals = Math.floor((now - state.restoredAt) / o.intervalMs);
      state.multiplier = Math.max(0, state.multiplier - intervals);
    }
    // Envoy stops raising the multiplier once base x multiplier passes the cap.
    if (state.multiplier * o.baseEjectionMs < o.maxEjectionMs + o.baseEjectionMs) state.multiplier++;
    const jitter = o.maxEjectionJitterMs > 0 ? Math.floor(this.random() * (o.maxEjectionJitterMs + 1)) : 0;
    state.ejected = true;
    state.ejectedUntil = now + Math.min(o.baseEjectionMs * state.multiplier, o.maxEjectionMs) + jitter;
    state.ejections++;
    state.consecutiveFailures = 0;
    this.ejectedCount++;
  }

  /** Brings an ejected endpoint back if its time is up; returns whether it did. */
  expire(state: OutlierState, now: number): boolean {
    if (!state.ejected || now < state.ejectedUntil) return false;
    this.restore(state, now);
    return true;
  }

  /** Brings an ejected endpoint back now. */
  restore(state: OutlierState, now: number): void {
    if (!state.ejected) return;
    state.ejected = false;
    state.restoredAt = now;
    state.consecutiveFailures = 0;
    this.ejectedCount--;
  }

  /** Forgets an endpoint that left the set. */
  forget(state: OutlierState): void {
    if (state.ejected) {
      state.ejected = false;
      this.ejectedCount--;
    }
  }
}
