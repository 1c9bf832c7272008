/**
 * JSON Schemas (draft-07, as Ajv 8 validates by default) of the gateway configuration: the
 * whole file, one route and one service. The file loader validates with them at start; the
 * control plane validates live route and service changes and generates its OpenAPI document
 * from the same objects, so the checks and the docs cannot drift apart.
 *
 * Every object refuses unknown fields (`additionalProperties: false`), so a typo is an error
 * that names the field and its line, not a setting silently ignored. Ranges that a library
 * part owns (health checks, outlier detection...) are checked again by that part's own
 * `resolve...Options`, which the loader calls with the field's path.
 */

/** Retry conditions a route can name in `retries.on`. */
export const RETRY_CONDITIONS = ['connect-failure', 'reset', '502', '503', '504'] as const;
/** A retry condition. */
export type RetryCondition = (typeof RETRY_CONDITIONS)[number];

/** Strategies a route can name (the balancer's). */
export const ROUTE_STRATEGIES = [
  'round-robin',
  'weighted-round-robin',
  'random',
  'weighted-random',
  'least-connections',
  'p2c',
  'ewma',
  'ring-hash',
  'maglev',
] as const;

/** Longest timeout any setting accepts: one hour. */
export const MAX_TIMEOUT_MS = 3_600_000;
/** Largest request body a route may allow: 1 GiB. */
export const MAX_BODY_LIMIT = 1024 * 1024 * 1024;

const headerName = {
  type: 'string',
  pattern: "^[!#$%&'*+\\-.^_`|~0-9A-Za-z]{1,256}$",
  description: 'an HTTP header name (RFC 9110 token)',
} as const;
const cookieName = { type: 'string', pattern: "^[!#$%&'*+\\-.^_`|~0-9A-Za-z]{1,256}$" } as const;
const pathPrefix = {
  type: 'string',
  pattern: '^/[^?#\\s]{0,2047}$',
  description: "a path starting with '/', without query, fragment or spaces",
} as const;
const method = { type: 'string', pattern: '^[A-Z]{1,32}$', description: 'an upper-case HTTP method' } as const;
const positiveMs = { type: 'integer', minimum: 1, maximum: MAX_TIMEOUT_MS } as const;
const upstreamUrl = {
  type: 'string',
  pattern: '^https?://[^\\s/?#]+(/[^\\s?#]*)?$',
  maxLength: 2048,
  description: 'an http:// or https:// URL of an upstream instance',
} as const;

/** Schema of one route. */
export const ROUTE_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['match', 'service'],
  properties: {
    name: { type: 'string', pattern: '^[A-Za-z0-9._:-]{1,128}$' },
    match: {
      type: 'object',
      additionalProperties: false,
      required: ['prefix'],
      properties: {
        prefix: pathPrefix,
        host: {
          description: "a host name (or '*.suffix'), or a list of them",
          anyOf: [
            { type: 'string', pattern: '^(\\*\\.)?[A-Za-z0-9.-]{1,253}$' },
            {
              type: 'array',
              minItems: 1,
              maxItems: 64,
              items: { type: 'string', pattern: '^(\\*\\.)?[A-Za-z0-9.-]{1,253}$' },
            },
          ],
        },
        methods: { type: 'array', minItems: 1, maxItems: 32, uniqueItems: true, items: method },
        headers: {
          type: 'object',
          maxProperties: 32,
          propertyNames: headerName,
          additionalProperties: { type: 'string', maxLength: 1024 },
        },
      },
    },
    service: { type: 'string', pattern: '^[A-Za-z0-9._-]{1,128}$' },
    strategy: { type: 'string', enum: ROUTE_STRATEGIES },
    hashKey: {
      description: "'path', 'ip', { header: name } or { cookie: name }",
      anyOf: [
        { type: 'string', enum: ['path', 'ip'] },
        { type: 'object', additionalProperties: false, required: ['header'], properties: { header: headerName } },
        { type: 'object', additionalProperties: false, required: ['cookie'], properties: { cookie: cookieName } },
      ],
    },
    stripPrefix: { type: 'boolean' },
    rewritePrefix: pathPrefix,
    preserveHost: { type: 'boolean' },
    timeoutMs: positiveMs,
    bodyLimit: { type: 'integer', minimum: 0, maximum: MAX_BODY_LIMIT },
    retries: {
      type: 'object',
      additionalProperties: false,
      properties: {
        attempts: { type: 'integer', minimum: 0, maximum: 10 },
        on: {
          type: 'array',
          uniqueItems: true,
          items: {
            description: "one of 'connect-failure', 'reset', 502, 503, 504",
            anyOf: [
              { type: 'string', enum: RETRY_CONDITIONS },
              { type: 'integer', enum: [502, 503, 504] },
            ],
          },
        },
        budgetPercent: { type: 'number', minimum: 0, maximum: 100 },
        minRetryConcurrency: { type: 'integer', minimum: 0, maximum: 1_000_000 },
        perTryTimeoutMs: positiveMs,
        idempotentOnly: { type: 'boolean' },
        replayBufferBytes: { type: 'integer', minimum: 0, maximum: 16 * 1024 * 1024 },
      },
    },
    rateLimit: {
      type: 'object',
      additionalProperties: false,
      required: ['rps'],
      properties: {
        rps: { type: 'number', exclusiveMinimum: 0, maximum: 1_000_000_000 },
        burst: { type: 'integer', minimum: 1, maximum: 1_000_000_000 },
        key: {
          description: "'ip' or { header: name }",
          anyOf: [
            { type: 'string', enum: ['ip'] },
            { type: 'object', additionalProperties: false, required: ['header'], properties: { header: headerName } },
          ],
        },
      },
    },
  },
} as const;

const nonNegativeMs = { type: 'integer', minimum: 0, maximum: MAX_TIMEOUT_MS } as const;

/** Schema of one service. */
export const SERVICE_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    static: {
      type: 'array',
      maxItems: 10_000,
      items: {
        description: 'a URL, or { address, id?, weight?, zone? }',
        anyOf: [
          upstreamUrl,
          {
            type: 'object',
            additionalProperties: false,
            required: ['address'],
            properties: {
              address: upstreamUrl,
              id: { type: 'string', minLength: 1, maxLength: 1024 },
              weight: { type: 'number', exclusiveMinimum: 0, maximum: 1_000_000 },
              zone: { type: 'string', minLength: 1, maxLength: 1024 },
            },
          },
        ],
      },
    },
    healthCheck: {
      anyOf: [
        { type: 'boolean', enum: [false] },
        {
          type: 'object',
          additionalProperties: false,
          properties: {
            type: { type: 'string', enum: ['http', 'tcp'] },
            path: { type: 'string', pattern: '^/', maxLength: 2048 },
            expectedStatuses: {
              type: 'array',
              minItems: 1,
              items: {
                anyOf: [
                  { type: 'integer', minimum: 100, maximum: 599 },
                  {
                    type: 'array',
                    minItems: 2,
                    maxItems: 2,
                    items: { type: 'integer', minimum: 100, maximum: 599 },
                  },
                ],
              },
            },
            intervalMs: positiveMs,
            timeoutMs: positiveMs,
            healthyThreshold: { type: 'integer', minimum: 1, maximum: 1000 },
            unhealthyThreshold: { type: 'integer', minimum: 1, maximum: 1000 },
            jitterPercent: { type: 'number', minimum: 0, maximum: 100 },
            initiallyHealthy: { type: 'boolean' },
          },
        },
      ],
      description: 'false, or the active health check options',
    },
    outlierDetection: {
      description: 'false, or the outlier detection options',
      anyOf: [
        { type: 'boolean', enum: [false] },
        {
          type: 'object',
          additionalProperties: false,
          properties: {
            consecutiveFailures: { type: 'integer', minimum: 1, maximum: 1_000_000 },
            baseEjectionMs: positiveMs,
            maxEjectionMs: positiveMs,
            maxEjectionJitterMs: nonNegativeMs,
            maxEjectionPercent: { type: 'number', minimum: 0, maximum: 100 },
            intervalMs: positiveMs,
          },
        },
      ],
    },
    circuitBreaker: {
      description: 'true, false, or the circuit breaker options',
      anyOf: [
        { type: 'boolean' },
        {
          type: 'object',
          additionalProperties: false,
          properties: {
            failureThreshold: { type: 'integer', minimum: 1, maximum: 1_000_000 },
            cooldownMs: positiveMs,
            halfOpenMaxRequests: { type: 'integer', minimum: 1, maximum: 1_000_000 },
            successThreshold: { type: 'integer', minimum: 1, maximum: 1_000_000 },
          },
        },
      ],
    },
    panicThreshold: { type: 'number', minimum: 0, maximum: 100 },
    ringHash: {
      type: 'object',
      additionalProperties: false,
      properties: {
        vnodes: { type: 'integer', minimum: 1 },
        hash: { type: 'string', enum: ['xxh64', 'xxh32', 'ketama'] },
        boundedLoad: { type: 'number', exclusiveMinimum: 1 },
      },
    },
    maglev: {
      type: 'object',
      additionalProperties: false,
      properties: { tableSize: { type: 'integer', minimum: 2 } },
    },
    ewma: {
      type: 'object',
      additionalProperties: false,
      properties: {
        decayMs: positiveMs,
        initialLatencyMs: { type: 'number', minimum: 0 },
      },
    },
    connections: { type: 'integer', minimum: 1, maximum: 65_536 },
    connectTimeoutMs: positiveMs,
  },
} as const;

/** Schema of the `routes` list. */
const ROUTES_SCHEMA = { type: 'array', maxItems: 10_000, items: ROUTE_SCHEMA } as const;

/** Schema of the `services` map. */
const SERVICES_SCHEMA = {
  type: 'object',
  maxProperties: 10_000,
  propertyNames: { type: 'string', pattern: '^[A-Za-z0-9._-]{1,128}$' },
  additionalProperties: SERVICE_SCHEMA,
} as const;

/**
 * Schema of the live routes: the value of the config key the gateway watches
 * (`gateway/routes` by default), the file's `routes` and `services` together, so that a
 * route naming a new service arrives with it. `listen`, `proxy` and `demo` stay the file's.
 */
export const LIVE_ROUTES_SCHEMA = {
  type: 'object',
  description: "the gateway's routes and the services they name, as in the configuration file",
  additionalProperties: false,
  required: ['routes'],
  properties: { routes: ROUTES_SCHEMA, services: SERVICES_SCHEMA },
} as const;

/** Schema of the whole configuration file. */
export const GATEWAY_CONFIG_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    listen: {
      type: 'object',
      additionalProperties: false,
      properties: {
        port: { type: 'integer', minimum: 0, maximum: 65_535 },
        host: { type: 'string', minLength: 1, maxLength: 255 },
      },
    },
    proxy: {
      type: 'object',
      additionalProperties: false,
      properties: {
        via: { anyOf: [{ type: 'boolean' }, { type: 'string', pattern: "^[!#$%&'*+\\-.^_`|~0-9A-Za-z]{1,64}$" }] },
        xForwardedFor: { type: 'string', enum: ['append', 'replace'] },
        requestIdHeader: headerName,
        bodyLimit: { type: 'integer', minimum: 0, maximum: MAX_BODY_LIMIT },
        timeoutMs: positiveMs,
        maxHeaderSize: { type: 'integer', minimum: 1024, maximum: 1024 * 1024 },
        requestTimeoutMs: nonNegativeMs,
        keepAliveTimeoutMs: positiveMs,
        drainTimeoutMs: nonNegativeMs,
      },
    },
    routes: ROUTES_SCHEMA,
    services: SERVICES_SCHEMA,
    demo: {
      type: 'object',
      additionalProperties: false,
      required: ['service'],
      properties: {
        service: { type: 'string', pattern: '^[A-Za-z0-9._-]{1,128}$' },
        instances: { type: 'integer', minimum: 1, maximum: 16 },
        host: { type: 'string', minLength: 1, maxLength: 255 },
        basePort: { type: 'integer', minimum: 0, maximum: 65_535 },
      },
    },
  },
} as const;
