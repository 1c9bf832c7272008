// Registry-driven routing: instances registered through the registry API start receiving
// traffic without a restart; an instance whose heartbeats stop leaves the rotation once its
// lease expires; one marked unhealthy leaves at once.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ServiceRegistry } from '../../src/registry/ServiceRegistry.js';
import { memoryStore } from '../../src/store/memory/MemoryStore.js';
import { echo, startGateway, startUpstream, type TestGateway, type Upstream, until } from './helpers.js';

const store = memoryStore();
let registry: ServiceRegistry;
let a: Upstream;
let b: Upstream;
let gw: TestGateway;

beforeAll(async () => {
  // Another "process" registers through its own registry on the shared store.
  registry = new ServiceRegistry({ store, sweepIntervalMs: 100 });
  a = await startUpstream(echo('a'));
  b = await startUpstream(echo('b'));
  gw = await startGateway(
    { routes: [{ match: { prefix: '/users' }, service: 'users', strategy: 'round-robin', retries: { attempts: 0 } }] },
    { store, registry: new ServiceRegistry({ store, sweepIntervalMs: 100 }) },
  );
});

afterAll(async () => {
  await gw.close();
  await gw.gateway.registry.close();
  await registry.close();
  await Promise.all([a.close(), b.close()]);
  await store.close();
});

async function names(n: number): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const res = await fetch(`${gw.url}/users`);
    out.push(res.status === 200 ? ((await res.json()) as { name: string }).name : String(res.status));
  }
  return out;
}

describe('registry-driven routing', () => {
  it('no instance: 503; registered instances start receiving traffic; expired ones leave', async () => {
    expect(await names(1)).toEqual(['503']);

    const regA = await registry.register({ service: 'users', id: 'a', address: a.url });
    await until(async () => (await names(1))[0] === 'a', 10_000, 'a in rotation');

    const regB = await registry.register({ service: 'users', id: 'b', address: b.url, ttlMs: 300 });
    await until(async () => (await names(4)).includes('b'), 10_000, 'b in rotation');
    expect(new Set(await names(6))).toEqual(new Set(['a', 'b']));

    // b's process "dies": its heartbeats stop, its lease expires, it leaves the rotation.
    regB.stop();
    await until(async () => !(await names(6)).includes('b'), 10_000, 'b to leave the rotation');
    // The metric series of instances that left go with them; those of live ones stay (found
    // in review: with pod names that change on every deploy, the series only ever grew).
    const metrics = gw.gateway.metrics as NonNullable<typeof gw.gateway.metrics>;
    await until(async () => !/upstream="b"/.test(await metrics.registry.metrics()), 10_000, "b's series to go");
    expect(await metrics.registry.metrics()).toMatch(/upstream="a"/);

    // a drains: marked unhealthy, it leaves at once and the service has no instance left.
    await regA.setHealthy(false);
    await until(async () => (await names(1))[0] === '503', 10_000, 'a to leave the rotation');
    await regA.deregister();
  });
});

describe('registry instances a strategy refuses', () => {
  it('are left out, not kept in the old set: a deregistered instance stops getting traffic', async () => {
    const s = memoryStore();
    const reg = new ServiceRegistry({ store: s, sweepIntervalMs: 100 });
    const g = await startGateway(
      {
        routes: [
          {
            match: { prefix: '/' },
            service: 'r',
            strategy: 'ring-hash',
            hashKey: 'path',
            retries: { attempts: 0 },
          },
        ],
      },
      { store: s, registry: new ServiceRegistry({ store: s, sweepIntervalMs: 100 }) },
    );
    const seen = async (): Promise<string> => {
      const res = await fetch(`${g.url}/x`);
      return res.status === 200 ? ((await res.json()) as { name: string }).name : String(res.status);
    };
    const c = await startUpstream(echo('c'));
    try {
      const regA = await reg.register({ service: 'r', id: 'a', address: a.url });
      await until(async () => (await seen()) === 'a', 10_000, 'a in rotation');
      // 10000 x 160 ring points is more than an endpoint may have: ring-hash refuses b.
      const regB = await reg.register({ service: 'r', id: 'b', address: b.url, weight: 10_000 });
      const regC = await reg.register({ service: 'r', id: 'c', address: c.url });
      const ids = (): string[] | undefined =>
        g.gateway.upstreams
          .balancers('r')
          .get('ring-hash')
          ?.endpoints.map((e) => e.id)
          .sort();
      await until(() => ids()?.join() === 'a,c', 10_000, 'c in the set, b left out');
      await regA.deregister();
      await until(async () => (await seen()) === 'c', 10_000, 'traffic to leave a for c');
      expect(ids()).toEqual(['c']);
      await regB.deregister();
      await regC.deregister();
    } finally {
      await g.close();
      await g.gateway.registry.close();
      await reg.close();
      await c.close();
      await s.close();
    }
  });
});
