import { describe, expect, it } from 'vitest';
import { createBalancer } from '../../../src/balancer/createBalancer.js';
import type { Lease } from '../../../src/balancer/Lease.js';
import { resolveEwmaOptions } from '../../../src/balancer/strategies/PeakEwma.js';
import { endpoints, fakeClock, seeded, tally } from '../helpers.js';

/** Sequential requests where endpoint e1 takes `slowMs` and the others 5 ms; the clock moves with them. */
function traffic(
  lb: ReturnType<typeof createBalancer>,
  clock: ReturnType<typeof fakeClock>,
  n: number,
  slowMs: number,
) {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const lease = lb.acquire() as Lease;
    const latencyMs = lease.endpoint.id === 'e1' ? slowMs : 5;
    clock.advance(latencyMs);
    lease.release({ ok: true, latencyMs });
    ids.push(lease.endpoint.id);
  }
  return tally(ids);
}

describe('ewma (peak EWMA, as Finagle and linkerd)', () => {
  it('moves traffic away from a slow endpoint, and back once it recovers', () => {
    const clock = fakeClock();
    const lb = createBalancer({ strategy: 'ewma', endpoints: endpoints(3), random: seeded(1), now: clock.now });
    const slow = traffic(lb, clock, 3_000, 200);
    // Even share would be 1000; the slow endpoint gets only the probes that decay lets through.
    expect(slow.get('e1') ?? 0).toBeLessThan(150);
    expect(lb.status().endpoints[1]?.latencyMs).toBeGreaterThan(5);
    const recovered = traffic(lb, clock, 30_000, 5);
    expect(recovered.get('e1') ?? 0).toBeGreaterThan(7_000);
  });

  it('reacts to a latency peak at once (peak-sensitive) and forgets it slowly', () => {
    const clock = fakeClock();
    const lb = createBalancer({ strategy: 'ewma', endpoints: endpoints(1), now: clock.now });
    const release = (ms: number) => {
      clock.advance(ms);
      (lb.acquire() as Lease).release({ ok: true, latencyMs: ms });
    };
    release(10);
    release(500);
    expect(lb.status().endpoints[0]?.latencyMs).toBe(500);
    release(10);
    const after = lb.status().endpoints[0]?.latencyMs as number;
    // 10 ms later with a 10 s decay: nearly all of the peak remains.
    expect(after).toBeGreaterThan(490);
    clock.advance(30_000);
    release(10);
    expect(lb.status().endpoints[0]?.latencyMs).toBeLessThan(40);
  });

  it('charges in-flight requests: cost = estimate x (inFlight + 1)', () => {
    const clock = fakeClock();
    const lb = createBalancer({ strategy: 'ewma', endpoints: endpoints(2), random: seeded(3), now: clock.now });
    // Both at 10 ms.
    for (let i = 0; i < 20; i++) {
      const lease = lb.acquire() as Lease;
      lease.release({ ok: true, latencyMs: 10 });
    }
    const held = [lb.acquire(), lb.acquire(), lb.acquire(), lb.acquire()];
    const counts = tally(held.map((l) => l?.endpoint.id as string));
    expect(counts.get('e0')).toBe(2);
    expect(counts.get('e1')).toBe(2);
  });

  it('sends a newcomer one probe at a time until it answers (no estimate: penalty while in flight)', () => {
    const clock = fakeClock();
    const lb = createBalancer({ strategy: 'ewma', endpoints: endpoints(2), random: seeded(5), now: clock.now });
    for (let i = 0; i < 10; i++) (lb.acquire() as Lease).release({ ok: true, latencyMs: 20 });
    lb.update(endpoints(3));
    const held: Lease[] = [];
    for (let i = 0; i < 40; i++) held.push(lb.acquire() as Lease);
    expect(tally(held.map((l) => l.endpoint.id)).get('e2')).toBe(1);
  });

  it('measures latency itself when the result has none', () => {
    const clock = fakeClock();
    const lb = createBalancer({ strategy: 'ewma', endpoints: endpoints(1), now: clock.now });
    const lease = lb.acquire() as Lease;
    clock.advance(42);
    lease.release({ ok: true });
    expect(lb.status().endpoints[0]?.latencyMs).toBe(42);
  });

  it('starts newcomers at initialLatencyMs when set (linkerd style)', () => {
    const clock = fakeClock();
    const lb = createBalancer({
      strategy: 'ewma',
      endpoints: endpoints(1),
      now: clock.now,
      ewma: { initialLatencyMs: 30 },
    });
    expect(lb.status().endpoints[0]?.latencyMs).toBe(30);
  });

  it('rejects bad options', () => {
    expect(() => resolveEwmaOptions({ decayMs: 0 })).toThrow(/ewma\.decayMs.*got 0/);
    expect(() => resolveEwmaOptions({ initialLatencyMs: -1 })).toThrow(/ewma\.initialLatencyMs.*-1/);
  });
});
