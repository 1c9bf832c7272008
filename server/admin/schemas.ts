/**
 * JSON schemas of the admin API's requests. Fastify validates every body, parameter and
 * query string against them (unknown fields refused: `additionalProperties: false`, no type
 * coercion, no removal), so a request a handler sees is already well-formed.
 */
import { MAX_LOCK_NAME_LENGTH, MIN_TTL_MS as MIN_LOCK_TTL_MS } from '../../src/lock/options.js';
import { MAX_TTL_MS, MIN_TTL_MS } from '../../src/registry/RegistryOptions.js';
import { REGISTRATION_LIMITS as L } from '../../src/registry/ServiceInstance.js';
import { MAX_WAIT_MS, WAIT_PATTERN } from './blocking.js';

const name = { type: 'string', minLength: 1, maxLength: L.maxNameLength } as const;

/** `:service` path parameter. */
export const SERVICE_PARAMS = {
  type: 'object',
  properties: { service: name },
  required: ['service'],
  additionalProperties: false,
} as const;

/** `:service/instances/:id` path parameters. */
export const INSTANCE_PARAMS = {
  type: 'object',
  properties: { service: name, id: name },
  required: ['service', 'id'],
  additionalProperties: false,
} as const;

/** Body of `PUT /v1/services/:service/instances/:id`: what `ServiceRegistry.register` takes, minus the names. */
export const REGISTRATION_BODY = {
  type: 'object',
  properties: {
    address: { type: 'string', minLength: 1, maxLength: L.maxAddressLength },
    weight: { type: 'number', exclusiveMinimum: 0, maximum: L.maxWeight },
    tags: { type: 'array', maxItems: L.maxTags, items: { type: 'string', maxLength: L.maxTagLength } },
    meta: {
      type: 'object',
      maxProperties: L.maxMetaEntries,
      propertyNames: { maxLength: L.maxMetaKeyLength },
      additionalProperties: { type: 'string', maxLength: L.maxMetaValueLength },
    },
    zone: { type: 'string', minLength: 1, maxLength: L.maxNameLength },
    healthy: { type: 'boolean' },
    ttlMs: { type: 'integer', minimum: MIN_TTL_MS, maximum: MAX_TTL_MS },
  },
  required: ['address'],
  additionalProperties: false,
} as const;

/** Query string of `GET /v1/services/:service` (blocking query). */
export const INSTANCES_QUERY = {
  type: 'object',
  properties: {
    index: { type: 'string', pattern: '^[0-9]{1,15}$' },
    wait: { type: 'string', pattern: WAIT_PATTERN },
    healthy: { type: 'string', enum: ['true', 'false'] },
  },
  additionalProperties: false,
} as const;

/** An empty query string. */
export const NO_QUERY = { type: 'object', properties: {}, additionalProperties: false } as const;

/**
 * Longest lease a lock taken over HTTP may ask for (one hour): nothing extends it but the
 * client, so a client that dies holding a lock blocks the others at most this long.
 */
export const MAX_HTTP_LOCK_TTL_MS = 3_600_000;

/** A fencing token in a path: a positive integer (checked to be a safe integer by the handler). */
export const TOKEN_PATTERN = '^[1-9][0-9]{0,15}$';

const lockName = {
  type: 'string',
  minLength: 1,
  maxLength: MAX_LOCK_NAME_LENGTH,
  description: 'The lock name, percent-encoded (`/` as `%2F`)',
} as const;
const lockTtl = {
  type: 'integer',
  minimum: MIN_LOCK_TTL_MS,
  maximum: MAX_HTTP_LOCK_TTL_MS,
  description: 'Lease length in ms, counted by the store from when it grants or extends',
} as const;

/** `/v1/locks/:name` path parameters. */
export const LOCK_PARAMS = {
  type: 'object',
  properties: { name: lockName },
  required: ['name'],
  additionalProperties: false,
} as const;

/** `/v1/locks/:name/:token` path parameters. */
export const LOCK_TOKEN_PARAMS = {
  type: 'object',
  properties: {
    name: lockName,
    token: { type: 'string', pattern: TOKEN_PATTERN, description: 'The fencing token the acquire answered with' },
  },
  required: ['name', 'token'],
  additionalProperties: false,
} as const;

/** Body of `POST /v1/locks/:name` (acquire). */
export const ACQUIRE_BODY = {
  type: 'object',
  properties: {
    ttlMs: lockTtl,
    waitMs: {
      type: 'integer',
      minimum: 0,
      maximum: MAX_WAIT_MS,
      description: 'How long to keep trying while the lock is taken, in ms (0, the default: one attempt)',
    },
    fair: {
      type: 'boolean',
      description: 'Wait in the FIFO queue of the lock: waiters are granted in arrival order (default false)',
    },
  },
  required: ['ttlMs'],
  additionalProperties: false,
} as const;

/** Body of `PUT /v1/locks/:name/:token` (extend). */
export const EXTEND_BODY = {
  type: 'object',
  properties: { ttlMs: lockTtl },
  required: ['ttlMs'],
  additionalProperties: false,
} as const;

/** A lease as the lock endpoints answer it. */
const LEASE = {
  name: { type: 'string' },
  token: { type: 'integer', description: 'Fencing token: strictly greater than every earlier token of this lock' },
  ttlMs: { type: 'integer', description: 'Lease length asked for' },
  remainingMs: {
    type: 'integer',
    description:
      'How long the lease is still trusted, from when the request was received (ttl less a clock-drift allowance)',
  },
  expiresAt: { type: 'integer', description: 'remainingMs as a time on the gateway clock (ms since the epoch)' },
} as const;

/** Answer of acquire and extend. */
export const LEASE_REPLY = {
  type: 'object',
  properties: LEASE,
  required: ['name', 'token', 'ttlMs', 'remainingMs', 'expiresAt'],
} as const;

/** Answer of `GET /v1/locks/:name`. */
export const LOCK_STATE_REPLY = {
  type: 'object',
  properties: {
    name: LEASE.name,
    token: LEASE.token,
    remainingMs: { type: 'integer', description: 'What is left of the holder lease, as the store counts it' },
    expiresAt: LEASE.expiresAt,
    waiting: { type: 'integer', description: 'Waiters in the fair queue of the lock' },
  },
  required: ['name', 'token', 'remainingMs', 'expiresAt', 'waiting'],
} as const;

/** Answer of `DELETE /v1/locks/:name/:token`. */
export const RELEASE_REPLY = {
  type: 'object',
  properties: {
    name: LEASE.name,
    token: LEASE.token,
    released: {
      type: 'boolean',
      description: 'False when the token no longer held the lock (releasing twice is harmless)',
    },
  },
  required: ['name', 'token', 'released'],
} as const;

/** `?namespace=` of the config endpoints: one of the config center's namespaces (default: its own). */
const namespace = { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$' } as const;

/** Largest `?limit=` of `GET /v1/config-history/<key>` (the store keeps at most `historyLimit` versions anyway). */
export const MAX_HISTORY_LIMIT = 10_000;

/** Query string of the config writes (`PUT`/`DELETE /v1/config/<key>`, rollback, schemas). */
export const CONFIG_QUERY = {
  type: 'object',
  properties: { namespace },
  additionalProperties: false,
} as const;

/** Query string of `GET /v1/config/<key>` (a blocking query with `index`). */
export const CONFIG_KEY_QUERY = {
  type: 'object',
  properties: {
    namespace,
    index: { type: 'string', pattern: '^[0-9]{1,15}$' },
    wait: { type: 'string', pattern: WAIT_PATTERN },
  },
  additionalProperties: false,
} as const;

/** Query string of `GET /v1/config` (list under a prefix; a blocking query with `index`). */
export const CONFIG_LIST_QUERY = {
  type: 'object',
  properties: {
    namespace,
    prefix: { type: 'string', maxLength: 4_096 },
    index: { type: 'string', pattern: '^[0-9]{1,15}$' },
    /** The generation a previous answer gave with `index` (its `X-Ringway-Generation`). */
    generation: { type: 'string', pattern: '^[0-9]{0,20}$' },
    wait: { type: 'string', pattern: WAIT_PATTERN },
  },
  additionalProperties: false,
} as const;

/** Query string of `GET /v1/config-history/<key>`. */
export const CONFIG_HISTORY_QUERY = {
  type: 'object',
  properties: {
    namespace,
    limit: { type: 'string', pattern: '^[0-9]{1,5}$' },
  },
  additionalProperties: false,
} as const;

/** Body of `POST /v1/config-rollback/<key>`: the version whose value becomes the next one. */
export const ROLLBACK_BODY = {
  type: 'object',
  properties: { version: { type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER } },
  required: ['version'],
  additionalProperties: false,
} as const;

/** Body of `PUT /v1/config-schemas/<key>`: a JSON Schema (an object or a boolean), checked by compiling it. */
export const SCHEMA_BODY = { type: ['object', 'boolean'] } as const;

/** The `<key>` path tail of the config endpoints (keys may contain `/`). */
export function configKeyParams(maxKeyLength: number) {
  return {
    type: 'object',
    properties: { '*': { type: 'string', minLength: 1, maxLength: maxKeyLength } },
    required: ['*'],
    additionalProperties: false,
  } as const;
}
