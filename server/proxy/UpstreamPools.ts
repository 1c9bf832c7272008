/**
 * One keep-alive {@link Http1Pool} per upstream origin and pool settings, shared by every
 * route and service that sends to it with those settings, created on first use and closed
 * gracefully (in-flight requests finish) when no endpoint uses it any more.
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

/** Pool settings (a service's `connections` and `connectTimeoutMs`). */
export interface PoolSettings {
  /** Keep-alive connections per origin. */
  readonly connections: number;
  /** Time to open a connection, in ms. */
  readonly connectTimeoutMs: number;
}

/** An endpoint address and the pool settings of the service it belongs to. */
export interface PoolUse {
  readonly address: string;
  readonly settings: PoolSettings;
}

/** Whether the proxy can send to `address`: an `http://` or `https://` URL. */
export function isUpstreamUrl(address: string): boolean {
  let url: URL;
  try {
    url = new URL(address);
  } catch {
    return false;
  }
  return url.protocol === 'http:' || url.protocol === 'https:';
}

function settingsKey(settings: PoolSettings): string {
  return `${settings.connections}/${settings.connectTimeoutMs}`;
}

/**
 * The pools of a gateway: one per origin and pool settings, so that services sending to the
 * same origin with the same settings share connections, and a live change of a service's
 * `connections` or `connectTimeoutMs` takes a pool made with them (the old one is closed
 * gracefully by {@link UpstreamPools.retain} once no service uses it).
 */
export class UpstreamPools {
  /**
   * Targets by settings object, then address: the per-request lookup is by identity and by an
   * address string whose hash is cached, with no key string built per request.
   */
  readonly #byAddress = new Map<PoolSettings, Map<string, UpstreamTarget>>();
  /** Pools by `<settings> <origin>`. */
  readonly #pools = new Map<string, Http1Pool>();
  #closed = false;

  /** The target for an endpoint address; its pool is created with `settings` on first use. */
  target(address: string, settings: PoolSettings): UpstreamTarget {
    let targets = this.#byAddress.get(settings);
    const hit = targets?.get(address);
    if (hit !== undefined) return hit;
    const url = new URL(address);
    const origin = url.origin;
    const poolKey = `${settingsKey(settings)} ${origin}`;
    let pool = this.#pools.get(poolKey);
    if (pool === undefined) {
      pool = new Http1Pool(origin, {
        connections: settings.connections,
        connectTimeoutMs: settings.connectTimeoutMs,
      });
      this.#pools.set(poolKey, pool);
    }
    const basePath = url.pathname === '/' ? '' : url.pathname.replace(/\/$/, '');
    const target: UpstreamTarget = Object.freeze({ pool, basePath, origin });
    if (targets === undefined) {
      targets = new Map();
      this.#byAddress.set(settings, targets);
    }
    targets.set(address, target);
    return target;
  }

  /**
   * Closes the pools no use in `inUse` points to (an origin no endpoint has any more, or
   * settings no service has any more); in-flight requests finish first.
   */
  retain(inUse: Iterable<PoolUse>): void {
    const pools = new Set<string>();
    const addresses = new Map<PoolSettings, Set<string>>();
    for (const { address, settings } of inUse) {
      let set = addresses.get(settings);
      if (set === undefined) {
        set = new Set();
        addresses.set(settings, set);
      }
      set.add(address);
      try {
        pools.add(`${settingsKey(settings)} ${new URL(address).origin}`);
      } catch {
        // not a URL: it never got a pool
      }
    }
    // The target cache: what is still in use stays (a use with an equal but new settings
    // object simply misses once and finds its pool by its settings).
    for (const [settings, targets] of this.#byAddress) {
      const keep = addresses.get(settings);
      if (keep === undefined) {
        this.#byAddress.delete(settings);
        continue;
      }
      for (const address of targets.keys()) if (!keep.has(address)) targets.delete(address);
    }
    for (const [key, pool] of this.#pools) {
      if (pools.has(key)) continue;
      this.#pools.delete(key);
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
