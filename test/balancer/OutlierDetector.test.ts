import { describe, expect, it } from 'vitest';
import {
  DEFAULT_OUTLIER_DETECTION_OPTIONS,
  OutlierDetector,
  OutlierState,
  resolveOutlierDetectionOptions,
} from '../../src/balancer/OutlierDetector.js';
import { seeded } from './helpers.js';

function fail(d: OutlierDetector, s: OutlierState, times: number, total: number, now: number) {
  const verdicts = [];
  for (let i = 0; i < times; i++) verdicts.push(d.onFailure(s, total, now));
  return verdicts;
}

describe('OutlierDetector', () => {
  it("has Envoy's defaults, except a 50% ejection cap", () => {
    expect(DEFAULT_OUTLIER_DETECTION_OPTIONS).toEqual({
      consecutiveFailures: 5,
      baseEjectionMs: 30_000,
      maxEjectionMs: 300_000,
      maxEjectionJitterMs: 0,
      maxEjectionPercent: 50,
      intervalMs: 10_000,
    });
  });

  it('ejects after 5 failures in a row; a success breaks the run', () => {
    const d = new OutlierDetector(resolveOutlierDetectionOptions());
    const s = new OutlierState();
    expect(fail(d, s, 4, 10, 0)).toEqual(['none', 'none', 'none', 'none']);
    d.onSuccess(s);
    expect(fail(d, s, 4, 10, 0).every((v) => v === 'none')).toBe(true);
    expect(d.onFailure(s, 10, 0)).toBe('ejected');
    expect(s.ejected).toBe(true);
    expect(s.ejectedUntil).toBe(30_000);
    expect(d.ejectedCount).toBe(1);
  });

  it('ejects for base x times ejected, capped at maxEjectionMs', () => {
    const o = resolveOutlierDetectionOptions({ consecutiveFailures: 1, baseEjectionMs: 100, maxEjectionMs: 250 });
    const d = new OutlierDetector(o);
    const s = new OutlierState();
    let now = 0;
    const lengths: number[] = [];
    for (let i = 0; i < 5; i++) {
      d.onFailure(s, 10, now);
      lengths.push(s.ejectedUntil - now);
      now = s.ejectedUntil;
      expect(d.expire(s, now - 1)).toBe(false);
      expect(d.expire(s, now)).toBe(true);
      // Straight back into failure: less than one interval in service, no decay.
    }
    expect(lengths).toEqual([100, 200, 250, 250, 250]);
    expect(s.ejections).toBe(5);
  });

  it('takes one off the multiplier per interval back in service', () => {
    const o = resolveOutlierDetectionOptions({ consecutiveFailures: 1, baseEjectionMs: 100, intervalMs: 1_000 });
    const d = new OutlierDetector(o);
    const s = new OutlierState();
    d.onFailure(s, 10, 0); // x1
    d.expire(s, 100);
    d.onFailure(s, 10, 100); // x2
    d.expire(s, 300);
    d.onFailure(s, 10, 300); // x3
    d.expire(s, 600);
    expect(s.multiplier).toBe(3);
    // 2.5 intervals in service: multiplier 3 -> 1, then +1 for this ejection.
    d.onFailure(s, 10, 600 + 2_500);
    expect(s.ejectedUntil - 3_100).toBe(200);
  });

  it('never ejects past maxEjectionPercent, but always allows one ejection', () => {
    const d = new OutlierDetector(resolveOutlierDetectionOptions({ consecutiveFailures: 1, maxEjectionPercent: 50 }));
    const states = Array.from({ length: 5 }, () => new OutlierState());
    const verdicts = states.map((s) => d.onFailure(s, 5, 0));
    // 1/5 = 20%, 2/5 = 40% allowed; 3/5 = 60% is not.
    expect(verdicts).toEqual(['ejected', 'ejected', 'overflow', 'overflow', 'overflow']);
    expect(d.ejectedCount).toBe(2);
    expect(d.overflows).toBe(3);

    const one = new OutlierDetector(resolveOutlierDetectionOptions({ consecutiveFailures: 1, maxEjectionPercent: 10 }));
    const pair = [new OutlierState(), new OutlierState()];
    // 1/2 = 50% > 10%, but at least one endpoint may always be ejected.
    expect(one.onFailure(pair[0] as OutlierState, 2, 0)).toBe('ejected');
    expect(one.onFailure(pair[1] as OutlierState, 2, 0)).toBe('overflow');
  });

  it('restarts the run after an overflow, as Envoy does', () => {
    const d = new OutlierDetector(resolveOutlierDetectionOptions({ consecutiveFailures: 2, maxEjectionPercent: 0 }));
    const a = new OutlierState();
    const b = new OutlierState();
    fail(d, a, 2, 2, 0); // the one always allowed
    expect(fail(d, b, 2, 2, 0)).toEqual(['none', 'overflow']);
    expect(b.consecutiveFailures).toBe(0);
    d.expire(a, 30_000);
    expect(fail(d, b, 2, 2, 30_000)).toEqual(['none', 'ejected']);
  });

  it('ignores results while ejected and forgets removed endpoints', () => {
    const d = new OutlierDetector(resolveOutlierDetectionOptions({ consecutiveFailures: 1 }));
    const s = new OutlierState();
    d.onFailure(s, 3, 0);
    expect(d.onFailure(s, 3, 1)).toBe('none');
    expect(s.ejections).toBe(1);
    d.forget(s);
    expect(d.ejectedCount).toBe(0);
    d.forget(s);
    expect(d.ejectedCount).toBe(0);
  });

  it('adds up to maxEjectionJitterMs of jitter', () => {
    const o = resolveOutlierDetectionOptions({
      consecutiveFailures: 1,
      baseEjectionMs: 1_000,
      maxEjectionJitterMs: 500,
    });
    const d = new OutlierDetector(o, seeded(7));
    const lengths = new Set<number>();
    for (let i = 0; i < 50; i++) {
      const s = new OutlierState();
      d.onFailure(s, 1_000, 0);
      lengths.add(s.ejectedUntil);
      d.forget(s);
    }
    for (const l of lengths) expect(l >= 1_000 && l <= 1_500 && Number.isInteger(l)).toBe(true);
    expect(lengths.size).toBeGreaterThan(10);
  });

  it('rejects out-of-range options, naming the field and value', () => {
    expect(() => resolveOutlierDetectionOptions({ consecutiveFailures: 0 })).toThrow(
      /outlierDetection\.consecutiveFailures must be an integer in \[1, 1000000\], got 0/,
    );
    expect(() => resolveOutlierDetectionOptions({ maxEjectionPercent: 150 })).toThrow(/maxEjectionPercent.*got 150/);
    expect(() => resolveOutlierDetectionOptions({ baseEjectionMs: 1_000, maxEjectionMs: 500 })).toThrow(
      /maxEjectionMs must be >= baseEjectionMs \(1000\), got 500/,
    );
    expect(() => resolveOutlierDetectionOptions({ intervalMs: 0 })).toThrow(/intervalMs/);
    expect(() => resolveOutlierDetectionOptions({ baseEjectionMs: 2 ** 40 })).toThrow(/baseEjectionMs/);
    // A larger base lifts the default cap with it.
    expect(resolveOutlierDetectionOptions({ baseEjectionMs: 600_000 }).maxEjectionMs).toBe(600_000);
  });
});
