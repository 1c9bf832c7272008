/**
 * Header rewriting both ways, on Node's and the upstream pool's flat `[name, value, ...]`
 * arrays, so that names keep their case and repeated headers (`Set-Cookie`) their order.
 *
 * Hop-by-hop headers belong to one connection and are never forwarded (RFC 9110 section
 * 7.6.1): `Connection`, every header `Connection` names, and the ones listed below that old
 * and current specifications call hop-by-hop (`Keep-Alive`, `Proxy-Connection`, `TE`,
 * `Trailer`, `Transfer-Encoding`, `Upgrade`, `Proxy-Authenticate`, `Proxy-Authorization`,
 * `HTTP2-Settings`). Framing is the gateway's own on each connection: Node frames the
 * response to the client, Http1Pool the request to the upstream.
 */

/** Headers never forwarded in either direction (lower case). */
export const HOP_BY_HOP: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'http2-settings',
]);

/**
 * A `Connection` value that names no header (nearly every one): skipped before any array or
 * set is made for it.
 */
const PLAIN_CONNECTION = /^(?:keep-alive|close)$/i;

/** The tokens of `Connection` header values, lower-cased (RFC 9110 section 7.6.1). */
export function connectionTokens(values: readonly string[]): Set<string> {
  const out = new Set<string>();
  for (const v of values) {
    // The usual values name no header: skip the split.
    if (v === 'keep-alive' || v === 'close' || v === 'Keep-Alive' || v === 'Close') continue;
    for (const part of v.split(',')) {
      const t = part.trim().toLowerCase();
      if (t !== '' && t !== 'close' && t !== 'keep-alive') out.add(t);
    }
  }
  return out;
}

/** What the forwarded request headers depend on besides the client's headers. */
export interface ForwardContext {
  /** The client's address (the socket's remote address). */
  readonly clientIp: string;
  /** `http` or `https`: how the client reached the gateway. */
  readonly proto: string;
  /** The request id. */
  readonly requestId: string;
  /** The request id header name, lower case. */
  readonly requestIdHeader: string;
  /** Keep the client's `Host` (else the pool sends the upstream's). */
  readonly preserveHost: boolean;
  /** Append to an incoming `X-Forwarded-For` (else replace it). */
  readonly appendForwardedFor: boolean;
  /** `Via` value to add, or undefined. */
  readonly via: string | undefined;
}

/**
 * The headers to send upstream: the client's, minus hop-by-hop ones and those its
 * `Connection` names, minus `Expect` (Node already answered `100 Continue`), with
 * `X-Forwarded-For`, `-Proto`, `-Host`, the request id and (optionally) `Via` set.
 */
export function forwardRequestHeaders(raw: readonly string[], ctx: ForwardContext): string[] {
  const out: string[] = [];
  let host = '';
  let forwardedFor = '';
  let via = '';
  let named: string[] | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    const value = raw[i + 1] as string;
    const lower = name.toLowerCase();
    switch (lower) {
      case 'host':
        host = value;
        if (ctx.preserveHost) out.push(name, value);
        continue;
      case 'connection':
        if (PLAIN_CONNECTION.test(value)) continue;
        if (named === undefined) named = [value];
        else named.push(value);
        continue;
      case 'x-forwarded-for':
        if (ctx.appendForwardedFor) forwardedFor = forwardedFor === '' ? value : `${forwardedFor}, ${value}`;
        continue;
      case 'x-forwarded-proto':
      case 'x-forwarded-host':
      case 'expect':
        continue;
      case 'via':
        if (ctx.via !== undefined) {
          via = via === '' ? value : `${via}, ${value}`;
          continue;
        }
        break;
      default:
        if (lower === ctx.requestIdHeader || HOP_BY_HOP.has(lower)) continue;
    }
    out.push(name, value);
  }
  const result = named === undefined ? out : dropNamed(out, connectionTokens(named));
  result.push(
    'x-forwarded-for',
    forwardedFor === '' ? ctx.clientIp : `${forwardedFor}, ${ctx.clientIp}`,
    'x-forwarded-proto',
    ctx.proto,
    ctx.requestIdHeader,
    ctx.requestId,
  );
  if (host !== '') result.push('x-forwarded-host', host);
  if (ctx.via !== undefined) result.push('via', via === '' ? ctx.via : `${via}, ${ctx.via}`);
  return result;
}

function dropNamed(headers: string[], tokens: Set<string>): string[] {
  if (tokens.size === 0) return headers;
  const out: string[] = [];
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i] as string;
    // Headers the gateway itself sets are never dropped by a client's Connection header.
    if (tokens.has(name.toLowerCase()) && !PROTECTED.has(name.toLowerCase())) continue;
    out.push(name, headers[i + 1] as string);
  }
  return out;
}

/** Headers a `Connection` header may not remove: their meaning is end-to-end or the gateway's. */
const PROTECTED: ReadonlySet<string> = new Set(['host', 'content-length', 'content-type']);

/** 1 at the lengths of the response header names the proxy acts on (besides the request id's). */
const WATCHED_LENGTHS: Uint8Array = (() => {
  const names = [...HOP_BY_HOP, 'content-length', 'via'];
  const out = new Uint8Array(Math.max(...names.map((x) => x.length)) + 1);
  for (const x of names) out[x.length] = 1;
  return out;
})();

/** What the response headers say that the proxy uses (written by {@link forwardResponseHeaders}). */
export interface ResponseFacts {
  /** The response's `Content-Length`, or -1 when it has none. */
  contentLength: number;
}

/**
 * The headers to send back to the client from the upstream's raw response headers: hop-by-hop
 * ones and those `Connection` names removed, the upstream's request id header replaced by
 * the gateway's, `Via` added when configured.
 */
export function forwardResponseHeaders(
  raw: readonly string[],
  requestIdHeader: string,
  requestId: string,
  via: string | undefined,
  facts?: ResponseFacts,
): string[] {
  const out: string[] = [];
  let named: string[] | undefined;
  let upstreamVia = '';
  const idLength = requestIdHeader.length;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    const n = name.length;
    // Only a name as long as one the proxy looks at is lower-cased and compared; a dropped
    // header's value is never turned into a string.
    if (n === idLength || (n < WATCHED_LENGTHS.length && WATCHED_LENGTHS[n] === 1)) {
      const lower = name.toLowerCase();
      if (lower === 'connection') {
        const value = raw[i + 1] as string;
        if (PLAIN_CONNECTION.test(value)) continue;
        if (named === undefined) named = [value];
        else named.push(value);
        continue;
      }
      if (HOP_BY_HOP.has(lower) || lower === requestIdHeader) continue;
      if (lower === 'content-length') {
        const value = raw[i + 1] as string;
        if (facts !== undefined) facts.contentLength = Number(value);
        out.push(name, value);
        continue;
      }
      if (via !== undefined && lower === 'via') {
        const value = raw[i + 1] as string;
        upstreamVia = upstreamVia === '' ? value : `${upstreamVia}, ${value}`;
        continue;
      }
    }
    out.push(name, raw[i + 1] as string);
  }
  const result = named === undefined ? out : dropNamed(out, connectionTokens(named));
  result.push(requestIdHeader, requestId);
  if (via !== undefined) result.push('via', upstreamVia === '' ? via : `${upstreamVia}, ${via}`);
  return result;
}
