/**
 * One keep-alive {@link Http1Pool} per upstream origin, shared by every route and service that
 * sends to it, created on first use and closed gracefully (in-flight requests finish) when no
 * endpoint uses the origin any more.
 */
import { Http1Pool } from './Http1Pool.js';

/** Where a request for one endpoint goes: its origin's pool and the address's base path. */
export interface UpstreamTarget {
  readonly pool: Http1Pool;
  /** Path of the endpoint's address ('' for `http://host:port`), prepended to every request path. */
  readonly basePath: string;
  /** `scheme://host:port`. */
  readonly origin: string;
}

/** Pool settings for new origins. */
export interface PoolSettings {
  /** Keep-alive connections per origin. */
  readonly connections: number;
  /** Time to open a connection, in ms. */
  readonly connectTimeoutMs: number;
}

/** The pools of a gateway. */
export class UpstreamPools {
  readonly #byAddress = new Map<string, UpstreamTarget>();
  readonly #pools = new Map<string, Http1Pool>();
  #closed = false;

  /** The target for an endpoint address; its pool is created with `settings` on first use. */
  target(address: string, settings: PoolSettings): UpstreamTarget {
    const hit = this.#byAddress.get(address);
    if (hit !== undefined) return hit;
    const url = new URL(address);
    const origin = url.origin;
    let pool = this.#pools.get(origin);
    if (pool === undefined) {
      pool = new Http1Pool(origin, {
        connections: settings.connections,
        connectTimeoutMs: settings.connectTimeoutMs,
      });
      this.#pools.set(origin, pool);
    }
    const basePath = url.pathname === '/' ? '' : url.pathname.replace(/\/$/, '');
    const target: UpstreamTarget = Object.freeze({ pool, basePath, origin });
    this.#byAddress.set(address, target);
    return target;
  }

  /** Closes the pools of origins no address in `inUse` points to (in-flight requests finish first). */
  retain(inUse: Iterable<string>): void {
    const origins = new Set<string>();
    const addresses = new Set<string>();
    for (const address of inUse) {
      addresses.add(address);
      try {
        origins.add(new URL(address).origin);
      } catch {
        // not a URL: it never got a pool
      }
    }
    for (const address of this.#byAddress.keys()) if (!addresses.has(address)) this.#byAddress.delete(address);
    for (const [origin, pool] of this.#pools) {
      if (origins.has(origin)) continue;
      this.#pools.delete(origin);
      pool.close().catch(() => {});
    }
  }

  /** Number of open pools. */
  get size(): number {
    return this.#pools.size;
  }

  /** Closes every pool: waits for in-flight requests, or destroys them when `force`. */
  async close(force = false): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const pools = [...this.#pools.values()];
    this.#pools.clear();
    this.#byAddress.clear();
    await Promise.all(pools.map((p) => (force ? p.destroy() : p.close()).catch(() => {})));
  }
}
