import { describe, expect, it, vi } from 'vitest';
import { Balancer, type BalancerEvents } from '../../src/balancer/Balancer.js';
import { createBalancer } from '../../src/balancer/createBalancer.js';
import type { Lease } from '../../src/balancer/Lease.js';
import { InvalidOptionError, NoEndpointError, RingwayError } from '../../src/errors.js';
import { endpoints, fakeClock, seeded, tally } from './helpers.js';

type Events = { [K in keyof BalancerEvents]: BalancerEvents[K][0] };

function record(lb: ReturnType<typeof createBalancer>) {
  const seen: string[] = [];
  const payloads: Partial<{ [K in keyof Events]: Events[K][] }> = {};
  for (const name of ['ejected', 'restored', 'healthy', 'unhealthy', 'breaker', 'panic'] as const) {
    (lb.on as (event: string, listener: (payload: unknown) => void) => unknown)(name, (payload) => {
      const p = payload as { endpoint?: { id: string }; from?: string; to?: string; active?: boolean };
      seen.push(
        name === 'breaker'
          ? `breaker:${p.endpoint?.id}:${p.from}->${p.to}`
          : name === 'panic'
            ? `panic:${p.active}`
            : `${name}:${p.endpoint?.id}`,
      );
      const list = (payloads[name] ?? []) as unknown[];
      list.push(payload);
      (payloads as Record<string, unknown[]>)[name] = list;
    });
  }
  return { seen, payloads };
}

function failOn(lb: ReturnType<typeof createBalancer>, id: string, times: number) {
  let failed = 0;
  for (let guard = 0; failed < times && guard < 10_000; guard++) {
    const lease = lb.acquire() as Lease;
    if (lease.endpoint.id === id) {
      lease.release({ ok: false });
      failed++;
    } else {
      lease.release({ ok: true });
    }
  }
  expect(failed).toBe(times);
}

describe('Balancer leases', () => {
  it('counts in flight from acquire to release; releasing twice is harmless', () => {
    const lb = createBalancer({ endpoints: endpoints(2) });
    const a = lb.acquire() as Lease;
    const b = lb.acquire() as Lease;
    expect(lb.status().inFlight).toBe(2);
    expect(a.release({ ok: true, latencyMs: 3 })).toBe(true);
    expect(a.released).toBe(true);
    expect(a.release({ ok: false })).toBe(false);
    expect(a.release()).toBe(false);
    expect(lb.status().inFlight).toBe(1);
    expect(lb.status().endpoints.map((e) => e.inFlight)).toEqual([0, 1]);
    b.release();
    expect(lb.status().inFlight).toBe(0);
  });

  it('checks the result: ok must be a boolean, latencyMs finite and >= 0', () => {
    const lb = createBalancer({ endpoints: endpoints(1) });
    const lease = lb.acquire() as Lease;
    expect(() => lease.release({ ok: 'yes' } as never)).toThrow(TypeError);
    expect(() => lease.release({ ok: true, latencyMs: -1 })).toThrow(/latencyMs must be a finite number >= 0, got -1/);
    expect(() => lease.release({ ok: true, latencyMs: Number.POSITIVE_INFINITY })).toThrow(InvalidOptionError);
    expect(lease.released).toBe(false); // a refused result leaves the lease held
    expect(lease.release({ ok: true })).toBe(true);
  });

  it('returns undefined with no endpoints; acquireOrThrow throws ERR_NO_ENDPOINT', () => {
    const lb = createBalancer();
    expect(lb.acquire()).toBeUndefined();
    let error: unknown;
    try {
      lb.acquireOrThrow();
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(NoEndpointError);
    expect(error).toBeInstanceOf(RingwayError);
    expect((error as NoEndpointError).code).toBe('ERR_NO_ENDPOINT');
    expect((error as NoEndpointError).statusCode).toBe(503);
    expect((error as Error).message).toMatch(/no endpoints/);
  });

  it('close() stops acquire; leases still out can be released', () => {
    const lb = createBalancer({ endpoints: endpoints(1) });
    const lease = lb.acquire() as Lease;
    lb.close();
    lb.close();
    expect(lb.closed).toBe(true);
    expect(lb.acquire()).toBeUndefined();
    expect(() => lb.acquireOrThrow()).toThrow(/closed/);
    expect(lease.release({ ok: true })).toBe(true);
  });

  it('avoid steers a retry elsewhere, but falls back when nothing else is left', () => {
    const lb = createBalancer({ strategy: 'random', endpoints: endpoints(2), random: seeded(1) });
    for (let i = 0; i < 50; i++) expect(lb.acquire({ avoid: ['e0'] })?.endpoint.id).toBe('e1');
    expect(lb.acquire({ avoid: ['e0', 'e1'] })).toBeDefined();
  });
});

describe('Balancer.update', () => {
  it('keeps the state of endpoints that stay, drops the others, adds new ones', () => {
    const clock = fakeClock();
    const lb = createBalancer({
      strategy: 'round-robin',
      endpoints: endpoints(3),
      now: clock.now,
      outlierDetection: { consecutiveFailures: 1 },
    });
    const held = lb.acquire() as Lease; // e0
    failOn(lb, 'e1', 1); // e1 ejected
    expect(lb.status().endpoints[1]?.ejected).toBe(true);
    lb.update([
      { id: 'e1', address: 'http://127.0.0.1:20001', zone: 'b', meta: { v: 2 } },
      { id: 'e0', address: 'http://127.0.0.1:10000' },
      { id: 'e9', address: 'http://127.0.0.1:10009', weight: 2 },
    ]);
    const st = lb.status();
    expect(st.endpoints.map((e) => e.endpoint.id)).toEqual(['e1', 'e0', 'e9']);
    expect(st.endpoints[0]?.ejected).toBe(true); // ejection kept
    expect(st.endpoints[0]?.endpoint.zone).toBe('b');
    expect(st.endpoints[0]?.endpoint.meta).toEqual({ v: 2 });
    expect(st.endpoints[1]?.inFlight).toBe(1); // in flight kept
    expect(st.endpoints[2]?.inFlight).toBe(0);
    expect(lb.endpoints.map((e) => e.id)).toEqual(['e1', 'e0', 'e9']);
    held.release({ ok: true });
    expect(lb.status().endpoints[1]?.inFlight).toBe(0);
  });

  it('lets leases of removed endpoints be released without effect', () => {
    const lb = createBalancer({ endpoints: endpoints(2), outlierDetection: { consecutiveFailures: 1 } });
    const lease = lb.acquire() as Lease;
    lb.update(endpoints(2).slice(1));
    expect(lease.release({ ok: false })).toBe(true);
    expect(lb.status().inFlight).toBe(0);
    expect(lb.status().endpoints.every((e) => !e.ejected)).toBe(true);
  });

  it('refuses bad input and leaves the balancer as it was', () => {
    const lb = createBalancer({ endpoints: endpoints(2) });
    expect(() => lb.update([...endpoints(2), { id: 'e0', address: 'x:1' }])).toThrow(
      /endpoints\[2\]\.id must be unique, got "e0"/,
    );
    expect(() => lb.update([{ id: 'a', address: 'x:1', weight: 0 }])).toThrow(/endpoints\[0\]\.weight/);
    expect(() => lb.update('nope' as never)).toThrow(/endpoints must be an array/);
    expect(lb.endpoints.map((e) => e.id)).toEqual(['e0', 'e1']);
  });
});

describe('Balancer outlier detection', () => {
  it('ejects after consecutive failures and restores after the ejection time, emitting events', () => {
    const clock = fakeClock();
    const lb = createBalancer({ strategy: 'round-robin', endpoints: endpoints(4), now: clock.now });
    const { seen, payloads } = record(lb);
    failOn(lb, 'e2', 5);
    expect(seen).toEqual(['ejected:e2']);
    expect(payloads.ejected?.[0]).toMatchObject({ ejections: 1, durationMs: 30_000 });
    expect(lb.available).toBe(3);
    for (let i = 0; i < 30; i++) expect(lb.acquire()?.endpoint.id).not.toBe('e2');
    clock.advance(29_999);
    expect(lb.status().endpoints[2]?.ejected).toBe(true);
    clock.advance(1);
    lb.acquire();
    expect(seen).toEqual(['ejected:e2', 'restored:e2']);
    expect(lb.available).toBe(4);
    // Second ejection lasts twice as long.
    failOn(lb, 'e2', 5);
    expect(payloads.ejected?.[1]).toMatchObject({ ejections: 2, durationMs: 60_000 });
  });

  it('never ejects more than maxEjectionPercent (but one is always allowed)', () => {
    const lb = createBalancer({
      strategy: 'round-robin',
      endpoints: endpoints(4),
      outlierDetection: { consecutiveFailures: 1, maxEjectionPercent: 50 },
    });
    for (let i = 0; i < 40; i++) lb.acquire()?.release({ ok: false });
    const st = lb.status();
    expect(st.endpoints.filter((e) => e.ejected).length).toBe(2);
    expect(st.ejectionOverflows).toBeGreaterThan(0);
    expect(lb.acquire()).toBeDefined();

    const single = createBalancer({ endpoints: endpoints(1), outlierDetection: { consecutiveFailures: 1 } });
    single.acquire()?.release({ ok: false });
    expect(single.status().endpoints[0]?.ejected).toBe(true);
    expect(single.acquire()).toBeUndefined();
    expect(() => single.acquireOrThrow()).toThrow(/1 ejected/);
  });

  it('keeps to maxEjectionPercent when update() shrinks the set: the ejection ending soonest ends now', () => {
    const clock = fakeClock();
    const lb = createBalancer({
      strategy: 'round-robin',
      endpoints: endpoints(4),
      now: clock.now,
      outlierDetection: { consecutiveFailures: 1, maxEjectionPercent: 50 },
    });
    const { seen } = record(lb);
    failOn(lb, 'e1', 1);
    clock.advance(10);
    failOn(lb, 'e0', 1); // 2 of 4 ejected: 50%, allowed
    lb.update(endpoints(2)); // 2 of 2 would be 100%: e1's ejection, the sooner to end, ends
    expect(seen).toEqual(['ejected:e1', 'ejected:e0', 'restored:e1']);
    const st = lb.status();
    expect(st.endpoints.map((e) => e.ejected)).toEqual([true, false]);
    expect(st.available).toBe(1);
    expect(lb.acquire()?.endpoint.id).toBe('e1');
    // An ejection it ended is not ended again when its old time comes.
    clock.advance(30_000);
    lb.acquire();
    expect(seen).toEqual(['ejected:e1', 'ejected:e0', 'restored:e1', 'restored:e0']);
  });

  it('restores without traffic, from its timer', async () => {
    const lb = createBalancer({
      endpoints: endpoints(2),
      outlierDetection: { consecutiveFailures: 1, baseEjectionMs: 30 },
    });
    const { seen } = record(lb);
    failOn(lb, 'e0', 1);
    // The balancer's timer is unref'd (it never holds a process open): a ref'd guard keeps
    // this test's process up while it waits, and bounds the wait.
    const guard = setTimeout(() => {}, 5_000);
    await new Promise<void>((resolve) => lb.once('restored', () => resolve()));
    clearTimeout(guard);
    expect(seen).toEqual(['ejected:e0', 'restored:e0']);
    lb.close();
  });

  it('can be turned off', () => {
    const lb = createBalancer({ endpoints: endpoints(1), outlierDetection: false });
    for (let i = 0; i < 100; i++) lb.acquire()?.release({ ok: false });
    expect(lb.acquire()).toBeDefined();
  });
});

describe('Balancer panic threshold', () => {
  it('balances over every endpoint when the available share falls below panicThreshold', () => {
    const clock = fakeClock();
    const lb = createBalancer({
      strategy: 'round-robin',
      endpoints: endpoints(4),
      now: clock.now,
      panicThreshold: 60,
      outlierDetection: { consecutiveFailures: 1, maxEjectionPercent: 100 },
    });
    const { seen } = record(lb);
    failOn(lb, 'e0', 1);
    expect(lb.panic).toBe(false); // 3/4 = 75% >= 60%
    failOn(lb, 'e1', 1);
    expect(lb.panic).toBe(true); // 2/4 = 50% < 60%
    expect(seen).toContain('panic:true');
    const ids = new Set<string>();
    for (let i = 0; i < 8; i++) ids.add(lb.acquire()?.endpoint.id as string);
    expect(ids).toEqual(new Set(['e0', 'e1', 'e2', 'e3']));
    clock.advance(30_000);
    lb.acquire();
    expect(lb.panic).toBe(false);
    expect(seen.filter((s) => s.startsWith('panic'))).toEqual(['panic:true', 'panic:false']);
  });

  it('a panic from the start raises no event (lb.panic says so); its end does', () => {
    const emit = vi.spyOn(Balancer.prototype, 'emit');
    try {
      const lb = createBalancer({
        endpoints: endpoints(2),
        panicThreshold: 50,
        healthCheck: { initiallyHealthy: false, intervalMs: 60_000 },
      });
      // No listener can be there yet: an event here would be lost.
      expect(emit).not.toHaveBeenCalled();
      expect(lb.panic).toBe(true);
      expect(lb.status()).toMatchObject({ panic: true, available: 0 });
      const { seen } = record(lb);
      lb.update([]);
      expect(seen).toEqual(['panic:false']);
      lb.close();
    } finally {
      emit.mockRestore();
    }
  });

  it('without panic mode, says clearly that nothing is available', () => {
    const lb = createBalancer({
      endpoints: endpoints(2),
      outlierDetection: { consecutiveFailures: 1, maxEjectionPercent: 100 },
    });
    lb.acquire()?.release({ ok: false });
    lb.acquire()?.release({ ok: false });
    expect(lb.available).toBe(0);
    expect(lb.acquire()).toBeUndefined();
    expect(() => lb.acquireOrThrow()).toThrow(/no endpoint available of 2: 0 failing health checks, 2 ejected/);
  });

  it('with panicThreshold set, serves even when every endpoint is out', () => {
    const lb = createBalancer({
      endpoints: endpoints(2),
      panicThreshold: 1,
      outlierDetection: { consecutiveFailures: 1, maxEjectionPercent: 100 },
    });
    lb.acquire()?.release({ ok: false });
    lb.acquire()?.release({ ok: false });
    expect(lb.panic).toBe(true);
    expect(lb.acquire()).toBeDefined();
  });
});

describe('Balancer circuit breakers', () => {
  it('opens, half-opens after the cool-down with limited trials, closes on success', () => {
    const clock = fakeClock();
    const lb = createBalancer({
      strategy: 'round-robin',
      endpoints: endpoints(2),
      now: clock.now,
      outlierDetection: false,
      circuitBreaker: { failureThreshold: 2, cooldownMs: 1_000, halfOpenMaxRequests: 1 },
    });
    const { seen } = record(lb);
    failOn(lb, 'e0', 2);
    expect(lb.status().endpoints[0]?.breaker).toBe('open');
    for (let i = 0; i < 10; i++) expect(lb.acquire()?.endpoint.id).toBe('e1');
    clock.advance(1_000);
    const leases: Lease[] = [];
    for (let i = 0; i < 10; i++) leases.push(lb.acquire() as Lease);
    // One trial at a time on e0; everything else to e1.
    expect(tally(leases.map((l) => l.endpoint.id)).get('e0')).toBe(1);
    const trial = leases.find((l) => l.endpoint.id === 'e0') as Lease;
    trial.release({ ok: true });
    expect(lb.status().endpoints[0]?.breaker).toBe('closed');
    expect(seen).toEqual(['breaker:e0:closed->open', 'breaker:e0:open->half-open', 'breaker:e0:half-open->closed']);
  });

  it('a failed trial opens it again; an abandoned trial frees its place', () => {
    const clock = fakeClock();
    const lb = createBalancer({
      strategy: 'round-robin',
      endpoints: endpoints(2),
      now: clock.now,
      outlierDetection: false,
      circuitBreaker: { failureThreshold: 1, cooldownMs: 100 },
    });
    failOn(lb, 'e0', 1);
    clock.advance(100);
    let trial = lb.acquire() as Lease;
    while (trial.endpoint.id !== 'e0') trial = lb.acquire() as Lease;
    trial.release(); // abandoned
    let again = lb.acquire() as Lease;
    while (again.endpoint.id !== 'e0') again = lb.acquire() as Lease;
    again.release({ ok: false });
    expect(lb.status().endpoints[0]?.breaker).toBe('open');
  });

  it('true turns breakers on with defaults', () => {
    const lb = createBalancer({ endpoints: endpoints(1), circuitBreaker: true, outlierDetection: false });
    expect(lb.options.circuitBreaker?.failureThreshold).toBe(5);
    for (let i = 0; i < 5; i++) lb.acquire()?.release({ ok: false });
    expect(lb.acquire()).toBeUndefined();
    expect(() => lb.acquireOrThrow()).toThrow(/1 with an open circuit breaker/);
  });
});

describe('Balancer retry budget', () => {
  it('counts leases taken as retries against 20% of those in flight', () => {
    const lb = createBalancer({ endpoints: endpoints(3) });
    const held: Lease[] = [];
    for (let i = 0; i < 20; i++) held.push(lb.acquire() as Lease);
    expect(lb.status().retries).toEqual({ active: 20, activeRetries: 0, maxRetries: 4 });
    for (let i = 0; i < 4; i++) {
      expect(lb.canRetry()).toBe(true);
      held.push(lb.acquire({ retry: true }) as Lease);
    }
    // 24 in flight, 4 retries: floor(4.8) = 4
    expect(lb.canRetry()).toBe(false);
    expect(held.at(-1)?.retry).toBe(true);
    held.pop()?.release({ ok: true });
    expect(lb.canRetry()).toBe(true);
    expect(lb.retryBudget.activeRetries).toBe(3);
  });

  it('uses the configured budget', () => {
    const lb = createBalancer({ endpoints: endpoints(1), retryBudget: { budgetPercent: 50, minRetryConcurrency: 0 } });
    expect(lb.canRetry()).toBe(false);
    lb.acquire();
    lb.acquire();
    expect(lb.canRetry()).toBe(true);
  });
});

describe('createBalancer options', () => {
  it('names the field and the value of anything out of range', () => {
    const cases: [unknown, RegExp][] = [
      [{ strategy: 'fastest' }, /strategy must be one of 'round-robin'.*got "fastest"/],
      [
        { endpoints: [{ id: 'a', address: 'x:1', weight: 0 }] },
        /endpoints\[0\]\.weight must be a number in \(0, 1000000\], got 0/,
      ],
      [{ endpoints: [{ id: 'a', address: 'x:1', weight: -2 }] }, /endpoints\[0\]\.weight.*got -2/],
      [{ endpoints: [{ id: 'a', address: 'x:1', weight: Number.NaN }] }, /endpoints\[0\]\.weight.*NaN/],
      [
        {
          endpoints: [
            { id: 'a', address: 'x:1' },
            { id: 'a', address: 'x:2' },
          ],
        },
        /endpoints\[1\]\.id must be unique, got "a"/,
      ],
      [{ endpoints: [{ id: '', address: 'x:1' }] }, /endpoints\[0\]\.id/],
      [{ endpoints: [{ id: 'a' }] }, /endpoints\[0\]\.address.*undefined/],
      [{ endpoints: [{ id: 'a', address: 'x', zone: 3 }] }, /endpoints\[0\]\.zone/],
      [{ endpoints: [{ id: 'a', address: 'x', meta: [] }] }, /endpoints\[0\]\.meta must be an object/],
      [{ endpoints: ['a'] }, /endpoints\[0\] must be an object/],
      [{ endpoints: {} }, /endpoints must be an array/],
      [{ panicThreshold: 101 }, /panicThreshold must be a number in \[0, 100\], got 101/],
      [{ panicThreshold: -1 }, /panicThreshold.*-1/],
      [{ outlierDetection: { consecutiveFailures: 0 } }, /outlierDetection\.consecutiveFailures.*got 0/],
      [{ outlierDetection: { maxEjectionPercent: 120 } }, /outlierDetection\.maxEjectionPercent.*120/],
      [{ healthCheck: { unhealthyThreshold: 0 } }, /healthCheck\.unhealthyThreshold.*got 0/],
      [{ healthCheck: { healthyThreshold: 1001 } }, /healthCheck\.healthyThreshold/],
      [{ healthCheck: { type: 'udp' } }, /healthCheck\.type must be one of 'http', 'tcp', got "udp"/],
      [{ healthCheck: { path: 'healthz' } }, /healthCheck\.path must start with '\/'/],
      [{ healthCheck: { timeoutMs: 0 } }, /healthCheck\.timeoutMs/],
      [{ healthCheck: { jitterPercent: 200 } }, /healthCheck\.jitterPercent/],
      [{ healthCheck: { expectedStatuses: [] } }, /healthCheck\.expectedStatuses must be a non-empty array/],
      [{ healthCheck: { expectedStatuses: [[300, 200]] } }, /healthCheck\.expectedStatuses\[0\]\[1\]/],
      [{ healthCheck: { expectedStatuses: [700] } }, /healthCheck\.expectedStatuses\[0\].*700/],
      [{ healthCheck: { initiallyHealthy: 'yes' } }, /healthCheck\.initiallyHealthy must be a boolean/],
      [{ circuitBreaker: { failureThreshold: -1 } }, /circuitBreaker\.failureThreshold.*-1/],
      [{ retryBudget: { budgetPercent: 120 } }, /retryBudget\.budgetPercent.*120/],
      [{ random: 4 }, /random must be a function, got 4/],
      [{ now: 'clock' }, /now must be a function/],
      [null, /options must be an object/],
    ];
    for (const [options, message] of cases) {
      let error: unknown;
      try {
        createBalancer(options as never);
      } catch (e) {
        error = e;
      }
      expect(error, String(message)).toBeInstanceOf(InvalidOptionError);
      expect((error as InvalidOptionError).code).toBe('ERR_INVALID_OPTION');
      expect((error as Error).message).toMatch(message);
    }
  });

  it('freezes what it resolved', () => {
    const lb = createBalancer({ endpoints: [{ id: 'a', address: 'x:1', meta: { tag: 'v2' } }] });
    expect(Object.isFrozen(lb.options)).toBe(true);
    expect(Object.isFrozen(lb.endpoints[0])).toBe(true);
    expect(Object.isFrozen(lb.endpoints[0]?.meta)).toBe(true);
    expect(lb.endpoints[0]).toEqual({ id: 'a', address: 'x:1', weight: 1, zone: undefined, meta: { tag: 'v2' } });
  });
});
