// A gateway on a Redis store of this test's own (a redis-server it starts, pauses with
// SIGSTOP and kills by PID): a rate-limited route fails open while Redis does not answer or is
// down (bounded by commandTimeoutMs, counted), other routes keep serving, the limit works again
// once Redis is back (also restarted empty); the admin lock API answers 503 ERR_UNAVAILABLE
// meanwhile (no hang) and works again afterwards.
import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StoreRateLimiter } from '../../server/ratelimit/StoreRateLimiter.js';
import type { RedisStore } from '../../src/store/redis/RedisStore.js';
import { redisStore } from '../../src/store/redis/RedisStore.js';
import { haveRedisServerBinary, type RedisServer, startRedisServer } from '../helpers/redis.js';
import { bearer, startAdminGateway } from './admin/helpers.js';
import {
  echo,
  type Reply,
  send,
  startGateway,
  startUpstream,
  type TestGateway,
  type Upstream,
  until,
} from './helpers.js';

const enabled = haveRedisServerBinary();
const TOKEN = 'redis-faults-token-0123456789abcdef';
const auth = bearer(TOKEN);
/** Short, so that a paused Redis fails calls quickly. */
const COMMAND_TIMEOUT_MS = 400;
/** "Not a hang": far above commandTimeoutMs, far below the test timeout. */
const NOT_A_HANG_MS = 5_000;

let redis: RedisServer;
let store: RedisStore;
let up: Upstream;
let gw: TestGateway;
let admin: number;

beforeAll(async () => {
  if (!enabled) return;
  redis = await startRedisServer();
  store = redisStore(redis.url, { commandTimeoutMs: COMMAND_TIMEOUT_MS });
  up = await startUpstream(echo('web-1'));
  ({ gw, admin } = await startAdminGateway(
    {
      routes: [
        {
          match: { prefix: '/limited' },
          service: 'web',
          rateLimit: { rps: 0.01, burst: 2, key: { header: 'x-client' } },
        },
        { match: { prefix: '/' }, service: 'web' },
      ],
      services: { web: { static: [up.url] } },
    },
    TOKEN,
    { store },
  ));
}, 30_000);

afterAll(async () => {
  if (!enabled) return;
  if (redis?.pid) {
    try {
      process.kill(redis.pid, 'SIGCONT');
    } catch {}
  }
  await gw?.close();
  await store?.close();
  await up?.close();
  await redis?.stop();
});

/** A request with its duration. */
async function timed(port: number, path: string, options: Parameters<typeof send>[2] = {}) {
  const t0 = performance.now();
  const r = await send(port, path, options);
  return { ...r, ms: performance.now() - t0 };
}
function call(method: string, path: string, body?: unknown) {
  return timed(admin, path, {
    method,
    headers: body === undefined ? auth : { ...auth, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
}
const code = (r: Reply) => (JSON.parse(r.body) as { error?: { code?: string } }).error?.code;
const lock = (name: string, token?: number) =>
  `/v1/locks/${encodeURIComponent(name)}${token === undefined ? '' : `/${token}`}`;
const failures = () => (gw.gateway.rateLimiter as StoreRateLimiter).failures;

/** Requests through the rate-limited route with a client key of their own, statuses in order. */
async function burst(key: string, n: number): Promise<{ status: number; ms: number }[]> {
  const out = [];
  for (let i = 0; i < n; i++) {
    const r = await timed(gw.port, '/limited', { headers: { 'x-client': key } });
    out.push({ status: r.status, ms: r.ms });
  }
  return out;
}

/** Every lock endpoint answers 503 ERR_UNAVAILABLE without hanging. */
async function expectLocksUnavailable(held: number): Promise<void> {
  const replies = await Promise.all([
    call('POST', lock('faults'), { ttlMs: 10_000 }),
    call('POST', lock('faults-wait'), { ttlMs: 10_000, waitMs: 1_000 }),
    call('GET', lock('held')),
    call('PUT', lock('held', held), { ttlMs: 10_000 }),
    call('DELETE', lock('held', held)),
  ]);
  for (const r of replies) {
    expect(r.status, r.body).toBe(503);
    expect(code(r), r.body).toBe('ERR_UNAVAILABLE');
    expect(r.headers['content-type']).toMatch(/application\/json/);
    expect(r.ms).toBeLessThan(NOT_A_HANG_MS);
  }
}

describe.skipIf(!enabled)('a gateway on Redis while Redis fails', () => {
  it('paused (SIGSTOP): the rate limit fails open within commandTimeoutMs, locks answer 503; both work after SIGCONT', async () => {
    // The limit works: a bucket of 2.
    expect((await burst('paused', 3)).map((r) => r.status)).toEqual([200, 200, 429]);
    const held = JSON.parse((await call('POST', lock('held'), { ttlMs: 60_000 })).body) as { token: number };
    expect(held.token).toBeGreaterThan(0);

    process.kill(redis.pid, 'SIGSTOP');
    try {
      const before = failures();
      const limited = await burst('paused', 3);
      // Fails open: let through (counted), after about commandTimeoutMs, never a hang.
      for (const r of limited) {
        expect(r.status).toBe(200);
        expect(r.ms).toBeLessThan(NOT_A_HANG_MS);
      }
      expect(failures() - before).toBe(3);
      // ...and an operator sees it in /metrics.
      const scraped = (await gw.gateway.metrics?.registry.metrics()) ?? '';
      expect(scraped).toMatch(new RegExp(`^ringway_gateway_rate_limit_store_failures_total ${failures()}$`, 'm'));
      // Other routes go on.
      const other = await timed(gw.port, '/other');
      expect(other.status).toBe(200);
      expect(other.ms).toBeLessThan(NOT_A_HANG_MS);
      await expectLocksUnavailable(held.token);
    } finally {
      process.kill(redis.pid, 'SIGCONT');
    }

    // Back: the bucket kept its state (still empty), and the lock API works again.
    await until(async () => (await call('GET', lock('held'))).status === 200, 10_000, 'the lock API to answer again');
    expect((await burst('paused', 1)).map((r) => r.status)).toEqual([429]);
    const state = await call('GET', lock('held'));
    expect(JSON.parse(state.body)).toMatchObject({ token: held.token });
    expect((await call('DELETE', lock('held', held.token))).status).toBe(200);
  }, 30_000);

  it('an acquire that failed while Redis was paused leaves no holder or waiter behind once Redis answers again', async () => {
    process.kill(redis.pid, 'SIGSTOP');
    let replies: Reply[];
    try {
      replies = await Promise.all([
        call('POST', lock('ghost-plain'), { ttlMs: 20_000 }),
        call('POST', lock('ghost-fair'), { ttlMs: 20_000, waitMs: 800, fair: true }),
      ]);
    } finally {
      process.kill(redis.pid, 'SIGCONT');
    }
    for (const r of replies) {
      expect(r.status, r.body).toBe(503);
      expect(code(r)).toBe('ERR_UNAVAILABLE');
    }
    // The scripts sent before the pause may run late, after SIGCONT; what they got is given back.
    await until(async () => (await call('GET', lock('ghost-plain'))).status === 404, 5_000, 'ghost-plain to be free');
    await until(async () => (await call('GET', lock('ghost-fair'))).status === 404, 5_000, 'ghost-fair to be free');
    for (const name of ['ghost-plain', 'ghost-fair']) {
      const r = await call('POST', lock(name), { ttlMs: 10_000, waitMs: 2_000 });
      expect(r.status, `${name}: ${r.body}`).toBe(200);
      expect(r.ms).toBeLessThan(NOT_A_HANG_MS);
      await call('DELETE', lock(name, (JSON.parse(r.body) as { token: number }).token));
    }
    const metrics = (await call('GET', '/metrics')).body;
    expect(metrics).toMatch(/ringway_gateway_lock_operations_total\{op="acquire",result="unavailable"\} [1-9]/);
  }, 30_000);

  it('while paused, a body waits with its request and arrives whole; a client that leaves mid-take is not forwarded', async () => {
    process.kill(redis.pid, 'SIGSTOP');
    try {
      const seen = up.seen.length;
      const body = 'x'.repeat(200_000);
      const posted = await timed(gw.port, '/limited/upload', {
        method: 'POST',
        headers: { 'x-client': 'body', 'content-type': 'text/plain', 'content-length': String(body.length) },
        body,
      });
      expect(posted.status, posted.body).toBe(200);
      expect(JSON.parse(posted.body)).toMatchObject({ bodyBytes: body.length });
      expect(up.seen.length).toBe(seen + 1);

      // A client that leaves while its take waits on the paused Redis.
      const left = new Promise<void>((resolve) => {
        const req = httpRequest({
          host: '127.0.0.1',
          port: gw.port,
          path: '/limited/left',
          headers: { 'x-client': 'left' },
          agent: false,
        });
        req.on('error', () => resolve());
        req.end();
        setTimeout(() => {
          req.destroy();
          resolve();
        }, 100);
      });
      await left;
      await new Promise((r) => setTimeout(r, COMMAND_TIMEOUT_MS + 300));
      expect(up.seen.filter((x) => x.url === '/limited/left')).toHaveLength(0);
      const metrics = await gw.gateway.metrics?.registry.metrics();
      expect(metrics).toMatch(/ringway_gateway_in_flight_requests 0/);
    } finally {
      process.kill(redis.pid, 'SIGCONT');
    }
  }, 30_000);

  it('a gateway closing while a take waits on a paused Redis still answers that request (it is in flight)', async () => {
    const own = redisStore(redis.url, { commandTimeoutMs: COMMAND_TIMEOUT_MS });
    const second = await startGateway(
      {
        routes: [{ match: { prefix: '/' }, service: 'web', rateLimit: { rps: 0.01, burst: 2 } }],
        services: { web: { static: [up.url] } },
      },
      { store: own },
    );
    try {
      expect((await timed(second.port, '/warm')).status).toBe(200);
      process.kill(redis.pid, 'SIGSTOP');
      try {
        const pending = timed(second.port, '/draining');
        await new Promise((r) => setTimeout(r, 100));
        const closed = second.close();
        const r = await pending;
        await closed;
        expect(r.status, r.body).toBe(200);
        expect(r.ms).toBeLessThan(NOT_A_HANG_MS);
      } finally {
        process.kill(redis.pid, 'SIGCONT');
      }
    } finally {
      await second.close().catch(() => {});
      await own.close();
    }
  }, 30_000);

  it('a waiter whose wait spans a pause keeps waiting and gets the lock when it is released', async () => {
    for (const fair of [false, true]) {
      const name = `span-${fair}`;
      const holder = JSON.parse((await call('POST', lock(name), { ttlMs: 60_000 })).body) as { token: number };
      const waiting = call('POST', lock(name), { ttlMs: 10_000, waitMs: 8_000, fair });
      await new Promise((r) => setTimeout(r, 200));
      process.kill(redis.pid, 'SIGSTOP');
      await new Promise((r) => setTimeout(r, 1_200));
      process.kill(redis.pid, 'SIGCONT');
      await until(async () => (await call('GET', lock(name))).status === 200, 5_000, 'the lock API to answer again');
      expect((await call('DELETE', lock(name, holder.token))).status).toBe(200);
      const got = await waiting;
      expect(got.status, `fair=${fair}: ${got.body}`).toBe(200);
      const token = (JSON.parse(got.body) as { token: number }).token;
      expect(token).toBeGreaterThan(holder.token);
      await call('DELETE', lock(name, token));
    }
  }, 30_000);

  it('down (killed), then restarted empty: fails open at once, locks answer 503; both work again after', async () => {
    expect((await burst('down', 3)).map((r) => r.status)).toEqual([200, 200, 429]);
    const held = JSON.parse((await call('POST', lock('held'), { ttlMs: 60_000 })).body) as { token: number };

    await redis.stop();
    const before = failures();
    const limited = await burst('down', 3);
    for (const r of limited) {
      expect(r.status).toBe(200);
      expect(r.ms).toBeLessThan(NOT_A_HANG_MS);
    }
    expect(failures() - before).toBe(3);
    expect((await timed(gw.port, '/other')).status).toBe(200);
    await expectLocksUnavailable(held.token);

    await redis.start();
    await until(
      async () => (await call('GET', lock('anything'))).status === 404,
      10_000,
      'the lock API to answer again',
    );
    // The restarted Redis lost the lease: the old token holds nothing.
    const stale = await call('PUT', lock('held', held.token), { ttlMs: 10_000 });
    expect(stale.status, stale.body).toBe(409);
    expect(code(stale)).toBe('ERR_LOCK_NOT_HELD');
    // Empty after the restart: the bucket starts full again and limits again.
    expect((await burst('down', 3)).map((r) => r.status)).toEqual([200, 200, 429]);
    const again = await call('POST', lock('after'), { ttlMs: 10_000 });
    expect(again.status, again.body).toBe(200);
    const token = (JSON.parse(again.body) as { token: number }).token;
    expect((await call('PUT', lock('after', token), { ttlMs: 10_000 })).status).toBe(200);
    expect(JSON.parse((await call('DELETE', lock('after', token))).body)).toMatchObject({ released: true });
  }, 30_000);
});
