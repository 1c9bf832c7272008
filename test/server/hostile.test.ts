// Hostile input over raw sockets: request smuggling framings, bad bytes, oversize heads and
// bodies, path tricks. Each is refused with a 4xx, never reaches the upstream, and the gateway
// goes on serving.
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { echo, rawRequest, startGateway, startUpstream, statusOf, type TestGateway, type Upstream } from './helpers.js';

let up: Upstream;
let gw: TestGateway;

beforeAll(async () => {
  up = await startUpstream(echo('api'));
  gw = await startGateway({
    proxy: { maxHeaderSize: 8192 },
    routes: [
      { match: { prefix: '/api' }, service: 'api', bodyLimit: 1024 },
      // `/admin` is never routed: a path trick must not reach it through `/api`.
    ],
    services: { api: { static: [up.url] } },
  });
});

afterAll(async () => {
  await gw.close();
  await up.close();
});

const head = (lines: string[]): string => `${lines.join('\r\n')}\r\n\r\n`;

const cases: [string, string | Buffer, number[]][] = [
  [
    'Content-Length with Transfer-Encoding',
    head(['POST /api/x HTTP/1.1', 'Host: a', 'Content-Length: 4', 'Transfer-Encoding: chunked']) + '0\r\n\r\n',
    [400],
  ],
  [
    'two different Content-Lengths',
    head(['POST /api/x HTTP/1.1', 'Host: a', 'Content-Length: 4', 'Content-Length: 5']) + 'abcde',
    [400],
  ],
  [
    'two equal Content-Lengths',
    head(['POST /api/x HTTP/1.1', 'Host: a', 'Content-Length: 4', 'Content-Length: 4']) + 'abcd',
    [400],
  ],
  [
    'Transfer-Encoding not ending in chunked',
    head(['POST /api/x HTTP/1.1', 'Host: a', 'Transfer-Encoding: chunked, gzip']) + '0\r\n\r\n',
    [400],
  ],
  [
    'obfuscated Transfer-Encoding',
    head(['POST /api/x HTTP/1.1', 'Host: a', 'Transfer-Encoding : chunked']) + '0\r\n\r\n',
    [400],
  ],
  ['a NUL in a header value', head(['GET /api/x HTTP/1.1', 'Host: a', 'X-Bad: a\u0000b']), [400]],
  ['a bare CR in a header value', head(['GET /api/x HTTP/1.1', 'Host: a', 'X-Bad: a\rb']), [400]],
  ['a space in a header name', head(['GET /api/x HTTP/1.1', 'Host: a', 'X Bad: 1']), [400]],
  ['bytes above 0x7f in the path', Buffer.from('GET /api/\xff HTTP/1.1\r\nHost: a\r\n\r\n', 'latin1'), [400]],
  ['oversize headers', head(['GET /api/x HTTP/1.1', 'Host: a', `X-Big: ${'a'.repeat(10_000)}`]), [431]],
  [
    'oversize declared body',
    head(['POST /api/x HTTP/1.1', 'Host: a', 'Content-Length: 5000']) + 'a'.repeat(5000),
    [413],
  ],
  [
    'oversize chunked body',
    head(['POST /api/x HTTP/1.1', 'Host: a', 'Transfer-Encoding: chunked']) + `800\r\n${'a'.repeat(2048)}\r\n0\r\n\r\n`,
    [413],
  ],
  ['dot segments', head(['GET /api/../admin HTTP/1.1', 'Host: a']), [400]],
  ['encoded dot segments', head(['GET /api/%2e%2e/admin HTTP/1.1', 'Host: a']), [400]],
  ['mixed encoded dots', head(['GET /api/.%2E/admin HTTP/1.1', 'Host: a']), [400]],
  ['encoded slash', head(['GET /api%2f..%2fadmin HTTP/1.1', 'Host: a']), [400]],
  ['backslashes', head(['GET /api\\..\\admin HTTP/1.1', 'Host: a']), [400]],
  ['absolute-form target', head(['GET http://evil.example/api/x HTTP/1.1', 'Host: a']), [400]],
  ['asterisk-form target', head(['OPTIONS * HTTP/1.1', 'Host: a']), [400]],
  ['malformed percent-escape', head(['GET /api/%zz HTTP/1.1', 'Host: a']), [400]],
  ['HTTP/1.1 without Host', head(['GET /api/x HTTP/1.1']), [400]],
  ['garbage request line', 'HELLO\r\n\r\n', [400]],
];

describe('hostile requests', () => {
  it.each(cases)('%s: refused with a 4xx, not forwarded', async (_name, data, statuses) => {
    const before = up.seen.length;
    const response = await rawRequest(gw.port, data);
    expect(statuses).toContain(statusOf(response));
    if (response.includes('\r\n\r\n{')) {
      const body = JSON.parse(response.slice(response.indexOf('\r\n\r\n') + 4)) as { error: { code: string } };
      expect(body.error.code).toMatch(/^ERR_/);
    }
    expect(up.seen.length).toBe(before);
    // ...and the gateway still serves.
    expect((await fetch(`${gw.url}/api/ok`)).status).toBe(200);
  });

  it('a smuggled second request after a refused one is never forwarded', async () => {
    const before = up.seen.length;
    const smuggle =
      head(['POST /api/x HTTP/1.1', 'Host: a', 'Content-Length: 40', 'Transfer-Encoding: chunked']) +
      '0\r\n\r\n' +
      head(['GET /admin/secret HTTP/1.1', 'Host: a']);
    const response = await rawRequest(gw.port, smuggle);
    expect(statusOf(response)).toBe(400);
    expect(response.match(/HTTP\/1\.1 /g)?.length).toBe(1);
    expect(up.seen.length).toBe(before);
  });

  it('random bytes after a valid request line never crash the gateway or reach the upstream as something else', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 200 }), async (bytes) => {
        const data = Buffer.concat([Buffer.from('GET /api/fuzz HTTP/1.1\r\nHost: a\r\n'), Buffer.from(bytes)]);
        const response = await rawRequest(gw.port, data, 300);
        const status = statusOf(response);
        expect(status === 0 || status === 200 || (status >= 400 && status < 500)).toBe(true);
        for (const s of up.seen) expect(s.url.startsWith('/api')).toBe(true);
      }),
      { numRuns: 40 },
    );
    expect((await fetch(`${gw.url}/api/ok`)).status).toBe(200);
  });
});
