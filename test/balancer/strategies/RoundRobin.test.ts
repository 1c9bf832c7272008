import { describe, expect, it } from 'vitest';
import { createBalancer } from '../../../src/balancer/createBalancer.js';
import { endpoints } from '../helpers.js';

function run(lb: ReturnType<typeof createBalancer>, n: number, ctx?: Parameters<typeof lb.acquire>[0]): string[] {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const lease = lb.acquire(ctx);
    out.push(lease?.endpoint.id ?? '-');
    lease?.release({ ok: true });
  }
  return out;
}

describe('round-robin', () => {
  it('takes each endpoint in turn, ignoring weights', () => {
    const lb = createBalancer({ strategy: 'round-robin', endpoints: endpoints(3, [5, 1, 1]) });
    expect(run(lb, 7).join(' ')).toBe('e0 e1 e2 e0 e1 e2 e0');
  });

  it('keeps its place across a membership change and skips avoided endpoints', () => {
    const lb = createBalancer({ strategy: 'round-robin', endpoints: endpoints(4) });
    expect(run(lb, 2)).toEqual(['e0', 'e1']);
    lb.update(endpoints(3));
    expect(run(lb, 3)).toEqual(['e2', 'e0', 'e1']);
    expect(run(lb, 3, { avoid: ['e2'] })).toEqual(['e0', 'e1', 'e0']);
  });

  it('is the default strategy', () => {
    expect(createBalancer({ endpoints: endpoints(1) }).strategyName).toBe('round-robin');
  });
});
