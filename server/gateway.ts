/**
 * The gateway: a Fastify server whose requests go straight to the proxy.
 *
 * Routes match on host and headers as well as path, the first match in configuration order
 * wins, and they change live (the control plane swaps the table without a restart, which
 * Fastify's router cannot undo), so the route table is the gateway's own, compiled once per
 * configuration and swapped atomically. Fastify owns the HTTP server (created through
 * `serverFactory`): listening, graceful close, connection reaping, and the answers to what
 * Node's parser refuses. The server's request listener is the lean catch-all that hands the
 * raw request and response to the proxy, which streams both bodies through its own HTTP/1.1
 * client pool (proxy/Http1Pool.ts); a Fastify catch-all route leads to the same handler, for
 * `app.inject()`. Measured with
 * `bench/gateway.bench.ts`, going through Fastify's per-request layer first (request and reply
 * objects, router, hooks, then `reply.hijack()`) cost 5-10% more CPU per proxied request, for
 * nothing it would do here.
 *
 * The admin API (registry, config, locks, metrics over HTTP) is a separate Fastify server on
 * its own port; this one never serves admin routes, whatever the path.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { RetryBudget, resolveRetryBudgetOptions } from '../src/balancer/RetryBudget.js';
import { ConfigCenter } from '../src/config/ConfigCenter.js';
import type { Registration } from '../src/registry/Registration.js';
import { ServiceRegistry } from '../src/registry/ServiceRegistry.js';
import { memoryStore } from '../src/store/memory/MemoryStore.js';
import type { Store } from '../src/store/Store.js';
import { type AdminOptions, AdminServer } from './admin/AdminServer.js';
import {
  IDEMPOTENT_METHODS,
  type ResolvedGatewayConfig,
  type ResolvedRoute,
  type ResolvedService,
} from './config/GatewayConfig.js';
import { LiveRoutes, type LiveRoutesOptions, type RoutesOrigin } from './config/LiveRoutes.js';
import { type DemoUpstreams, startDemoUpstreams } from './demo/demoUpstreams.js';
import { answerClientError, type GatewayErrorCode, sendError } from './errors.js';
import { Logger, type LogLevel } from './log.js';
import { GatewayMetrics } from './metrics/GatewayMetrics.js';
import { DeadlineQueue } from './proxy/DeadlineQueue.js';
import { hashKeyOf } from './proxy/hashKey.js';
import { type ForwardContext, forwardRequestHeaders } from './proxy/headers.js';
import { ProxyRequest, type ProxyShared, type RouteRuntime, type Try } from './proxy/ProxyRequest.js';
import { RequestBody } from './proxy/RequestBody.js';
import { requestIdFor } from './proxy/requestId.js';
import { UpstreamPools } from './proxy/UpstreamPools.js';
import { MemoryRateLimiter } from './ratelimit/MemoryRateLimiter.js';
import type { RateLimiter } from './ratelimit/RateLimiter.js';
import { StoreRateLimiter } from './ratelimit/StoreRateLimiter.js';
import { RouteTable } from './routes/RouteTable.js';
import { checkRequestTarget } from './routes/requestPath.js';
import { type InstanceSource, Upstreams } from './upstreams/Upstreams.js';

/** Requests with `Expect: 100-continue` whose body has not been invited yet. */
const awaitingContinue = new WeakSet<IncomingMessage>();

/** Options of {@link createGateway}. */
export interface GatewayOptions {
  /** The resolved configuration (`loadGatewayConfig(path)` or `resolveGatewayConfig(value)`). */
  config: ResolvedGatewayConfig;
  /**
   * The shared store. Redis makes rate limits shared between gateways; the registry lives
   * there too. The gateway does not close a store it was given.
   * @default a new memory store
   */
  store?: Store;
  /**
   * The service registry that instances of services without a `static` list come from
   * (live). The gateway does not close a registry it was given.
   * @default a new ServiceRegistry on `store`
   */
  registry?: ServiceRegistry;
  /** Another source of instances instead of the registry (tests, custom discovery). */
  instances?: InstanceSource;
  /** Listen port, overriding `listen.port` (0: a free port). */
  port?: number;
  /** Listen address, overriding `listen.host`. */
  host?: string;
  /** Log level, or false for no logs. @default 'info' */
  logLevel?: LogLevel | false;
  /** A logger to use instead. */
  logger?: Logger;
  /** Prometheus metrics of the proxy: false turns them off. @default a new GatewayMetrics */
  metrics?: GatewayMetrics | false;
  /** Rate limiter. @default Redis buckets on a Redis store, else in-process buckets */
  rateLimiter?: RateLimiter;
  /**
   * Serve the admin API (registry over HTTP, `/metrics`, `/healthz`, `/readyz`) on its own
   * port, started by `listen()` and closed by `close()`. The CLI always serves it.
   * @default no admin API
   */
  admin?: AdminOptions;
  /**
   * The config center that live routes come from and that the admin API serves at
   * `/v1/config/...`. The gateway does not close a center it was given.
   * @default `admin.config` if given, else a new ConfigCenter on `store` (namespace `default`)
   */
  configCenter?: ConfigCenter;
  /**
   * Live routes: the key of the config center whose value (`{ routes, services }`, as in the
   * file) replaces the routes and services of `config` while it has one, applied live; see
   * `LiveRoutes`. false: the routes of `config` only, changed by `apply()` alone.
   * @default { key: 'gateway/routes' }
   */
  liveRoutes?: LiveRoutesOptions | false;
}

/** The routes live now, their services, where they came from and when they went live. */
export interface RoutesView {
  readonly routes: readonly ResolvedRoute[];
  readonly services: ReadonlyMap<string, ResolvedService>;
  readonly origin: RoutesOrigin;
  readonly appliedAt: Date;
}

/** `listen()` was cancelled by `close()`. */
function startCancelled(): DOMException {
  return new DOMException('the gateway was closed while it was starting', 'AbortError');
}

/** A route table with each route's runtime, swapped as one. */
interface Compiled {
  readonly config: ResolvedGatewayConfig;
  readonly table: RouteTable;
  readonly runtimes: readonly RouteRuntime[];
  /** Where the configuration came from. */
  readonly origin: RoutesOrigin;
  /** When this table went live. */
  readonly appliedAt: Date;
}

/** Client address without the IPv4-mapped IPv6 prefix. */
function clientAddress(req: IncomingMessage): string {
  const a = req.socket.remoteAddress ?? '';
  return a.startsWith('::ffff:') ? a.slice(7) : a;
}

/** The path to send upstream after `stripPrefix` / `rewritePrefix`. */
export function rewritePath(route: ResolvedRoute, path: string): string {
  const to = route.rewritePrefix;
  if (to === undefined) return path;
  const rest = route.prefix === '/' ? path : path.slice(route.prefix.length);
  if (to === '/') return rest === '' ? '/' : rest;
  return rest === '/' && route.prefix !== '/' ? `${to}/` : to + rest;
}

/** A running gateway. */
export class Gateway {
  readonly app: FastifyInstance;
  readonly store: Store;
  readonly metrics: GatewayMetrics | undefined;
  readonly upstreams: Upstreams;
  readonly pools: UpstreamPools;
  readonly rateLimiter: RateLimiter;
  /** The gateway's log. */
  readonly log: Logger;
  /** The service registry (registry-backed services, demo instances, the admin API). */
  readonly registry: ServiceRegistry;
  /** The admin API, when `options.admin` asked for it. */
  readonly admin: AdminServer | undefined;
  /** The config center of live routes and of the admin API's `/v1/config`. */
  readonly configCenter: ConfigCenter;
  /** The live routes watch, unless `options.liveRoutes` is false. */
  readonly liveRoutes: LiveRoutes | undefined;
  #compiled: Compiled;
  /** The proxy's and the admin API's ports opening now, in `listen()` (close() waits for each, then closes it). */
  readonly #opening: { proxy?: Promise<unknown> | undefined; admin?: Promise<unknown> | undefined } = {};
  readonly #ownsConfigCenter: boolean;
  #inFlight = 0;
  #draining = false;
  #closed: Promise<void> | undefined;
  #drained: (() => void) | undefined;
  readonly #ownsStore: boolean;
  readonly #ownsRegistry: boolean;
  readonly #registrations: Registration[] = [];
  readonly #shared: ProxyShared;
  readonly #listenPort: number;
  readonly #listenHost: string;
  #demo: DemoUpstreams | undefined;
  readonly #forwardCtx: { -readonly [K in keyof ForwardContext]: ForwardContext[K] } = {
    clientIp: '',
    proto: 'http',
    requestId: '',
    requestIdHeader: 'x-request-id',
    preserveHost: false,
    appendForwardedFor: true,
    via: undefined,
  };

  /** Prefer {@link createGateway}, which also starts demo upstreams. */
  constructor(options: GatewayOptions) {
    const config = options.config;
    this.#ownsStore = options.store === undefined;
    this.store = options.store ?? memoryStore();
    this.#ownsRegistry = options.registry === undefined;
    this.registry = options.registry ?? new ServiceRegistry({ store: this.store });
    this.metrics = options.metrics === false ? undefined : (options.metrics ?? new GatewayMetrics());
    this.metrics?.trackInFlight(() => this.#inFlight);
    this.metrics?.trackUpstreams(() => this.upstreams.endpointIds());
    this.pools = new UpstreamPools();
    this.rateLimiter =
      options.rateLimiter ??
      (this.store.kind === 'memory' ? new MemoryRateLimiter() : new StoreRateLimiter(this.store.rateLimits));
    const limiter = this.rateLimiter;
    if (limiter instanceof StoreRateLimiter) this.metrics?.trackRateLimitFailures(() => limiter.failures);
    this.#listenPort = options.port ?? config.listen.port;
    this.#listenHost = options.host ?? config.listen.host;
    const proxy = config.proxy;
    const log = options.logger ?? new Logger(options.logLevel === false ? 'silent' : (options.logLevel ?? 'info'));
    this.log = log;
    this.#ownsConfigCenter = options.configCenter === undefined && options.admin?.config === undefined;
    this.configCenter = options.configCenter ?? options.admin?.config ?? new ConfigCenter({ store: this.store });
    // Before anything with timers starts (a bad key throws). The watch reads the key's value
    // asynchronously; its first apply comes after the file's routes below are compiled.
    this.liveRoutes =
      options.liveRoutes === false
        ? undefined
        : new LiveRoutes(
            this.configCenter,
            config,
            { apply: (c, origin) => this.apply(c, origin), log, metrics: this.metrics?.registry },
            options.liveRoutes,
          );
    this.app = Fastify({
      // No Fastify logger: with one, Fastify adds listeners and a child logger to every request.
      logger: false,
      // Fastify owns the server; the server's listener is the proxy's fast path (see above).
      serverFactory: (_fastifyHandler) => {
        const server = createServer({ maxHeaderSize: proxy.maxHeaderSize }, (req, res) => this.#onRequest(req, res));
        // `Expect: 100-continue`: the gateway invites the body only when a try starts sending
        // it, so a request refused first (404, 413, 429...) is answered without inviting it.
        server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
          awaitingContinue.add(req);
          this.#onRequest(req, res);
        });
        server.keepAliveTimeout = proxy.keepAliveTimeoutMs;
        server.requestTimeout = proxy.requestTimeoutMs;
        return server;
      },
      genReqId: (req) => requestIdFor(req.headers[proxy.requestIdHeader]),
      requestIdHeader: false,
      return503OnClosing: false,
      forceCloseConnections: 'idle',
      clientErrorHandler: (err, socket) => this.#clientError(err, socket),
      frameworkErrors: (err, request, reply) => {
        reply.hijack();
        this.#reject(reply.raw, 'ERR_BAD_REQUEST', err.message, request.id);
      },
    });
    const debugOn = log.isEnabled('debug');
    this.#shared = {
      pools: this.pools,
      metrics: this.metrics,
      proxy,
      deadlines: new DeadlineQueue<Try>(),
      draining: false,
      finished: () => {
        this.#inFlight--;
        if (this.#inFlight === 0) this.#drained?.();
      },
      debug: (requestId, message, detail) => {
        if (debugOn) log.debug({ reqId: requestId, ...detail }, message);
      },
    };
    const metrics = this.metrics;
    this.upstreams = new Upstreams(this.pools, options.instances ?? this.registry, {
      ejected: (service, id, ms) => {
        metrics?.ejections.labels(service, id).inc();
        log.warn({ service, upstream: id, durationMs: Math.round(ms) }, 'upstream ejected');
      },
      restored: (service, id) => log.info({ service, upstream: id }, 'upstream back in rotation'),
      healthChanged: (service, id, healthy, reason) =>
        log[healthy ? 'info' : 'warn'](
          { service, upstream: id, reason },
          healthy ? 'upstream healthy' : 'upstream unhealthy',
        ),
      instances: (service, count) => {
        log.info({ service, instances: count }, 'service instances changed');
        // After the balancers took the new set (this runs just before): series of instances
        // that left go too.
        if (this.metrics !== undefined) queueMicrotask(() => this.#forgetGoneUpstreams());
      },
      invalidInstance: (service, id, reason) => log.warn({ service, instance: id, reason }, 'instance refused'),
    });
    this.#compiled = this.#compile(config, { source: 'file' });
    this.admin = options.admin === undefined ? undefined : new AdminServer(this, options.admin);

    // Bodies stay unread: the proxy streams them. No parser, no buffering, no JSON.
    this.app.removeAllContentTypeParsers();
    this.app.addContentTypeParser('*', (_request, _payload, done) => done(null));
    const handler = (request: FastifyRequest, reply: FastifyReply): void => {
      reply.hijack();
      this.#guarded(request.raw, reply.raw, request.id);
    };
    this.app.setNotFoundHandler(handler);
    this.app.route({ method: this.app.supportedMethods.filter((m) => m !== 'CONNECT'), url: '*', handler });
  }

  /** The configuration live now. */
  get config(): ResolvedGatewayConfig {
    return this.#compiled.config;
  }

  /** The routes live now, their services, where they came from and when they went live. */
  get routes(): RoutesView {
    const c = this.#compiled;
    return { routes: c.table.routes, services: c.config.services, origin: c.origin, appliedAt: c.appliedAt };
  }

  /** Requests being proxied now. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** Whether the gateway is shutting down. */
  get draining(): boolean {
    return this.#draining;
  }

  /**
   * Makes `config`'s routes and services live: new requests use them at once, requests in
   * flight finish on the routes they matched. Listen address and proxy-wide settings
   * (`listen`, `proxy`) take effect only at the next start. With live routes on, the next
   * version of the routes key replaces what this applied.
   * @param origin Where the configuration comes from, as `routes.origin` shows it.
   * @throws {InvalidOptionError} when a balancer refuses the services (a configuration that
   *   skipped `resolveGatewayConfig`'s checks): nothing changed, the running routes stay.
   */
  apply(config: ResolvedGatewayConfig, origin: RoutesOrigin = { source: 'code' }): void {
    const compiled = this.#compile(config, origin);
    // Routes and services that left take their series with them (live changes may rename them).
    this.metrics?.forgetRoutes(new Set(config.routes.map((r) => r.name)), new Set(config.routes.map((r) => r.service)));
    this.#compiled = compiled;
    // Instances a static list no longer names take their metric series with them.
    if (this.metrics !== undefined) this.#forgetGoneUpstreams();
  }

  #compile(config: ResolvedGatewayConfig, origin: RoutesOrigin): Compiled {
    const balancers = this.upstreams.apply(config.services, config.routes);
    const runtimes = config.routes.map((route, i): RouteRuntime => {
      const service = config.services.get(route.service);
      return Object.freeze({
        route,
        balancer: balancers[i] as RouteRuntime['balancer'],
        budget: new RetryBudget(
          resolveRetryBudgetOptions({
            budgetPercent: route.retries.budgetPercent,
            minRetryConcurrency: route.retries.minRetryConcurrency,
          }),
        ),
        pool: Object.freeze({
          connections: service?.connections ?? 128,
          connectTimeoutMs: service?.connectTimeoutMs ?? 5_000,
        }),
        stats: this.metrics?.route(route.name),
      });
    });
    return Object.freeze({ config, table: new RouteTable(config.routes), runtimes, origin, appliedAt: new Date() });
  }

  /**
   * Starts listening, once the live routes were read (or after 5 s: the store is away) and
   * registry-backed services have their instances (or after 5 s); resolves with the address.
   * A `close()` meanwhile cancels the start: no port stays open, and this rejects with an
   * `AbortError`.
   */
  async listen(): Promise<AddressInfo> {
    if (this.#closed !== undefined) throw startCancelled();
    if (this.liveRoutes !== undefined && !(await this.liveRoutes.ready(5_000))) {
      this.log.warn(
        { key: this.liveRoutes.key },
        'live routes not read yet (store unreachable): starting with the file',
      );
    }
    await this.upstreams.ready(5_000);
    await this.#open('proxy', () => this.app.listen({ port: this.#listenPort, host: this.#listenHost }));
    const address = this.app.server.address() as AddressInfo;
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    this.log.info({ address: address.address, port: address.port }, `listening at http://${host}:${address.port}`);
    try {
      await this.#open('admin', () => this.admin?.listen());
    } catch (err) {
      // close() closes the proxy when it cancelled the start; otherwise it is closed here.
      if (this.#closed === undefined) await this.app.close();
      throw err;
    }
    return address;
  }

  /**
   * Opens a port unless the gateway is closing; close() waits for an opening in progress
   * before closing the servers, so that no port opens after close() (a server that Fastify
   * is still starting when its close() is called would start listening anyway).
   */
  async #open(which: 'proxy' | 'admin', start: () => Promise<unknown> | undefined): Promise<void> {
    if (this.#closed !== undefined) throw startCancelled();
    const opening = start();
    this.#opening[which] = opening;
    try {
      await opening;
    } finally {
      this.#opening[which] = undefined;
    }
    if (this.#closed !== undefined) throw startCancelled();
  }

  /** Drops the metric series of upstream instances no balancer has any more. */
  #forgetGoneUpstreams(): void {
    this.metrics
      ?.forgetUpstreams(this.upstreams.endpointIds())
      .catch((err: unknown) => this.log.warn({ err }, 'metrics cleanup failed'));
  }

  /** The server's request listener: the proxy's fast path. */
  #onRequest(req: IncomingMessage, res: ServerResponse): void {
    this.#guarded(req, res, requestIdFor(req.headers[this.#shared.proxy.requestIdHeader]));
  }

  #guarded(req: IncomingMessage, res: ServerResponse, requestId: string): void {
    try {
      this.#handle(req, res, requestId);
    } catch (err) {
      // A bug of the gateway: say so in the log, answer 500 in the usual form.
      this.log.error({ err, reqId: requestId }, 'gateway error');
      this.#reject(res, 'ERR_INTERNAL', 'the gateway failed; see its log', requestId, undefined, true);
    }
  }

  /** Answers a request refused before proxying. */
  #reject(
    res: ServerResponse,
    code: GatewayErrorCode,
    message: string,
    requestId: string,
    headers?: string[],
    close = false,
  ): void {
    this.metrics?.rejected.labels(code).inc();
    sendError(res, code, message, requestId, headers, close);
  }

  #handle(req: IncomingMessage, res: ServerResponse, requestId: string): void {
    const started = performance.now();
    if (this.#draining) res.shouldKeepAlive = false;
    const target = checkRequestTarget(req.url as string);
    if ('error' in target) {
      this.#reject(res, 'ERR_BAD_REQUEST', target.error, requestId, undefined, true);
      return;
    }
    // Two Host headers: which one names the target is ambiguous (RFC 9112 3.2: 400).
    const raw = req.rawHeaders;
    let hosts = 0;
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i] as string;
      if (name.length === 4 && name.toLowerCase() === 'host' && ++hosts > 1) {
        this.#reject(res, 'ERR_BAD_REQUEST', 'more than one Host header', requestId, undefined, true);
        return;
      }
    }
    const compiled = this.#compiled;
    const headers = req.headers;
    const method = req.method as string;
    const route = compiled.table.match(method, target.path, headers);
    if (route === undefined) {
      this.#reject(res, 'ERR_NO_ROUTE', `no route for ${method} ${target.path}`, requestId);
      return;
    }
    const rt = compiled.runtimes[route.index] as RouteRuntime;
    const cl = headers['content-length'];
    const hasBody = headers['transfer-encoding'] !== undefined || (cl !== undefined && cl !== '0');
    if (cl !== undefined && Number(cl) > route.bodyLimit) {
      // Refused before reading it; the connection closes so the body is never read.
      this.#reject(
        res,
        'ERR_BODY_TOO_LARGE',
        `the request body is larger than ${route.bodyLimit} bytes`,
        requestId,
        undefined,
        true,
      );
      return;
    }
    const clientIp = clientAddress(req);
    const limit = route.rateLimit;
    if (limit !== undefined) {
      let who = clientIp;
      if (limit.header !== undefined) {
        const v = headers[limit.header];
        if (typeof v === 'string' && v !== '') who = `h:${v}`;
      }
      const wait = this.rateLimiter.take(`${route.name}|${who}`, limit);
      if (typeof wait === 'number') {
        if (wait > 0) {
          this.#limited(res, route, wait, requestId, hasBody);
          return;
        }
      } else {
        // In flight while it waits (a shutdown drains it too); a limiter that fails lets it through.
        this.#inFlight++;
        const go = (ms: number): void => {
          try {
            if (ms > 0) this.#limited(res, route, ms, requestId, hasBody);
            else this.#forward(rt, req, res, requestId, target.path, target.query, clientIp, hasBody, started);
          } catch (err) {
            this.log.error({ err, reqId: requestId }, 'gateway error');
            this.#reject(res, 'ERR_INTERNAL', 'the gateway failed; see its log', requestId, undefined, true);
          }
          // After #forward counted the request itself, so the count never dips to 0 between.
          this.#inFlight--;
          if (this.#inFlight === 0) this.#drained?.();
        };
        wait.then(go, () => go(0));
        return;
      }
    }
    this.#forward(rt, req, res, requestId, target.path, target.query, clientIp, hasBody, started);
  }

  #limited(res: ServerResponse, route: ResolvedRoute, waitMs: number, requestId: string, hasBody: boolean): void {
    this.metrics?.rateLimited.labels(route.name).inc();
    const seconds = String(Math.max(1, Math.ceil(waitMs / 1000)));
    this.#reject(
      res,
      'ERR_RATE_LIMITED',
      `rate limit of route '${route.name}' reached`,
      requestId,
      ['retry-after', seconds],
      hasBody,
    );
  }

  #forward(
    rt: RouteRuntime,
    req: IncomingMessage,
    res: ServerResponse,
    requestId: string,
    path: string,
    query: string,
    clientIp: string,
    hasBody: boolean,
    started: number,
  ): void {
    if (res.destroyed) return;
    const route = rt.route;
    const proxy = this.#shared.proxy;
    // One context object, refilled per request (the call is synchronous): no allocation.
    const ctx = this.#forwardCtx;
    ctx.clientIp = clientIp;
    ctx.proto = (req.socket as { encrypted?: boolean }).encrypted === true ? 'https' : 'http';
    ctx.requestId = requestId;
    ctx.requestIdHeader = proxy.requestIdHeader;
    ctx.preserveHost = route.preserveHost;
    ctx.appendForwardedFor = proxy.xForwardedFor === 'append';
    ctx.via = proxy.via;
    const headers = forwardRequestHeaders(req.rawHeaders, ctx);
    let body: RequestBody | undefined;
    if (hasBody) {
      const policy = route.retries;
      const replay = policy.attempts > 0 && (!policy.idempotentOnly || IDEMPOTENT_METHODS.has(req.method as string));
      const invite = awaitingContinue.has(req) ? () => res.writeContinue() : undefined;
      body = new RequestBody(req, route.bodyLimit, replay ? policy.replayBufferBytes : 0, invite);
    }
    const key = route.hashKey === undefined ? undefined : hashKeyOf(route.hashKey, path, clientIp, req.headers);
    this.#inFlight++;
    new ProxyRequest(
      this.#shared,
      rt,
      req,
      res,
      requestId,
      rewritePath(route, path) + query,
      headers,
      body,
      key,
      started,
    ).start();
  }

  /** Answers what Node's HTTP parser refused (bad framing, bad bytes, oversize head) and closes. */
  #clientError(err: Error & { code?: string }, socket: Socket): void {
    const code = answerClientError(err, socket);
    if (code !== undefined) this.metrics?.rejected.labels(code).inc();
  }

  /**
   * Shuts down gracefully: stops accepting connections, lets requests in flight finish for up
   * to `proxy.drainTimeoutMs` (new requests on open connections are still served, then their
   * connections close), cuts what is left, then stops health checks and registry watches,
   * closes the upstream pools, demo upstreams, and the store if the gateway made it.
   * Calling it again returns the same promise.
   */
  close(): Promise<void> {
    this.#closed ??= this.#shutdown();
    return this.#closed;
  }

  async #shutdown(): Promise<void> {
    this.#draining = true;
    this.#shared.draining = true;
    this.liveRoutes?.close();
    // A start in progress opens no more ports (listen() checks #closed); a port opening now
    // is let finish, so that its close below closes it. The other closes at once.
    const settled = (p: Promise<unknown> | undefined): Promise<unknown> | undefined => p?.catch(() => undefined);
    const adminOpening = settled(this.#opening.admin);
    const adminClosed = adminOpening === undefined ? this.admin?.close() : adminOpening.then(() => this.admin?.close());
    await settled(this.#opening.proxy);
    const server = this.app.server;
    const appClosed = this.app.close();
    if (this.#inFlight > 0) {
      const drainMs = this.#compiled.config.proxy.drainTimeoutMs;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, drainMs);
        this.#drained = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    server.closeAllConnections();
    await appClosed;
    await adminClosed;
    this.upstreams.close();
    this.rateLimiter.close();
    await this.pools.close(this.#inFlight > 0);
    await Promise.allSettled(this.#registrations.map((r) => r.deregister()));
    if (this.#ownsRegistry) await this.registry.close();
    await this.#demo?.close();
    if (this.#ownsConfigCenter) await this.configCenter.close();
    if (this.#ownsStore) await this.store.close();
  }

  /**
   * Starts the demo upstreams of the configuration's `demo` section and registers them in
   * the registry under the demo service (deregistered at shutdown).
   */
  async startDemo(): Promise<void> {
    const d = this.#compiled.config.demo;
    if (d === undefined || this.#demo !== undefined) return;
    this.#demo = await startDemoUpstreams(d.instances, d.host, d.basePort);
    for (const e of this.#demo.endpoints) {
      this.#registrations.push(
        await this.registry.register({ service: d.service, id: e.id, address: e.address, weight: e.weight ?? 1 }),
      );
    }
  }
}

/**
 * Creates a gateway (not listening yet: call `listen()`). When the configuration has a `demo`
 * section, starts the demo upstreams and registers them in the service registry.
 * @example
 * ```ts
 * const gateway = await createGateway({ config: await loadGatewayConfig('gateway.yaml') });
 * const { port } = await gateway.listen();
 * process.once('SIGTERM', () => gateway.close());
 * ```
 */
export async function createGateway(options: GatewayOptions): Promise<Gateway> {
  const gateway = new Gateway(options);
  try {
    await gateway.startDemo();
  } catch (err) {
    await gateway.close();
    throw err;
  }
  return gateway;
}
