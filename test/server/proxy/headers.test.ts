import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type ForwardContext,
  forwardRequestHeaders,
  forwardResponseHeaders,
  HOP_BY_HOP,
} from '../../../server/proxy/headers.js';

const ctx: ForwardContext = {
  clientIp: '10.0.0.9',
  proto: 'http',
  requestId: 'req-1',
  requestIdHeader: 'x-request-id',
  preserveHost: false,
  appendForwardedFor: true,
  via: undefined,
};

function pairs(flat: string[]): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 0; i < flat.length; i += 2) out.push([flat[i] as string, flat[i + 1] as string]);
  return out;
}

describe('request headers', () => {
  it('strips hop-by-hop headers and those Connection names, sets the forwarding headers', () => {
    const raw = [
      'Host',
      'gw.example.com',
      'Connection',
      'keep-alive, X-Secret, Content-Length',
      'Keep-Alive',
      'timeout=5',
      'X-Secret',
      'drop me',
      'TE',
      'trailers',
      'Upgrade',
      'h2c',
      'Proxy-Authorization',
      'Basic x',
      'Expect',
      '100-continue',
      'Content-Length',
      '5',
      'X-Forwarded-For',
      '1.2.3.4',
      'X-Forwarded-Proto',
      'https',
      'X-Request-Id',
      'spoofed',
      'Accept',
      'a',
      'Accept',
      'b',
    ];
    const out = pairs(forwardRequestHeaders(raw, ctx));
    expect(out).toEqual([
      ['Content-Length', '5'],
      ['Accept', 'a'],
      ['Accept', 'b'],
      ['x-forwarded-for', '1.2.3.4, 10.0.0.9'],
      ['x-forwarded-proto', 'http'],
      ['x-request-id', 'req-1'],
      ['x-forwarded-host', 'gw.example.com'],
    ]);
  });

  it('replaces X-Forwarded-For when told to, keeps Host when asked, appends Via', () => {
    const raw = ['host', 'a.example', 'x-forwarded-for', '1.2.3.4', 'via', '1.0 edge'];
    const out = pairs(
      forwardRequestHeaders(raw, { ...ctx, appendForwardedFor: false, preserveHost: true, via: '1.1 ringway' }),
    );
    expect(out).toEqual([
      ['host', 'a.example'],
      ['x-forwarded-for', '10.0.0.9'],
      ['x-forwarded-proto', 'http'],
      ['x-request-id', 'req-1'],
      ['x-forwarded-host', 'a.example'],
      ['via', '1.0 edge, 1.1 ringway'],
    ]);
  });
});

describe('response headers', () => {
  it('strips hop-by-hop and Connection-named headers, keeps repeats, sets the request id', () => {
    const raw = [
      'Content-Type',
      'text/plain',
      'Transfer-Encoding',
      'chunked',
      'Connection',
      'close, X-Internal',
      'X-Internal',
      'secret',
      'Set-Cookie',
      'a=1',
      'Set-Cookie',
      'b=2',
      'X-Request-Id',
      'upstream-id',
    ];
    expect(pairs(forwardResponseHeaders(raw, 'x-request-id', 'req-1', '1.1 ringway'))).toEqual([
      ['Content-Type', 'text/plain'],
      ['Set-Cookie', 'a=1'],
      ['Set-Cookie', 'b=2'],
      ['x-request-id', 'req-1'],
      ['via', '1.1 ringway'],
    ]);
  });
});

describe('Connection values that name no header', () => {
  it('drop only the hop-by-hop headers, in any case, and a second Connection header still names', () => {
    for (const plain of ['keep-alive', 'Keep-Alive', 'close', 'CLOSE']) {
      const req = forwardRequestHeaders(['Connection', plain, 'Keep-Alive', 'timeout=5', 'X-A', '1'], ctx);
      expect(pairs(req).slice(0, 1)).toEqual([['X-A', '1']]);
      const res = forwardResponseHeaders(['Connection', plain, 'X-A', '1'], 'x-request-id', 'req-1', undefined);
      expect(pairs(res)).toEqual([
        ['X-A', '1'],
        ['x-request-id', 'req-1'],
      ]);
    }
    const two = forwardRequestHeaders(['Connection', 'keep-alive', 'Connection', 'X-A', 'X-A', '1', 'X-B', '2'], ctx);
    expect(pairs(two).slice(0, 1)).toEqual([['X-B', '2']]);
    const res = forwardResponseHeaders(
      ['Connection', 'close', 'Connection', 'x-a', 'X-A', '1', 'X-B', '2'],
      'x-request-id',
      'req-1',
      undefined,
    );
    expect(pairs(res).slice(0, 1)).toEqual([['X-B', '2']]);
  });
});

/** The rules of forwardResponseHeaders written plainly: every name lower-cased, every value read. */
function responseModel(
  raw: string[],
  idHeader: string,
  id: string,
  via: string | undefined,
): { headers: string[]; contentLength: number } {
  let contentLength = -1;
  const tokens = new Set<string>();
  for (let i = 0; i < raw.length; i += 2) {
    if ((raw[i] as string).toLowerCase() !== 'connection') continue;
    for (const t of (raw[i + 1] as string).split(',')) tokens.add(t.trim().toLowerCase());
  }
  tokens.delete('keep-alive');
  tokens.delete('close');
  for (const kept of ['host', 'content-length', 'content-type']) tokens.delete(kept);
  const out: string[] = [];
  // Upstream Via values joined in order (an empty first one adds nothing), then the gateway's.
  let upstreamVia = '';
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    const value = raw[i + 1] as string;
    const lower = name.toLowerCase();
    if (lower === 'content-length') contentLength = Number(value);
    if (lower === 'connection' || HOP_BY_HOP.has(lower) || lower === idHeader) continue;
    if (via !== undefined && lower === 'via') {
      upstreamVia = upstreamVia === '' ? value : `${upstreamVia}, ${value}`;
      continue;
    }
    if (tokens.has(lower)) continue;
    out.push(name, value);
  }
  out.push(idHeader, id);
  if (via !== undefined) out.push('via', upstreamVia === '' ? via : `${upstreamVia}, ${via}`);
  return { headers: out, contentLength };
}

describe('response headers, against a plain model', () => {
  const names = [
    'Content-Type',
    'Content-Length',
    'content-length',
    'Date',
    'Connection',
    'CONNECTION',
    'Keep-Alive',
    'Transfer-Encoding',
    'Via',
    'X-Request-Id',
    'X-Trace',
    'Set-Cookie',
    'TE',
    'Upgrade',
    'Proxy-Connection',
    'X-Internal',
    'x-internal',
  ];
  const values = ['keep-alive', 'Close', 'close, X-Internal', 'x-trace', '42', 'text/plain', '1.1 edge', ''];
  it('forwards the same headers and reads the same Content-Length', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.constantFrom(...names), fc.constantFrom(...values)), { maxLength: 12 }),
        fc.constantFrom('x-request-id', 'x-trace-id-long-name'),
        fc.constantFrom(undefined, '1.1 ringway'),
        (pairsIn, idHeader, via) => {
          const flat = pairsIn.flat();
          const facts = { contentLength: -1 };
          const got = forwardResponseHeaders(flat, idHeader, 'req-9', via, facts);
          const want = responseModel(flat, idHeader, 'req-9', via);
          expect(got).toEqual(want.headers);
          expect(facts.contentLength).toBe(want.contentLength);
        },
      ),
      { numRuns: 500 },
    );
  });
});
