import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_RETRY_BUDGET_OPTIONS,
  RetryBudget,
  resolveRetryBudgetOptions,
} from '../../src/balancer/RetryBudget.js';
import { InvalidOptionError } from '../../src/errors.js';

describe('RetryBudget', () => {
  it("has Envoy's defaults: 20% of active requests, at least 3", () => {
    expect(DEFAULT_RETRY_BUDGET_OPTIONS).toEqual({ budgetPercent: 20, minRetryConcurrency: 3 });
  });

  it('allows max(floor(20% x active), 3) retries in flight', () => {
    const budget = new RetryBudget();
    expect(budget.maxRetries).toBe(3); // nothing in flight: the floor
    for (let i = 0; i < 10; i++) budget.started(false);
    expect(budget.maxRetries).toBe(3); // 20% of 10 = 2 < 3
    for (let i = 0; i < 10; i++) budget.started(false);
    expect(budget.maxRetries).toBe(4); // 20% of 20
    for (let i = 0; i < 80; i++) budget.started(false);
    expect(budget.active).toBe(100);
    expect(budget.maxRetries).toBe(20);
    for (let i = 0; i < 19; i++) budget.started(true);
    // 119 active (retries count as active requests, as Envoy's rq_active) -> floor(23.8) = 23
    expect(budget.maxRetries).toBe(23);
    expect(budget.activeRetries).toBe(19);
    expect(budget.canRetry()).toBe(true);
    for (let i = 0; i < 4; i++) budget.started(true);
    expect(budget.activeRetries).toBe(23);
    expect(budget.maxRetries).toBe(24); // 123 x 0.2 = 24.6
    budget.started(true);
    expect(budget.maxRetries).toBe(24); // 124 x 0.2 = 24.8 -> 24
    expect(budget.canRetry()).toBe(false);
    budget.finished(true);
    expect(budget.canRetry()).toBe(true);
  });

  it('truncates as Envoy does and never goes below the minimum', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 100 }),
        fc.integer({ min: 0, max: 50 }),
        fc.integer({ min: 0, max: 2_000 }),
        (percent, min, active) => {
          const budget = new RetryBudget(
            resolveRetryBudgetOptions({ budgetPercent: percent, minRetryConcurrency: min }),
          );
          for (let i = 0; i < active; i++) budget.started(false);
          const expected = Math.max(Math.floor((percent * active) / 100), min);
          expect(budget.maxRetries).toBe(expected);
          expect(budget.canRetry()).toBe(expected > 0);
        },
      ),
    );
  });

  it('a zero budget with no minimum allows no retry', () => {
    const budget = new RetryBudget(resolveRetryBudgetOptions({ budgetPercent: 0, minRetryConcurrency: 0 }));
    for (let i = 0; i < 1000; i++) budget.started(false);
    expect(budget.canRetry()).toBe(false);
  });

  it('never counts below zero', () => {
    const budget = new RetryBudget();
    budget.finished(true);
    expect(budget.active).toBe(0);
    expect(budget.activeRetries).toBe(0);
  });

  it('rejects out-of-range options, naming the field', () => {
    expect(() => resolveRetryBudgetOptions({ budgetPercent: 101 })).toThrow(/retryBudget\.budgetPercent.*got 101/);
    expect(() => resolveRetryBudgetOptions({ budgetPercent: -1 })).toThrow(InvalidOptionError);
    expect(() => resolveRetryBudgetOptions({ minRetryConcurrency: 1.5 })).toThrow(/minRetryConcurrency.*1\.5/);
    expect(() => resolveRetryBudgetOptions('x' as never)).toThrow(/retryBudget must be an object/);
  });
});
