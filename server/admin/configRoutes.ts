/**
 * Config over HTTP on a {@link ConfigCenter}. Keys may contain `/`, so each kind of request
 * has its own path prefix and the key is the rest of the path; nothing a key can be
 * collides with another endpoint:
 *
 * - `GET/PUT/DELETE /v1/config/<key>`: the live value. The key's version travels as a strong
 *   entity tag (`ETag: "4"`) and in `X-Ringway-Index`; writes are compare-and-set through
 *   `If-Match` (RFC 9110 section 13.1.1): a write whose `If-Match` names another version
 *   gets 412, and `If-None-Match: *` creates only. The body of a `PUT` is the value itself,
 *   any JSON. `GET` is a blocking query with `?index=N&wait=30s` (Consul's semantics): it
 *   answers at once when the key's version is not `N`, else when it changes, else when the
 *   wait ends. A key with no live value (never written, or deleted) is a 404 with
 *   `X-Ringway-Index: 0`, so `?index=0` waits for a key to appear.
 * - `GET /v1/config?prefix=p`: every live key under the prefix, with the namespace's
 *   revision as the index; with `?index=N` it blocks until a key under the prefix is
 *   written or deleted after revision `N` (writes elsewhere in the namespace move the
 *   revision on but do not wake it). The answer's `X-Ringway-Generation` (and `generation`)
 *   names the revision's generation; given back as `?generation=`, an index of another
 *   generation (Redis lost its data and counts anew) answers at once.
 * - `GET /v1/config-history/<key>?limit=N`: the key's versions, newest first, deletes included.
 * - `POST /v1/config-rollback/<key>` with `{ "version": N }`: writes version N's value as the
 *   next version (honours `If-Match`).
 * - `GET/PUT/DELETE /v1/config-schemas/<key>`: the key's JSON Schema, shared by every gateway
 *   on the store (see `configSchemas.ts`); versioned, with `If-Match` as values.
 *
 * Every endpoint takes `?namespace=` (one of the center's namespaces; default its own).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type {
  ConfigCenter,
  ConfigEntry,
  ConfigNamespaceOption,
  ConfigWriteOptions,
} from '../../src/config/ConfigCenter.js';
import type { JsonValue } from '../../src/config/jsonValue.js';
import { InvalidOptionError, ValidationError } from '../../src/errors.js';
import { ConfigWaits, DEFAULT_WAIT_MS, INDEX_HEADER, parseWait, requestSignal } from './blocking.js';
import { ConfigSchemas, MAX_SCHEMA_BYTES } from './configSchemas.js';
import { fail } from './fail.js';
import {
  CONFIG_HISTORY_QUERY,
  CONFIG_KEY_QUERY,
  CONFIG_LIST_QUERY,
  CONFIG_QUERY,
  configKeyParams,
  MAX_HISTORY_LIMIT,
  ROLLBACK_BODY,
  SCHEMA_BODY,
} from './schemas.js';

/** The generation of a config list's index: give it back as `?generation=` with `?index=`. */
export const GENERATION_HEADER = 'x-ringway-generation';

interface KeyParams {
  '*': string;
}
interface NamespaceQuery {
  namespace?: string;
}
interface BlockingQuery extends NamespaceQuery {
  index?: string;
  wait?: string;
}
interface ListQuery extends BlockingQuery {
  prefix?: string;
  generation?: string;
}
interface HistoryQuery extends NamespaceQuery {
  limit?: string;
}

/** What the config routes need besides the center. */
export interface ConfigRoutesOptions {
  /** Aborted when the admin API closes: blocking queries answer with what they have. */
  readonly closing: AbortSignal;
  /** Told when a schema in the store cannot be defined on this gateway. */
  readonly onSchemaError: (error: unknown, namespace: string, key: string) => void;
  /**
   * May refuse a value before it is written, by throwing (a `ValidationError` answers 400
   * naming the field): called with each value a `PUT` or a rollback would write to a key of
   * the center's default namespace.
   */
  readonly check?: (key: string, value: unknown) => void;
}

/** The config routes' own resources (shared watches, the schema follower). */
export interface ConfigRoutes {
  /** Stops following the store; call after the blocking queries were released. */
  close(): Promise<void>;
}

const etag = (version: number): string => `"${version}"`;

/** The version a strong entity tag names (`"4"`); If-Match compares strongly (RFC 9110 section 13.1.1). */
function versionOfTag(tag: string): number | undefined {
  const m = /^"(\d{1,15})"$/.exec(tag.trim());
  return m === null ? undefined : Number(m[1]);
}

/**
 * The compare-and-set the request's preconditions ask for: `{}` (none) or `{ expectedVersion }`;
 * undefined once an error answer was sent (bad header, or `If-Match: *` with no live version).
 * `live` reads the live version (undefined: none) of `what`.
 */
async function preconditionsOf(
  live: () => Promise<number | undefined>,
  what: string,
  request: FastifyRequest,
  reply: FastifyReply,
): Promise<ConfigWriteOptions | undefined> {
  const ifMatch = request.headers['if-match'];
  const ifNoneMatch = request.headers['if-none-match'];
  if (ifMatch !== undefined && ifNoneMatch !== undefined) {
    fail(reply, 'ERR_INVALID', 'send If-Match or If-None-Match, not both', 'headers.if-match');
    return undefined;
  }
  if (ifNoneMatch !== undefined) {
    if (ifNoneMatch.trim() !== '*') {
      fail(reply, 'ERR_INVALID', 'headers.if-none-match must be * (create only)', 'headers.if-none-match');
      return undefined;
    }
    return { expectedVersion: 0 };
  }
  if (ifMatch === undefined) return {};
  if (ifMatch.trim() === '*') {
    const version = await live();
    if (version === undefined) {
      fail(reply, 'ERR_PRECONDITION_FAILED', `${what} has no live value`);
      return undefined;
    }
    return { expectedVersion: version };
  }
  const version = versionOfTag(ifMatch);
  if (version === undefined) {
    fail(reply, 'ERR_INVALID', 'headers.if-match must be an ETag such as "4", or *', 'headers.if-match');
    return undefined;
  }
  return { expectedVersion: version };
}

/** The preconditions of a write of the value of `key` (see {@link preconditionsOf}). */
function valuePreconditions(
  config: ConfigCenter,
  key: string,
  where: ConfigNamespaceOption,
  request: FastifyRequest,
  reply: FastifyReply,
): Promise<ConfigWriteOptions | undefined> {
  return preconditionsOf(async () => (await config.get(key, where))?.version, `config key ${key}`, request, reply);
}

/**
 * The preconditions of a write of `key` in the center's default namespace (see
 * {@link preconditionsOf}); for other endpoints that write a config key (the live routes).
 */
export function preconditions(
  config: ConfigCenter,
  key: string,
  request: FastifyRequest,
  reply: FastifyReply,
): Promise<ConfigWriteOptions | undefined> {
  return valuePreconditions(config, key, {}, request, reply);
}

/**
 * How long a blocking query waits: 0 without `index` (it answers at once), `wait` when given,
 * else Consul's default; undefined once a 400 was sent for a `wait` over the maximum.
 */
function waitOf(query: BlockingQuery, reply: FastifyReply): number | undefined {
  if (query.index === undefined) return 0;
  if (query.wait === undefined) return DEFAULT_WAIT_MS;
  const ms = parseWait(query.wait);
  if (ms === undefined) fail(reply, 'ERR_INVALID', 'querystring.wait must be at most 10m', 'querystring.wait');
  return ms;
}

function entryJson(namespace: string, e: ConfigEntry): Record<string, unknown> {
  return { namespace, key: e.key, value: e.value, version: e.version, updatedAt: e.updatedAt, stale: e.stale };
}

/** Adds the config endpoints to the admin app; see the module comment. */
export function registerConfigRoutes(
  app: FastifyInstance,
  config: ConfigCenter,
  options: ConfigRoutesOptions,
): ConfigRoutes {
  const waits = new ConfigWaits(config);
  // Schemas defined over HTTP are kept on the center's own store, next to the values.
  const schemas = new ConfigSchemas(config, config.options.store, options.onSchemaError);
  const keyParams = configKeyParams(config.options.maxKeyLength);
  const namespaceOf = (query: NamespaceQuery): string => query.namespace ?? config.options.namespace;
  /** The key a `/v1/config.../<key>` request names, and its namespace. */
  const addressOf = (request: { params: KeyParams; query: NamespaceQuery }): { key: string; namespace: string } => ({
    key: request.params['*'],
    namespace: namespaceOf(request.query),
  });
  /** The preconditions of a write of the schema of `key` (see {@link preconditionsOf}). */
  const schemaPreconditions = (
    namespace: string,
    key: string,
    request: FastifyRequest,
    reply: FastifyReply,
  ): Promise<ConfigWriteOptions | undefined> =>
    preconditionsOf(
      async () => (await schemas.get(namespace, key))?.version,
      `the schema of config key ${key}`,
      request,
      reply,
    );

  /** Runs a blocking read unless no `index` was given. */
  async function blocking<T>(
    reply: FastifyReply,
    target: { namespace: string; prefix: string; exact: boolean },
    waitMs: number,
    read: () => Promise<T>,
    differs: (answer: T) => boolean,
  ): Promise<T> {
    if (waitMs === 0) return read();
    const { signal, done } = requestSignal(reply, options.closing);
    try {
      return await waits.wait(target, read, differs, waitMs, signal);
    } finally {
      done();
    }
  }

  app.get<{ Querystring: ListQuery }>(
    '/v1/config',
    { schema: { querystring: CONFIG_LIST_QUERY } },
    async (request, reply) => {
      const q = request.query;
      const namespace = namespaceOf(q);
      const prefix = q.prefix ?? '';
      const waitMs = waitOf(q, reply);
      if (waitMs === undefined) return reply;
      const since = q.index === undefined ? undefined : Number(q.index);
      const generation = q.generation;
      const snapshot = await blocking(
        reply,
        { namespace, prefix, exact: false },
        waitMs,
        () => config.snapshot(prefix, { namespace, since, generation }),
        (s) => s.changed === true,
      );
      reply
        .header(INDEX_HEADER, String(snapshot.revision))
        .header(GENERATION_HEADER, snapshot.generation)
        .header('cache-control', 'no-store');
      return {
        namespace,
        prefix,
        index: snapshot.revision,
        generation: snapshot.generation,
        entries: snapshot.entries.map((e) => entryJson(namespace, e)),
      };
    },
  );

  app.get<{ Params: KeyParams; Querystring: BlockingQuery }>(
    '/v1/config/*',
    { schema: { params: keyParams, querystring: CONFIG_KEY_QUERY } },
    async (request, reply) => {
      const { key, namespace } = addressOf(request);
      const q = request.query;
      const waitMs = waitOf(q, reply);
      if (waitMs === undefined) return reply;
      const after = q.index === undefined ? undefined : Number(q.index);
      const entry = await blocking(
        reply,
        { namespace, prefix: key, exact: true },
        waitMs,
        () => config.get(key, { namespace }),
        (e) => (e?.version ?? 0) !== after,
      );
      reply.header(INDEX_HEADER, String(entry?.version ?? 0)).header('cache-control', 'no-store');
      if (entry === undefined) return fail(reply, 'ERR_NOT_FOUND', `config key ${key} has no live value`);
      reply.header('etag', etag(entry.version));
      return entryJson(namespace, entry);
    },
  );

  app.put<{ Params: KeyParams; Querystring: NamespaceQuery; Body: JsonValue }>(
    '/v1/config/*',
    {
      schema: { params: keyParams, querystring: CONFIG_QUERY },
      // The value's own limit is the center's maxValueBytes; the body may be a little longer (spaces).
      bodyLimit: config.options.maxValueBytes * 2,
    },
    async (request, reply) => {
      const { key, namespace } = addressOf(request);
      if (namespace === config.options.namespace) options.check?.(key, request.body);
      const cas = await valuePreconditions(config, key, { namespace }, request, reply);
      if (cas === undefined) return reply;
      // The schema the store holds now, whether or not this gateway's watch has seen it yet.
      await schemas.refresh(namespace, key);
      const { version, updatedAt } = await config.set(key, request.body, { ...cas, namespace });
      reply.header('etag', etag(version)).header(INDEX_HEADER, String(version)).header('cache-control', 'no-store');
      return { namespace, key, version, updatedAt };
    },
  );

  app.delete<{ Params: KeyParams; Querystring: NamespaceQuery }>(
    '/v1/config/*',
    { schema: { params: keyParams, querystring: CONFIG_QUERY } },
    async (request, reply) => {
      const { key, namespace } = addressOf(request);
      const cas = await valuePreconditions(config, key, { namespace }, request, reply);
      if (cas === undefined) return reply;
      const removed = await config.delete(key, { ...cas, namespace });
      if (!removed) return fail(reply, 'ERR_NOT_FOUND', `config key ${key} has no live value`);
      return reply.code(204).send();
    },
  );

  app.get<{ Params: KeyParams; Querystring: HistoryQuery }>(
    '/v1/config-history/*',
    { schema: { params: keyParams, querystring: CONFIG_HISTORY_QUERY } },
    async (request, reply) => {
      const { key, namespace } = addressOf(request);
      const q = request.query;
      const limit = q.limit === undefined ? config.options.historyLimit : Number(q.limit);
      if (limit < 1 || limit > MAX_HISTORY_LIMIT) {
        return fail(
          reply,
          'ERR_INVALID',
          `querystring.limit must be 1 to ${MAX_HISTORY_LIMIT}, got ${q.limit}`,
          'querystring.limit',
        );
      }
      const versions = await config.history(key, { namespace, limit });
      if (versions.length === 0) return fail(reply, 'ERR_NOT_FOUND', `config key ${key} has no history`);
      reply.header('cache-control', 'no-store');
      return {
        namespace,
        key,
        versions: versions.map((v) => ({
          version: v.version,
          ...(v.deleted ? {} : { value: v.value }),
          updatedAt: v.updatedAt,
          deleted: v.deleted,
        })),
      };
    },
  );

  app.post<{ Params: KeyParams; Querystring: NamespaceQuery; Body: { version: number } }>(
    '/v1/config-rollback/*',
    { schema: { params: keyParams, querystring: CONFIG_QUERY, body: ROLLBACK_BODY } },
    async (request, reply) => {
      const { key, namespace } = addressOf(request);
      const cas = await valuePreconditions(config, key, { namespace }, request, reply);
      if (cas === undefined) return reply;
      const target = request.body.version;
      await schemas.refresh(namespace, key);
      let result: { version: number; updatedAt: number; deleted: boolean };
      try {
        const check = options.check;
        if (check !== undefined && namespace === config.options.namespace) {
          // Versions never change once written: the value checked is the one rollback writes.
          const old = (await config.history(key, { namespace })).find((v) => v.version === target);
          if (old !== undefined && !old.deleted) check(key, old.value);
        }
        result = await config.rollback(key, target, { ...cas, namespace });
      } catch (err) {
        if (!(err instanceof ValidationError)) throw err;
        // The field at fault is in version N's value, not in the request body.
        const field = `value${err.path.replaceAll('/', '.')}`;
        return fail(reply, 'ERR_INVALID', `the value of version ${target} is refused: ${err.message}`, field);
      }
      reply.header(INDEX_HEADER, String(result.deleted ? 0 : result.version)).header('cache-control', 'no-store');
      if (!result.deleted) reply.header('etag', etag(result.version));
      return { namespace, key, version: result.version, updatedAt: result.updatedAt, deleted: result.deleted };
    },
  );

  app.get<{ Params: KeyParams; Querystring: NamespaceQuery }>(
    '/v1/config-schemas/*',
    { schema: { params: keyParams, querystring: CONFIG_QUERY } },
    async (request, reply) => {
      const { key, namespace } = addressOf(request);
      const stored = await schemas.get(namespace, key);
      if (stored === undefined) return fail(reply, 'ERR_NOT_FOUND', `config key ${key} has no schema`);
      reply.header('etag', etag(stored.version)).header('cache-control', 'no-store');
      return { namespace, key, schema: stored.schema, version: stored.version, updatedAt: stored.updatedAt };
    },
  );

  app.put<{ Params: KeyParams; Querystring: NamespaceQuery; Body: JsonValue }>(
    '/v1/config-schemas/*',
    { schema: { params: keyParams, querystring: CONFIG_QUERY, body: SCHEMA_BODY }, bodyLimit: MAX_SCHEMA_BYTES },
    async (request, reply) => {
      const { key, namespace } = addressOf(request);
      const cas = await schemaPreconditions(namespace, key, request, reply);
      if (cas === undefined) return reply;
      let written: { version: number; updatedAt: number };
      try {
        written = await schemas.put(namespace, key, request.body, cas);
      } catch (err) {
        if (err instanceof InvalidOptionError && err.field === 'schema') {
          const reason = err.message.replace(/^schema /, '').replace(/, got [a-z ]+$/, '');
          return fail(reply, 'ERR_INVALID', `body ${reason}`, 'body');
        }
        throw err;
      }
      reply.header('etag', etag(written.version)).header('cache-control', 'no-store');
      return { namespace, key, version: written.version, updatedAt: written.updatedAt };
    },
  );

  app.delete<{ Params: KeyParams; Querystring: NamespaceQuery }>(
    '/v1/config-schemas/*',
    { schema: { params: keyParams, querystring: CONFIG_QUERY } },
    async (request, reply) => {
      const { key, namespace } = addressOf(request);
      const cas = await schemaPreconditions(namespace, key, request, reply);
      if (cas === undefined) return reply;
      const removed = await schemas.delete(namespace, key, cas);
      if (!removed) return fail(reply, 'ERR_NOT_FOUND', `config key ${key} has no schema`);
      return reply.code(204).send();
    },
  );

  return {
    close: async () => {
      waits.close();
      await schemas.close();
    },
  };
}
