// Live routes from the config center (key `gateway/routes`), over real sockets on 127.0.0.1:
// refusals up front with the field named, versions applied at once, versions written around
// the validation refused while the running routes stay, the file back on delete, a live
// value winning at start, and a live route change under steady load with zero failed requests.
import { Agent, request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../server/config/ConfigError.js';
import { resolveGatewayConfig, resolveLiveRoutes } from '../../server/config/GatewayConfig.js';
import { DEFAULT_ROUTES_KEY } from '../../server/config/LiveRoutes.js';
import { LIVE_ROUTES_SCHEMA } from '../../server/config/schema.js';
import { ConfigCenter } from '../../src/config/ConfigCenter.js';
import { memoryStore } from '../../src/store/memory/MemoryStore.js';
import { redisStore } from '../../src/store/redis/RedisStore.js';
import type { Store } from '../../src/store/Store.js';
import {
  deletePrefix,
  haveRedisServerBinary,
  redisUrl,
  requireRedis,
  startRedisServer,
  testPrefix,
} from '../helpers/redis.js';
import { type AdminGateway, type AdminGatewayOptions, bearer, startAdminGateway } from './admin/helpers.js';
import { echo, type Reply, send, startUpstream, type Upstream, type UpstreamHandler, until } from './helpers.js';

const redisAvailable = await requireRedis('live routes on Redis');
const TOKEN = 'live-token-0123456789abcdef';
const auth = bearer(TOKEN);

const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function upstream(name: string, handler: UpstreamHandler = echo(name)): Promise<Upstream> {
  const up = await startUpstream(handler);
  cleanups.push(() => up.close());
  return up;
}

async function gatewayOn(store: Store, config: unknown, options: AdminGatewayOptions = {}): Promise<AdminGateway> {
  const f = await startAdminGateway(config, TOKEN, { store, ...options });
  cleanups.push(() => f.gw.close());
  return f;
}

function json(r: Reply): Record<string, unknown> {
  return JSON.parse(r.body) as Record<string, unknown>;
}
function errorOf(r: Reply): { code: string; message: string; field?: string; issues?: { field: string }[] } {
  return (json(r) as { error: { code: string; message: string; field?: string; issues?: { field: string }[] } }).error;
}
function putRoutes(admin: number, body: unknown, headers: Record<string, string> = {}): Promise<Reply> {
  return send(admin, '/v1/routes', {
    method: 'PUT',
    headers: { ...auth, 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}
function getRoutes(admin: number): Promise<Reply> {
  return send(admin, '/v1/routes', { headers: auth });
}
async function upstreamOf(port: number, path: string): Promise<string | undefined> {
  const r = await send(port, path);
  return r.status === 200 ? (json(r).name as string) : `status ${r.status}`;
}

describe('resolveLiveRoutes', () => {
  it("resolves routes with the base's proxy defaults and keeps its listen, proxy and demo", () => {
    const base = resolveGatewayConfig({
      listen: { port: 8081 },
      proxy: { timeoutMs: 1234, bodyLimit: 99 },
      demo: { service: 'demo' },
      routes: [{ match: { prefix: '/old' }, service: 'old' }],
    });
    const live = resolveLiveRoutes(
      {
        routes: [{ match: { prefix: '/new/' }, service: 'web' }],
        services: { web: { static: ['http://127.0.0.1:1'] } },
      },
      base,
    );
    expect(live.listen).toBe(base.listen);
    expect(live.proxy).toBe(base.proxy);
    expect(live.demo).toBe(base.demo);
    expect(live.routes.map((r) => [r.prefix, r.timeoutMs, r.bodyLimit])).toEqual([['/new', 1234, 99]]);
    expect([...live.services.keys()]).toEqual(['web']);
    // listen, proxy and demo are not part of the live document.
    expect(() => resolveLiveRoutes({ routes: [], proxy: { timeoutMs: 1 } }, base)).toThrow(
      /proxy is not a known field/,
    );
    expect(() => resolveLiveRoutes(undefined, base)).toThrow(ConfigError);
  });

  it("runs the strategy's own endpoint checks on static services: ring points, maglev table size", () => {
    const base = resolveGatewayConfig({ routes: [] });
    const doc = {
      routes: [
        { name: 'a', match: { prefix: '/a' }, service: 'a' },
        { name: 'h', match: { prefix: '/h' }, service: 'h', strategy: 'ring-hash' },
        { name: 'm', match: { prefix: '/m' }, service: 'm', strategy: 'maglev' },
      ],
      services: {
        a: { static: ['http://127.0.0.1:1'], connections: 4 },
        h: { static: [{ address: 'http://127.0.0.1:2', weight: 100_000 }] },
        m: { static: ['http://127.0.0.1:3', 'http://127.0.0.1:4', 'http://127.0.0.1:5'], maglev: { tableSize: 2 } },
      },
    };
    for (const resolve of [() => resolveLiveRoutes(doc, base), () => resolveGatewayConfig(doc)]) {
      let error: ConfigError | undefined;
      try {
        resolve();
      } catch (err) {
        error = err as ConfigError;
      }
      expect(error).toBeInstanceOf(ConfigError);
      expect(error?.issues.map((i) => i.field)).toEqual(['services.h.static[0].weight', 'services.m.static']);
      expect(error?.issues[0]?.message).toMatch(/ring points.*route 'h'.*ring-hash/);
      expect(error?.issues[1]?.message).toMatch(/maglev\.tableSize \(2\).*route 'm'/);
    }
    // The same weight is fine for a strategy without ring points.
    expect(() =>
      resolveGatewayConfig({
        routes: [{ match: { prefix: '/h' }, service: 'h' }],
        services: { h: { static: [{ address: 'http://127.0.0.1:2', weight: 100_000 }] } },
      }),
    ).not.toThrow();
  });

  it('refuses a static address that fits the pattern but is not a URL, naming the entry', () => {
    const doc = {
      routes: [{ match: { prefix: '/a' }, service: 'a' }],
      services: {
        a: { static: ['http://127.0.0.1:1', 'http://h:port', { address: 'http://h:99999/x' }, 'http://[::1'] },
      },
    };
    for (const resolve of [() => resolveLiveRoutes(doc, resolveGatewayConfig({})), () => resolveGatewayConfig(doc)]) {
      let error: ConfigError | undefined;
      try {
        resolve();
      } catch (err) {
        error = err as ConfigError;
      }
      expect(error).toBeInstanceOf(ConfigError);
      expect(error?.issues.map((i) => i.field)).toEqual([
        'services.a.static[1]',
        'services.a.static[2].address',
        'services.a.static[3]',
      ]);
      expect(error?.issues[0]?.message).toMatch(/is not a valid URL/);
    }
  });
});

describe('live routes through the admin API', () => {
  let a: Upstream;
  let b: Upstream;
  let store: Store;
  let f: AdminGateway;

  beforeAll(async () => {
    a = await upstream('a');
    b = await upstream('b');
    store = memoryStore();
    cleanups.push(() => store.close());
    f = await gatewayOn(store, {
      routes: [{ name: 'api', match: { prefix: '/api' }, service: 'a' }],
      services: { a: { static: [a.url] } },
    });
  });

  it('start from the file: GET /v1/routes says source "file", with no version and no ETag', async () => {
    const r = await getRoutes(f.admin);
    expect(r.status).toBe(200);
    expect(r.headers.etag).toBeUndefined();
    expect(json(r)).toMatchObject({ source: 'file', key: DEFAULT_ROUTES_KEY, version: null });
    expect((json(r).routes as { name: string }[]).map((x) => x.name)).toEqual(['api']);
    expect(json(r).services).toMatchObject({ a: { static: [{ address: a.url }] } });
    expect(await upstreamOf(f.gw.port, '/api/x')).toBe('a');
  });

  it('refuses invalid documents up front with 400 naming the field; nothing is written, the routes stay', async () => {
    const cases: [unknown, string][] = [
      [{ routes: [{ match: { prefix: 'api' }, service: 'b' }] }, 'body.routes[0].match.prefix'],
      [{ routes: [{ match: { prefix: '/api' }, service: 'b', tieout: 5 }] }, 'body.routes[0].tieout'],
      [{ services: { b: { static: [b.url] } } }, 'body'],
      [
        {
          routes: [
            { name: 'x', match: { prefix: '/a' }, service: 'b' },
            { name: 'x', match: { prefix: '/b' }, service: 'b' },
          ],
        },
        'body.routes[1].name',
      ],
      [{ routes: [{ match: { prefix: '/api' }, service: 'b', hashKey: 'path' }] }, 'body.routes[0].hashKey'],
      [
        { routes: [{ match: { prefix: '/api' }, service: 'b', timeoutMs: 100, retries: { perTryTimeoutMs: 200 } }] },
        'body.routes[0].retries.perTryTimeoutMs',
      ],
      [
        { routes: [{ match: { prefix: '/api' }, service: 'b' }], services: { b: { static: [b.url, b.url] } } },
        'body.services.b.static[1]',
      ],
      [
        {
          routes: [{ match: { prefix: '/api' }, service: 'b' }],
          services: { b: { healthCheck: { expectedStatuses: [[500, 400]] } } },
        },
        'body.services.b.healthCheck.expectedStatuses',
      ],
    ];
    for (const [body, field] of cases) {
      const r = await putRoutes(f.admin, body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      const e = errorOf(r);
      expect(e.code).toBe('ERR_INVALID');
      expect(e.field, JSON.stringify(body)).toContain(field);
      expect(e.message).toContain(field.replace(/^body\.?/, ''));
      // The same document through the config endpoint of the key is refused the same way.
      const viaConfig = await send(f.admin, `/v1/config/${DEFAULT_ROUTES_KEY}`, {
        method: 'PUT',
        headers: { ...auth, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      expect(viaConfig.status).toBe(400);
      expect(errorOf(viaConfig).field).toBe(e.field);
    }
    expect((await send(f.admin, `/v1/config/${DEFAULT_ROUTES_KEY}`, { headers: auth })).status).toBe(404);
    expect(json(await getRoutes(f.admin))).toMatchObject({ source: 'file', version: null });
    expect(await upstreamOf(f.gw.port, '/api/x')).toBe('a');
  });

  it('a valid PUT is live for the next request; GET shows the version (ETag); a stale If-Match gets 412', async () => {
    const v1 = await putRoutes(
      f.admin,
      {
        routes: [{ name: 'api', match: { prefix: '/api' }, service: 'b', stripPrefix: true }],
        services: { b: { static: [b.url] } },
      },
      { 'if-none-match': '*' },
    );
    expect(v1.status).toBe(200);
    expect(json(v1)).toMatchObject({ key: DEFAULT_ROUTES_KEY, version: 1, applied: true });
    expect(v1.headers.etag).toBe('"1"');
    const r = await send(f.gw.port, '/api/users/7');
    expect(json(r)).toMatchObject({ name: 'b', url: '/users/7' });
    const view = await getRoutes(f.admin);
    expect(view.headers.etag).toBe('"1"');
    expect(json(view)).toMatchObject({ source: 'config', key: DEFAULT_ROUTES_KEY, version: 1 });
    expect(Object.keys(json(view).services as object)).toEqual(['b']);
    expect(f.gw.gateway.upstreams.serviceNames).toEqual(['b']);

    const stale = await putRoutes(f.admin, { routes: [] }, { 'if-match': '"7"' });
    expect(stale.status).toBe(412);
    expect(errorOf(stale).code).toBe('ERR_PRECONDITION_FAILED');
    expect(await upstreamOf(f.gw.port, '/api/x')).toBe('b');
  });

  it('a version written around the validation is refused: the routes stay, GET shows it, metrics count it', async () => {
    // Another writer without the gateway's checks (an older gateway, a script): its own center, no schema.
    const other = new ConfigCenter({ store });
    try {
      const bad = await other.set(DEFAULT_ROUTES_KEY, {
        routes: [{ match: { prefix: '/api' }, service: 'b', strategy: 'p2c', hashKey: 'ip' }],
      });
      expect(bad.version).toBe(2);
      await until(async () => json(await getRoutes(f.admin)).rejected !== undefined, 10_000, 'the refusal');
      const view = await getRoutes(f.admin);
      expect(view.headers.etag).toBe('"2"'); // the key's live version: the one a write must match
      const body = json(view);
      expect(body).toMatchObject({ source: 'config', version: 1, changes: { rejected: 1 } });
      expect(body.rejected).toMatchObject({ version: 2, issues: [{ field: 'routes[0].hashKey' }] });
      expect(await upstreamOf(f.gw.port, '/api/x')).toBe('b');
      const metrics = await send(f.admin, '/metrics', { headers: auth });
      expect(metrics.body).toMatch(/^ringway_gateway_route_changes_total\{result="rejected"\} 1$/m);

      // Not JSON Schema-valid either: refused the same way.
      await other.set(DEFAULT_ROUTES_KEY, { routes: 'all of them' });
      await until(
        async () => (json(await getRoutes(f.admin)).rejected as { version: number }).version === 3,
        10_000,
        'the second refusal',
      );
      expect(await upstreamOf(f.gw.port, '/api/x')).toBe('b');

      // The next valid version applies and clears the refusal.
      const v4 = await putRoutes(
        f.admin,
        { routes: [{ name: 'api', match: { prefix: '/api' }, service: 'a' }], services: { a: { static: [a.url] } } },
        { 'if-match': '"3"' },
      );
      expect(v4.status).toBe(200);
      const after = json(await getRoutes(f.admin));
      expect(after).toMatchObject({ source: 'config', version: 4 });
      expect(after.rejected).toBeUndefined();
      expect(await upstreamOf(f.gw.port, '/api/x')).toBe('a');
    } finally {
      await other.close();
    }
  });

  it('a version the balancers would refuse is refused up front (400 naming the field); the routes stay', async () => {
    const before = json(await getRoutes(f.admin));
    const r = await putRoutes(f.admin, {
      routes: [
        { name: 'api', match: { prefix: '/api' }, service: 'a' },
        { name: 'h', match: { prefix: '/h' }, service: 'h', strategy: 'ring-hash' },
      ],
      services: { a: { static: [a.url], connections: 4 }, h: { static: [{ address: b.url, weight: 100_000 }] } },
    });
    expect(r.status, r.body).toBe(400);
    expect(errorOf(r).field).toContain('body.services.h.static[0].weight');
    const after = json(await getRoutes(f.admin));
    expect(after.version).toBe(before.version);
    expect(after.rejected).toBeUndefined();
    expect(await upstreamOf(f.gw.port, '/api/x')).toBe('a');
  });

  it('DELETE /v1/routes brings back the routes of the file', async () => {
    const del = await send(f.admin, '/v1/routes', { method: 'DELETE', headers: { ...auth, 'if-match': '"4"' } });
    expect(del.status).toBe(204);
    const view = await getRoutes(f.admin);
    expect(view.headers.etag).toBeUndefined();
    expect(json(view)).toMatchObject({ source: 'file', version: null });
    expect(await upstreamOf(f.gw.port, '/api/x')).toBe('a');
    expect((await send(f.admin, '/v1/routes', { method: 'DELETE', headers: auth })).status).toBe(404);
  });

  it('at start, a live value of the key wins over the file; an invalid one leaves the file live, shown as rejected', async () => {
    const s = memoryStore();
    cleanups.push(() => s.close());
    const center = new ConfigCenter({ store: s });
    await center.set(DEFAULT_ROUTES_KEY, {
      routes: [{ name: 'live', match: { prefix: '/live' }, service: 'b' }],
      services: { b: { static: [b.url] } },
    });
    const file = {
      routes: [{ name: 'file', match: { prefix: '/file' }, service: 'a' }],
      services: { a: { static: [a.url] } },
    };
    const g = await gatewayOn(s, file);
    expect(json(await getRoutes(g.admin))).toMatchObject({ source: 'config', version: 1 });
    expect(await upstreamOf(g.gw.port, '/live')).toBe('b');
    expect((await send(g.gw.port, '/file')).status).toBe(404);

    const s2 = memoryStore();
    cleanups.push(() => s2.close());
    const center2 = new ConfigCenter({ store: s2 });
    await center2.set(DEFAULT_ROUTES_KEY, { routes: [{ match: { prefix: 'nope' }, service: 'b' }] });
    await center.close();
    await center2.close();
    const g2 = await gatewayOn(s2, file);
    const view = json(await getRoutes(g2.admin));
    expect(view).toMatchObject({ source: 'file', version: null, rejected: { version: 1 } });
    expect(await upstreamOf(g2.gw.port, '/file')).toBe('a');
  });

  it('the OpenAPI document shows PUT /v1/routes with the schema of the live routes', async () => {
    const doc = json(await send(f.admin, '/docs/json')) as {
      paths: Record<string, Record<string, { requestBody?: { content: Record<string, { schema: unknown }> } }>>;
    };
    expect(doc.paths['/v1/routes']?.put?.requestBody?.content['application/json']?.schema).toEqual(LIVE_ROUTES_SCHEMA);
    expect(doc.paths['/v1/routes']?.delete).toBeDefined();
  });

  it('liveRoutes: false keeps the file routes; PUT /v1/routes then answers 404', async () => {
    const s = memoryStore();
    cleanups.push(() => s.close());
    const { gw, admin } = await gatewayOn(
      s,
      { routes: [{ match: { prefix: '/' }, service: 'a' }], services: { a: { static: [a.url] } } },
      { liveRoutes: false },
    );
    expect(gw.gateway.liveRoutes).toBeUndefined();
    const view = json(await getRoutes(admin));
    expect(view).toMatchObject({ source: 'file', version: null });
    expect(view.key).toBeUndefined();
    expect((await putRoutes(admin, { routes: [] })).status).toBe(404);
  });
});

describe('a live route change under load', () => {
  it('serves steady traffic with zero failed requests while routes and services change; in-flight requests finish', async () => {
    const [a1, a2, b1, c1, c2] = await Promise.all(['a1', 'a2', 'b1', 'c1', 'c2'].map((n) => upstream(n)));
    // Held until the test releases them: in flight across every change below.
    const held: (() => void)[] = [];
    const slow = await upstream('slow', (_req, res) => {
      held.push(() => res.end('slow done'));
    });
    const store = memoryStore();
    cleanups.push(() => store.close());
    const { gw, admin } = await gatewayOn(store, {
      routes: [
        { name: 'api', match: { prefix: '/api' }, service: 'a' },
        { name: 'slow', match: { prefix: '/slow' }, service: 'slow', timeoutMs: 120_000 },
      ],
      services: { a: { static: [(a1 as Upstream).url, (a2 as Upstream).url] }, slow: { static: [slow.url] } },
    });

    const agent = new Agent({ keepAlive: true, maxSockets: 16 });
    cleanups.push(async () => agent.destroy());
    const get = (path: string): Promise<{ status: number; body: string }> =>
      new Promise((resolve, reject) => {
        const req = httpRequest({ host: '127.0.0.1', port: gw.port, path, agent }, (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => {
            body += c;
          });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
          res.on('error', reject);
        });
        req.on('error', reject);
        req.end();
      });

    const inFlight = [get('/slow/1'), get('/slow/2'), get('/slow/3')];
    await until(() => held.length === 3, 10_000, 'the slow requests to reach their upstream');

    // Steady traffic: 12 clients in a loop until told to stop (bounded below).
    const failures: string[] = [];
    const served = new Map<string, number>();
    let total = 0;
    let stop = false;
    const client = async (): Promise<void> => {
      while (!stop && total < 200_000) {
        try {
          const r = await get('/api/x');
          total++;
          if (r.status !== 200) failures.push(`${r.status} ${r.body}`);
          else {
            const name = (JSON.parse(r.body) as { name: string }).name;
            served.set(name, (served.get(name) ?? 0) + 1);
          }
        } catch (err) {
          failures.push(String(err));
        }
      }
    };
    const clients = Array.from({ length: 12 }, () => client());
    /** Waits until `name` served some requests after this call: the traffic reached it. */
    const reaches = async (name: string): Promise<void> => {
      const from = served.get(name) ?? 0;
      await until(() => (served.get(name) ?? 0) >= from + 100, 30_000, `traffic to reach ${name}`);
    };

    try {
      await reaches('a1');
      let version = 0;
      const change = async (body: unknown): Promise<void> => {
        const r = await putRoutes(
          admin,
          body,
          version === 0 ? { 'if-none-match': '*' } : { 'if-match': `"${version}"` },
        );
        expect(r.status, r.body).toBe(200);
        version = json(r).version as number;
      };
      const services = {
        a: { static: [(a1 as Upstream).url, (a2 as Upstream).url] },
        b: { static: [(b1 as Upstream).url] },
        c: { static: [(c1 as Upstream).url, (c2 as Upstream).url] },
      };
      // 1. The slow route goes away (its requests are in flight), /api gets another strategy.
      await change({
        routes: [{ name: 'api', match: { prefix: '/api' }, service: 'a', strategy: 'p2c' }],
        services: { a: services.a },
      });
      await reaches('a2');
      // 2. A service swap: /api moves to b.
      await change({ routes: [{ name: 'api', match: { prefix: '/api' }, service: 'b' }], services: { b: services.b } });
      await reaches('b1');
      // 3. An invalid change is refused; the routes stay.
      const refused = await putRoutes(admin, { routes: [{ match: { prefix: 'api' }, service: 'c' }] });
      expect(refused.status).toBe(400);
      await reaches('b1');
      // 4. Another swap, to a service new to the gateway, with a route added.
      await change({
        routes: [
          { name: 'extra', match: { prefix: '/extra' }, service: 'a' },
          { name: 'api', match: { prefix: '/api' }, service: 'c', strategy: 'least-connections' },
        ],
        services: { a: services.a, c: services.c },
      });
      await reaches('c1');
      await reaches('c2');
      // 5. A version written around the validation is refused by the watcher: the routes stay.
      const other = new ConfigCenter({ store });
      const bad = await other.set(DEFAULT_ROUTES_KEY, {
        routes: [{ match: { prefix: '/api' }, service: 'b', hashKey: 'ip' }],
      });
      await other.close();
      await until(() => gw.gateway.liveRoutes?.rejected?.version === bad.version, 10_000, 'the refusal');
      version = bad.version;
      await reaches('c1');
      // 6. Back to a.
      await change({ routes: [{ name: 'api', match: { prefix: '/api' }, service: 'a' }], services: { a: services.a } });
      await reaches('a1');
    } finally {
      stop = true;
      await Promise.all(clients);
    }
    for (const release of held) release();
    const slowAnswers = await Promise.all(inFlight);

    expect(failures).toEqual([]);
    console.info(`live route changes under load: ${total} requests, ${JSON.stringify(Object.fromEntries(served))}`);
    expect(total).toBeGreaterThan(200);
    for (const name of ['a1', 'a2', 'b1', 'c1', 'c2']) expect(served.get(name), name).toBeGreaterThan(0);
    expect(slowAnswers).toEqual(Array.from({ length: 3 }, () => ({ status: 200, body: 'slow done' })));
    expect(gw.gateway.liveRoutes?.counts).toEqual({ applied: 4, rejected: 1 });
    // The slow route is gone for new requests.
    expect((await get('/slow/4')).status).toBe(404);
  }, 120_000);
});

describe.skipIf(!redisAvailable)('two gateways on one Redis', () => {
  it("see each other's route changes and registrations; a refused version is refused by both", async () => {
    const prefix = testPrefix('live-routes');
    cleanups.push(() => deletePrefix(redisUrl(), prefix));
    const home = await upstream('home');
    const users = await upstream('users-1');
    const stores = [0, 1, 2].map(() => redisStore(redisUrl(), { prefix }));
    for (const s of stores) cleanups.push(() => s.close());
    const file = {
      routes: [{ name: 'home', match: { prefix: '/home' }, service: 'home' }],
      services: { home: { static: [home.url] } },
    };
    const a = await gatewayOn(stores[0] as Store, file);
    const b = await gatewayOn(stores[1] as Store, file);
    const both = [a, b];

    // A route to a registry-backed service, through A's admin API...
    const put = await putRoutes(a.admin, {
      routes: [
        { name: 'home', match: { prefix: '/home' }, service: 'home' },
        { name: 'users', match: { prefix: '/users' }, service: 'users', retries: { attempts: 0 } },
      ],
      services: { home: { static: [home.url] } },
    });
    expect(put.status).toBe(200);
    // ...and its instance, registered through B's.
    const reg = await send(b.admin, '/v1/services/users/instances/users-1', {
      method: 'PUT',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ address: users.url, ttlMs: 30_000 }),
    });
    expect(reg.status).toBe(200);
    for (const g of both) {
      await until(async () => (await upstreamOf(g.gw.port, '/users/1')) === 'users-1', 15_000, 'both to route /users');
      expect(json(await getRoutes(g.admin))).toMatchObject({ source: 'config', version: 1 });
    }

    // A version written around the validation: both refuse it and keep routing.
    const other = new ConfigCenter({ store: stores[2] as Store });
    await other.set(DEFAULT_ROUTES_KEY, {
      routes: [{ match: { prefix: '/users' }, service: 'users', hashKey: 'path' }],
    });
    await other.close();
    for (const g of both) {
      await until(
        async () => (json(await getRoutes(g.admin)).rejected as { version?: number } | undefined)?.version === 2,
        15_000,
        'both to refuse version 2',
      );
      expect(await upstreamOf(g.gw.port, '/users/1')).toBe('users-1');
    }

    // Deleted through B: both are back on the file's routes.
    const del = await send(b.admin, '/v1/routes', { method: 'DELETE', headers: { ...auth, 'if-match': '"2"' } });
    expect(del.status).toBe(204);
    for (const g of both) {
      await until(async () => (await send(g.gw.port, '/users/1')).status === 404, 15_000, 'both back on the file');
      expect(json(await getRoutes(g.admin))).toMatchObject({ source: 'file', version: null });
      expect(await upstreamOf(g.gw.port, '/home')).toBe('home');
    }
  }, 60_000);
});

describe.skipIf(!haveRedisServerBinary())('a store away at start', () => {
  it('starts on the file routes after the wait, then applies the key once the store answers', async () => {
    const server = await startRedisServer();
    cleanups.push(() => server.stop());
    await server.stop();
    const a = await upstream('file-a');
    const b = await upstream('live-b');
    const prefix = testPrefix('live-away');
    const store = redisStore(server.url, { prefix });
    cleanups.push(() => store.close());
    const { gw, admin } = await gatewayOn(store, {
      routes: [{ name: 'x', match: { prefix: '/x' }, service: 'a' }],
      services: { a: { static: [a.url] } },
    });
    // Started (after at most 5 s) on the file's routes, while the store is away.
    expect(gw.gateway.routes.origin).toMatchObject({ source: 'file' });
    expect(await upstreamOf(gw.port, '/x/1')).toBe('file-a');

    await server.start();
    const writer = redisStore(server.url, { prefix });
    cleanups.push(() => writer.close());
    const center = new ConfigCenter({ store: writer });
    cleanups.push(() => center.close());
    await center.set(DEFAULT_ROUTES_KEY, {
      routes: [{ name: 'x', match: { prefix: '/x' }, service: 'b' }],
      services: { b: { static: [b.url] } },
    });
    await until(async () => (await upstreamOf(gw.port, '/x/1')) === 'live-b', 20_000, 'the live value to apply');
    expect(json(await getRoutes(admin))).toMatchObject({ source: 'config', version: 1 });
  }, 60_000);
});
