// Two gateways on one Redis (a redis-server this test starts and stops by PID), each with its
// own store and admin API: a lock taken through A's admin API blocks B's acquires, B sees its
// token, a waiter on B gets it when A releases it, the (name, token) handle extends and
// releases through either gateway, and fair waiters on both gateways are served in order.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redisStore } from '../../../src/store/redis/RedisStore.js';
import type { Store } from '../../../src/store/Store.js';
import { haveRedisServerBinary, type RedisServer, startRedisServer } from '../../helpers/redis.js';
import { type Reply, send, type TestGateway, until } from '../helpers.js';
import { bearer, startAdminGateway } from './helpers.js';

const enabled = haveRedisServerBinary();
const TOKEN = 'redis-locks-token-0123456789abcdef';
const auth = bearer(TOKEN);

let redis: RedisServer;
const stores: Store[] = [];
const gateways: TestGateway[] = [];
let a: number;
let b: number;

interface Lease {
  name: string;
  token: number;
  ttlMs: number;
}

function json<T = Record<string, unknown>>(r: Reply): T {
  return JSON.parse(r.body) as T;
}
function call(port: number, method: string, path: string, body?: unknown): Promise<Reply> {
  return send(port, path, {
    method,
    headers: body === undefined ? auth : { ...auth, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
}
const lock = (name: string, token?: number) =>
  `/v1/locks/${encodeURIComponent(name)}${token === undefined ? '' : `/${token}`}`;

beforeAll(async () => {
  if (!enabled) return;
  redis = await startRedisServer();
  const ports: number[] = [];
  for (let i = 0; i < 2; i++) {
    const store = redisStore(redis.url);
    stores.push(store);
    const { gw, admin } = await startAdminGateway(
      { routes: [{ match: { prefix: '/' }, service: 'web' }], services: { web: { static: ['http://127.0.0.1:1'] } } },
      TOKEN,
      { store },
    );
    gateways.push(gw);
    ports.push(admin);
  }
  [a, b] = ports as [number, number];
}, 60_000);

afterAll(async () => {
  if (!enabled) return;
  for (const gw of gateways) await gw.close();
  for (const s of stores) await s.close();
  await redis?.stop();
});

describe.skipIf(!enabled)('two gateways on one Redis share locks through their admin APIs', () => {
  it("a lock taken through A blocks B's acquires; B waits and gets it when A releases it", async () => {
    const taken = await call(a, 'POST', lock('orders/7'), { ttlMs: 60_000 });
    expect(taken.status, taken.body).toBe(200);
    const first = json<Lease>(taken);

    const refused = await call(b, 'POST', lock('orders/7'), { ttlMs: 60_000 });
    expect(refused.status).toBe(409);
    expect(json<{ error: { code: string } }>(refused).error.code).toBe('ERR_LOCK_TIMEOUT');
    expect(json(await call(b, 'GET', lock('orders/7')))).toMatchObject({ name: 'orders/7', token: first.token });

    const waiting = call(b, 'POST', lock('orders/7'), { ttlMs: 60_000, waitMs: 60_000 });
    await until(
      async () => (await call(b, 'GET', '/metrics')).body.includes('ringway_gateway_lock_waiters 1'),
      10_000,
      'B to wait',
    );
    const released = await call(a, 'DELETE', lock('orders/7', first.token));
    expect(json(released)).toMatchObject({ released: true });
    const got = await waiting;
    expect(got.status, got.body).toBe(200);
    const second = json<Lease>(got);
    expect(second.token).toBeGreaterThan(first.token);

    // A's stale token can do nothing to B's lease.
    const stale = await call(a, 'PUT', lock('orders/7', first.token), { ttlMs: 60_000 });
    expect(stale.status).toBe(409);
    expect(json<{ error: { code: string } }>(stale).error.code).toBe('ERR_LOCK_NOT_HELD');
    expect(json(await call(a, 'DELETE', lock('orders/7', first.token)))).toMatchObject({ released: false });
    expect(json(await call(a, 'GET', lock('orders/7')))).toMatchObject({ token: second.token });

    // The (name, token) handle works through either gateway.
    const extended = await call(a, 'PUT', lock('orders/7', second.token), { ttlMs: 90_000 });
    expect(extended.status, extended.body).toBe(200);
    expect(json(extended)).toMatchObject({ token: second.token, ttlMs: 90_000 });
    expect(json(await call(a, 'DELETE', lock('orders/7', second.token)))).toMatchObject({ released: true });
    expect(json(await call(b, 'DELETE', lock('orders/7', second.token)))).toMatchObject({ released: false });
    expect((await call(b, 'GET', lock('orders/7'))).status).toBe(404);
  });

  it('fair waiters on both gateways are granted in arrival order', async () => {
    const holder = json<Lease>(await call(a, 'POST', lock('fifo'), { ttlMs: 60_000 }));
    const queued = async (n: number) =>
      until(
        async () => json<{ waiting: number }>(await call(a, 'GET', lock('fifo'))).waiting === n,
        10_000,
        `${n} queued`,
      );
    const order: string[] = [];
    const onB = call(b, 'POST', lock('fifo'), { ttlMs: 60_000, waitMs: 60_000, fair: true }).then((r) => {
      order.push('b');
      return r;
    });
    await queued(1);
    const onA = call(a, 'POST', lock('fifo'), { ttlMs: 60_000, waitMs: 60_000, fair: true }).then((r) => {
      order.push('a');
      return r;
    });
    await queued(2);
    await call(a, 'DELETE', lock('fifo', holder.token));
    const rb = json<Lease>(await onB);
    expect(rb.token).toBeGreaterThan(holder.token);
    expect(order).toEqual(['b']);
    await call(a, 'DELETE', lock('fifo', rb.token));
    const ra = json<Lease>(await onA);
    expect(ra.token).toBeGreaterThan(rb.token);
    expect(order).toEqual(['b', 'a']);
    await call(b, 'DELETE', lock('fifo', ra.token));
  });
});
