// The upstream side without sockets: a fake registry source feeds instances to `Upstreams`,
// which must keep its balancers on the instances they accept and report the others.
import { afterEach, describe, expect, it } from 'vitest';
import { type ResolvedService, resolveGatewayConfig } from '../../server/config/GatewayConfig.js';
import { UpstreamPools } from '../../server/proxy/UpstreamPools.js';
import {
  type InstanceSource,
  type SourceInstance,
  type SourceWatch,
  Upstreams,
} from '../../server/upstreams/Upstreams.js';

/** A registry stand-in: `push` delivers a service's instances to its watchers. */
function fakeSource(): InstanceSource & {
  push(service: string, instances: SourceInstance[]): void;
  watching(): string[];
} {
  const watchers = new Map<string, Set<(i: readonly SourceInstance[]) => void>>();
  return {
    watch(service, listener): SourceWatch {
      const set = watchers.get(service) ?? new Set();
      watchers.set(service, set);
      set.add(listener);
      return {
        close: () => {
          set.delete(listener);
          if (set.size === 0) watchers.delete(service);
        },
      };
    },
    push(service, instances) {
      for (const l of watchers.get(service) ?? []) l(instances);
    },
    watching: () => [...watchers.keys()].sort(),
  };
}

const toClose: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of toClose.splice(0)) await c();
});

function setup(config: unknown): {
  upstreams: Upstreams;
  source: ReturnType<typeof fakeSource>;
  events: string[];
  pools: UpstreamPools;
} {
  const source = fakeSource();
  const events: string[] = [];
  const pools = new UpstreamPools();
  const upstreams = new Upstreams(pools, source, {
    invalidInstance: (service, id, reason) => events.push(`${service}/${id}: ${reason}`),
  });
  toClose.push(
    () => upstreams.close(),
    () => pools.close(true),
  );
  const c = resolveGatewayConfig(config);
  upstreams.apply(c.services, c.routes);
  return { upstreams, source, events, pools };
}

describe('Upstreams', () => {
  it('registry instances a strategy refuses are reported and left out; the others replace the old set', () => {
    const { upstreams, source, events } = setup({
      routes: [
        { match: { prefix: '/h' }, service: 'r', strategy: 'ring-hash' },
        { match: { prefix: '/m' }, service: 'r', strategy: 'maglev' },
      ],
      services: { r: { maglev: { tableSize: 2 } } },
    });
    const ids = (strategy: 'ring-hash' | 'maglev'): string[] =>
      (upstreams.balancers('r').get(strategy)?.endpoints ?? []).map((e) => e.id);
    source.push('r', [{ id: 'a', address: 'http://127.0.0.1:1' }]);
    expect(ids('ring-hash')).toEqual(['a']);
    source.push('r', [
      { id: 'a', address: 'http://127.0.0.1:1' },
      { id: 'b', address: 'http://127.0.0.1:2', weight: 10_000 },
      { id: 'c', address: 'http://127.0.0.1:3' },
    ]);
    // ring-hash refuses b (too many ring points); maglev's table of 2 takes the first two.
    expect(ids('ring-hash')).toEqual(['a', 'c']);
    expect(ids('maglev')).toEqual(['a', 'b']);
    expect(events).toHaveLength(2);
    expect(events[0]).toMatch(/^r\/b: refused by ring-hash: .*ring points/);
    expect(events[1]).toMatch(/^r\/c: refused by maglev: .*maglev.tableSize 2/);
    source.push('r', [{ id: 'c', address: 'http://127.0.0.1:3' }]);
    expect(ids('ring-hash')).toEqual(['c']);
    expect(ids('maglev')).toEqual(['c']);
  });

  it('services no route names have no registry watch, also after a route stops naming one', () => {
    const { upstreams, source } = setup({
      routes: [{ match: { prefix: '/r' }, service: 'r' }],
      services: { r: {}, declared: {} },
    });
    expect(source.watching()).toEqual(['r']);
    expect(upstreams.serviceNames).toEqual(['r']);
    const next = resolveGatewayConfig({
      routes: [{ match: { prefix: '/s' }, service: 's' }],
      services: { r: {}, s: {} },
    });
    upstreams.apply(next.services, next.routes);
    expect(source.watching()).toEqual(['s']);
    expect(upstreams.serviceNames).toEqual(['s']);
    // Named again: watched again.
    const back = resolveGatewayConfig({ routes: [{ match: { prefix: '/r' }, service: 'r' }] });
    upstreams.apply(back.services, back.routes);
    expect(source.watching()).toEqual(['r']);
  });

  it('a static address that is no URL (a configuration that skipped the checks) throws; nothing changes', () => {
    const { upstreams, pools } = setup({
      routes: [{ match: { prefix: '/' }, service: 's' }],
      services: { s: { static: ['http://127.0.0.1:1'] } },
    });
    const before = upstreams.balancers('s').get('round-robin');
    const ok = resolveGatewayConfig({
      routes: [{ match: { prefix: '/' }, service: 's' }],
      services: { s: { static: ['http://127.0.0.1:2'] } },
    });
    const s = ok.services.get('s') as ResolvedService;
    const bad = new Map([['s', { ...s, static: [{ id: 'x', address: 'http://h:port', weight: 1 }] }]]);
    expect(() => upstreams.apply(bad, ok.routes)).toThrow(/services\.s\.static\[0\]\.address .*URL/);
    expect(upstreams.balancers('s').get('round-robin')).toBe(before);
    expect(before?.endpoints.map((e) => e.address)).toEqual(['http://127.0.0.1:1']);
    expect(pools.size).toBe(0);
  });

  it('endpointIds() counts the instances of a retiring balancer until its last request is done', async () => {
    const { upstreams } = setup({
      routes: [{ match: { prefix: '/' }, service: 's' }],
      services: { s: { static: ['http://127.0.0.1:1'] } },
    });
    const old = upstreams.balancers('s').get('round-robin');
    const oldIds = (old?.endpoints ?? []).map((e) => e.id);
    expect(oldIds).toHaveLength(1);
    const lease = old?.acquire();
    expect(lease).toBeDefined();
    // New settings and a new instance: a new balancer; the old one retires with a request in flight.
    const next = resolveGatewayConfig({
      routes: [{ match: { prefix: '/' }, service: 's' }],
      services: { s: { static: ['http://127.0.0.1:2'], connections: 7 } },
    });
    upstreams.apply(next.services, next.routes);
    const now = upstreams.balancers('s').get('round-robin');
    expect(now).not.toBe(old);
    const newIds = (now?.endpoints ?? []).map((e) => e.id);
    expect([...upstreams.endpointIds()].sort()).toEqual([...oldIds, ...newIds].sort());
    lease?.release({ ok: true, latencyMs: 1 });
    // Checked every 250 ms: the old balancer closes and its instance leaves the set.
    await expect.poll(() => [...upstreams.endpointIds()], { timeout: 3000, interval: 50 }).toEqual(newIds);
    expect(old?.closed).toBe(true);
  });
});
