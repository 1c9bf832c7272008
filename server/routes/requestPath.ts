/**
 * The safety check every request target passes before routing: the path the gateway matches
 * routes on must be the path the upstream will act on. Path tricks that make the two differ
 * are refused, never forwarded:
 *
 * - anything but origin-form (`/path?query`, RFC 9112 section 3.2.1): absolute-form and `*`;
 * - dot segments, plain or percent-encoded (`/api/../admin`, `/api/%2e%2e/admin`): an
 *   upstream that resolves them (RFC 3986 section 5.2.4) would serve a path no route allowed;
 * - encoded slashes and backslashes (`%2f`, `%5c`) and raw backslashes, which some servers
 *   treat as separators; encoded NUL; malformed percent-escapes; a fragment.
 *
 * Percent-encoded unreserved characters (`%41` for `A`, RFC 3986 section 2.3) are decoded,
 * the normalization RFC 3986 section 6.2.2.2 allows, so `/%61pi` matches the route `/api`
 * exactly as `/api` does and cannot slip past it; the escapes kept get upper-case hex digits
 * (section 6.2.2.1), so `/caf%c3%a9` is `/caf%C3%A9`. Route prefixes go through the same
 * normalization when the configuration is loaded.
 */

/** Why a path was refused, or the path and query to route and forward. */
export type RequestTarget = { readonly path: string; readonly query: string } | { readonly error: string };

const HEX = /^[0-9A-Fa-f]{2}$/;

function isUnreserved(code: number): boolean {
  return (
    (code >= 0x41 && code <= 0x5a) || // A-Z
    (code >= 0x61 && code <= 0x7a) || // a-z
    (code >= 0x30 && code <= 0x39) || // 0-9
    code === 0x2d || // -
    code === 0x2e || // .
    code === 0x5f || // _
    code === 0x7e // ~
  );
}

/**
 * Decodes percent-encoded unreserved characters and upper-cases the hex digits of the other
 * escapes; refuses encoded `/`, `\`, NUL and bad escapes.
 */
function normalizeEscapes(path: string): string | { error: string } {
  let out = '';
  let last = 0;
  for (let i = path.indexOf('%'); i !== -1; i = path.indexOf('%', i + 1)) {
    const hex = path.slice(i + 1, i + 3);
    if (!HEX.test(hex)) return { error: 'malformed percent-escape in the path' };
    const code = Number.parseInt(hex, 16);
    if (code === 0x2f || code === 0x5c) return { error: 'encoded slash or backslash in the path' };
    if (code === 0) return { error: 'encoded NUL in the path' };
    if (isUnreserved(code)) {
      out += path.slice(last, i) + String.fromCharCode(code);
      last = i + 3;
    } else {
      const upper = hex.toUpperCase();
      if (upper !== hex) {
        out += `${path.slice(last, i)}%${upper}`;
        last = i + 3;
      }
    }
  }
  return last === 0 ? path : out + path.slice(last);
}

/** Whether `path` has a `.` or `..` segment. */
function hasDotSegment(path: string): boolean {
  for (let i = path.indexOf('/.'); i !== -1; i = path.indexOf('/.', i + 1)) {
    const next = path.charCodeAt(i + 2);
    // '/.' then end or '/'  ->  '.'; '/..' then end or '/'  ->  '..'
    if (Number.isNaN(next) || next === 0x2f) return true;
    if (next === 0x2e) {
      const after = path.charCodeAt(i + 3);
      if (Number.isNaN(after) || after === 0x2f) return true;
    }
  }
  return false;
}

/**
 * Checks and splits a raw request target (`req.url`).
 * @example checkRequestTarget('/api/users?id=7') // { path: '/api/users', query: '?id=7' }
 * @example checkRequestTarget('/api/../admin')   // { error: 'dot segment in the path' }
 */
export function checkRequestTarget(url: string): RequestTarget {
  if (url.charCodeAt(0) !== 0x2f) return { error: 'the request target must be a path starting with /' };
  const q = url.indexOf('?');
  let path = q === -1 ? url : url.slice(0, q);
  const query = q === -1 ? '' : url.slice(q);
  if (url.includes('#')) return { error: 'a fragment in the request target' };
  if (path.includes('\\')) return { error: 'backslash in the path' };
  if (path.includes('%')) {
    const normalized = normalizeEscapes(path);
    if (typeof normalized !== 'string') return normalized;
    path = normalized;
  }
  if (path.includes('/.') && hasDotSegment(path)) return { error: 'dot segment in the path' };
  return { path, query };
}
