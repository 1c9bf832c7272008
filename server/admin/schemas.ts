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
