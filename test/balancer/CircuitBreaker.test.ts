import { describe, expect, it } from 'vitest';
import {
  type BreakerState,
  CircuitBreaker,
  CLOSED_TICKET,
  REFUSED_TICKET,
  resolveCircuitBreakerOptions,
} from '../../src/balancer/CircuitBreaker.js';

function breaker(options: Parameters<typeof resolveCircuitBreakerOptions>[0] = {}) {
  const transitions: string[] = [];
  const b = new CircuitBreaker(resolveCircuitBreakerOptions(options), (from: BreakerState, to: BreakerState) =>
    transitions.push(`${from}->${to}`),
  );
  return { b, transitions };
}

describe('CircuitBreaker', () => {
  it('opens after failureThreshold failures in a row; a success resets the count', () => {
    const { b, transitions } = breaker({ failureThreshold: 3 });
    for (let i = 0; i < 2; i++) b.record(b.tryAcquire(0), false, 0);
    b.record(b.tryAcquire(0), true, 0);
    for (let i = 0; i < 2; i++) b.record(b.tryAcquire(0), false, 0);
    expect(b.state).toBe('closed');
    b.record(b.tryAcquire(0), false, 100);
    expect(b.state).toBe('open');
    expect(b.openUntil).toBe(100 + 10_000);
    expect(transitions).toEqual(['closed->open']);
  });

  it('lets nothing through while open, then half-opens after the cool-down', () => {
    const { b, transitions } = breaker({ failureThreshold: 1, cooldownMs: 1_000 });
    b.record(b.tryAcquire(0), false, 0);
    expect(b.allows()).toBe(false);
    expect(b.tryAcquire(999)).toBe(REFUSED_TICKET);
    expect(b.expire(999)).toBe(false);
    const ticket = b.tryAcquire(1_000);
    expect(ticket).toBeGreaterThan(0);
    expect(b.state).toBe('half-open');
    expect(transitions).toEqual(['closed->open', 'open->half-open']);
  });

  it('limits half-open trials to halfOpenMaxRequests at a time', () => {
    const { b } = breaker({ failureThreshold: 1, cooldownMs: 10, halfOpenMaxRequests: 2, successThreshold: 3 });
    b.record(b.tryAcquire(0), false, 0);
    b.expire(10);
    const t1 = b.tryAcquire();
    const t2 = b.tryAcquire();
    expect(b.allows()).toBe(false);
    expect(b.tryAcquire()).toBe(REFUSED_TICKET);
    b.record(t1, true, 11);
    expect(b.trialsInFlight).toBe(1);
    expect(b.state).toBe('half-open');
    b.cancel(t2); // abandoned: the place comes back, no result counted
    expect(b.trialsInFlight).toBe(0);
    b.record(b.tryAcquire(), true, 12);
    expect(b.state).toBe('half-open'); // 2 of 3 successes
    b.record(b.tryAcquire(), true, 13);
    expect(b.state).toBe('closed');
  });

  it('a trial failure opens it again for another cool-down', () => {
    const { b, transitions } = breaker({ failureThreshold: 1, cooldownMs: 100 });
    b.record(b.tryAcquire(0), false, 0);
    const t = b.tryAcquire(100);
    b.record(t, false, 150);
    expect(b.state).toBe('open');
    expect(b.openUntil).toBe(250);
    expect(transitions).toEqual(['closed->open', 'open->half-open', 'half-open->open']);
  });

  it('in half-open only current trials count; while open nothing does', () => {
    const { b } = breaker({ failureThreshold: 2, cooldownMs: 100 });
    const early = b.tryAcquire(0); // taken while closed
    b.record(b.tryAcquire(0), false, 0);
    b.record(b.tryAcquire(0), false, 0);
    expect(b.state).toBe('open');
    b.record(early, true, 50); // open: ignored
    expect(b.state).toBe('open');
    const trial = b.tryAcquire(100);
    b.record(early, false, 101); // not a trial: ignored
    expect(b.state).toBe('half-open');
    b.record(trial, false, 102);
    expect(b.state).toBe('open');
    // A trial ticket of the earlier half-open period is not a trial of the next one.
    const trial2 = b.tryAcquire(202);
    b.record(trial, true, 203);
    expect(b.state).toBe('half-open');
    expect(b.trialsInFlight).toBe(1);
    b.record(trial2, true, 204);
    expect(b.state).toBe('closed');
  });

  it('hands out CLOSED_TICKET while closed', () => {
    const { b } = breaker();
    expect(b.tryAcquire()).toBe(CLOSED_TICKET);
    expect(b.allows()).toBe(true);
  });

  it('can be opened from outside', () => {
    const { b } = breaker({ cooldownMs: 5 });
    b.open(10);
    expect(b.state).toBe('open');
    expect(b.openUntil).toBe(15);
  });

  it('rejects out-of-range options, naming the field', () => {
    expect(() => resolveCircuitBreakerOptions({ failureThreshold: 0 })).toThrow(
      /circuitBreaker\.failureThreshold must be an integer in \[1, 1000000\], got 0/,
    );
    expect(() => resolveCircuitBreakerOptions({ cooldownMs: -5 })).toThrow(/cooldownMs.*-5/);
    expect(() => resolveCircuitBreakerOptions({ halfOpenMaxRequests: 0.5 })).toThrow(/halfOpenMaxRequests/);
    expect(() => resolveCircuitBreakerOptions({ successThreshold: Number.NaN })).toThrow(/successThreshold/);
  });
});
