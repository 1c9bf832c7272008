// The gateway against real HTTP servers on loopback: routing, rewriting, headers, request ids,
// errors, body limits and rate limits.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rewritePath } from '../../server/gateway.js';
import { closedPort, echo, send, startGateway, startUpstream, type TestGateway, type Upstream } from './helpers.js';

interface Echo {
  name: string;
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
  bodyBytes: number;
}

describe('gateway: routing and headers', () => {
  let users: Upstream;
  let admin: Upstream;
  let canary: Upstream;
  let gw: TestGateway;

  beforeAll(async () => {
    users = await startUpstream(echo('users'));
    admin = await startUpstream(echo('admin'));
    canary = await startUpstream(echo('canary'));
    gw = await startGateway({
      proxy: { via: true },
      routes: [
        { match: { prefix: '/api/users', headers: { 'x-canary': 'yes' } }, service: 'canary' },
        { match: { prefix: '/api/users', methods: ['GET', 'POST'] }, service: 'users', stripPrefix: true },
        { match: { prefix: '/v1', host: '*.example.com' }, service: 'users', rewritePrefix: '/internal/v2' },
        { match: { prefix: '/admin' }, service: 'admin', preserveHost: true },
      ],
      services: {
        users: { static: [users.url] },
        admin: { static: [admin.url] },
        canary: { static: [canary.url] },
      },
    });
  });

  afterAll(async () => {
    await gw.close();
    await Promise.all([users.close(), admin.close(), canary.close()]);
  });

  async function get(
    path: string,
    headers: Record<string, string> = {},
  ): Promise<{ status: number; body: Echo; headers: Headers }> {
    const res = await fetch(gw.url + path, { headers });
    return { status: res.status, body: (await res.json()) as Echo, headers: res.headers };
  }

  it('routes by prefix and strips it, keeping the query', async () => {
    const r = await get('/api/users/42?fields=a,b');
    expect(r.status).toBe(200);
    expect(r.body.name).toBe('users');
    expect(r.body.url).toBe('/42?fields=a,b');
    expect((await get('/api/users')).body.url).toBe('/');
  });

  it('routes by method: a method the route does not list gets 404', async () => {
    const res = await fetch(`${gw.url}/api/users/1`, { method: 'DELETE' });
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('ERR_NO_ROUTE');
  });

  it('routes by header before the general route', async () => {
    expect((await get('/api/users/1', { 'x-canary': 'yes' })).body.name).toBe('canary');
    expect((await get('/api/users/1', { 'x-canary': 'no' })).body.name).toBe('users');
  });

  it('routes by host (wildcard) and rewrites the prefix', async () => {
    const viaHost = await send(gw.port, '/v1/items/9', { headers: { host: 'api.example.com' } });
    expect(viaHost.status).toBe(200);
    expect((JSON.parse(viaHost.body) as Echo).url).toBe('/internal/v2/items/9');
    expect((await fetch(`${gw.url}/v1/items/9`)).status).toBe(404); // Host 127.0.0.1 does not match
  });

  it('sets X-Forwarded-For/-Proto/-Host, X-Request-Id and Via, and strips hop-by-hop headers both ways', async () => {
    const r = await send(gw.port, '/admin/x', {
      headers: {
        connection: 'keep-alive, x-hop',
        'x-hop': 'secret',
        'keep-alive': 'timeout=5',
        te: 'trailers',
        'x-forwarded-for': '203.0.113.7',
        'x-forwarded-proto': 'https',
      },
    });
    const h = (JSON.parse(r.body) as Echo).headers;
    expect(h['x-hop']).toBeUndefined();
    expect(h['keep-alive']).toBeUndefined();
    expect(h.te).toBeUndefined();
    expect(h['x-forwarded-for']).toBe('203.0.113.7, 127.0.0.1');
    expect(h['x-forwarded-proto']).toBe('http');
    expect(h['x-forwarded-host']).toBe(`127.0.0.1:${gw.port}`);
    expect(h.host).toBe(`127.0.0.1:${gw.port}`); // preserveHost
    expect(h.via).toBe('1.1 ringway');
    expect(h['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(r.headers['x-request-id']).toBe(h['x-request-id']);
    expect(r.headers.via).toBe('1.1 ringway');
    // Without preserveHost the upstream sees its own host.
    expect((await get('/api/users/1')).body.headers.host).toBe(`127.0.0.1:${users.port}`);
  });

  it('keeps a well-formed incoming request id and replaces a malformed one', async () => {
    const kept = await get('/api/users/1', { 'x-request-id': 'trace-abc.123' });
    expect(kept.body.headers['x-request-id']).toBe('trace-abc.123');
    expect(kept.headers.get('x-request-id')).toBe('trace-abc.123');
    const replaced = await get('/api/users/1', { 'x-request-id': 'has spaces and <tags>' });
    expect(replaced.body.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('answers 404 with the JSON error and the request id', async () => {
    const res = await fetch(`${gw.url}/nowhere`);
    expect(res.status).toBe(404);
    const body = (await res.json()) as { error: { code: string; message: string; requestId: string } };
    expect(body.error.code).toBe('ERR_NO_ROUTE');
    expect(body.error.requestId).toBe(res.headers.get('x-request-id'));
    expect(res.headers.get('content-type')).toContain('application/json');
  });

  it('counts requests by route, status and upstream, and latency by route, in Prometheus format', async () => {
    for (let i = 0; i < 3; i++) await (await fetch(`${gw.url}/api/users/m`)).arrayBuffer();
    await (await fetch(`${gw.url}/nowhere`)).arrayBuffer();
    const text = await (gw.gateway.metrics as NonNullable<typeof gw.gateway.metrics>).registry.metrics();
    const line = new RegExp(
      `^ringway_gateway_requests_total\\{route="1:/api/users",status="200",upstream="${users.url.replaceAll('.', '\\.')}"\\} (\\d+)$`,
      'm',
    );
    expect(Number(line.exec(text)?.[1])).toBeGreaterThanOrEqual(3);
    expect(text).toMatch(/^# TYPE ringway_gateway_request_duration_seconds histogram$/m);
    expect(text).toMatch(/^ringway_gateway_request_duration_seconds_bucket\{route="1:\/api\/users",le="\+Inf"\} \d+$/m);
    expect(text).toMatch(/^ringway_gateway_request_duration_seconds_count\{route="1:\/api\/users"\} \d+$/m);
    expect(text).toMatch(/^ringway_gateway_rejected_total\{code="ERR_NO_ROUTE"\} \d+$/m);
    expect(text).toMatch(/^# TYPE ringway_gateway_in_flight_requests gauge$/m);
    expect(text).toMatch(/^ringway_gateway_in_flight_requests 0$/m);
  });

  it('forwards request bodies and every method the route allows', async () => {
    const res = await fetch(`${gw.url}/api/users/7`, { method: 'POST', body: 'x'.repeat(10_000) });
    const body = (await res.json()) as Echo;
    expect(body.method).toBe('POST');
    expect(body.bodyBytes).toBe(10_000);
  });
});

describe('gateway: errors, body limits, rate limits', () => {
  let up: Upstream;
  let gw: TestGateway;
  let deadPort: number;

  beforeAll(async () => {
    up = await startUpstream(echo('up'));
    deadPort = await closedPort();
    gw = await startGateway({
      routes: [
        { match: { prefix: '/small' }, service: 'up', bodyLimit: 1000 },
        { match: { prefix: '/limited' }, service: 'up', rateLimit: { rps: 0.5, burst: 2 } },
        { match: { prefix: '/keyed' }, service: 'up', rateLimit: { rps: 0.5, burst: 1, key: { header: 'x-api-key' } } },
        { match: { prefix: '/empty' }, service: 'nobody', timeoutMs: 600_000 },
        { match: { prefix: '/dead' }, service: 'dead', retries: { attempts: 0 } },
        { match: { prefix: '/' }, service: 'up' },
      ],
      services: { up: { static: [up.url] }, dead: { static: [`http://127.0.0.1:${deadPort}`] } },
    });
  });

  afterAll(async () => {
    await gw.close();
    await up.close();
  });

  it('413 for a declared body over the limit, without reading or forwarding it', async () => {
    const before = up.seen.length;
    const res = await fetch(`${gw.url}/small`, { method: 'POST', body: 'x'.repeat(1001) });
    expect(res.status).toBe(413);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('ERR_BODY_TOO_LARGE');
    expect(up.seen.length).toBe(before);
  });

  it('413 for a chunked body that grows past the limit', async () => {
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < 10; i++) controller.enqueue(new Uint8Array(500));
        controller.close();
      },
    });
    const res = await fetch(`${gw.url}/small`, { method: 'PUT', body: stream, duplex: 'half' } as RequestInit);
    expect(res.status).toBe(413);
  });

  it('a 1 MiB default limit applies to routes without bodyLimit', async () => {
    expect((await fetch(`${gw.url}/x`, { method: 'POST', body: new Uint8Array(1024 * 1024) })).status).toBe(200);
    expect((await fetch(`${gw.url}/x`, { method: 'POST', body: new Uint8Array(1024 * 1024 + 1) })).status).toBe(413);
  });

  it('429 with Retry-After once the bucket is empty', async () => {
    const statuses: number[] = [];
    let retryAfter: string | null = null;
    for (let i = 0; i < 3; i++) {
      const res = await fetch(`${gw.url}/limited`);
      statuses.push(res.status);
      if (res.status === 429) {
        retryAfter = res.headers.get('retry-after');
        expect(((await res.json()) as { error: { code: string } }).error.code).toBe('ERR_RATE_LIMITED');
      } else {
        await res.arrayBuffer();
      }
    }
    expect(statuses).toEqual([200, 200, 429]);
    expect(Number(retryAfter)).toBeGreaterThanOrEqual(1);
  });

  it('rate limits by header value when configured', async () => {
    const a1 = await fetch(`${gw.url}/keyed`, { headers: { 'x-api-key': 'a' } });
    const a2 = await fetch(`${gw.url}/keyed`, { headers: { 'x-api-key': 'a' } });
    const b1 = await fetch(`${gw.url}/keyed`, { headers: { 'x-api-key': 'b' } });
    expect([a1.status, a2.status, b1.status]).toEqual([200, 429, 200]);
  });

  it('503 at once when a service has no instance (the route timeout is ten minutes)', async () => {
    const res = await fetch(`${gw.url}/empty`);
    expect(res.status).toBe(503);
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('ERR_NO_ENDPOINT');
    expect(body.error.message).toContain('nobody');
  });

  it('502 when the upstream refuses the connection', async () => {
    const res = await fetch(`${gw.url}/dead`);
    expect(res.status).toBe(502);
    const body = (await res.json()) as { error: { code: string; message: string; requestId: string } };
    expect(body.error.code).toBe('ERR_UPSTREAM_FAILURE');
    expect(body.error.message).toContain('ECONNREFUSED');
    expect(body.error.requestId).toBe(res.headers.get('x-request-id'));
  });
});

describe('rewritePath', () => {
  const route = (prefix: string, rewritePrefix: string | undefined) =>
    ({ prefix, rewritePrefix }) as Parameters<typeof rewritePath>[0];
  it('strips and rewrites prefixes on segment boundaries', () => {
    expect(rewritePath(route('/api', '/'), '/api/x/y')).toBe('/x/y');
    expect(rewritePath(route('/api', '/'), '/api')).toBe('/');
    expect(rewritePath(route('/api', '/v2'), '/api/x')).toBe('/v2/x');
    expect(rewritePath(route('/api', '/v2'), '/api')).toBe('/v2');
    expect(rewritePath(route('/api', '/v2'), '/api/')).toBe('/v2/');
    expect(rewritePath(route('/', '/v2'), '/x')).toBe('/v2/x');
    expect(rewritePath(route('/api', undefined), '/api/x')).toBe('/api/x');
  });
});

describe('gateway: hash keys and response kinds', () => {
  const ups: Upstream[] = [];
  let gw: TestGateway;

  beforeAll(async () => {
    for (const name of ['h1', 'h2', 'h3']) {
      ups.push(
        await startUpstream((req, res) => {
          if (req.url === '/empty') {
            res.writeHead(204).end();
            return;
          }
          const body = JSON.stringify({ name });
          res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
          res.end(req.method === 'HEAD' ? undefined : body);
        }),
      );
    }
    const services = { s: { static: ups.map((u) => u.url) } };
    gw = await startGateway({
      routes: [
        { match: { prefix: '/user' }, service: 's', strategy: 'ring-hash', hashKey: { header: 'x-user' } },
        { match: { prefix: '/session' }, service: 's', strategy: 'maglev', hashKey: { cookie: 'sid' } },
        { match: { prefix: '/path' }, service: 's', strategy: 'ring-hash', hashKey: 'path' },
        { match: { prefix: '/' }, service: 's' },
      ],
      services,
    });
  });

  afterAll(async () => {
    await gw.close();
    await Promise.all(ups.map((u) => u.close()));
  });

  async function nameFor(path: string, headers: Record<string, string>): Promise<string> {
    const res = await fetch(gw.url + path, { headers });
    return ((await res.json()) as { name: string }).name;
  }

  it('ring-hash on a header, maglev on a cookie and ring-hash on the path stick each key to one instance', async () => {
    const spread = new Set<string>();
    for (let u = 0; u < 30; u++) {
      const first = await nameFor('/user', { 'x-user': `user-${u}` });
      spread.add(first);
      for (let k = 0; k < 3; k++) expect(await nameFor('/user', { 'x-user': `user-${u}` })).toBe(first);
      const bySession = await nameFor('/session', { cookie: `theme=dark; sid=s-${u}` });
      expect(await nameFor('/session', { cookie: `sid=s-${u}` })).toBe(bySession);
      const byPath = await nameFor(`/path/${u}`, {});
      expect(await nameFor(`/path/${u}`, { 'x-user': 'other' })).toBe(byPath);
    }
    expect(spread.size).toBe(3);
  });

  it('passes HEAD and 204 answers through without a body', async () => {
    const head = await fetch(`${gw.url}/x`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe('13'); // {"name":"hN"}
    expect(await head.text()).toBe('');
    const empty = await fetch(`${gw.url}/empty`);
    expect(empty.status).toBe(204);
    expect(await empty.text()).toBe('');
  });
});

describe('gateway: through Fastify', () => {
  it('app.inject() reaches the same proxy handler as the server', async () => {
    const up = await startUpstream(echo('injected'));
    const gw = await startGateway({
      routes: [{ match: { prefix: '/' }, service: 's' }],
      services: { s: { static: [up.url] } },
    });
    try {
      const res = await gw.gateway.app.inject({ method: 'GET', url: '/x?y=1' });
      expect(res.statusCode).toBe(200);
      expect((JSON.parse(res.body) as Echo).url).toBe('/x?y=1');
      const missing = await gw.gateway.app.inject({ method: 'GET', url: '/%zz' });
      expect(missing.statusCode).toBe(400);
    } finally {
      await gw.close();
      await up.close();
    }
  });
});
