/**
 * The admin API: a Fastify server of its own, on its own port (127.0.0.1:9080 by default),
 * so the proxy port never serves it whatever the path. Every endpoint but `/healthz` and
 * `/readyz` wants `Authorization: Bearer <token>`; every body, parameter and query string is
 * validated by the JSON schemas in `schemas.ts`; every error has the gateway's JSON shape
 * `{ "error": { "code", "message", "requestId" } }` (plus `field` when one is at fault).
 * The OpenAPI document (`/docs/json`) and its interactive page (`/docs`) are generated from
 * those same schemas, so they cannot drift; they need no token.
 *
 * Registry over HTTP: a service in any language registers and heartbeats with
 * `PUT /v1/services/:service/instances/:id` (each PUT extends the lease by `ttlMs`; stop
 * sending them and the instance expires), leaves with `DELETE`, and reads with
 * `GET /v1/services/:service`, which is a blocking query with `?index=N&wait=30s`.
 *
 * Locks over HTTP (`/v1/locks/:name`, see `lockRoutes.ts`): acquire with a ttl and a bounded
 * wait, extend and release by fencing token, inspect.
 */

import { setMaxListeners } from 'node:events';
import type { AddressInfo } from 'node:net';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { ConfigCenter } from '../../src/config/ConfigCenter.js';
import {
  InvalidOptionError,
  NotFoundError,
  StoreUnavailableError,
  ValidationError,
  VersionConflictError,
} from '../../src/errors.js';
import { MAX_LOCK_NAME_LENGTH } from '../../src/lock/options.js';
import { checkRegistration, encodeRecord, type ServiceInstance } from '../../src/registry/ServiceInstance.js';
import { checkInt } from '../../src/validate.js';
import { ConfigError } from '../config/ConfigError.js';
import { answerClientError } from '../errors.js';
import type { Gateway } from '../gateway.js';
import { breakersOf, type RegistryOp } from '../metrics/GatewayMetrics.js';
import { requestIdFor } from '../proxy/requestId.js';
import { awaitIndex, DEFAULT_WAIT_MS, INDEX_HEADER, parseWait, requestSignal } from './blocking.js';
import { type ConfigRoutes, registerConfigRoutes } from './configRoutes.js';
import { fail } from './fail.js';
import { LockRoutes, resultOf } from './lockRoutes.js';
import { failConfig, registerRoutesRoutes } from './routesRoutes.js';
import { INSTANCE_PARAMS, INSTANCES_QUERY, NO_QUERY, REGISTRATION_BODY, SERVICE_PARAMS } from './schemas.js';
import { checkToken, generateToken, TokenCheck } from './token.js';

const WWW_AUTHENTICATE = 'Bearer realm="ringway-admin"';
const UNAUTHORIZED_MESSAGE = 'send the admin token as Authorization: Bearer <token>';

/** Options of the admin API. */
export interface AdminOptions {
  /** Port (0: a free one). @default 9080 */
  port?: number;
  /** Address to bind. @default '127.0.0.1' */
  host?: string;
  /**
   * The bearer token clients must send (16 to 1024 printable ASCII characters).
   * @default a random token; read it from `AdminServer.token` and print it once
   */
  token?: string;
  /** Largest request body, in bytes. @default 65_536 */
  bodyLimit?: number;
  /**
   * The config center behind `/v1/config/...` (not closed by the admin server); the gateway's
   * live routes come from it too, unless `GatewayOptions.configCenter` names another.
   * @default the gateway's `configCenter`: a ConfigCenter on its store, namespace `default`
   */
  config?: ConfigCenter;
}

/** Default admin port. */
export const DEFAULT_ADMIN_PORT = 9080;
/** Default admin address: loopback only. */
export const DEFAULT_ADMIN_HOST = '127.0.0.1';
/** Default largest admin request body. */
export const DEFAULT_ADMIN_BODY_LIMIT = 65_536;

/** Header carrying a blocking query's index (Consul's is `X-Consul-Index`). */
export { INDEX_HEADER } from './blocking.js';

/**
 * Longest path parameter the router takes (after percent-decoding, in UTF-16 units). Well
 * above the longest lock name (`MAX_LOCK_NAME_LENGTH`), so that a name a little too long
 * reaches the schema, which names the field; the router's default (100) refused service
 * names the schemas accept, outside the JSON error shape.
 */
const MAX_PARAM_LENGTH = 9 * MAX_LOCK_NAME_LENGTH;

/** How long `/readyz` waits for the store before calling it unreachable. */
const STORE_PROBE_MS = 1_000;

interface ServiceParams {
  service: string;
}
interface InstanceParams extends ServiceParams {
  id: string;
}
interface RegistrationBody {
  address: string;
  weight?: number;
  tags?: string[];
  meta?: Record<string, string>;
  zone?: string;
  healthy?: boolean;
  ttlMs?: number;
}
interface InstancesQuery {
  index?: string;
  wait?: string;
  healthy?: 'true' | 'false';
}

/** A schema validation error as a field path (`body.ttlMs`) and a message naming it. */
function describeValidation(err: FastifyError): { field: string; message: string } {
  const v = err.validation?.[0];
  const context = err.validationContext ?? 'request';
  if (v === undefined) return { field: context, message: err.message };
  const base = context + v.instancePath.replaceAll('/', '.');
  const params = v.params as Record<string, unknown>;
  if (v.keyword === 'additionalProperties') {
    const field = `${base}.${String(params.additionalProperty)}`;
    return { field, message: `${field} is not a known field` };
  }
  if (v.keyword === 'required') {
    const field = `${base}.${String(params.missingProperty)}`;
    return { field, message: `${field} is required` };
  }
  return { field: base, message: `${base} ${v.message ?? 'is invalid'}` };
}

/** The instance as the API shows it. */
function instanceJson(i: ServiceInstance): Record<string, unknown> {
  return {
    id: i.id,
    address: i.address,
    weight: i.weight,
    tags: i.tags,
    meta: i.meta,
    ...(i.zone === undefined ? {} : { zone: i.zone }),
    healthy: i.healthy,
    ttlMs: i.ttlMs,
    lastSeen: i.lastSeen,
    epoch: i.epoch,
  };
}

/** The admin API of one gateway; see the module comment. */
export class AdminServer {
  /** The Fastify app (`app.inject()` works without listening). */
  readonly app: FastifyInstance;
  /** The bearer token. */
  readonly token: string;
  /** Whether the token was generated (the CLI then prints it once). */
  readonly generatedToken: boolean;
  readonly #gateway: Gateway;
  readonly #port: number;
  readonly #host: string;
  readonly #check: TokenCheck;
  readonly #config: ConfigCenter;
  /** Aborts the blocking queries waiting now, at close. */
  /** Aborted on close; every waiting request listens to it (no listener limit: many may wait). */
  readonly #closing = (() => {
    const c = new AbortController();
    setMaxListeners(0, c.signal);
    return c;
  })();
  readonly #locks: LockRoutes;
  #configRoutes: ConfigRoutes | undefined;

  /**
   * @throws {InvalidOptionError} for a bad option, naming it.
   */
  constructor(gateway: Gateway, options: AdminOptions = {}) {
    this.#gateway = gateway;
    this.#port = options.port === undefined ? DEFAULT_ADMIN_PORT : checkInt('admin.port', options.port, 0, 65_535);
    this.#host = options.host ?? DEFAULT_ADMIN_HOST;
    this.#config = options.config ?? gateway.configCenter;
    const bodyLimit =
      options.bodyLimit === undefined
        ? DEFAULT_ADMIN_BODY_LIMIT
        : checkInt('admin.bodyLimit', options.bodyLimit, 1, 16 * 1024 * 1024);
    this.generatedToken = options.token === undefined;
    this.token = options.token === undefined ? generateToken() : checkToken('admin.token', options.token);
    this.#check = new TokenCheck(this.token);
    this.#locks = new LockRoutes(gateway.store, gateway.metrics);
    // Read when /metrics is scraped: the balancers are walked then, never on the proxy path.
    gateway.metrics?.trackBreakers(() => breakersOf(gateway.upstreams));
    this.app = Fastify({
      logger: false,
      bodyLimit,
      genReqId: (req) => requestIdFor(req.headers['x-request-id']),
      requestIdHeader: false,
      return503OnClosing: false,
      forceCloseConnections: true,
      // Any JSON is a config value or metadata: keys named __proto__ or constructor.prototype
      // are parsed as data (own properties; JSON.parse never sets a prototype). Nothing here
      // merges a body into another object with assignment, and metadata is built from entries.
      onProtoPoisoning: 'ignore',
      onConstructorPoisoning: 'ignore',
      // What Node's HTTP parser refuses gets the JSON error shape, as on the proxy port.
      clientErrorHandler: (err, socket) => {
        answerClientError(err, socket);
      },
      routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
      // What the router refuses before any route runs (bad percent-encoding, a parameter
      // longer than MAX_PARAM_LENGTH) gets the JSON error shape too.
      frameworkErrors: (err, request, reply) => {
        reply.header('x-request-id', request.id);
        // The token first, as for every other path: a refusal must not say the route exists.
        if (!this.#check.matches(request.headers.authorization)) {
          reply.header('www-authenticate', WWW_AUTHENTICATE);
          return fail(reply, 'ERR_UNAUTHORIZED', UNAUTHORIZED_MESSAGE);
        }
        if (err.code === 'FST_ERR_MAX_PARAM_LENGTH') {
          return fail(reply, 'ERR_INVALID', `a path parameter is longer than ${MAX_PARAM_LENGTH} characters`, 'params');
        }
        return fail(reply, 'ERR_BAD_REQUEST', err.message);
      },
      ajv: {
        customOptions: {
          removeAdditional: false,
          coerceTypes: false,
          useDefaults: false,
          allErrors: false,
          allowUnionTypes: true,
        },
      },
    });
    // The OpenAPI document is generated from the route schemas that validate the requests,
    // so the two cannot drift; routes declared below are queued after the plugin loads.
    void this.app.register(swagger, {
      openapi: {
        info: { title: 'ringway admin API', version: '1' },
        components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
        security: [{ bearer: [] }],
      },
    });
    void this.app.register(swaggerUi, { routePrefix: '/docs' });
    this.#routes();
  }

  /** Whether the admin API is listening. */
  get listening(): boolean {
    return this.app.server.listening;
  }

  /** Starts listening; resolves with the address. */
  async listen(): Promise<AddressInfo> {
    await this.app.listen({ port: this.#port, host: this.#host });
    const address = this.app.server.address() as AddressInfo;
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    this.#gateway.log.info(
      { address: address.address, port: address.port },
      `admin API listening at http://${host}:${address.port}`,
    );
    return address;
  }

  /**
   * Ends the blocking queries waiting now (they answer with what they have) and the lock
   * acquires waiting now (503), and closes the server.
   */
  async close(): Promise<void> {
    this.#closing.abort();
    await this.#locks.close();
    await this.app.close();
    await this.#configRoutes?.close();
  }

  #routes(): void {
    const app = this.app;
    const gateway = this.#gateway;
    const registry = gateway.registry;
    const limits = { logLimit: registry.options.logLimit, tombstoneMs: registry.options.tombstoneMs };
    // Registry operations are counted where they end: answers in the handlers, errors (schema
    // failures included) by the route's onError hook. A PUT is a `renew` once it finds the
    // instance live, else a `register`.
    const registryOp = new WeakMap<FastifyRequest, RegistryOp>();
    const countOp = (op: RegistryOp, ok: boolean, missing = false): void => {
      gateway.metrics?.registryOps.labels(op, ok ? 'ok' : missing ? 'not_found' : 'invalid').inc();
    };
    const onError =
      (op: RegistryOp) =>
      async (request: FastifyRequest, _reply: FastifyReply, err: Error): Promise<void> => {
        gateway.metrics?.registryOps.labels(registryOp.get(request) ?? op, resultOf(err)).inc();
      };

    app.addHook('onRequest', async (request, reply) => {
      reply.header('x-request-id', request.id);
      const config = request.routeOptions.config as { public?: boolean } | undefined;
      // The docs (page and OpenAPI document) hold no secret; the API they describe wants the token.
      const url = request.routeOptions.url;
      if (config?.public === true || url === '/docs' || url?.startsWith('/docs/') === true) return;
      if (!this.#check.matches(request.headers.authorization)) {
        reply.header('www-authenticate', WWW_AUTHENTICATE);
        return fail(reply, 'ERR_UNAUTHORIZED', UNAUTHORIZED_MESSAGE);
      }
    });

    app.setNotFoundHandler((request, reply) =>
      fail(reply, 'ERR_NOT_FOUND', `no admin endpoint ${request.method} ${request.url.split('?')[0]}`),
    );

    app.setErrorHandler((err: FastifyError, _request, reply) => {
      if (err.validation !== undefined) {
        const { field, message } = describeValidation(err);
        return fail(reply, 'ERR_INVALID', message, field);
      }
      if (err instanceof InvalidOptionError) return fail(reply, 'ERR_INVALID', err.message, err.field);
      if (err instanceof ConfigError) return failConfig(reply, err);
      if (err instanceof ValidationError) {
        return fail(reply, 'ERR_INVALID', err.message, `body${err.path.replaceAll('/', '.')}`);
      }
      if (err instanceof VersionConflictError) return fail(reply, 'ERR_PRECONDITION_FAILED', err.message);
      if (err instanceof NotFoundError) return fail(reply, 'ERR_NOT_FOUND', err.message);
      if (err instanceof StoreUnavailableError) return fail(reply, 'ERR_UNAVAILABLE', err.message);
      if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
        return fail(
          reply,
          'ERR_BODY_TOO_LARGE',
          `the request body is larger than ${reply.request.routeOptions.bodyLimit} bytes`,
        );
      }
      if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
        return fail(reply, 'ERR_UNSUPPORTED_MEDIA_TYPE', 'send the body as application/json');
      }
      if (err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500) {
        return fail(reply, 'ERR_BAD_REQUEST', err.message);
      }
      gateway.log.error({ err, reqId: reply.request.id }, 'admin API error');
      return fail(reply, 'ERR_INTERNAL', 'the admin API failed; see the gateway log');
    });

    // In a plugin, so that the OpenAPI plugin (registered first) sees every route.
    void this.app.register(async (app) => {
      app.get('/healthz', { config: { public: true }, schema: { querystring: NO_QUERY, security: [] } }, async () => ({
        status: 'up',
      }));

      app.get(
        '/readyz',
        { config: { public: true }, schema: { querystring: NO_QUERY, security: [] } },
        async (_request, reply) => {
          const storeReachable = await this.#storeReachable();
          const cached = registry.health().services;
          const fromCache = cached.every((s) => s.loaded);
          const { routes, appliedAt } = gateway.routes;
          const listening = gateway.app.server.listening;
          const ready = !gateway.draining && listening && (storeReachable || fromCache);
          const detail = {
            store: storeReachable ? 'reachable' : fromCache ? 'unreachable, serving from cache' : 'unreachable',
            routes: routes.length,
            routesAppliedAt: appliedAt.toISOString(),
            listening,
            draining: gateway.draining,
          };
          if (!ready) {
            const why = gateway.draining ? 'draining' : !listening ? 'proxy not listening' : 'store unreachable';
            return fail(reply, 'ERR_UNAVAILABLE', `not ready: ${why}`);
          }
          return { status: 'ready', ...detail };
        },
      );

      app.get('/metrics', { schema: { querystring: NO_QUERY } }, async (_request, reply) => {
        const metrics = gateway.metrics;
        if (metrics === undefined) return fail(reply, 'ERR_NOT_FOUND', 'metrics are turned off for this gateway');
        const text = await metrics.registry.metrics();
        return reply.type(metrics.registry.contentType).header('cache-control', 'no-store').send(text);
      });

      registerRoutesRoutes(app, gateway, this.#closing.signal);

      app.get('/v1/services', { schema: { querystring: NO_QUERY }, onError: onError('list') }, async () => {
        const services = await registry.services();
        countOp('list', true);
        return { services };
      });

      app.get<{ Params: ServiceParams; Querystring: InstancesQuery }>(
        '/v1/services/:service',
        { schema: { params: SERVICE_PARAMS, querystring: INSTANCES_QUERY }, onError: onError('read') },
        async (request, reply) => {
          const { service } = request.params;
          const q = request.query;
          let waitMs = 0;
          if (q.wait !== undefined) {
            const ms = parseWait(q.wait);
            if (ms === undefined) {
              countOp('read', false);
              return fail(reply, 'ERR_INVALID', 'querystring.wait must be at most 10m', 'querystring.wait');
            }
            waitMs = ms;
          } else if (q.index !== undefined) waitMs = DEFAULT_WAIT_MS;
          const after = q.index === undefined ? undefined : Number(q.index);
          // Throws for a bad name (400) or a store that cannot be reached with nothing cached (503).
          await registry.instances(service);
          const { signal, done } = requestSignal(reply, this.#closing.signal);
          let state: Awaited<ReturnType<typeof awaitIndex>>;
          try {
            state = await awaitIndex(
              registry,
              service,
              (index) => after === undefined || index !== after,
              waitMs,
              signal,
            );
          } catch (err) {
            throw new StoreUnavailableError((err as Error).message);
          } finally {
            done();
          }
          let instances = state.instances;
          if (q.healthy === 'true') instances = instances.filter((i) => i.healthy);
          const missing = after === undefined && state.instances.length === 0;
          countOp('read', !missing, true);
          if (missing) {
            reply.header(INDEX_HEADER, String(state.index));
            return fail(reply, 'ERR_NOT_FOUND', `service ${service} has no live instances`);
          }
          reply.header(INDEX_HEADER, String(state.index)).header('cache-control', 'no-store');
          return { service, index: state.index, instances: instances.map(instanceJson) };
        },
      );

      app.put<{ Params: InstanceParams; Body: RegistrationBody }>(
        '/v1/services/:service/instances/:id',
        {
          schema: { params: INSTANCE_PARAMS, querystring: NO_QUERY, body: REGISTRATION_BODY },
          onError: onError('register'),
        },
        async (request, reply) => {
          const { service, id } = request.params;
          const registered = checkRegistration({ service, id, ...request.body }, registry.options.ttlMs);
          const write = {
            service,
            id,
            record: encodeRecord(registered),
            ttlMs: registered.ttlMs,
            ...limits,
          };
          const storage = registry.options.store.registry;
          // A heartbeat renews the registration live now (this gateway's copy says which epoch);
          // a first registration, or one another writer replaced, is written anew.
          const current = (await registry.instances(service)).find((i) => i.id === id);
          if (current !== undefined) registryOp.set(request, 'renew');
          let result = current === undefined ? undefined : await storage.renew({ ...write, epoch: current.epoch });
          if (result === undefined || result.status === 'superseded') {
            registryOp.set(request, 'register');
            result = await storage.register(write);
          }
          countOp(result.status === 'renewed' || result.status === 'updated' ? 'renew' : 'register', true);
          // Read-your-writes on this gateway: wait (briefly) until its copy has the write.
          await awaitIndex(registry, service, (index) => index >= result.index, 1_000, this.#closing.signal).catch(
            () => undefined,
          );
          reply.header(INDEX_HEADER, String(result.index)).header('cache-control', 'no-store');
          return {
            service,
            id,
            status: result.status,
            epoch: result.epoch,
            index: result.index,
            ttlMs: registered.ttlMs,
            expiresAt: result.expiresAt,
          };
        },
      );

      this.#configRoutes = registerConfigRoutes(app, this.#config, {
        closing: this.#closing.signal,
        onSchemaError: (err, namespace, key) =>
          gateway.log.error(
            { err, namespace, key },
            `config schema of ${namespace}/${key} not defined on this gateway`,
          ),
        // The live routes key takes only what this gateway would apply (400 naming the field).
        check: (key, value) => {
          const live = gateway.liveRoutes;
          if (live !== undefined && live.center === this.#config && key === live.key) live.check(value);
        },
      });
      this.#locks.register(app);

      app.delete<{ Params: InstanceParams }>(
        '/v1/services/:service/instances/:id',
        { schema: { params: INSTANCE_PARAMS, querystring: NO_QUERY }, onError: onError('deregister') },
        async (request, reply) => {
          const { service, id } = request.params;
          const current = (await registry.instances(service)).find((i) => i.id === id);
          const removed =
            current !== undefined &&
            (await registry.options.store.registry.deregister(service, id, current.epoch, limits));
          countOp('deregister', removed, true);
          if (!removed) return fail(reply, 'ERR_NOT_FOUND', `service ${service} has no live instance ${id}`);
          // Read-your-writes on this gateway: wait (briefly) until its copy no longer lists it.
          const gone = (_index: number, instances: readonly ServiceInstance[]): boolean =>
            !instances.some((i) => i.id === id && i.epoch === current.epoch);
          await awaitIndex(registry, service, gone, 1_000, this.#closing.signal).catch(() => undefined);
          return reply.code(204).send();
        },
      );
    });
  }

  async #storeReachable(): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        this.#gateway.store.time().then(() => true),
        new Promise<boolean>((resolve) => {
          timer = setTimeout(() => resolve(false), STORE_PROBE_MS);
        }),
      ]);
    } catch {
      return false;
    } finally {
      clearTimeout(timer);
    }
  }
}
