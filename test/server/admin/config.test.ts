// Config over HTTP on a real socket: versions in ETag, compare-and-set through If-Match (412
// on conflict), If-None-Match: * to create only, schema refusals naming the field, bad input.
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigCenter } from '../../../src/config/ConfigCenter.js';
import { memoryStore } from '../../../src/store/memory/MemoryStore.js';
import { type Reply, send, startGateway, type TestGateway } from '../helpers.js';

const TOKEN = 'config-token-0123456789abcdef';
const auth = { authorization: `Bearer ${TOKEN}` };
const store = memoryStore();
const config = new ConfigCenter({ store });

let gw: TestGateway;
let admin: number;

function json(r: Reply): Record<string, unknown> {
  return JSON.parse(r.body) as Record<string, unknown>;
}
function errorOf(r: Reply): { code: string; message: string; field?: string } {
  return (json(r) as { error: { code: string; message: string; field?: string } }).error;
}
function write(
  method: 'PUT' | 'DELETE',
  key: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<Reply> {
  return send(admin, `/v1/config/${key}`, {
    method,
    headers: { ...auth, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
}

beforeAll(async () => {
  gw = await startGateway(
    { routes: [{ match: { prefix: '/' }, service: 'a' }], services: { a: { static: ['http://127.0.0.1:1'] } } },
    { store, admin: { port: 0, host: '127.0.0.1', token: TOKEN, config } },
  );
  const server = gw.gateway.admin?.app.server;
  if (server === undefined) throw new Error('no admin server');
  admin = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  await gw.close();
  await config.close();
  await store.close();
});

describe('config over HTTP', () => {
  it('writes, reads with the version in ETag, and deletes', async () => {
    const w = await write('PUT', 'app/db', { url: 'postgres://db', pool: 10 });
    expect(w.status).toBe(200);
    expect(w.headers.etag).toBe('"1"');
    expect(json(w)).toMatchObject({ key: 'app/db', version: 1 });

    const r = await send(admin, '/v1/config/app/db', { headers: auth });
    expect(r.status).toBe(200);
    expect(r.headers.etag).toBe('"1"');
    expect(json(r)).toMatchObject({
      key: 'app/db',
      value: { url: 'postgres://db', pool: 10 },
      version: 1,
      stale: false,
    });
    expect((await config.get('app/db'))?.value).toEqual({ url: 'postgres://db', pool: 10 });

    const d = await write('DELETE', 'app/db');
    expect(d.status).toBe(204);
    expect((await send(admin, '/v1/config/app/db', { headers: auth })).status).toBe(404);
    expect((await write('DELETE', 'app/db')).status).toBe(404);
  });

  it('compare-and-set: If-Match with the live version writes, another version gets 412', async () => {
    const first = await write('PUT', 'flags', { beta: false });
    const v = Number(JSON.parse(first.headers.etag as string));
    const ok = await write('PUT', 'flags', { beta: true }, { 'if-match': `"${v}"` });
    expect(ok.status).toBe(200);
    expect(ok.headers.etag).toBe(`"${v + 1}"`);
    const stale = await write('PUT', 'flags', { beta: false }, { 'if-match': `"${v}"` });
    expect(stale.status).toBe(412);
    expect(errorOf(stale).code).toBe('ERR_PRECONDITION_FAILED');
    expect((await config.get('flags'))?.value).toEqual({ beta: true });
    const del = await write('DELETE', 'flags', undefined, { 'if-match': `"${v}"` });
    expect(del.status).toBe(412);
    expect((await write('PUT', 'flags', 1, { 'if-match': '*' })).status).toBe(200);
    expect((await write('PUT', 'nothing-here', 1, { 'if-match': '*' })).status).toBe(412);
  });

  it('If-None-Match: * creates only', async () => {
    expect((await write('PUT', 'once', '"a"', { 'if-none-match': '*' })).status).toBe(200);
    const again = await write('PUT', 'once', '"b"', { 'if-none-match': '*' });
    expect(again.status).toBe(412);
    expect((await config.get('once'))?.value).toBe('a');
  });

  it('refuses a value its schema refuses, naming the field', async () => {
    config.define('limits', {
      type: 'object',
      properties: { rps: { type: 'integer' } },
      required: ['rps'],
      additionalProperties: false,
    });
    const r = await write('PUT', 'limits', { rps: 'many' });
    expect(r.status).toBe(400);
    const e = errorOf(r);
    expect(e.code).toBe('ERR_INVALID');
    expect(e.field).toBe('body.rps');
    expect((await write('PUT', 'limits', { rps: 5 })).status).toBe(200);
  });

  it('refuses bad headers, malformed JSON, unknown query fields and unknown keys', async () => {
    for (const [headers, field] of [
      [{ 'if-match': '4' }, 'headers.if-match'],
      [{ 'if-match': 'W/"4"' }, 'headers.if-match'],
      [{ 'if-none-match': '"4"' }, 'headers.if-none-match'],
      [{ 'if-match': '"1"', 'if-none-match': '*' }, 'headers.if-match'],
    ] as const) {
      const r = await write('PUT', 'k', 1, headers);
      expect(r.status, JSON.stringify(headers)).toBe(400);
      expect(errorOf(r)).toMatchObject({ code: 'ERR_INVALID', field });
    }
    expect(errorOf(await write('PUT', 'k', '{"a":')).code).toBe('ERR_BAD_REQUEST');
    const q = await send(admin, '/v1/config/k?x=1', { headers: auth });
    expect(errorOf(q)).toMatchObject({ code: 'ERR_INVALID', field: 'querystring.x' });
    const missing = await send(admin, '/v1/config/never-written', { headers: auth });
    expect(missing.status).toBe(404);
    expect(errorOf(missing).code).toBe('ERR_NOT_FOUND');
    expect((await send(admin, '/v1/config/k')).status).toBe(401);
  });

  it('refuses a value over maxValueBytes (400) and a body over twice that (413)', async () => {
    const over = await write('PUT', 'big', { s: 'x'.repeat(300_000) });
    expect(over.status).toBe(400);
    expect(errorOf(over).code).toBe('ERR_INVALID');
    const huge = await write('PUT', 'big', { s: 'x'.repeat(600_000) });
    expect(huge.status).toBe(413);
    expect(errorOf(huge).code).toBe('ERR_BODY_TOO_LARGE');
    expect((await send(admin, '/v1/config/big', { headers: auth })).status).toBe(404);
  });
});
