/**
 * Live routes: the gateway's routes and services as one value in the config center (key
 * `gateway/routes` of the center's namespace by default; the file's `routes` and `services`
 * together, so that a route naming a new service arrives with it). A watch on the key applies
 * each new version through `resolveLiveRoutes` and `Gateway.apply`: new requests take the new
 * routes at once, requests in flight finish on the ones they matched.
 *
 * The file is the bootstrap. At start, a live value of the key wins; without one the file's
 * routes are live (source `file`), and deleting the key brings them back. Every gateway on
 * one store watches the same key, so a change written through any of them (or any client of
 * the config center) reaches all of them.
 *
 * Writes through the admin API are validated with the gateway's full checks before they are
 * stored, and the key has a JSON Schema (`LIVE_ROUTES_SCHEMA`) on this gateway's center; but
 * a writer that skips both (an older gateway, another program) can still store a version
 * this gateway refuses. Then the running routes stay, the refusal is logged and counted
 * (`ringway_gateway_route_changes_total{result="rejected"}`), and `rejected` says which
 * version and why until a later version applies.
 */
import { Counter, type Registry } from 'prom-client';
import type { ConfigCenter, ConfigChange, ConfigWatch } from '../../src/config/ConfigCenter.js';
import type { Logger } from '../log.js';
import { ConfigError } from './ConfigError.js';
import { type ResolvedGatewayConfig, resolveLiveRoutes } from './GatewayConfig.js';
import { LIVE_ROUTES_SCHEMA } from './schema.js';

/** The config key of the live routes, by default. */
export const DEFAULT_ROUTES_KEY = 'gateway/routes';

/** Options of live routes (`GatewayOptions.liveRoutes`). */
export interface LiveRoutesOptions {
  /**
   * The config key holding `{ routes, services }`, in the config center's namespace.
   * @default 'gateway/routes'
   */
  key?: string;
}

/** Where the routes live now came from. */
export type RoutesOrigin =
  /** The configuration the gateway started with (the file, for the CLI). */
  | { readonly source: 'file' }
  /** A version of the live routes key. */
  | { readonly source: 'config'; readonly key: string; readonly version: number; readonly updatedAt: number }
  /** `Gateway.apply` called from code. */
  | { readonly source: 'code' };

/** A version of the key that this gateway refused. */
export interface RejectedRoutes {
  readonly version: number;
  /** Store time of that write, ms since the epoch. */
  readonly updatedAt: number;
  /** When this gateway refused it. */
  readonly at: Date;
  /** Why: every problem, each naming its field. */
  readonly error: ConfigError;
}

/** What live routes need from the gateway. */
export interface LiveRoutesHost {
  /** Makes a configuration live (`Gateway.apply`). */
  apply(config: ResolvedGatewayConfig, origin: RoutesOrigin): void;
  readonly log: Logger;
  /** Where to count applied and rejected changes, if anywhere. */
  readonly metrics?: Registry | undefined;
}

const CHANGES_METRIC = 'ringway_gateway_route_changes_total';

/** Follows the live routes key of one config center and applies its versions; see the module comment. */
export class LiveRoutes {
  /** The config key. */
  readonly key: string;
  /** The config center the key lives in. */
  readonly center: ConfigCenter;
  readonly #base: ResolvedGatewayConfig;
  readonly #host: LiveRoutesHost;
  readonly #changes: Counter<'result'> | undefined;
  readonly #watch: ConfigWatch;
  /** The key's newest version seen (a write or a delete), 0 before any. */
  #seen = 0;
  /** The key's live version as last seen, undefined while it has no live value. */
  #live: number | undefined;
  #rejected: RejectedRoutes | undefined;
  #applied = 0;
  #rejections = 0;
  readonly #waiters = new Set<{ version: number; done: () => void }>();
  #closed = false;

  /**
   * Defines the key's JSON Schema on `center` and starts watching the key: its current value,
   * if any, is applied as soon as it is read (see {@link LiveRoutes.ready}).
   * @param base The configuration the gateway started with: what a delete of the key
   *   brings back, and where `listen`, `proxy` and `demo` come from.
   * @throws {InvalidOptionError} for a bad key.
   */
  constructor(
    center: ConfigCenter,
    base: ResolvedGatewayConfig,
    host: LiveRoutesHost,
    options: LiveRoutesOptions = {},
  ) {
    this.key = options.key ?? DEFAULT_ROUTES_KEY;
    this.center = center;
    this.#base = base;
    this.#host = host;
    const metrics = host.metrics;
    this.#changes =
      metrics === undefined
        ? undefined
        : ((metrics.getSingleMetric(CHANGES_METRIC) as Counter<'result'> | undefined) ??
          new Counter({
            name: CHANGES_METRIC,
            help: 'Versions of the live routes key applied, or refused by validation (the running routes stayed)',
            labelNames: ['result'],
            registers: [metrics],
          }));
    center.define(this.key, LIVE_ROUTES_SCHEMA);
    this.#watch = center.watch(this.key, (change) => this.#onChange(change), { exact: true });
  }

  /**
   * Resolves true once the key's current value was read (and applied, or refused), false when
   * that took longer than `timeoutMs` (the store is away: the routes live now stay, and the
   * value is applied when the store answers).
   */
  async ready(timeoutMs: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        this.#watch.ready.then(() => true),
        new Promise<boolean>((resolve) => {
          timer = setTimeout(() => resolve(false), timeoutMs);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Validates `value` as this gateway would apply it, without storing or applying it.
   * @throws {ConfigError} listing every problem, each naming its field (`routes[0].match.prefix`).
   */
  check(value: unknown): ResolvedGatewayConfig {
    return resolveLiveRoutes(value, this.#base);
  }

  /** The key's live version as last seen (undefined: no live value, the file's routes apply). */
  get liveVersion(): number | undefined {
    return this.#live;
  }

  /** The newest version of the key, if this gateway refused it (the routes live now stayed). */
  get rejected(): RejectedRoutes | undefined {
    return this.#rejected;
  }

  /** Versions applied and refused since start. */
  get counts(): { readonly applied: number; readonly rejected: number } {
    return { applied: this.#applied, rejected: this.#rejections };
  }

  /**
   * Resolves true once this gateway has seen `version` of the key (or a later one) and applied
   * or refused it; false after `timeoutMs` or when `signal` aborts.
   */
  waitFor(version: number, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    if (this.#seen >= version) return Promise.resolve(true);
    if (this.#closed || signal?.aborted === true) return Promise.resolve(false);
    return new Promise((resolve) => {
      const finish = (seen: boolean): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', abort);
        this.#waiters.delete(waiter);
        resolve(seen);
      };
      const abort = (): void => finish(false);
      const waiter = { version, done: () => finish(true) };
      const timer = setTimeout(abort, timeoutMs);
      signal?.addEventListener('abort', abort);
      this.#waiters.add(waiter);
    });
  }

  /** Stops watching (the routes live now stay). Calling it twice is harmless. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#watch.close();
    for (const w of [...this.#waiters]) w.done();
  }

  #onChange(change: ConfigChange): void {
    if (this.#closed) return;
    const log = this.#host.log;
    const key = this.key;
    if (change.type === 'delete') {
      this.#live = undefined;
      this.#rejected = undefined;
      this.#host.apply(this.#base, { source: 'file' });
      this.#changes?.labels('applied').inc();
      this.#applied++;
      log.info({ key, version: change.version }, 'live routes deleted: the routes of the file are live again');
    } else {
      this.#live = change.version;
      try {
        const config = resolveLiveRoutes(change.value, this.#base);
        this.#host.apply(config, { source: 'config', key, version: change.version, updatedAt: change.updatedAt });
        this.#rejected = undefined;
        this.#changes?.labels('applied').inc();
        this.#applied++;
        log.info(
          { key, version: change.version, routes: config.routes.length, services: config.services.size },
          'live routes applied',
        );
      } catch (err) {
        // A version written around the validation: the running routes stay.
        const error =
          err instanceof ConfigError
            ? err
            : new ConfigError([{ field: '', message: err instanceof Error ? err.message : String(err) }]);
        this.#rejected = Object.freeze({ version: change.version, updatedAt: change.updatedAt, at: new Date(), error });
        this.#changes?.labels('rejected').inc();
        this.#rejections++;
        log.error(
          { key, version: change.version, issues: error.issues },
          'live routes refused: the running routes stay',
        );
      }
    }
    this.#seen = change.version;
    for (const w of [...this.#waiters]) if (this.#seen >= w.version) w.done();
  }
}
