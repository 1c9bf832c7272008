/**
 * The key `ring-hash` and `maglev` routes hash: the request path, the client address, a
 * header's value or a cookie's. A request without the header or cookie hashes by its
 * client address instead, so it still sticks to one instance.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { ResolvedHashKey } from '../config/GatewayConfig.js';

/** The value of cookie `name` in a `Cookie` header (RFC 6265 section 5.4), or undefined. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  let start = 0;
  while (start < header.length) {
    let end = header.indexOf(';', start);
    if (end === -1) end = header.length;
    const eq = header.indexOf('=', start);
    if (eq !== -1 && eq < end && header.slice(start, eq).trim() === name) {
      let value = header.slice(eq + 1, end).trim();
      if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
      return value;
    }
    start = end + 1;
  }
  return undefined;
}

/** The hash key of a request. */
export function hashKeyOf(spec: ResolvedHashKey, path: string, clientIp: string, headers: IncomingHttpHeaders): string {
  switch (spec.type) {
    case 'path':
      return path;
    case 'ip':
      return clientIp;
    case 'header': {
      const v = headers[spec.name];
      if (v === undefined || v === '') return clientIp;
      return Array.isArray(v) ? v.join(',') : v;
    }
    case 'cookie':
      return cookieValue(headers.cookie, spec.name) ?? clientIp;
  }
}
