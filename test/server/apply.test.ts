// Live configuration: `gateway.apply(config)` swaps routes and services for new requests at
// once, while requests in flight finish on the route they matched.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveGatewayConfig } from '../../server/config/GatewayConfig.js';
import { echo, startGateway, startUpstream, type TestGateway, type Upstream } from './helpers.js';

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
});
