/**
 * Routes over HTTP: `GET /v1/routes` shows the routes and services live now, where they came
 * from (a version of the config center's routes key, or the file) and when they went live,
 * plus the newest version this gateway refused, if any. `PUT /v1/routes` validates a new
 * `{ routes, services }` with every check the gateway applies (400 naming the field on
 * failure: nothing is written and the running routes stay), then writes the key with
 * compare-and-set through `If-Match` (as `/v1/config/...` does; the version is the ETag) and
 * answers once this gateway applied it. Every gateway watching the key applies it too.
 * `DELETE /v1/routes` deletes the key: the routes of the file are live again.
 */
import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify';
import type { JsonValue } from '../../src/config/jsonValue.js';
import { type ConfigError, formatIssue } from '../config/ConfigError.js';
import { LIVE_ROUTES_SCHEMA } from '../config/schema.js';
import type { Gateway } from '../gateway.js';
import { preconditions } from './configRoutes.js';
import { fail } from './fail.js';
import { NO_QUERY } from './schemas.js';

/** How long a write waits for this gateway to apply it before answering 202 instead of 200. */
const APPLY_WAIT_MS = 2_000;

/**
 * Answers 400 `ERR_INVALID` for a refused configuration: `field` is the first problem's
 * (`body.routes[0].match.prefix`), `issues` lists every one.
 */
export function failConfig(reply: FastifyReply, err: ConfigError): FastifyReply {
  const first = err.issues[0];
  const field = first === undefined || first.field === '' ? 'body' : `body.${first.field}`;
  const message = `invalid routes: ${err.issues.map((i) => formatIssue(i)).join('; ')}`;
  return reply
    .code(400)
    .header('cache-control', 'no-store')
    .send({
      error: {
        code: 'ERR_INVALID',
        message,
        requestId: reply.request.id,
        field,
        issues: err.issues.map((i) => ({ field: i.field, message: i.message })),
      },
    });
}

/** Maps and sets as JSON (route methods are a Set, services a Map). */
function replacer(_key: string, value: unknown): unknown {
  return value instanceof Set ? [...value] : value instanceof Map ? Object.fromEntries(value) : value;
}

/** The `GET /v1/routes` body. */
function routesView(gateway: Gateway): Record<string, unknown> {
  const { routes, services, origin, appliedAt } = gateway.routes;
  const live = gateway.liveRoutes;
  const rejected = live?.rejected;
  return {
    source: origin.source,
    ...(live === undefined ? {} : { key: live.key }),
    version: origin.source === 'config' ? origin.version : null,
    ...(origin.source === 'config' ? { updatedAt: new Date(origin.updatedAt).toISOString() } : {}),
    appliedAt: appliedAt.toISOString(),
    routes,
    services,
    ...(rejected === undefined
      ? {}
      : {
          rejected: {
            version: rejected.version,
            updatedAt: new Date(rejected.updatedAt).toISOString(),
            at: rejected.at.toISOString(),
            issues: rejected.error.issues.map((i) => ({ field: i.field, message: i.message })),
          },
        }),
    ...(live === undefined ? {} : { changes: live.counts }),
  };
}

/** Adds `GET/PUT/DELETE /v1/routes` to the admin app; `closing` aborts waits at shutdown. */
export function registerRoutesRoutes(app: FastifyInstance, gateway: Gateway, closing: AbortSignal): void {
  const etag = (version: number): string => `"${version}"`;
  const off = (reply: FastifyReply): FastifyReply =>
    fail(reply, 'ERR_NOT_FOUND', 'live routes are turned off for this gateway (liveRoutes: false)');

  app.get('/v1/routes', { schema: { querystring: NO_QUERY } }, async (_request, reply) => {
    const version = gateway.liveRoutes?.liveVersion;
    if (version !== undefined) reply.header('etag', etag(version));
    const body = JSON.stringify(routesView(gateway), replacer);
    return reply.type('application/json; charset=utf-8').header('cache-control', 'no-store').send(body);
  });

  const live = gateway.liveRoutes;
  app.put<{ Body: JsonValue }>(
    '/v1/routes',
    {
      // The schema documents the body (OpenAPI); the handler validates it with the gateway's
      // own checks, whose messages name the field in the file's terms.
      schema: { querystring: NO_QUERY, body: LIVE_ROUTES_SCHEMA },
      attachValidation: true,
      bodyLimit: (live?.center ?? gateway.configCenter).options.maxValueBytes * 2,
    },
    async (request, reply) => {
      const invalid = request.validationError as FastifyError | undefined;
      if (invalid !== undefined && invalid.validationContext !== 'body') throw invalid;
      if (live === undefined) return off(reply);
      live.check(request.body);
      if (invalid !== undefined) throw invalid;
      const cas = await preconditions(live.center, live.key, request, reply);
      if (cas === undefined) return reply;
      const { version, updatedAt } = await live.center.set(live.key, request.body, cas);
      // Read-your-writes on this gateway: 200 once it applied the version, 202 if not yet.
      const done = await live.waitFor(version, APPLY_WAIT_MS, closing);
      reply
        .code(done ? 200 : 202)
        .header('etag', etag(version))
        .header('cache-control', 'no-store');
      return { key: live.key, version, updatedAt, applied: done };
    },
  );

  app.delete('/v1/routes', { schema: { querystring: NO_QUERY } }, async (request, reply) => {
    if (live === undefined) return off(reply);
    const cas = await preconditions(live.center, live.key, request, reply);
    if (cas === undefined) return reply;
    const removed = await live.center.delete(live.key, cas);
    if (!removed) return fail(reply, 'ERR_NOT_FOUND', `${live.key} has no live value: the routes of the file are live`);
    const head = (await live.center.history(live.key, { limit: 1 }))[0];
    const done = head !== undefined && (await live.waitFor(head.version, APPLY_WAIT_MS, closing));
    return reply.code(done ? 204 : 202).send();
  });
}
