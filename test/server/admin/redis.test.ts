// Two gateways on one Redis (a redis-server this test starts and stops by PID), each with its
// own store and admin API: a registration made through one admin API is seen by the other's
// (and routed to by its proxy), a blocking query on one returns on a write through the other,
// and config written through one is read through the other with the same version.
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redisStore } from '../../../src/store/redis/RedisStore.js';
import type { Store } from '../../../src/store/Store.js';
import { haveRedisServerBinary, type RedisServer, startRedisServer } from '../../helpers/redis.js';
import {
  echo,
  type Reply,
  send,
  startGateway,
  startUpstream,
  type TestGateway,
  type Upstream,
  until,
} from '../helpers.js';

const enabled = haveRedisServerBinary();
const TOKEN = 'redis-token-0123456789abcdef';
const auth = { authorization: `Bearer ${TOKEN}` };

let redis: RedisServer;
const stores: Store[] = [];
const gateways: TestGateway[] = [];
const admins: number[] = [];
let up: Upstream;

function json(r: Reply): Record<string, unknown> {
  return JSON.parse(r.body) as Record<string, unknown>;
}

beforeAll(async () => {
  if (!enabled) return;
  redis = await startRedisServer();
  up = await startUpstream(echo('users-1'));
  for (let i = 0; i < 2; i++) {
    const store = redisStore(redis.url);
    stores.push(store);
    const gw = await startGateway(
      { routes: [{ match: { prefix: '/' }, service: 'users', retries: { attempts: 0 } }] },
      { store, admin: { port: 0, host: '127.0.0.1', token: TOKEN } },
    );
    gateways.push(gw);
    const server = gw.gateway.admin?.app.server;
    if (server === undefined) throw new Error('no admin server');
    admins.push((server.address() as AddressInfo).port);
  }
}, 60_000);

afterAll(async () => {
  if (!enabled) return;
  for (const gw of gateways) await gw.close();
  for (const s of stores) await s.close();
  await up?.close();
  await redis?.stop();
});

describe.skipIf(!enabled)('two gateways on one Redis, through the admin API', () => {
  it('a registration through one is seen and routed to by the other; blocking queries cross gateways', async () => {
    const [a, b] = admins as [number, number];
    const before = await send(b, '/v1/services/users?index=0&wait=1s', { headers: auth });
    const index = Number(before.headers['x-ringway-index']);
    const waiting = send(b, `/v1/services/users?index=${index}&wait=20s`, { headers: auth });
    const put = await send(a, '/v1/services/users/instances/users-1', {
      method: 'PUT',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ address: up.url, ttlMs: 30_000 }),
    });
    expect(put.status).toBe(200);
    const changed = await waiting;
    expect(changed.status).toBe(200);
    expect((json(changed).instances as { id: string }[]).map((i) => i.id)).toEqual(['users-1']);
    const proxyB = (gateways[1] as TestGateway).port;
    await until(async () => (await send(proxyB, '/hello')).status === 200, 10_000, 'gateway B to route to users-1');
    expect(up.seen.length).toBeGreaterThan(0);
  });

  it('config written through one is read through the other with the same ETag', async () => {
    const [a, b] = admins as [number, number];
    const w = await send(a, '/v1/config/shared/flag', {
      method: 'PUT',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ on: true }),
    });
    expect(w.status).toBe(200);
    const r = await send(b, '/v1/config/shared/flag', { headers: auth });
    expect(r.status).toBe(200);
    expect(r.headers.etag).toBe(w.headers.etag);
    expect(json(r).value).toEqual({ on: true });
    const conflict = await send(b, '/v1/config/shared/flag', {
      method: 'PUT',
      headers: { ...auth, 'content-type': 'application/json', 'if-match': '"999"' },
      body: '1',
    });
    expect(conflict.status).toBe(412);
  });
});
