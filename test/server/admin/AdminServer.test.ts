// The admin API over real sockets on 127.0.0.1: auth, health, metrics, the registry over
// HTTP with blocking queries, and every kind of bad input answered with the JSON error shape.
import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { INDEX_HEADER } from '../../../server/admin/AdminServer.js';
import { REGISTRATION_BODY } from '../../../server/admin/schemas.js';
import {
  type Reply,
  rawRequest,
  send,
  startUpstream,
  statusOf,
  type TestGateway,
  type Upstream,
  until,
} from '../helpers.js';
import { bearer, startAdminGateway } from './helpers.js';

const TOKEN = 'test-token-0123456789abcdef';
const auth = bearer(TOKEN);

let gw: TestGateway;
let up: Upstream;
let admin: number;

function json(r: Reply): Record<string, unknown> {
  return JSON.parse(r.body) as Record<string, unknown>;
}
function errorOf(r: Reply): { code: string; message: string; requestId: string; field?: string } {
  return (json(r) as { error: { code: string; message: string; requestId: string; field?: string } }).error;
}
function put(path: string, body: unknown, headers: Record<string, string> = {}): Promise<Reply> {
  return send(admin, path, {
    method: 'PUT',
    headers: { ...auth, 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

beforeAll(async () => {
  up = await startUpstream((_req, res) => res.end('upstream'));
  ({ gw, admin } = await startAdminGateway(
    {
      routes: [{ name: 'all', match: { prefix: '/' }, service: 'web' }],
      services: { web: { static: [up.url] } },
    },
    TOKEN,
  ));
});

afterAll(async () => {
  await gw.close();
  await up.close();
});

describe('auth', () => {
  it('refuses a missing, wrong, differently sized or malformed token with 401 and the JSON shape', async () => {
    for (const authorization of [
      undefined,
      'Bearer wrong-token-0123456789ab',
      'Bearer x',
      `Bearer ${TOKEN}x`,
      `Basic ${TOKEN}`,
      TOKEN,
      'Bearer ',
    ]) {
      const r = await send(admin, '/v1/services', { headers: authorization === undefined ? {} : { authorization } });
      expect(r.status, String(authorization)).toBe(401);
      expect(r.headers['www-authenticate']).toMatch(/^Bearer/);
      const e = errorOf(r);
      expect(e.code).toBe('ERR_UNAUTHORIZED');
      expect(e.requestId).toBe(r.headers['x-request-id']);
    }
  });

  it('asks for the token before saying whether a path exists', async () => {
    expect((await send(admin, '/no/such/path')).status).toBe(401);
    const r = await send(admin, '/no/such/path', { headers: auth });
    expect(r.status).toBe(404);
    expect(errorOf(r).code).toBe('ERR_NOT_FOUND');
  });

  it('asks for the token first even when the router refuses the path (an over-long parameter)', async () => {
    // Found in review: a 400 for a long parameter told a caller without a token that the route exists.
    const long = `/v1/locks/${'a'.repeat(10_000)}`;
    expect((await send(admin, long)).status).toBe(401);
    expect((await send(admin, long, { headers: auth })).status).toBe(400);
  });

  it("answers what Node's HTTP parser refuses in the JSON error shape", async () => {
    const big = await rawRequest(admin, `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
    expect(statusOf(big)).toBe(431);
    expect(JSON.parse(big.slice(big.indexOf('\r\n\r\n') + 4)).error.code).toBe('ERR_HEADERS_TOO_LARGE');
    const bad = await rawRequest(admin, 'GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n');
    expect(statusOf(bad)).toBe(400);
    expect(JSON.parse(bad.slice(bad.indexOf('\r\n\r\n') + 4)).error.code).toBe('ERR_BAD_REQUEST');
  });

  it('accepts the token with any case of the scheme', async () => {
    expect((await send(admin, '/v1/services', { headers: { authorization: `bearer ${TOKEN}` } })).status).toBe(200);
  });
});

describe('health and metrics', () => {
  it('serves /healthz and /readyz without a token', async () => {
    const h = await send(admin, '/healthz');
    expect(h.status).toBe(200);
    expect(json(h)).toEqual({ status: 'up' });
    const r = await send(admin, '/readyz');
    expect(r.status).toBe(200);
    expect(json(r)).toMatchObject({ status: 'ready', store: 'reachable', routes: 1, listening: true });
  });

  it('serves the gateway metrics in Prometheus text format, with the token only', async () => {
    await send(gw.port, '/x');
    expect((await send(admin, '/metrics')).status).toBe(401);
    const r = await send(admin, '/metrics', { headers: auth });
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toMatch(/^text\/plain/);
    expect(r.body).toMatch(/^ringway_gateway_requests_total\{route="all",status="200"/m);
  });

  it('the proxy port never serves admin routes, whatever the path', async () => {
    for (const path of ['/metrics', '/healthz', '/readyz', '/v1/services', '/v1/services/web', '/docs']) {
      const r = await send(gw.port, path, { headers: auth });
      expect(r.body, path).toBe('upstream');
    }
  });
});

describe('OpenAPI', () => {
  it('serves the document and the interactive page without a token, built from the validating schemas', async () => {
    const r = await send(admin, '/docs/json');
    expect(r.status).toBe(200);
    const doc = json(r) as {
      openapi: string;
      paths: Record<string, Record<string, { requestBody?: { content: Record<string, { schema: unknown }> } }>>;
    };
    expect(doc.openapi).toMatch(/^3\./);
    for (const path of ['/healthz', '/readyz', '/metrics', '/v1/routes', '/v1/services', '/v1/services/{service}']) {
      expect(doc.paths[path], path).toBeDefined();
    }
    const put = doc.paths['/v1/services/{service}/instances/{id}']?.put;
    expect(put?.requestBody?.content['application/json']?.schema).toEqual(REGISTRATION_BODY);
    const page = await send(admin, '/docs/');
    expect(page.status).toBe(200);
    expect(page.body).toContain('<!DOCTYPE html>');
  });
});

describe('routes', () => {
  it('GET /v1/routes shows the live routes and when they went live', async () => {
    const r = await send(admin, '/v1/routes', { headers: auth });
    expect(r.status).toBe(200);
    const body = json(r) as { appliedAt: string; routes: Record<string, unknown>[] };
    expect(Date.parse(body.appliedAt)).toBe(gw.gateway.routes.appliedAt.getTime());
    expect(body.routes).toHaveLength(1);
    expect(body.routes[0]).toMatchObject({ name: 'all', prefix: '/', service: 'web', strategy: 'round-robin' });
    expect((await send(admin, '/v1/routes')).status).toBe(401);
  });
});

describe('registry over HTTP', () => {
  it('registers, lists, heartbeats and deregisters an instance', async () => {
    const r = await put('/v1/services/users/instances/u-1', {
      address: 'http://127.0.0.1:3001',
      tags: ['v2'],
      meta: { lang: 'go' },
      ttlMs: 30_000,
    });
    expect(r.status).toBe(200);
    const body = json(r);
    expect(body).toMatchObject({ service: 'users', id: 'u-1', status: 'registered', ttlMs: 30_000 });
    expect(r.headers[INDEX_HEADER]).toBe(String(body.index));

    const list = await send(admin, '/v1/services', { headers: auth });
    expect(json(list).services).toContain('users');

    const got = await send(admin, '/v1/services/users', { headers: auth });
    expect(got.status).toBe(200);
    expect(json(got)).toMatchObject({
      service: 'users',
      instances: [{ id: 'u-1', address: 'http://127.0.0.1:3001', tags: ['v2'], meta: { lang: 'go' }, healthy: true }],
    });

    const beat = await put('/v1/services/users/instances/u-1', {
      address: 'http://127.0.0.1:3001',
      tags: ['v2'],
      meta: { lang: 'go' },
      ttlMs: 30_000,
    });
    expect(json(beat)).toMatchObject({ status: 'renewed', epoch: body.epoch });

    const changed = await put('/v1/services/users/instances/u-1', { address: 'http://127.0.0.1:3009', ttlMs: 30_000 });
    expect(json(changed)).toMatchObject({ status: 'updated', epoch: body.epoch });

    const del = await send(admin, '/v1/services/users/instances/u-1', { method: 'DELETE', headers: auth });
    expect(del.status).toBe(204);
    const after = await send(admin, '/v1/services/users', { headers: auth });
    expect(after.status).toBe(404);
    const again = await send(admin, '/v1/services/users/instances/u-1', { method: 'DELETE', headers: auth });
    expect(again.status).toBe(404);
    expect(errorOf(again).code).toBe('ERR_NOT_FOUND');
  });

  it('keeps only healthy instances with ?healthy=true', async () => {
    await put('/v1/services/mixed/instances/up', { address: 'http://127.0.0.1:4001' });
    await put('/v1/services/mixed/instances/down', { address: 'http://127.0.0.1:4002', healthy: false });
    const all = await send(admin, '/v1/services/mixed', { headers: auth });
    expect((json(all).instances as { id: string }[]).map((i) => i.id)).toEqual(['down', 'up']);
    const healthy = await send(admin, '/v1/services/mixed?healthy=true', { headers: auth });
    expect((json(healthy).instances as { id: string }[]).map((i) => i.id)).toEqual(['up']);
  });

  it('answers 404 for an unknown service', async () => {
    const r = await send(admin, '/v1/services/nobody-here', { headers: auth });
    expect(r.status).toBe(404);
    expect(errorOf(r)).toMatchObject({ code: 'ERR_NOT_FOUND' });
  });

  it('lets an instance expire when its heartbeats stop', async () => {
    await put('/v1/services/brief/instances/b-1', { address: 'http://127.0.0.1:4000', ttlMs: 200 });
    expect((await send(admin, '/v1/services/brief', { headers: auth })).status).toBe(200);
    const first = await send(admin, '/v1/services/brief', { headers: auth });
    const index = String(json(first).index);
    // Blocks until the expiry changes the index (the registry sweeps every second).
    const r = await send(admin, `/v1/services/brief?index=${index}&wait=10s`, { headers: auth });
    expect(r.status).toBe(200);
    expect(json(r).instances).toEqual([]);
    expect(r.headers[INDEX_HEADER]).not.toBe(index);
  });
});

describe('blocking queries', () => {
  it('answers at once when the index has moved, on change while waiting, and at the end of the wait', async () => {
    const first = await put('/v1/services/blk/instances/a', { address: 'http://127.0.0.1:5001', ttlMs: 60_000 });
    const index = Number(json(first).index);

    // The index given is old: at once.
    const old = await send(admin, `/v1/services/blk?index=${index - 1}&wait=30s`, { headers: auth });
    expect(json(old).index).toBe(index);

    // Current index: blocks until a change.
    let answered = false;
    const waiting = send(admin, `/v1/services/blk?index=${index}&wait=30s`, { headers: auth }).then((r) => {
      answered = true;
      return r;
    });
    await new Promise((r) => setTimeout(r, 150));
    expect(answered).toBe(false);
    await put('/v1/services/blk/instances/b', { address: 'http://127.0.0.1:5002', ttlMs: 60_000 });
    const changed = await waiting;
    expect(changed.status).toBe(200);
    expect(Number(changed.headers[INDEX_HEADER])).toBeGreaterThan(index);
    expect((json(changed).instances as { id: string }[]).map((i) => i.id)).toEqual(['a', 'b']);

    // Current index, nothing changes: the wait ends with the same index.
    const now = Number(changed.headers[INDEX_HEADER]);
    const timedOut = await send(admin, `/v1/services/blk?index=${now}&wait=200ms`, { headers: auth });
    expect(timedOut.status).toBe(200);
    expect(Number(timedOut.headers[INDEX_HEADER])).toBe(now);
  });

  it('a query whose client goes away stops waiting and releases its watch', async () => {
    const first = await put('/v1/services/blkleft/instances/a', { address: 'http://127.0.0.1:5001', ttlMs: 60_000 });
    const index = Number(json(first).index);
    const watchers = () => gw.gateway.registry.health().services.find((s) => s.service === 'blkleft')?.watchers ?? 0;
    const before = watchers();
    const req = httpRequest({
      host: '127.0.0.1',
      port: admin,
      path: `/v1/services/blkleft?index=${index}&wait=5m`,
      headers: auth,
    });
    req.on('error', () => undefined);
    req.end();
    await until(() => watchers() === before + 1, 10_000, 'the query to wait');
    req.destroy();
    await until(() => watchers() === before, 10_000, 'the watch to close');
  });

  it('a query whose client left while the registry was still answering does not wait at all', async () => {
    const registry = gw.gateway.registry;
    const original = registry.instances.bind(registry);
    const slowed = async (...args: Parameters<typeof registry.instances>) => {
      await new Promise((resolve) => setTimeout(resolve, 200));
      return original(...args);
    };
    (registry as { instances: typeof registry.instances }).instances = slowed as typeof registry.instances;
    try {
      const watchers = () => registry.health().services.find((s) => s.service === 'leftearly')?.watchers ?? 0;
      const req = httpRequest({
        host: '127.0.0.1',
        port: admin,
        path: '/v1/services/leftearly?index=0&wait=10m',
        headers: auth,
      });
      req.on('error', () => undefined);
      req.end();
      await new Promise((resolve) => setTimeout(resolve, 50));
      req.destroy();
      await new Promise((resolve) => setTimeout(resolve, 600));
      expect(watchers()).toBe(0);
    } finally {
      (registry as { instances: typeof registry.instances }).instances = original;
    }
  });

  it('many waiting queries raise no listener-leak warning', async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error): void => void warnings.push(w.name);
    process.on('warning', onWarning);
    try {
      await Promise.all(
        Array.from({ length: 15 }, (_, i) =>
          send(admin, `/v1/services/many${i}?index=0&wait=300ms`, { headers: auth }),
        ),
      );
      await new Promise((resolve) => setImmediate(resolve));
    } finally {
      process.off('warning', onWarning);
    }
    expect(warnings).not.toContain('MaxListenersExceededWarning');
  });

  it('refuses bad index and wait values, naming the field', async () => {
    for (const [q, field] of [
      ['index=-1', 'querystring.index'],
      ['index=abc', 'querystring.index'],
      ['wait=5h', 'querystring.wait'],
      ['wait=11m', 'querystring.wait'],
      ['other=1', 'querystring.other'],
    ] as const) {
      const r = await send(admin, `/v1/services/blk?${q}`, { headers: auth });
      expect(r.status, q).toBe(400);
      expect(errorOf(r), q).toMatchObject({ code: 'ERR_INVALID', field });
    }
  });
});

describe('bad input', () => {
  const path = '/v1/services/bad/instances/i-1';

  it('refuses malformed JSON', async () => {
    const r = await put(path, '{"address": ');
    expect(r.status).toBe(400);
    expect(errorOf(r).code).toBe('ERR_BAD_REQUEST');
  });

  it('refuses a body that is not JSON', async () => {
    const r = await put(path, 'address=x', { 'content-type': 'application/x-www-form-urlencoded' });
    expect(r.status).toBe(415);
    expect(errorOf(r).code).toBe('ERR_UNSUPPORTED_MEDIA_TYPE');
  });

  it('refuses wrong types, missing and unknown fields, naming the field', async () => {
    const cases: [unknown, string][] = [
      [{ address: 5 }, 'body.address'],
      [{ address: 'http://x', weight: '2' }, 'body.weight'],
      [{ address: 'http://x', ttlMs: 1.5 }, 'body.ttlMs'],
      [{ address: 'http://x', ttlMs: 10 }, 'body.ttlMs'],
      [{ address: 'http://x', tags: 'v2' }, 'body.tags'],
      [{ address: 'http://x', meta: { a: 1 } }, 'body.meta.a'],
      [{ address: 'http://x', healthy: 'yes' }, 'body.healthy'],
      [{ address: 'http://x', extra: true }, 'body.extra'],
      [{ weight: 1 }, 'body.address'],
      [[], 'body'],
      ['"text"', 'body'],
    ];
    for (const [body, field] of cases) {
      const r = await put(path, typeof body === 'string' ? body : JSON.stringify(body));
      expect(r.status, JSON.stringify(body)).toBe(400);
      const e = errorOf(r);
      expect(e.code).toBe('ERR_INVALID');
      expect(e.field, JSON.stringify(body)).toBe(field);
      expect(e.message).toContain(field);
    }
  });

  it('refuses a name with control characters', async () => {
    const r = await put('/v1/services/bad/instances/a%01b', { address: 'http://x' });
    expect(r.status).toBe(400);
    expect(errorOf(r)).toMatchObject({ code: 'ERR_INVALID', field: 'id' });
  });

  it('refuses an oversize body with 413', async () => {
    const r = await put(path, JSON.stringify({ address: 'http://x', meta: { big: 'x'.repeat(70_000) } }));
    expect(r.status).toBe(413);
    expect(errorOf(r).code).toBe('ERR_BODY_TOO_LARGE');
  });

  it('still serves after all of it', async () => {
    expect((await send(admin, '/healthz')).status).toBe(200);
  });
});
