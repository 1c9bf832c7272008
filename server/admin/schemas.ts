/**
 * JSON schemas of the admin API's requests. Fastify validates every body, parameter and
 * query string against them (unknown fields refused: `additionalProperties: false`, no type
 * coercion, no removal), so a request a handler sees is already well-formed.
 */
import { MAX_TTL_MS, MIN_TTL_MS } from '../../src/registry/RegistryOptions.js';
import { REGISTRATION_LIMITS as L } from '../../src/registry/ServiceInstance.js';
import { WAIT_PATTERN } from './blocking.js';

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
