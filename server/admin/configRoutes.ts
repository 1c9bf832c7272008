/**
 * Config over HTTP: `GET/PUT/DELETE /v1/config/<key>` on a {@link ConfigCenter}. The key's
 * version travels as a strong entity tag (`ETag: "4"`), and writes are compare-and-set
 * through `If-Match` (RFC 9110 section 13.1.1): a write whose `If-Match` names another
 * version gets 412. `If-None-Match: *` creates only (the key must have no live value).
 * The body of a `PUT` is the value itself, any JSON; keys may contain `/`.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ConfigCenter, ConfigWriteOptions } from '../../src/config/ConfigCenter.js';
import type { JsonValue } from '../../src/config/jsonValue.js';
import { fail } from './fail.js';
import { NO_QUERY } from './schemas.js';

const KEY_PARAMS = {
  type: 'object',
  properties: { '*': { type: 'string', minLength: 1 } },
  required: ['*'],
  additionalProperties: false,
} as const;

interface KeyParams {
  '*': string;
}

/** The version a strong entity tag names (`"4"`); If-Match compares strongly (RFC 9110 section 13.1.1). */
function versionOfTag(tag: string): number | undefined {
  const m = /^"(\d{1,15})"$/.exec(tag.trim());
  return m === null ? undefined : Number(m[1]);
}

/**
 * The compare-and-set the request's preconditions ask for: `{}` (none) or `{ expectedVersion }`;
 * undefined once an error answer was sent (bad header, or `If-Match: *` on a missing key).
 */
export async function preconditions(
  config: ConfigCenter,
  key: string,
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
    const live = await config.get(key);
    if (live === undefined) {
      fail(reply, 'ERR_PRECONDITION_FAILED', `config key ${key} has no live value`);
      return undefined;
    }
    return { expectedVersion: live.version };
  }
  const version = versionOfTag(ifMatch);
  if (version === undefined) {
    fail(reply, 'ERR_INVALID', 'headers.if-match must be an ETag such as "4", or *', 'headers.if-match');
    return undefined;
  }
  return { expectedVersion: version };
}

/**
 * Adds the config endpoints to the admin app. `check(key, value)`, when given, may refuse a
 * `PUT` before anything is written by throwing (a `ValidationError` answers 400).
 */
export function registerConfigRoutes(
  app: FastifyInstance,
  config: ConfigCenter,
  check?: (key: string, value: unknown) => void,
): void {
  const etag = (version: number): string => `"${version}"`;

  app.get<{ Params: KeyParams }>(
    '/v1/config/*',
    { schema: { params: KEY_PARAMS, querystring: NO_QUERY } },
    async (request, reply) => {
      const key = request.params['*'];
      const entry = await config.get(key);
      if (entry === undefined) return fail(reply, 'ERR_NOT_FOUND', `config key ${key} has no live value`);
      reply.header('etag', etag(entry.version)).header('cache-control', 'no-store');
      return { key, value: entry.value, version: entry.version, updatedAt: entry.updatedAt, stale: entry.stale };
    },
  );

  app.put<{ Params: KeyParams; Body: JsonValue }>(
    '/v1/config/*',
    {
      schema: { params: KEY_PARAMS, querystring: NO_QUERY },
      // The value's own limit is the center's maxValueBytes; the body may be a little longer (spaces).
      bodyLimit: config.options.maxValueBytes * 2,
    },
    async (request, reply) => {
      const key = request.params['*'];
      check?.(key, request.body);
      const cas = await preconditions(config, key, request, reply);
      if (cas === undefined) return reply;
      const { version, updatedAt } = await config.set(key, request.body, cas);
      reply.header('etag', etag(version)).header('cache-control', 'no-store');
      return { key, version, updatedAt };
    },
  );

  app.delete<{ Params: KeyParams }>(
    '/v1/config/*',
    { schema: { params: KEY_PARAMS, querystring: NO_QUERY } },
    async (request, reply) => {
      const key = request.params['*'];
      const cas = await preconditions(config, key, request, reply);
      if (cas === undefined) return reply;
      const removed = await config.delete(key, cas);
      if (!removed) return fail(reply, 'ERR_NOT_FOUND', `config key ${key} has no live value`);
      return reply.code(204).send();
    },
  );
}
