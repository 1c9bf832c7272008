// Two gateways on one Redis (a redis-server this test starts and stops by PID), each with its
// own store and admin API: a registration made through one admin API is seen by the other's
// (and routed to by its proxy), a blocking query on one returns on a write through the other,
// and config written through one is read through the other with the same version; a config
// blocking query on one returns on a write through the other; a schema defined through one
// holds on the other (its next HTTP write at once, its in-process writes once its watch has it).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { INDEX_HEADER } from '../../../server/admin/AdminServer.js';
import { ConfigCenter } from '../../../src/config/ConfigCenter.js';
import { ValidationError } from '../../../src/errors.js';
import { redisStore } from '../../../src/store/redis/RedisStore.js';
import type { Store } from '../../../src/store/Store.js';
import { haveRedisServerBinary, type RedisServer, startRedisServer } from '../../helpers/redis.js';
import { echo, type Reply, send, startUpstream, type TestGateway, type Upstream, until } from '../helpers.js';
import { bearer, startAdminGateway } from './helpers.js';

const enabled = haveRedisServerBinary();
const TOKEN = 'redis-token-0123456789abcdef';
const auth = bearer(TOKEN);

let redis: RedisServer;
const stores: Store[] = [];
const centers: ConfigCenter[] = [];
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
    const config = new ConfigCenter({ store });
    centers.push(config);
    const { gw, admin } = await startAdminGateway(
      { routes: [{ match: { prefix: '/' }, service: 'users', retries: { attempts: 0 } }] },
      TOKEN,
      { store, admin: { config } },
    );
    gateways.push(gw);
    admins.push(admin);
  }
}, 60_000);

afterAll(async () => {
  if (!enabled) return;
  for (const gw of gateways) await gw.close();
  for (const c of centers) await c.close();
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

  it('a blocking query on one gateway returns on a write through the other, for a key and a prefix', async () => {
    const [a, b] = admins as [number, number];
    const put = (key: string, value: unknown): Promise<Reply> =>
      send(a, `/v1/config/${key}`, {
        method: 'PUT',
        headers: { ...auth, 'content-type': 'application/json' },
        body: JSON.stringify(value),
      });
    await put('cross/key', 1);
    const list = await send(b, '/v1/config?prefix=cross/', { headers: auth });
    const index = Number(list.headers[INDEX_HEADER]);
    const onKey = send(b, '/v1/config/cross/key?index=1&wait=20s', { headers: auth });
    const onPrefix = send(b, `/v1/config?prefix=cross/&index=${index}&wait=20s`, { headers: auth });
    const centerB = centers[1] as ConfigCenter;
    await until(() => centerB.health().watches.filter((w) => w.prefix.startsWith('cross/') && w.loaded).length === 2);
    await put('cross/key', 2);
    const [k, p] = await Promise.all([onKey, onPrefix]);
    expect(k.status).toBe(200);
    expect(k.headers[INDEX_HEADER]).toBe('2');
    expect(json(k).value).toBe(2);
    expect(Number(p.headers[INDEX_HEADER])).toBeGreaterThan(index);
    expect(json(p).entries).toMatchObject([{ key: 'cross/key', value: 2, version: 2 }]);
    // History and rollback through B see A's writes.
    const history = json(await send(b, '/v1/config-history/cross/key', { headers: auth }));
    expect((history.versions as { version: number }[]).map((v) => v.version)).toEqual([2, 1]);
    const rb = await send(b, '/v1/config-rollback/cross/key', {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json', 'if-match': '"2"' },
      body: '{"version":1}',
    });
    expect(rb.headers.etag).toBe('"3"');
    expect((await send(a, '/v1/config/cross/key', { headers: auth })).headers.etag).toBe('"3"');
  });

  it('a schema defined through one gateway holds on the other', async () => {
    const [a, b] = admins as [number, number];
    const schema = { type: 'object', properties: { rps: { type: 'integer' } }, required: ['rps'] };
    const defined = await send(a, '/v1/config-schemas/limits/api', {
      method: 'PUT',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify(schema),
    });
    expect(defined.status).toBe(200);
    // B's next write over HTTP is checked against it at once (B reads the schema from the store).
    const refused = await send(b, '/v1/config/limits/api', {
      method: 'PUT',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ rps: 'many' }),
    });
    expect(refused.status).toBe(400);
    expect(JSON.parse(refused.body).error).toMatchObject({ code: 'ERR_INVALID', field: 'body.rps' });
    // And B's config center has it once its watch delivered it: in-process writes obey it too.
    const centerB = centers[1] as ConfigCenter;
    await until(async () => {
      try {
        await centerB.set('limits/api', { rps: 'many' });
        return false;
      } catch (err) {
        return err instanceof ValidationError;
      }
    });
    expect(json(await send(b, '/v1/config-schemas/limits/api', { headers: auth }))).toMatchObject({
      schema,
      version: 1,
    });
    // Deleted through B, A lets the value through again.
    const removed = await send(b, '/v1/config-schemas/limits/api', { method: 'DELETE', headers: auth });
    expect(removed.status).toBe(204);
    const accepted = await send(a, '/v1/config/limits/api', {
      method: 'PUT',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ rps: 'many' }),
    });
    expect(accepted.status).toBe(200);
    const centerA = centers[0] as ConfigCenter;
    await until(async () => {
      try {
        await centerA.set('limits/api', { free: true });
        return true;
      } catch {
        return false;
      }
    });
  });
});
