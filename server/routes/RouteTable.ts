/**
 * The route table: routes in configuration order, the first that matches wins (as Envoy's
 * route tables do), so put specific routes before general ones. A route matches on:
 *
 * - path prefix, on whole segments: `/api` matches `/api`, `/api/` and `/api/x`, never `/apix`
 *   (`/` matches every path);
 * - host (the `Host` header without its port, case-insensitive): exact names, or
 *   `*.example.com` for any subdomain of example.com;
 * - method;
 * - headers that must be present with exactly the given values.
 *
 * A table is immutable: a configuration change builds a new one and swaps it in, so requests
 * already routed keep the route they matched.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { ResolvedRoute } from '../config/GatewayConfig.js';

/** `Host` without the port, lower-cased; IPv6 literals keep their brackets. */
export function hostName(host: string | undefined): string {
  if (host === undefined || host === '') return '';
  let end = host.length;
  if (host.charCodeAt(0) === 0x5b) {
    const close = host.indexOf(']');
    end = close === -1 ? end : close + 1;
  } else {
    const colon = host.lastIndexOf(':');
    if (colon !== -1) end = colon;
  }
  const name = host.slice(0, end);
  return name.toLowerCase();
}

function hostMatches(hosts: readonly string[], name: string): boolean {
  for (const h of hosts) {
    if (h.charCodeAt(0) === 0x2a) {
      // '*.example.com': any name that ends with '.example.com' and has something before it
      const suffix = h.slice(1);
      if (name.length > suffix.length && name.endsWith(suffix)) return true;
    } else if (h === name) {
      return true;
    }
  }
  return false;
}

/** Whether `path` is `prefix` or lies under it, on segment boundaries. */
export function underPrefix(path: string, prefix: string): boolean {
  if (prefix === '/') return true;
  if (!path.startsWith(prefix)) return false;
  return path.length === prefix.length || path.charCodeAt(prefix.length) === 0x2f;
}

/** An immutable, ordered set of routes. */
export class RouteTable {
  readonly routes: readonly ResolvedRoute[];
  readonly #needsHost: boolean;

  constructor(routes: readonly ResolvedRoute[]) {
    this.routes = routes;
    this.#needsHost = routes.some((r) => r.hosts !== undefined);
  }

  /** The first route that matches, or undefined. `path` is the checked path (see `checkRequestTarget`). */
  match(method: string, path: string, headers: IncomingHttpHeaders): ResolvedRoute | undefined {
    const host = this.#needsHost ? hostName(headers.host) : '';
    for (const r of this.routes) {
      if (!underPrefix(path, r.prefix)) continue;
      if (r.methods !== undefined && !r.methods.has(method)) continue;
      if (r.hosts !== undefined && !hostMatches(r.hosts, host)) continue;
      if (r.headers.length > 0 && !headersMatch(r.headers, headers)) continue;
      return r;
    }
    return undefined;
  }
}

function headersMatch(required: readonly (readonly [string, string])[], headers: IncomingHttpHeaders): boolean {
  for (const [name, value] of required) {
    const got = headers[name];
    if (got === undefined) return false;
    if (Array.isArray(got) ? !got.includes(value) : got !== value) return false;
  }
  return true;
}
