// Two gateway processes on one Redis (a redis-server this test starts and stops by PID):
// an instance registered once is routed to by both, its expiry reaches both, a rate limit is
// one bucket for the two of them, and a route change through one's admin API goes live on both.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ServiceRegistry } from '../../src/registry/ServiceRegistry.js';
import { redisStore } from '../../src/store/redis/RedisStore.js';
import type { Store } from '../../src/store/Store.js';
import { haveRedisServerBinary, type RedisServer, startRedisServer } from '../helpers/redis.js';
import {
  configFile,
  echo,
  type GatewayProcess,
  send,
  spawnGateway,
  startUpstream,
  type Upstream,
  until,
} from './helpers.js';

const enabled = haveRedisServerBinary();
if (!enabled) console.warn('redis-server is not installed: skipping the two-gateways-on-Redis tests');

let redis: RedisServer;
let store: Store;
let registry: ServiceRegistry;
let up: Upstream;
const gateways: GatewayProcess[] = [];
const admins: number[] = [];
const TOKEN = 'redis-cli-token-0123456789abcdef';
const auth = { authorization: `Bearer ${TOKEN}` };

beforeAll(async () => {
  if (!enabled) return;
  redis = await startRedisServer();
  store = redisStore(redis.url);
  registry = new ServiceRegistry({ store, sweepIntervalMs: 200 });
  up = await startUpstream(echo('users-1'));
  const config = configFile({
    listen: { host: '127.0.0.1', port: 0 },
    routes: [
      { match: { prefix: '/limited' }, service: 'users', rateLimit: { rps: 0.1, burst: 4 } },
      { match: { prefix: '/' }, service: 'users', retries: { attempts: 0 } },
    ],
  });
  const started = await Promise.all([
    spawnGateway(['gateway', '--config', config, '--redis', redis.url, '--admin-port', '0', '--admin-token', TOKEN]),
    spawnGateway(['gateway', '--config', config, '--admin-port', '0'], {
      REDIS_URL: redis.url,
      RINGWAY_ADMIN_TOKEN: TOKEN,
    }),
  ]);
  gateways.push(...started);
  for (const g of started) {
    const m = /admin API listening at http:\/\/127\.0\.0\.1:(\d+)/.exec(g.output());
    if (m === null) throw new Error(`no admin port in: ${g.output()}`);
    admins.push(Number(m[1]));
  }
}, 90_000);

afterAll(async () => {
  for (const g of gateways) g.proc.kill('SIGTERM');
  await Promise.all(gateways.map((g) => g.exited));
  await registry?.close();
  await store?.close();
  await up?.close();
  await redis?.stop();
});

async function status(g: GatewayProcess, path: string): Promise<number> {
  const res = await fetch(g.url + path);
  await res.arrayBuffer();
  return res.status;
}

describe.skipIf(!enabled)('two gateways on one Redis', () => {
  it('share the registry: an instance registered once is served by both, and its expiry reaches both', async () => {
    const [a, b] = gateways as [GatewayProcess, GatewayProcess];
    expect(await status(a, '/x')).toBe(503);
    const reg = await registry.register({ service: 'users', id: 'users-1', address: up.url, ttlMs: 600 });
    await until(
      async () => (await status(a, '/x')) === 200 && (await status(b, '/x')) === 200,
      15_000,
      'both gateways to route',
    );
    expect(gateways.every((g) => g.output().includes('store":"redis'))).toBe(true);
    reg.stop(); // heartbeats stop, as when the instance's process dies
    await until(
      async () => (await status(a, '/x')) === 503 && (await status(b, '/x')) === 503,
      15_000,
      'expiry in both',
    );
    await registry.register({ service: 'users', id: 'users-1', address: up.url });
    await until(async () => (await status(a, '/x')) === 200 && (await status(b, '/x')) === 200, 15_000, 'both again');
  });

  it('share the rate limit: one bucket of 4 for requests through either gateway', async () => {
    const [a, b] = gateways as [GatewayProcess, GatewayProcess];
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) statuses.push(await status(i % 2 === 0 ? a : b, '/limited'));
    expect(statuses.filter((s) => s === 200)).toHaveLength(4);
    expect(statuses.slice(4)).toEqual([429, 429, 429, 429]);
  });

  it("a route change through one's admin API goes live on the other", async () => {
    const [a, b] = gateways as [GatewayProcess, GatewayProcess];
    const [adminA, adminB] = admins as [number, number];
    const put = await send(adminA, '/v1/routes', {
      method: 'PUT',
      headers: { ...auth, 'content-type': 'application/json', 'if-none-match': '*' },
      body: JSON.stringify({
        routes: [
          { name: 'moved', match: { prefix: '/moved' }, service: 'fixed', stripPrefix: true },
          { match: { prefix: '/' }, service: 'users', retries: { attempts: 0 } },
        ],
        services: { fixed: { static: [up.url] } },
      }),
    });
    expect(put.status, put.body).toBe(200);
    await until(async () => (await status(b, '/moved/x')) === 200, 15_000, 'gateway B to take the new route');
    expect(await status(a, '/moved/x')).toBe(200);
    const view = await send(adminB, '/v1/routes', { headers: auth });
    expect(JSON.parse(view.body)).toMatchObject({ source: 'config', key: 'gateway/routes', version: 1 });
    expect(view.headers.etag).toBe('"1"');
  });
});
