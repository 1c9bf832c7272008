// Locks over the admin API, on real sockets on 127.0.0.1 (memory store): acquire with a ttl
// and a wait (plain and fair), extend and release by fencing token, inspect; every bad input
// answered with the JSON error shape naming the field; a client that leaves while waiting;
// waits ended by close; and the lock, registry and breaker metrics.
import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ACQUIRE_BODY, EXTEND_BODY, MAX_HTTP_LOCK_TTL_MS } from '../../../server/admin/schemas.js';
import { MAX_LOCK_NAME_LENGTH } from '../../../src/lock/options.js';
import { closedPort, type Reply, send, startUpstream, type TestGateway, type Upstream, until } from '../helpers.js';
import { bearer, startAdminGateway } from './helpers.js';

const TOKEN = 'locks-token-0123456789abcdef';
const auth = bearer(TOKEN);

let gw: TestGateway;
let up: Upstream;
let admin: number;

interface Lease {
  name: string;
  token: number;
  ttlMs: number;
  remainingMs: number;
  expiresAt: number;
}
interface ErrorShape {
  code: string;
  message: string;
  requestId: string;
  field?: string;
}

function json<T = Record<string, unknown>>(r: Reply): T {
  return JSON.parse(r.body) as T;
}
function errorOf(r: Reply): ErrorShape {
  return json<{ error: ErrorShape }>(r).error;
}
const path = (name: string, token?: number | string): string =>
  `/v1/locks/${encodeURIComponent(name)}${token === undefined ? '' : `/${token}`}`;

function call(method: string, url: string, body?: unknown, headers: Record<string, string> = auth): Promise<Reply> {
  return send(admin, url, {
    method,
    headers: body === undefined ? headers : { ...headers, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
}
const acquire = (name: string, body: unknown = { ttlMs: 60_000 }) => call('POST', path(name), body);
const extend = (name: string, token: number | string, body: unknown = { ttlMs: 60_000 }) =>
  call('PUT', path(name, token), body);
const release = (name: string, token: number | string) => call('DELETE', path(name, token));
const inspect = (name: string) => call('GET', path(name));

async function acquired(name: string, body?: unknown): Promise<Lease> {
  const r = await acquire(name, body);
  expect(r.status, r.body).toBe(200);
  return json<Lease>(r);
}

/** The value of a metric series in the Prometheus text, 0 when absent. */
async function metric(series: string): Promise<number> {
  const text = (await call('GET', '/metrics')).body;
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}

beforeAll(async () => {
  up = await startUpstream((_req, res) => res.end('upstream'));
  const down = await closedPort();
  ({ gw, admin } = await startAdminGateway(
    {
      routes: [
        { name: 'down', match: { prefix: '/down' }, service: 'down', retries: { attempts: 0 } },
        { name: 'all', match: { prefix: '/' }, service: 'web' },
      ],
      services: {
        web: { static: [up.url], circuitBreaker: true },
        down: {
          static: [`http://127.0.0.1:${down}`],
          circuitBreaker: { failureThreshold: 1, cooldownMs: 600_000 },
        },
      },
    },
    TOKEN,
  ));
});

afterAll(async () => {
  await gw.close();
  await up.close();
});

describe('acquire, inspect, extend, release', () => {
  it('goes through a lock lifetime by fencing token', async () => {
    const lease = await acquired('life', { ttlMs: 60_000 });
    expect(lease).toMatchObject({ name: 'life', ttlMs: 60_000 });
    expect(lease.token).toBeGreaterThan(0);
    expect(lease.remainingMs).toBeGreaterThan(0);
    expect(lease.remainingMs).toBeLessThanOrEqual(60_000);
    expect(lease.expiresAt).toBeGreaterThan(Date.now() - 1_000);

    const state = await inspect('life');
    expect(state.status).toBe(200);
    expect(state.headers['cache-control']).toBe('no-store');
    expect(json(state)).toMatchObject({ name: 'life', token: lease.token, waiting: 0 });

    const taken = await acquire('life', { ttlMs: 1_000 });
    expect(taken.status).toBe(409);
    expect(errorOf(taken).code).toBe('ERR_LOCK_TIMEOUT');
    expect(errorOf(taken).requestId).toBe(taken.headers['x-request-id']);

    const ext = await extend('life', lease.token, { ttlMs: 120_000 });
    expect(ext.status, ext.body).toBe(200);
    expect(json<Lease>(ext)).toMatchObject({ name: 'life', token: lease.token, ttlMs: 120_000 });
    expect(json<Lease>(ext).remainingMs).toBeGreaterThan(60_000);

    const wrong = await extend('life', lease.token + 1);
    expect(wrong.status).toBe(409);
    expect(errorOf(wrong).code).toBe('ERR_LOCK_NOT_HELD');
    expect(errorOf(wrong).message).toContain(`held with token ${lease.token}`);
    expect(json((await release('life', lease.token + 1)) as Reply)).toEqual({
      name: 'life',
      token: lease.token + 1,
      released: false,
    });

    const rel = await release('life', lease.token);
    expect(rel.status).toBe(200);
    expect(json(rel)).toEqual({ name: 'life', token: lease.token, released: true });
    // Releasing twice is harmless: it says it released nothing.
    const again = await release('life', lease.token);
    expect(again.status).toBe(200);
    expect(json(again)).toEqual({ name: 'life', token: lease.token, released: false });

    const gone = await inspect('life');
    expect(gone.status).toBe(404);
    expect(errorOf(gone).code).toBe('ERR_NOT_FOUND');
    const late = await extend('life', lease.token);
    expect(late.status).toBe(409);
    expect(errorOf(late)).toMatchObject({ code: 'ERR_LOCK_NOT_HELD' });
    expect(errorOf(late).message).toContain('free');

    const next = await acquired('life');
    expect(next.token).toBeGreaterThan(lease.token);
    await release('life', next.token);
  });

  it('answers an unknown lock: inspect 404, extend 409, release released:false', async () => {
    expect(errorOf(await inspect('never-taken')).code).toBe('ERR_NOT_FOUND');
    expect(errorOf(await extend('never-taken', 7)).code).toBe('ERR_LOCK_NOT_HELD');
    expect(json(await release('never-taken', 7))).toEqual({ name: 'never-taken', token: 7, released: false });
  });

  it('a lease that runs out is not held any more; a later holder has a greater token', async () => {
    const first = await acquired('short', { ttlMs: 50 });
    await until(async () => (await inspect('short')).status === 404, 10_000, 'the lease to run out');
    const refused = await extend('short', first.token);
    expect(errorOf(refused).code).toBe('ERR_LOCK_NOT_HELD');
    const second = await acquired('short');
    expect(second.token).toBeGreaterThan(first.token);
    const stale = await extend('short', first.token);
    expect(errorOf(stale).message).toContain(`held with token ${second.token}`);
    expect(json(await release('short', first.token))).toMatchObject({ released: false });
    expect(json(await release('short', second.token))).toMatchObject({ released: true });
  });

  it('takes names that need escaping in a URL, up to the length limit', async () => {
    const astral = '😀'.repeat(MAX_LOCK_NAME_LENGTH / 2);
    for (const name of ['jobs/nightly', 'a b', 'x?y#z&w=1', '€uro', '%41', 'colon:7', astral]) {
      const lease = await acquired(name);
      expect(lease.name, name).toBe(name);
      expect(json(await inspect(name)), name).toMatchObject({ name, token: lease.token });
      expect((await extend(name, lease.token)).status, name).toBe(200);
      expect(json(await release(name, lease.token)), name).toMatchObject({ name, released: true });
    }
  });

  it('a plain waiter gets the lock when it is released', async () => {
    const holder = await acquired('plain');
    const waiting = acquire('plain', { ttlMs: 60_000, waitMs: 60_000 });
    await until(async () => (await metric('ringway_gateway_lock_waiters')) === 1, 10_000, 'the waiter');
    await release('plain', holder.token);
    const got = await waiting;
    expect(got.status, got.body).toBe(200);
    expect(json<Lease>(got).token).toBeGreaterThan(holder.token);
    await release('plain', json<Lease>(got).token);
  });

  it('fair waiters are granted in arrival order', async () => {
    const holder = await acquired('fifo');
    const order: string[] = [];
    const b = acquire('fifo', { ttlMs: 60_000, waitMs: 60_000, fair: true }).then((r) => {
      order.push('b');
      return r;
    });
    await until(async () => json<{ waiting: number }>(await inspect('fifo')).waiting === 1, 10_000, 'b queued');
    const c = acquire('fifo', { ttlMs: 60_000, waitMs: 60_000, fair: true }).then((r) => {
      order.push('c');
      return r;
    });
    await until(async () => json<{ waiting: number }>(await inspect('fifo')).waiting === 2, 10_000, 'c queued');
    await release('fifo', holder.token);
    const rb = await b;
    expect(rb.status, rb.body).toBe(200);
    const tb = json<Lease>(rb).token;
    expect(tb).toBeGreaterThan(holder.token);
    expect(order).toEqual(['b']);
    await release('fifo', tb);
    const rc = await c;
    expect(rc.status, rc.body).toBe(200);
    expect(json<Lease>(rc).token).toBeGreaterThan(tb);
    expect(order).toEqual(['b', 'c']);
    await release('fifo', json<Lease>(rc).token);
  });
});

/** Starts an acquire and returns a function that cuts its connection. */
function leavingAcquire(name: string, body: unknown): () => void {
  const req = httpRequest({
    host: '127.0.0.1',
    port: admin,
    path: path(name),
    method: 'POST',
    headers: { ...auth, 'content-type': 'application/json' },
    agent: false,
  });
  req.on('error', () => {});
  req.end(JSON.stringify(body));
  return () => req.destroy();
}

describe('a client that leaves while waiting', () => {
  it('stops waiting and leaves the fair queue', async () => {
    const holder = await acquired('leave');
    const cut = leavingAcquire('leave', { ttlMs: 60_000, waitMs: 600_000, fair: true });
    await until(async () => json<{ waiting: number }>(await inspect('leave')).waiting === 1, 10_000, 'queued');
    const aborted = await metric('ringway_gateway_lock_operations_total{op="acquire",result="aborted"}');
    cut();
    await until(async () => json<{ waiting: number }>(await inspect('leave')).waiting === 0, 10_000, 'queue left');
    await until(async () => (await metric('ringway_gateway_lock_waiters')) === 0, 10_000, 'no waiter');
    expect(await metric('ringway_gateway_lock_operations_total{op="acquire",result="aborted"}')).toBe(aborted + 1);
    await release('leave', holder.token);
    expect((await inspect('leave')).status).toBe(404);
  });

  it('never keeps the lock, even when the release races the departure', async () => {
    for (let i = 0; i < 10; i++) {
      for (const fair of [true, false]) {
        const name = `race-${i}-${fair}`;
        const holder = await acquired(name);
        const cut = leavingAcquire(name, { ttlMs: 60_000, waitMs: 600_000, fair });
        await until(async () => (await metric('ringway_gateway_lock_waiters')) === 1, 10_000, 'the waiter');
        // Both at once: the grant may land before or after the wait notices the departure.
        cut();
        await release(name, holder.token);
        await until(async () => (await inspect(name)).status === 404, 10_000, `${name} to be free`);
        await until(async () => (await metric('ringway_gateway_lock_waiters')) === 0, 10_000, 'no waiter');
      }
    }
  });
});

describe('bad input', () => {
  it('wants the token on every lock endpoint', async () => {
    for (const [method, url] of [
      ['POST', path('x')],
      ['GET', path('x')],
      ['PUT', path('x', 1)],
      ['DELETE', path('x', 1)],
    ] as const) {
      for (const headers of [{}, { authorization: 'Bearer wrong-token-0123456789ab' }] as Record<string, string>[]) {
        const r = await call(
          method,
          url,
          method === 'POST' || method === 'PUT' ? { ttlMs: 1_000 } : undefined,
          headers,
        );
        expect(r.status, `${method} ${url}`).toBe(401);
        expect(errorOf(r).code).toBe('ERR_UNAUTHORIZED');
      }
    }
    // Nothing was taken by the refused requests.
    expect((await inspect('x')).status).toBe(404);
  });

  it('refuses bodies that fail the schema, naming the field', async () => {
    const cases: [unknown, string][] = [
      [{}, 'body.ttlMs'],
      [{ ttlMs: '1000' }, 'body.ttlMs'],
      [{ ttlMs: 1.5 }, 'body.ttlMs'],
      [{ ttlMs: 9 }, 'body.ttlMs'],
      [{ ttlMs: MAX_HTTP_LOCK_TTL_MS + 1 }, 'body.ttlMs'],
      [{ ttlMs: 1_000, waitMs: -1 }, 'body.waitMs'],
      [{ ttlMs: 1_000, waitMs: 600_001 }, 'body.waitMs'],
      [{ ttlMs: 1_000, waitMs: null }, 'body.waitMs'],
      [{ ttlMs: 1_000, fair: 'yes' }, 'body.fair'],
      [{ ttlMs: 1_000, holder: 'me' }, 'body.holder'],
      [[1000], 'body'],
      ['"ttl"', 'body'],
      [null, 'body'],
    ];
    for (const [body, field] of cases) {
      const r = await acquire('schema', body === null ? 'null' : body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(errorOf(r), JSON.stringify(body)).toMatchObject({ code: 'ERR_INVALID', field });
      expect(errorOf(r).message).toContain(field);
    }
    const lease = await acquired('schema');
    for (const [body, field] of [
      [{}, 'body.ttlMs'],
      [{ ttlMs: 1_000, waitMs: 5 }, 'body.waitMs'],
      [{ ttlMs: -5 }, 'body.ttlMs'],
    ] as const) {
      const r = await extend('schema', lease.token, body);
      expect(errorOf(r), JSON.stringify(body)).toMatchObject({ code: 'ERR_INVALID', field });
    }
    // No body at all.
    const bare = await call('POST', path('schema'));
    expect(errorOf(bare)).toMatchObject({ code: 'ERR_INVALID', field: 'body' });
    await release('schema', lease.token);
  });

  it('refuses malformed JSON, other media types and oversize bodies', async () => {
    const bad = await acquire('m', '{"ttlMs": 1000');
    expect(bad.status).toBe(400);
    expect(errorOf(bad).code).toBe('ERR_BAD_REQUEST');
    const media = await send(admin, path('m'), {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/x-www-form-urlencoded' },
      body: 'ttlMs=1000',
    });
    expect(media.status).toBe(415);
    expect(errorOf(media).code).toBe('ERR_UNSUPPORTED_MEDIA_TYPE');
    const big = await acquire('m', JSON.stringify({ ttlMs: 1_000, pad: 'x'.repeat(70_000) }));
    expect(big.status).toBe(413);
    expect(errorOf(big).code).toBe('ERR_BODY_TOO_LARGE');
    expect((await inspect('m')).status).toBe(404);
  });

  it('refuses bad names and tokens in the path, naming the parameter', async () => {
    const long = 'n'.repeat(MAX_LOCK_NAME_LENGTH + 1);
    expect(errorOf(await acquire(long))).toMatchObject({ code: 'ERR_INVALID', field: 'params.name' });
    expect(errorOf(await inspect(long))).toMatchObject({ code: 'ERR_INVALID', field: 'params.name' });
    // Within the schema's limit in code points, past the store's limit in UTF-16 units.
    const astral = '😀'.repeat(MAX_LOCK_NAME_LENGTH / 2 + 1);
    expect(errorOf(await acquire(astral))).toMatchObject({ code: 'ERR_INVALID', field: 'params.name' });
    expect(errorOf(await release(astral, 1))).toMatchObject({ code: 'ERR_INVALID', field: 'params.name' });
    for (const token of ['0', '-1', 'abc', '1.5', '01', '1e3', '99999999999999999', '9007199254740993']) {
      const r = await extend('tok', token);
      expect(r.status, token).toBe(400);
      expect(errorOf(r), token).toMatchObject({ code: 'ERR_INVALID', field: 'params.token' });
      expect(errorOf(await release('tok', token)), token).toMatchObject({ field: 'params.token' });
    }
    const q = await call('GET', `${path('tok')}?wait=1s`);
    expect(errorOf(q)).toMatchObject({ code: 'ERR_INVALID', field: 'querystring.wait' });
    // An empty name; bad percent-encoding and a name past what the router takes get the
    // JSON shape too.
    expect(errorOf(await call('POST', '/v1/locks/', { ttlMs: 1_000 }))).toMatchObject({ field: 'params.name' });
    const bad = await call('POST', '/v1/locks/x%2', { ttlMs: 1_000 });
    expect(errorOf(bad)).toMatchObject({ code: 'ERR_BAD_REQUEST' });
    const huge = await call('GET', `/v1/locks/${'A'.repeat(9 * MAX_LOCK_NAME_LENGTH + 1)}`);
    expect(errorOf(huge)).toMatchObject({ code: 'ERR_INVALID', field: 'params' });
  });
});

describe('close', () => {
  it('ends the waits running at close with 503, and releases nothing it did not take', async () => {
    const { gw: other, admin: otherAdmin } = await startAdminGateway(
      { routes: [{ match: { prefix: '/' }, service: 'web' }], services: { web: { static: [up.url] } } },
      TOKEN,
    );
    const post = (body: unknown) =>
      send(otherAdmin, '/v1/locks/c', {
        method: 'POST',
        headers: { ...auth, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    const holder = await post({ ttlMs: 60_000 });
    expect(holder.status).toBe(200);
    const waits = [post({ ttlMs: 60_000, waitMs: 600_000 }), post({ ttlMs: 60_000, waitMs: 600_000, fair: true })];
    await until(
      async () =>
        (await send(otherAdmin, '/metrics', { headers: auth })).body.includes('ringway_gateway_lock_waiters 2'),
      10_000,
      'two waiters',
    );
    await other.close();
    for (const w of waits) {
      const r = await w;
      expect(r.status).toBe(503);
      expect(errorOf(r).code).toBe('ERR_UNAVAILABLE');
      expect(errorOf(r).message).toContain('closing');
    }
  });
});

describe('metrics', () => {
  it('counts lock operations by op and result', async () => {
    const before = {
      ok: await metric('ringway_gateway_lock_operations_total{op="acquire",result="ok"}'),
      timeout: await metric('ringway_gateway_lock_operations_total{op="acquire",result="timeout"}'),
      invalid: await metric('ringway_gateway_lock_operations_total{op="acquire",result="invalid"}'),
      extend: await metric('ringway_gateway_lock_operations_total{op="extend",result="ok"}'),
      notHeld: await metric('ringway_gateway_lock_operations_total{op="extend",result="not_held"}'),
      release: await metric('ringway_gateway_lock_operations_total{op="release",result="ok"}'),
      releaseNone: await metric('ringway_gateway_lock_operations_total{op="release",result="not_held"}'),
      inspect: await metric('ringway_gateway_lock_operations_total{op="inspect",result="not_found"}'),
    };
    const lease = await acquired('counted');
    await acquire('counted');
    await acquire('counted', { ttlMs: 'x' });
    await extend('counted', lease.token);
    await extend('counted', lease.token + 1);
    await release('counted', lease.token);
    await release('counted', lease.token);
    await inspect('counted');
    expect(await metric('ringway_gateway_lock_operations_total{op="acquire",result="ok"}')).toBe(before.ok + 1);
    expect(await metric('ringway_gateway_lock_operations_total{op="acquire",result="timeout"}')).toBe(
      before.timeout + 1,
    );
    expect(await metric('ringway_gateway_lock_operations_total{op="acquire",result="invalid"}')).toBe(
      before.invalid + 1,
    );
    expect(await metric('ringway_gateway_lock_operations_total{op="extend",result="ok"}')).toBe(before.extend + 1);
    expect(await metric('ringway_gateway_lock_operations_total{op="extend",result="not_held"}')).toBe(
      before.notHeld + 1,
    );
    expect(await metric('ringway_gateway_lock_operations_total{op="release",result="ok"}')).toBe(before.release + 1);
    expect(await metric('ringway_gateway_lock_operations_total{op="release",result="not_held"}')).toBe(
      before.releaseNone + 1,
    );
    expect(await metric('ringway_gateway_lock_operations_total{op="inspect",result="not_found"}')).toBe(
      before.inspect + 1,
    );
  });

  it('counts registry operations through the admin API by op and result', async () => {
    const put = (body: unknown) => call('PUT', '/v1/services/reg/instances/r-1', body);
    const series = (op: string, result: string) =>
      metric(`ringway_gateway_registry_operations_total{op="${op}",result="${result}"}`);
    const before = {
      register: await series('register', 'ok'),
      renew: await series('renew', 'ok'),
      invalid: await series('register', 'invalid'),
      read: await series('read', 'ok'),
      missing: await series('read', 'not_found'),
      deregister: await series('deregister', 'ok'),
      deregisterMissing: await series('deregister', 'not_found'),
      list: await series('list', 'ok'),
    };
    expect((await put({ address: up.url, ttlMs: 60_000 })).status).toBe(200);
    expect((await put({ address: up.url, ttlMs: 60_000 })).status).toBe(200);
    expect((await put({ address: 5 })).status).toBe(400);
    expect((await call('GET', '/v1/services/reg')).status).toBe(200);
    expect((await call('GET', '/v1/services')).status).toBe(200);
    expect((await call('DELETE', '/v1/services/reg/instances/r-1')).status).toBe(204);
    expect((await call('DELETE', '/v1/services/reg/instances/r-1')).status).toBe(404);
    expect((await call('GET', '/v1/services/reg')).status).toBe(404);
    expect(await series('register', 'ok')).toBe(before.register + 1);
    expect(await series('renew', 'ok')).toBe(before.renew + 1);
    expect(await series('register', 'invalid')).toBe(before.invalid + 1);
    expect(await series('read', 'ok')).toBe(before.read + 1);
    expect(await series('read', 'not_found')).toBe(before.missing + 1);
    expect(await series('list', 'ok')).toBe(before.list + 1);
    expect(await series('deregister', 'ok')).toBe(before.deregister + 1);
    expect(await series('deregister', 'not_found')).toBe(before.deregisterMissing + 1);
  });

  it('reports each breaker state per service, strategy and instance', async () => {
    const text = (await call('GET', '/metrics')).body;
    expect(text).toContain('# TYPE ringway_gateway_breaker_state gauge');
    expect(text).toMatch(/^ringway_gateway_breaker_state\{service="web",strategy="[a-z-]+",upstream="[^"]+"\} 0$/m);
    // One failed request opens the `down` breaker (threshold 1, long cool-down).
    expect((await send(gw.port, '/down')).status).toBeGreaterThanOrEqual(500);
    await until(
      async () =>
        /^ringway_gateway_breaker_state\{service="down",strategy="[a-z-]+",upstream="[^"]+"\} 2$/m.test(
          (await call('GET', '/metrics')).body,
        ),
      10_000,
      'the down breaker to open',
    );
  });
});

describe('OpenAPI', () => {
  it('documents the lock endpoints from the schemas that validate them', async () => {
    const doc = json<{
      paths: Record<string, Record<string, { requestBody?: { content: Record<string, { schema: unknown }> } }>>;
    }>(await send(admin, '/docs/json'));
    const one = doc.paths['/v1/locks/{name}'];
    const two = doc.paths['/v1/locks/{name}/{token}'];
    expect(Object.keys(one ?? {}).sort()).toEqual(['get', 'post']);
    expect(Object.keys(two ?? {}).sort()).toEqual(['delete', 'put']);
    expect(one?.post?.requestBody?.content['application/json']?.schema).toEqual(ACQUIRE_BODY);
    expect(two?.put?.requestBody?.content['application/json']?.schema).toEqual(EXTEND_BODY);
  });
});
