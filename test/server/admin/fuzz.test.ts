// Random JSON and random paths thrown at the admin API: every answer is a 2xx or a 4xx in the
// JSON error shape, never a 5xx, and the process keeps serving. Plus /readyz when the store
// is away (served from cache) and before the proxy listens.
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AdminServer } from '../../../server/admin/AdminServer.js';
import type { Gateway } from '../../../server/gateway.js';
import { NO_UPSTREAM } from '../helpers.js';
import { createAdminGateway } from './helpers.js';

const TOKEN = 'fuzz-token-0123456789abcdef';
const authorization = `Bearer ${TOKEN}`;
let gateway: Gateway;
let admin: AdminServer;

beforeAll(async () => {
  ({ gateway, admin } = await createAdminGateway(NO_UPSTREAM, TOKEN));
});

afterAll(async () => {
  await gateway.close();
});

function checkAnswer(status: number, body: string, what: string): void {
  expect(status, what).toBeLessThan(500);
  if (status >= 400) {
    const e = (JSON.parse(body) as { error: { code: string; message: string } }).error;
    expect(e.code, what).toMatch(/^ERR_[A-Z_]+$/);
    expect(e.message.length, what).toBeGreaterThan(0);
  }
}

describe('admin API under random input', () => {
  it('answers random JSON bodies with 2xx or a 4xx JSON error', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(
          '/v1/services/fz/instances/i-1',
          '/v1/config/fz/key',
          '/v1/config',
          '/v1/config-history/fz/key',
          '/v1/config-rollback/fz/key',
          '/v1/config-schemas/fz/key',
          '/v1/services/fz',
          '/v1/services',
          '/metrics',
          '/nowhere',
        ),
        fc.constantFrom('PUT', 'GET', 'DELETE', 'POST', 'PATCH'),
        fc.oneof(
          fc.json(),
          fc.string(),
          fc.jsonValue().map((v) => JSON.stringify({ address: 'http://x', extra: v })),
          fc.jsonValue().map((v) => JSON.stringify({ version: v })),
          fc.nat({ max: 5 }).map((n) => JSON.stringify({ version: n })),
          fc.jsonValue().map((v) => JSON.stringify({ type: 'object', properties: { a: v } })),
        ),
        async (url, method, payload) => {
          const r = await admin.app.inject({
            method: method as 'PUT',
            url,
            headers: { authorization, 'content-type': 'application/json' },
            payload: method === 'GET' ? undefined : payload,
          });
          checkAnswer(r.statusCode, r.body, `${method} ${url} ${payload.slice(0, 80)}`);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('answers random paths, queries and headers with a 4xx or 2xx', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.webPath(),
        fc.webQueryParameters(),
        fc.option(fc.string(), { nil: undefined }),
        async (path, query, ifMatch) => {
          const url = `/v1/${path.replace(/^\//, '')}${query === '' ? '' : `?${query}`}`;
          const r = await admin.app.inject({
            method: 'GET',
            url,
            headers: { authorization, ...(ifMatch === undefined ? {} : { 'if-match': ifMatch }) },
          });
          checkAnswer(r.statusCode, r.body, url);
        },
      ),
      { numRuns: 150 },
    );
    const h = await admin.app.inject({ method: 'GET', url: '/healthz' });
    expect(h.statusCode).toBe(200);
  });

  it('answers random config queries and preconditions with a 4xx or 2xx, and short waits end', async () => {
    const value = fc.oneof(
      fc.string(),
      fc.nat().map(String),
      fc.constantFrom('0', '1', 'default', 'nope', '-1', '1.5', '', '%00', 'fz/'),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(
          '/v1/config',
          '/v1/config/fz/key',
          '/v1/config-history/fz/key',
          '/v1/config-schemas/fz/key',
          '/v1/config/fz/%E2%98%83',
          '/v1/config/fz/%00',
        ),
        fc.constantFrom('GET', 'PUT', 'DELETE', 'POST'),
        fc.dictionary(fc.constantFrom('namespace', 'prefix', 'index', 'limit', 'x', 'wait'), value, { maxKeys: 4 }),
        fc.constantFrom('1ms', '0', '5ms', 'x', '11m', '-1'),
        fc.option(fc.oneof(fc.string(), fc.constantFrom('*', '"1"', '"0"', 'W/"1"')), { nil: undefined }),
        fc.option(fc.json(), { nil: undefined }),
        async (path, method, query, wait, ifMatch, payload) => {
          // Random waits are replaced by short ones, so that a query blocking on a quiet key ends.
          const params = new URLSearchParams({ ...query, ...('index' in query ? { wait } : {}) });
          const url = `${path}${params.size === 0 ? '' : `?${params}`}`;
          const r = await admin.app.inject({
            method: method as 'GET',
            url,
            headers: {
              authorization,
              ...(ifMatch === undefined ? {} : { 'if-match': ifMatch }),
              ...(payload === undefined ? {} : { 'content-type': 'application/json' }),
            },
            payload: method === 'GET' ? undefined : payload,
          });
          checkAnswer(r.statusCode, r.body, `${method} ${url} ${String(payload).slice(0, 80)}`);
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('/readyz', () => {
  it('is 503 until the proxy listens, then ready; served from cache when the store is away', async () => {
    const before = await admin.app.inject({ method: 'GET', url: '/readyz' });
    expect(before.statusCode).toBe(503);
    expect(JSON.parse(before.body).error).toMatchObject({
      code: 'ERR_UNAVAILABLE',
      message: 'not ready: proxy not listening',
    });
    await gateway.listen();
    const ready = await admin.app.inject({ method: 'GET', url: '/readyz' });
    expect(JSON.parse(ready.body)).toMatchObject({ status: 'ready', store: 'reachable' });
    const store = gateway.store as { time: () => Promise<number> };
    const time = store.time;
    store.time = () => Promise.reject(new Error('store away'));
    try {
      const cached = await admin.app.inject({ method: 'GET', url: '/readyz' });
      expect(cached.statusCode).toBe(200);
      expect(JSON.parse(cached.body)).toMatchObject({ status: 'ready', store: 'unreachable, serving from cache' });
    } finally {
      store.time = time;
    }
  });
});
