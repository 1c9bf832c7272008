// Live configuration: `gateway.apply(config)` swaps routes and services for new requests at
// once, while requests in flight finish on the route they matched.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type ResolvedGatewayConfig,
  type ResolvedService,
  resolveGatewayConfig,
} from '../../server/config/GatewayConfig.js';
import { echo, startGateway, startUpstream, type TestGateway, type Upstream, until } from './helpers.js';

let a: Upstream;
let slow: Upstream;
let gw: TestGateway;

/** A promise and the function that resolves it. */
function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve = (): void => {};
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}
/** The slow upstream has the request; it answers once the test says so, not after some time. */
const slowArrived = deferred();
const slowAnswer = deferred();

beforeAll(async () => {
  a = await startUpstream(echo('a'));
  slow = await startUpstream((_req, res) => {
    slowArrived.resolve();
    void slowAnswer.promise.then(() => res.end('slow done'));
  });
  gw = await startGateway({
    routes: [
      { name: 'old', match: { prefix: '/old' }, service: 'a' },
      { name: 'slow', match: { prefix: '/slow' }, service: 'slow' },
    ],
    services: { a: { static: [a.url] }, slow: { static: [slow.url] } },
  });
});

afterAll(async () => {
  slowAnswer.resolve();
  await gw.close();
  await Promise.all([a.close(), slow.close()]);
});

describe('gateway.apply', () => {
  it('new requests see the new routes at once; in-flight ones finish on the old', async () => {
    const inFlight = fetch(`${gw.url}/slow`).then(async (r) => [r.status, await r.text()]);
    // In flight: the upstream has it, and holds the answer until after the apply below.
    await slowArrived.promise;
    const before = gw.gateway.routes.appliedAt;
    expect(gw.gateway.routes.origin).toEqual({ source: 'file' });
    gw.gateway.apply(
      resolveGatewayConfig({
        routes: [{ name: 'new', match: { prefix: '/new' }, service: 'a', stripPrefix: true }],
        services: { a: { static: [a.url] } },
      }),
    );
    expect(gw.gateway.routes.routes.map((r) => r.name)).toEqual(['new']);
    expect(gw.gateway.routes.origin).toEqual({ source: 'code' });
    expect(gw.gateway.routes.appliedAt.getTime()).toBeGreaterThanOrEqual(before.getTime());
    expect((await fetch(`${gw.url}/old`)).status).toBe(404);
    const res = await fetch(`${gw.url}/new/x`);
    expect(res.status).toBe(200);
    expect(((await res.json()) as { url: string }).url).toBe('/x');
    slowAnswer.resolve();
    expect(await inFlight).toEqual([200, 'slow done']);
    // The service that left has its balancer closed.
    expect(gw.gateway.upstreams.serviceNames).toEqual(['a']);
  });

  it('an apply whose balancers cannot be built throws and leaves the running routes and balancers as they were', async () => {
    const running = gw.gateway.routes;
    const balancer = gw.gateway.upstreams.balancers('a').get('round-robin');
    expect((await fetch(`${gw.url}/new/x`)).status).toBe(200);
    // Resolved, then made invalid by hand: the configuration checks would refuse it.
    const ok = resolveGatewayConfig({
      routes: [
        { name: 'new', match: { prefix: '/new' }, service: 'a' },
        { name: 'h', match: { prefix: '/h' }, service: 'h', strategy: 'ring-hash' },
      ],
      services: { a: { static: [a.url], connections: 4 }, h: { static: [a.url] } },
    });
    const h = ok.services.get('h') as ResolvedService;
    const bad: ResolvedGatewayConfig = {
      ...ok,
      services: new Map([...ok.services, ['h', { ...h, static: [{ id: 'x', address: a.url, weight: 100_000 }] }]]),
    };
    expect(() => gw.gateway.apply(bad)).toThrow(/ring points/);
    expect(gw.gateway.routes.routes).toBe(running.routes);
    expect(gw.gateway.routes.appliedAt).toBe(running.appliedAt);
    expect(gw.gateway.upstreams.serviceNames).toEqual(['a']);
    expect(gw.gateway.upstreams.service('a')?.connections).toBe(128);
    expect(gw.gateway.upstreams.balancers('a').get('round-robin')).toBe(balancer);
    expect(balancer?.closed).toBe(false);
    expect((await fetch(`${gw.url}/new/x`)).status).toBe(200);
  });

  it('a live change of connections reaches the pool: a new one with the new settings, the old one drained', async () => {
    const held: (() => void)[] = [];
    const up = await startUpstream((_req, res) => {
      held.push(() => res.end('ok'));
    });
    const g = await startGateway({
      routes: [{ match: { prefix: '/' }, service: 's', retries: { attempts: 0 } }],
      services: { s: { static: [up.url], connections: 1 } },
    });
    const get = (path: string): Promise<number> =>
      fetch(`${g.url}${path}`).then(
        (r) => r.status,
        () => 0,
      );
    try {
      // One connection: the second request waits for the first.
      const first = [get('/1'), get('/2')];
      await until(() => held.length === 1, 5_000, 'the first request');
      await new Promise((r) => setTimeout(r, 200));
      expect(held.length).toBe(1);
      g.gateway.apply(
        resolveGatewayConfig({
          routes: [{ match: { prefix: '/' }, service: 's', retries: { attempts: 0 } }],
          services: { s: { static: [up.url], connections: 3 } },
        }),
      );
      // Three connections now: three requests reach the upstream at once (the queued one
      // finishes on the old pool once the first is answered).
      const second = [get('/3'), get('/4'), get('/5')];
      await until(() => held.length === 4, 5_000, 'three requests at once on the new pool');
      for (const release of held.splice(0)) release();
      await until(() => held.length === 1, 5_000, 'the request queued on the old pool');
      for (const release of held.splice(0)) release();
      expect(await Promise.all([...first, ...second])).toEqual([200, 200, 200, 200, 200]);
      // The old pool closes once the balancer it served is done with its last request.
      await until(() => g.gateway.pools.size === 1, 5_000, 'the old pool to close');
    } finally {
      for (const release of held.splice(0)) release();
      await g.close();
      await up.close();
    }
  });

  it('an instance a new static list no longer names takes its metric series with it', async () => {
    const other = await startUpstream(echo('other'));
    try {
      const both = { routes: [{ name: 'm', match: { prefix: '/m' }, service: 'm', strategy: 'round-robin' }] };
      gw.gateway.apply(resolveGatewayConfig({ ...both, services: { m: { static: [a.url, other.url] } } }));
      for (let i = 0; i < 4; i++) expect((await fetch(`${gw.url}/m`)).status).toBe(200);
      const metrics = gw.gateway.metrics as NonNullable<typeof gw.gateway.metrics>;
      expect(await metrics.registry.metrics()).toContain(`upstream="${other.url}"`);
      gw.gateway.apply(resolveGatewayConfig({ ...both, services: { m: { static: [a.url] } } }));
      await until(
        async () => !(await metrics.registry.metrics()).includes(`upstream="${other.url}"`),
        5_000,
        'the series to go',
      );
      expect(await metrics.registry.metrics()).toContain(`upstream="${a.url}"`);
    } finally {
      await other.close();
    }
  });

  it('the series of an instance whose balancer is retiring (a request of it still in flight) stay until it is done', async () => {
    const held: (() => void)[] = [];
    const up = await startUpstream((_req, res) => {
      held.push(() => res.end('ok'));
    });
    const fresh = await startUpstream(echo('fresh'));
    const g = await startGateway({
      routes: [{ match: { prefix: '/' }, service: 's', retries: { attempts: 0 } }],
      services: { s: { static: [up.url] } },
    });
    const metrics = g.gateway.metrics as NonNullable<typeof g.gateway.metrics>;
    const scrape = (): Promise<string> => metrics.registry.metrics();
    try {
      // One answered request of `up`: its series exist.
      const first = fetch(`${g.url}/1`).then((r) => r.status);
      await until(() => held.length === 1, 5_000, 'the first request');
      (held.shift() as () => void)();
      expect(await first).toBe(200);
      expect(await scrape()).toContain(`upstream="${up.url}"`);
      // A second one in flight; then new settings move the service to `fresh`, and the old
      // balancer retires, serving that request (and any retry of it) until it is done.
      const second = fetch(`${g.url}/2`).then((r) => r.status);
      await until(() => held.length === 1, 5_000, 'the second request');
      g.gateway.apply(
        resolveGatewayConfig({
          routes: [{ match: { prefix: '/' }, service: 's', retries: { attempts: 0 } }],
          services: { s: { static: [fresh.url], connections: 7 } },
        }),
      );
      expect((await fetch(`${g.url}/3`)).status).toBe(200);
      // Still in use: its series are kept, not dropped now and recreated from zero later.
      expect(await scrape()).toContain(`upstream="${up.url}"`);
      (held.shift() as () => void)();
      expect(await second).toBe(200);
      // Once the retiring balancer is done, they go.
      await until(async () => !(await scrape()).includes(`upstream="${up.url}"`), 5_000, 'the series to go');
      expect(await scrape()).toContain(`upstream="${fresh.url}"`);
    } finally {
      for (const release of held.splice(0)) release();
      await g.close();
      await Promise.all([up.close(), fresh.close()]);
    }
  });
});
