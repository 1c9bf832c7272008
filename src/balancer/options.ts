/**
 * Options of {@link createBalancer}: one interface documented field by field, the defaults
 * beside it, and `resolveBalancerOptions`, which merges, checks and freezes them in one place
 * (each part's own resolver lives with its concept).
 */
import { InvalidOptionError } from '../errors.js';
import { checkNumber, checkOneOf } from '../validate.js';
import {
  type CircuitBreakerOptions,
  type ResolvedCircuitBreakerOptions,
  resolveCircuitBreakerOptions,
} from './CircuitBreaker.js';
import { type Endpoint, type EndpointInput, resolveEndpoints } from './Endpoint.js';
import {
  type HealthCheckOptions,
  type ResolvedHealthCheckOptions,
  resolveHealthCheckOptions,
} from './HealthChecker.js';
import {
  type OutlierDetectionOptions,
  type ResolvedOutlierDetectionOptions,
  resolveOutlierDetectionOptions,
} from './OutlierDetector.js';
import { type ResolvedRetryBudgetOptions, type RetryBudgetOptions, resolveRetryBudgetOptions } from './RetryBudget.js';
import {
  checkMaglevEndpoints,
  type MaglevStrategyOptions,
  type ResolvedMaglevStrategyOptions,
  resolveMaglevStrategyOptions,
} from './strategies/Maglev.js';
import { type EwmaOptions, type ResolvedEwmaOptions, resolveEwmaOptions } from './strategies/PeakEwma.js';
import {
  checkRingEndpoints,
  type ResolvedRingHashOptions,
  type RingHashOptions,
  resolveRingHashOptions,
} from './strategies/RingHash.js';
import { BALANCER_STRATEGIES, type StrategyName } from './strategies/Strategy.js';

/** Options of {@link createBalancer}. */
export interface BalancerOptions {
  /** How to pick an endpoint; see the README's section per strategy. @default 'round-robin' */
  strategy?: StrategyName;
  /** The endpoints; change them later with `update`. @default [] */
  endpoints?: readonly EndpointInput[];
  /**
   * Passive outlier detection (on by default, as Envoy's consecutive-failure detector);
   * `false` turns it off.
   * @default DEFAULT_OUTLIER_DETECTION_OPTIONS
   */
  outlierDetection?: OutlierDetectionOptions | false;
  /** Active health checks; off unless given. @default undefined */
  healthCheck?: HealthCheckOptions | false;
  /** A circuit breaker per endpoint; off unless given (`true` for the defaults). @default undefined */
  circuitBreaker?: CircuitBreakerOptions | boolean;
  /** The retry budget `canRetry()` applies. @default DEFAULT_RETRY_BUDGET_OPTIONS (20%, at least 3) */
  retryBudget?: RetryBudgetOptions;
  /**
   * Percent of endpoints that must be available (healthy, not ejected, breaker not open);
   * below it the balancer panics and spreads requests over every endpoint, as Envoy does
   * (Envoy's default is 50). 0 never panics: with no endpoint available `acquire` returns
   * undefined.
   * @default 0
   */
  panicThreshold?: number;
  /** Options of the `ewma` strategy. */
  ewma?: EwmaOptions;
  /** Options of the `ring-hash` strategy. */
  ringHash?: RingHashOptions;
  /** Options of the `maglev` strategy. */
  maglev?: MaglevStrategyOptions;
  /** Source of randomness in [0, 1): pass a seeded generator for reproducible picks. @default Math.random */
  random?: () => number;
  /** Monotonic clock in ms, for ejections, breakers and latency: inject one in tests. @default performance.now */
  now?: () => number;
}

/** Resolved, frozen balancer options: every part present, `undefined` where turned off. */
export interface ResolvedBalancerOptions {
  readonly strategy: StrategyName;
  readonly endpoints: readonly Endpoint[];
  readonly outlierDetection: ResolvedOutlierDetectionOptions | undefined;
  readonly healthCheck: ResolvedHealthCheckOptions | undefined;
  readonly circuitBreaker: ResolvedCircuitBreakerOptions | undefined;
  readonly retryBudget: ResolvedRetryBudgetOptions;
  readonly panicThreshold: number;
  readonly ewma: ResolvedEwmaOptions;
  readonly ringHash: ResolvedRingHashOptions;
  readonly maglev: ResolvedMaglevStrategyOptions;
  readonly random: () => number;
  readonly now: () => number;
}

/** Defaults of the top-level {@link BalancerOptions} (each part has its own DEFAULT_… constant). */
export const DEFAULT_BALANCER_OPTIONS = Object.freeze({
  strategy: 'round-robin' as StrategyName,
  panicThreshold: 0,
});

const defaultNow = (): number => performance.now();

/**
 * Merges defaults into `partial`, checks every field and freezes the result.
 * @throws {InvalidOptionError} naming the field and the value: an unknown strategy, a
 *   repeated endpoint id, a weight <= 0, a threshold or percentage out of range...
 */
export function resolveBalancerOptions(partial: BalancerOptions = {}): ResolvedBalancerOptions {
  if (typeof partial !== 'object' || partial === null || Array.isArray(partial)) {
    throw new InvalidOptionError('options', partial, 'must be an object');
  }
  const strategy = checkOneOf('strategy', partial.strategy ?? DEFAULT_BALANCER_OPTIONS.strategy, BALANCER_STRATEGIES);
  const endpoints = resolveEndpoints('endpoints', partial.endpoints ?? []);
  const outlier = partial.outlierDetection;
  const health = partial.healthCheck;
  const breaker = partial.circuitBreaker;
  const resolved: ResolvedBalancerOptions = Object.freeze({
    strategy,
    endpoints,
    outlierDetection: outlier === false ? undefined : resolveOutlierDetectionOptions(outlier ?? {}),
    healthCheck: health === undefined || health === false ? undefined : resolveHealthCheckOptions(health),
    circuitBreaker:
      breaker === undefined || breaker === false
        ? undefined
        : resolveCircuitBreakerOptions(breaker === true ? {} : breaker),
    retryBudget: resolveRetryBudgetOptions(partial.retryBudget ?? {}),
    panicThreshold: checkNumber(
      'panicThreshold',
      partial.panicThreshold ?? DEFAULT_BALANCER_OPTIONS.panicThreshold,
      0,
      100,
    ),
    ewma: resolveEwmaOptions(partial.ewma ?? {}),
    ringHash: resolveRingHashOptions(partial.ringHash ?? {}),
    maglev: resolveMaglevStrategyOptions(partial.maglev ?? {}),
    random: checkFunction('random', partial.random ?? Math.random),
    now: checkFunction('now', partial.now ?? defaultNow),
  });
  checkEndpointsForStrategy('endpoints', endpoints, resolved);
  return resolved;
}

/**
 * Checks what only the strategy limits: ring points per endpoint, endpoints per Maglev table.
 * @throws {InvalidOptionError} naming the endpoint field.
 */
export function checkEndpointsForStrategy(
  field: string,
  endpoints: readonly Endpoint[],
  options: Pick<ResolvedBalancerOptions, 'strategy' | 'ringHash' | 'maglev'>,
): void {
  if (options.strategy === 'ring-hash') checkRingEndpoints(field, endpoints, options.ringHash);
  if (options.strategy === 'maglev') checkMaglevEndpoints(field, endpoints, options.maglev);
}

function checkFunction<T extends (...args: never[]) => unknown>(field: string, value: T): T {
  if (typeof value !== 'function') throw new InvalidOptionError(field, value, 'must be a function');
  return value;
}
