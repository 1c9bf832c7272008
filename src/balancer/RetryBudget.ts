/**
 * A retry budget, as Envoy's (`circuit_breakers.thresholds.retry_budget`;
 * source/common/upstream/resource_manager_impl.h) and Finagle's: retries in flight may be
 * at most `budgetPercent` of the requests in flight, and never fewer than
 * `minRetryConcurrency`:
 *
 *     allowed = max(floor(budgetPercent / 100 x active), minRetryConcurrency)
 *     canRetry() = activeRetries < allowed
 *
 * `active` counts every request in flight, retries included (Envoy's `rq_active`), so when
 * an upstream browns out and every request fails, retries add at most a fifth more load
 * (with the default 20%) instead of doubling or tripling it: a brown-out stays a brown-out.
 */
import { checkInt, checkNumber, checkObject } from '../validate.js';

/** Options of the retry budget. */
export interface RetryBudgetOptions {
  /** Retries in flight allowed, in percent of all requests in flight. @default 20 */
  budgetPercent?: number;
  /** Retries in flight always allowed, however few requests are in flight. @default 3 */
  minRetryConcurrency?: number;
}

/** Resolved, frozen retry budget options. */
export interface ResolvedRetryBudgetOptions {
  readonly budgetPercent: number;
  readonly minRetryConcurrency: number;
}

/** Envoy's defaults: 20% and 3. */
export const DEFAULT_RETRY_BUDGET_OPTIONS: ResolvedRetryBudgetOptions = Object.freeze({
  budgetPercent: 20,
  minRetryConcurrency: 3,
});

/**
 * Merges defaults into `partial`, checks every field and freezes the result.
 * @throws {InvalidOptionError} naming the field (prefixed with `field`) and the value.
 */
export function resolveRetryBudgetOptions(
  partial: RetryBudgetOptions = {},
  field = 'retryBudget',
): ResolvedRetryBudgetOptions {
  const o = checkObject(field, partial) as RetryBudgetOptions;
  const d = DEFAULT_RETRY_BUDGET_OPTIONS;
  return Object.freeze({
    budgetPercent: checkNumber(`${field}.budgetPercent`, o.budgetPercent ?? d.budgetPercent, 0, 100),
    minRetryConcurrency: checkInt(
      `${field}.minRetryConcurrency`,
      o.minRetryConcurrency ?? d.minRetryConcurrency,
      0,
      1_000_000,
    ),
  });
}

/**
 * Counts requests and retries in flight and says whether one more retry fits the budget.
 * The balancer keeps one and feeds it from its leases; it can also be used on its own.
 *
 * @example
 * ```ts
 * const budget = new RetryBudget();          // 20%, at least 3
 * budget.started(false);                     // a first attempt is in flight
 * if (budget.canRetry()) { budget.started(true); ... budget.finished(true); }
 * ```
 */
export class RetryBudget {
  readonly options: ResolvedRetryBudgetOptions;
  private requests = 0;
  private retries = 0;

  constructor(options: ResolvedRetryBudgetOptions = DEFAULT_RETRY_BUDGET_OPTIONS) {
    this.options = options;
  }

  /** Requests in flight, retries included. */
  get active(): number {
    return this.requests;
  }

  /** Retries in flight. */
  get activeRetries(): number {
    return this.retries;
  }

  /** Retries in flight the budget allows at the current load. */
  get maxRetries(): number {
    // Envoy converts the product to an integer (truncation), then applies the floor of
    // min_retry_concurrency.
    return Math.max(Math.floor((this.options.budgetPercent * this.requests) / 100), this.options.minRetryConcurrency);
  }

  /** Whether one more retry may start now. */
  canRetry(): boolean {
    return this.retries < this.maxRetries;
  }

  /** A request (a retry when `retry`) has started. */
  started(retry: boolean): void {
    this.requests++;
    if (retry) this.retries++;
  }

  /** A request (a retry when `retry`) has finished. */
  finished(retry: boolean): void {
    if (this.requests > 0) this.requests--;
    if (retry && this.retries > 0) this.retries--;
  }
}
