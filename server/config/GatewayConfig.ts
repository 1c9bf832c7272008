/**
 * The gateway configuration: what a file (or the config center) holds (`GatewayConfig`), the
 * defaults, and `resolveGatewayConfig`, which validates against the JSON Schema, runs the
 * checks a schema cannot express (a route's rewrite and strip together, a hash key without a
 * hashing strategy, the balancer's own ranges) and returns one frozen, complete shape.
 */
import type { ErrorObject } from 'ajv';
import { Ajv } from 'ajv';
import type { CircuitBreakerOptions } from '../../src/balancer/CircuitBreaker.js';
import { resolveCircuitBreakerOptions } from '../../src/balancer/CircuitBreaker.js';
import { type Endpoint, type EndpointInput, resolveEndpoints } from '../../src/balancer/Endpoint.js';
import type { HealthCheckOptions } from '../../src/balancer/HealthChecker.js';
import { resolveHealthCheckOptions } from '../../src/balancer/HealthChecker.js';
import type { OutlierDetectionOptions } from '../../src/balancer/OutlierDetector.js';
import { resolveOutlierDetectionOptions } from '../../src/balancer/OutlierDetector.js';
import { checkEndpointsForStrategy } from '../../src/balancer/options.js';
import {
  type MaglevStrategyOptions,
  type ResolvedMaglevStrategyOptions,
  resolveMaglevStrategyOptions,
} from '../../src/balancer/strategies/Maglev.js';
import type { EwmaOptions } from '../../src/balancer/strategies/PeakEwma.js';
import { resolveEwmaOptions } from '../../src/balancer/strategies/PeakEwma.js';
import {
  type ResolvedRingHashOptions,
  type RingHashOptions,
  resolveRingHashOptions,
} from '../../src/balancer/strategies/RingHash.js';
import { describe, InvalidOptionError } from '../../src/errors.js';
import { isUpstreamUrl } from '../proxy/UpstreamPools.js';
import { checkRequestTarget } from '../routes/requestPath.js';
import { ConfigError, type ConfigIssue, joinField, splitField } from './ConfigError.js';
import { GATEWAY_CONFIG_SCHEMA, LIVE_ROUTES_SCHEMA, type RetryCondition, type ROUTE_STRATEGIES } from './schema.js';

/** A route's strategy name. */
export type RouteStrategy = (typeof ROUTE_STRATEGIES)[number];

/** Where `ring-hash` and `maglev` take their key from. */
export type HashKeyConfig = 'path' | 'ip' | { header: string } | { cookie: string };

/** A route's retry policy as written. */
export interface RetryConfig {
  /** Retries after the first try (so `2` means up to three tries). @default 1 */
  attempts?: number;
  /** What is retried (statuses may be written as numbers). @default ['connect-failure', 'reset'] */
  on?: (RetryCondition | 502 | 503 | 504)[];
  /** Retries in flight may be at most this percent of requests in flight. @default 20 */
  budgetPercent?: number;
  /** Retries in flight always allowed. @default 3 */
  minRetryConcurrency?: number;
  /** Time each try has to produce response headers. @default the route's `timeoutMs` */
  perTryTimeoutMs?: number;
  /**
   * Retry only idempotent methods (GET, HEAD, OPTIONS, PUT, DELETE, TRACE). A
   * `connect-failure` is retried for every method: nothing of the request was sent.
   * @default true
   */
  idempotentOnly?: boolean;
  /**
   * Request body bytes kept to replay on a retry; a longer body is streamed and not retried
   * after its first byte left.
   * @default 65536
   */
  replayBufferBytes?: number;
}

/** A route's rate limit as written. */
export interface RateLimitConfig {
  /** Tokens added per second. */
  rps: number;
  /** Bucket size: the largest burst. @default ceil(rps) */
  burst?: number;
  /** Who has a bucket: the client IP, or the value of a header (the IP when it is absent). @default 'ip' */
  key?: 'ip' | { header: string };
}

/** A route as written. */
export interface RouteConfig {
  /** Name in logs and metrics. @default `<index>:<prefix>` */
  name?: string;
  match: {
    /** Path prefix, matched on whole segments: `/api` matches `/api`, `/api/x`, not `/apix`. */
    prefix: string;
    /** Host names (`*.example.com` matches any subdomain); any host when absent. */
    host?: string | string[];
    /** Methods; any when absent. */
    methods?: string[];
    /** Headers that must be present with exactly these values. */
    headers?: Record<string, string>;
  };
  /** The service whose instances serve the route. */
  service: string;
  /** @default 'round-robin' */
  strategy?: RouteStrategy;
  /** Key of `ring-hash` and `maglev`. @default 'ip' */
  hashKey?: HashKeyConfig;
  /** Remove the matched prefix before forwarding (`/api/users/7` -> `/7`). @default false */
  stripPrefix?: boolean;
  /** Replace the matched prefix with this one. */
  rewritePrefix?: string;
  /** Forward the client's `Host` instead of the upstream's. @default false */
  preserveHost?: boolean;
  /** Time for the whole request, retries included, to get response headers; also the idle limit while streaming. @default 30_000 */
  timeoutMs?: number;
  /** Largest request body in bytes. @default 1_048_576 */
  bodyLimit?: number;
  retries?: RetryConfig;
  rateLimit?: RateLimitConfig;
}

/** A static instance as written: a URL or an object. */
export type StaticInstanceConfig = string | { address: string; id?: string; weight?: number; zone?: string };

/** A service as written. */
export interface ServiceConfig {
  /** Fixed instances; without them, instances come from the service registry. */
  static?: StaticInstanceConfig[];
  healthCheck?: HealthCheckOptions | false;
  outlierDetection?: OutlierDetectionOptions | false;
  circuitBreaker?: CircuitBreakerOptions | boolean;
  /** Envoy's panic threshold, in percent. @default 0 */
  panicThreshold?: number;
  ringHash?: RingHashOptions;
  maglev?: MaglevStrategyOptions;
  ewma?: EwmaOptions;
  /** Keep-alive connections per instance. @default 128 */
  connections?: number;
  /** Time to open a connection to an instance. @default 5_000 */
  connectTimeoutMs?: number;
}

/**
 * The live routes as stored in the config center (key `gateway/routes` by default): the
 * file's `routes` and `services`, together.
 */
export interface LiveRoutesConfig {
  routes: RouteConfig[];
  services?: Record<string, ServiceConfig>;
}

/** The whole file as written. */
export interface GatewayConfig {
  listen?: { port?: number; host?: string };
  proxy?: {
    /** Add `Via: 1.1 <name>` both ways (`true` uses `ringway`). @default false */
    via?: boolean | string;
    /** Append the client address to an incoming `X-Forwarded-For`, or replace it. @default 'append' */
    xForwardedFor?: 'append' | 'replace';
    /** The request id header. @default 'x-request-id' */
    requestIdHeader?: string;
    /** Default body limit of routes. @default 1_048_576 */
    bodyLimit?: number;
    /** Default timeout of routes. @default 30_000 */
    timeoutMs?: number;
    /** Largest request head. @default 16_384 */
    maxHeaderSize?: number;
    /** Time a client has to send a whole request (0: no limit). @default 300_000 */
    requestTimeoutMs?: number;
    /** Idle keep-alive time of client connections. @default 5_000 */
    keepAliveTimeoutMs?: number;
    /** Time in-flight requests have to finish at shutdown. @default 10_000 */
    drainTimeoutMs?: number;
  };
  routes?: RouteConfig[];
  services?: Record<string, ServiceConfig>;
  /** Start demo upstreams in-process (for trying the gateway out). */
  demo?: { service: string; instances?: number; host?: string; basePort?: number };
}

/** A resolved hash key. */
export type ResolvedHashKey =
  | { readonly type: 'path' }
  | { readonly type: 'ip' }
  | { readonly type: 'header'; readonly name: string }
  | { readonly type: 'cookie'; readonly name: string };

/** A resolved retry policy. */
export interface ResolvedRetryPolicy {
  readonly attempts: number;
  readonly on: readonly RetryCondition[];
  readonly onConnectFailure: boolean;
  readonly onReset: boolean;
  /** Upstream statuses that are retried. */
  readonly onStatus: ReadonlySet<number>;
  readonly budgetPercent: number;
  readonly minRetryConcurrency: number;
  readonly perTryTimeoutMs: number;
  readonly idempotentOnly: boolean;
  readonly replayBufferBytes: number;
}

/** A resolved rate limit. */
export interface ResolvedRateLimit {
  readonly rps: number;
  readonly burst: number;
  /** Lower-cased header name, or undefined for the client IP. */
  readonly header: string | undefined;
}

/** A resolved route. */
export interface ResolvedRoute {
  readonly index: number;
  readonly name: string;
  readonly prefix: string;
  /** Lower-cased hosts; exact names and `*.suffix` wildcards. Undefined: any host. */
  readonly hosts: readonly string[] | undefined;
  readonly methods: ReadonlySet<string> | undefined;
  /** Lower-cased header names with their required values. */
  readonly headers: readonly (readonly [string, string])[];
  readonly service: string;
  readonly strategy: RouteStrategy;
  readonly hashKey: ResolvedHashKey | undefined;
  /** The prefix that replaces the matched one, or undefined to forward the path as it is. */
  readonly rewritePrefix: string | undefined;
  readonly preserveHost: boolean;
  readonly timeoutMs: number;
  readonly bodyLimit: number;
  readonly retries: ResolvedRetryPolicy;
  readonly rateLimit: ResolvedRateLimit | undefined;
}

/** A resolved service. */
export interface ResolvedService {
  readonly name: string;
  /** Fixed instances, or undefined when they come from the registry. */
  readonly static: readonly EndpointInput[] | undefined;
  readonly healthCheck: HealthCheckOptions | undefined;
  readonly outlierDetection: OutlierDetectionOptions | false;
  readonly circuitBreaker: CircuitBreakerOptions | boolean;
  readonly panicThreshold: number;
  readonly ringHash: RingHashOptions;
  readonly maglev: MaglevStrategyOptions;
  readonly ewma: EwmaOptions;
  readonly connections: number;
  readonly connectTimeoutMs: number;
}

/** Proxy-wide settings, resolved. */
export interface ResolvedProxyOptions {
  /** The `Via` value (`1.1 ringway`), or undefined when off. */
  readonly via: string | undefined;
  readonly xForwardedFor: 'append' | 'replace';
  readonly requestIdHeader: string;
  readonly bodyLimit: number;
  readonly timeoutMs: number;
  readonly maxHeaderSize: number;
  readonly requestTimeoutMs: number;
  readonly keepAliveTimeoutMs: number;
  readonly drainTimeoutMs: number;
}

/** The demo upstreams to start. */
export interface ResolvedDemo {
  readonly service: string;
  readonly instances: number;
  readonly host: string;
  /** First port (the next ones follow); 0 picks free ports. */
  readonly basePort: number;
}

/** The whole configuration, resolved and frozen. */
export interface ResolvedGatewayConfig {
  readonly listen: { readonly port: number; readonly host: string };
  readonly proxy: ResolvedProxyOptions;
  readonly routes: readonly ResolvedRoute[];
  /** Services by name: those declared, plus one with defaults for each route's undeclared service. */
  readonly services: ReadonlyMap<string, ResolvedService>;
  readonly demo: ResolvedDemo | undefined;
}

/** Defaults of the gateway configuration. */
export const DEFAULT_GATEWAY_CONFIG = Object.freeze({
  port: 8080,
  host: '0.0.0.0',
  bodyLimit: 1024 * 1024,
  timeoutMs: 30_000,
  maxHeaderSize: 16 * 1024,
  requestTimeoutMs: 300_000,
  keepAliveTimeoutMs: 5_000,
  drainTimeoutMs: 10_000,
  requestIdHeader: 'x-request-id',
  strategy: 'round-robin' as RouteStrategy,
  retryAttempts: 1,
  retryOn: Object.freeze(['connect-failure', 'reset'] as RetryCondition[]),
  budgetPercent: 20,
  minRetryConcurrency: 3,
  replayBufferBytes: 64 * 1024,
  connections: 128,
  connectTimeoutMs: 5_000,
  demoInstances: 3,
});

/** Methods RFC 9110 (section 9.2.2) calls idempotent: a retry of them is safe. */
export const IDEMPOTENT_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);

let ajv: Ajv | undefined;
const validators = new Map<object, ReturnType<Ajv['compile']>>();

/** Validates `value` against one of the configuration schemas (each compiled once, on first use). */
function validate(schema: object, value: unknown): ErrorObject[] {
  let validator = validators.get(schema);
  if (validator === undefined) {
    ajv ??= new Ajv({ allErrors: true, verbose: true, strict: true, allowUnionTypes: true });
    validator = ajv.compile(schema);
    validators.set(schema, validator);
  }
  return validator(value) ? [] : (validator.errors ?? []);
}

/** A located problem before the source positions are filled in. */
interface RawIssue {
  segments: (string | number)[];
  message: string;
  /** Point at the key of the last segment rather than its value. */
  atKey?: boolean;
}

/** Turns Ajv's errors into issues that name the field, dropping the noise of `anyOf` branches. */
function schemaIssues(errors: readonly ErrorObject[]): RawIssue[] {
  // For each failed anyOf: when exactly one branch has the value's JSON type, its own errors
  // say best what is wrong (an object with a bad field); otherwise the anyOf's description does.
  const dropped = new Set<ErrorObject>();
  for (const a of errors) {
    if (a.keyword !== 'anyOf') continue;
    const branches = a.schema as { type?: string }[];
    const kind = jsonType(a.data);
    const matching = branches.flatMap((b, i) =>
      b.type === kind || (b.type === 'number' && kind === 'integer') ? [i] : [],
    );
    const keep = matching.length === 1 ? `${a.schemaPath}/${matching[0]}/` : undefined;
    for (const e of errors) {
      if (!e.schemaPath.startsWith(`${a.schemaPath}/`) || e.instancePath.length < a.instancePath.length) continue;
      if (keep === undefined || !e.schemaPath.startsWith(keep)) dropped.add(e);
    }
    if (keep !== undefined) dropped.add(a);
  }
  const out: RawIssue[] = [];
  const seen = new Set<string>();
  for (const e of errors) {
    if (dropped.has(e)) continue;
    const segments: (string | number)[] = e.instancePath
      .split('/')
      .slice(1)
      .map((s) => s.replaceAll('~1', '/').replaceAll('~0', '~'))
      .map((s) => (/^\d+$/.test(s) ? Number(s) : s));
    const parent = e.parentSchema as { description?: string } | undefined;
    const got = `, got ${describe(e.data)}`;
    let issue: RawIssue;
    switch (e.keyword) {
      case 'additionalProperties': {
        const extra = (e.params as { additionalProperty: string }).additionalProperty;
        issue = { segments: [...segments, extra], message: 'is not a known field', atKey: true };
        break;
      }
      case 'required': {
        const missing = (e.params as { missingProperty: string }).missingProperty;
        issue = { segments, message: `needs the field '${missing}'` };
        break;
      }
      case 'anyOf':
        issue = { segments, message: `must be ${parent?.description ?? 'one of the allowed forms'}${got}` };
        break;
      case 'enum': {
        const allowed = (e.params as { allowedValues: unknown[] }).allowedValues;
        issue = { segments, message: `must be one of ${allowed.map((a) => `'${String(a)}'`).join(', ')}${got}` };
        break;
      }
      case 'pattern':
        issue = { segments, message: `must be ${parent?.description ?? `a string matching ${e.schema}`}${got}` };
        break;
      case 'propertyNames':
        continue; // reported again, more precisely, as the `pattern` error of the name
      default:
        issue = { segments, message: `${e.message ?? 'is invalid'}${got}` };
    }
    if (e.keyword === 'pattern' && e.propertyName !== undefined) {
      issue = { segments: [...segments, e.propertyName], message: 'is not an allowed name', atKey: true };
    }
    const key = `${joinField(issue.segments)} ${issue.message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(issue);
  }
  return out;
}

function jsonType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value;
}

/** Gives each raw issue its field name and, through `locate`, its line and column. */
export type Locate = (
  segments: readonly (string | number)[],
  atKey: boolean,
) => { line: number; column: number } | undefined;

function finish(raw: RawIssue[], locate: Locate | undefined): ConfigIssue[] {
  return raw.map((r) => {
    const pos = locate?.(r.segments, r.atKey === true);
    return { field: joinField(r.segments), message: r.message, line: pos?.line, column: pos?.column };
  });
}

/** Calls a library resolver and turns its `InvalidOptionError` into an issue at the right field. */
function checkWith(issues: RawIssue[], base: (string | number)[], run: (field: string) => unknown): void {
  const prefix = joinField(base);
  try {
    run(prefix);
  } catch (err) {
    if (!(err instanceof InvalidOptionError)) throw err;
    const rest = err.field.startsWith(prefix) ? err.field.slice(prefix.length) : '';
    const segments = [...base, ...splitField(rest)];
    const message = err.message.startsWith(err.field) ? err.message.slice(err.field.length + 1) : err.message;
    issues.push({ segments, message });
  }
}

/**
 * Validates a configuration value and resolves it: defaults merged, everything checked,
 * frozen. `locate` maps a field to its line in the source (the file loader passes one).
 * @throws {ConfigError} (`ERR_VALIDATION`) listing every problem, each naming its field
 *   (and line, when `locate` knows it).
 */
export function resolveGatewayConfig(value: unknown, locate?: Locate, source?: string): ResolvedGatewayConfig {
  const schemaErrors = validate(GATEWAY_CONFIG_SCHEMA, value ?? {});
  if (schemaErrors.length > 0) throw new ConfigError(finish(schemaIssues(schemaErrors), locate).slice(0, 25), source);
  const input = (value ?? {}) as GatewayConfig;
  const issues: RawIssue[] = [];
  const p = input.proxy ?? {};
  const d = DEFAULT_GATEWAY_CONFIG;
  const proxy: ResolvedProxyOptions = Object.freeze({
    via: p.via === undefined || p.via === false ? undefined : `1.1 ${p.via === true ? 'ringway' : p.via}`,
    xForwardedFor: p.xForwardedFor ?? 'append',
    requestIdHeader: (p.requestIdHeader ?? d.requestIdHeader).toLowerCase(),
    bodyLimit: p.bodyLimit ?? d.bodyLimit,
    timeoutMs: p.timeoutMs ?? d.timeoutMs,
    maxHeaderSize: p.maxHeaderSize ?? d.maxHeaderSize,
    requestTimeoutMs: p.requestTimeoutMs ?? d.requestTimeoutMs,
    keepAliveTimeoutMs: p.keepAliveTimeoutMs ?? d.keepAliveTimeoutMs,
    drainTimeoutMs: p.drainTimeoutMs ?? d.drainTimeoutMs,
  });

  const { routes, services } = resolveRoutesAndServices(input, proxy, issues);

  const demoInput = input.demo;
  const demo: ResolvedDemo | undefined =
    demoInput === undefined
      ? undefined
      : Object.freeze({
          service: demoInput.service,
          instances: demoInput.instances ?? d.demoInstances,
          host: demoInput.host ?? '127.0.0.1',
          basePort: demoInput.basePort ?? 0,
        });
  if (issues.length > 0) throw new ConfigError(finish(issues, locate).slice(0, 25), source);
  return Object.freeze({
    listen: Object.freeze({ port: input.listen?.port ?? d.port, host: input.listen?.host ?? d.host }),
    proxy,
    routes,
    services,
    demo,
  });
}

/**
 * Validates live routes (the value of the gateway's routes key in the config center: the
 * file's `routes` and `services` together) with every check a file gets, and resolves them
 * against `base`, the configuration the gateway started with: route defaults come from its
 * `proxy` settings, and `listen`, `proxy` and `demo` stay as they are. `source` names the
 * value in error messages.
 * @throws {ConfigError} (`ERR_VALIDATION`) listing every problem, each naming its field
 *   (`routes[0].match.prefix`), as in a file.
 */
export function resolveLiveRoutes(value: unknown, base: ResolvedGatewayConfig, source?: string): ResolvedGatewayConfig {
  const schemaErrors = validate(LIVE_ROUTES_SCHEMA, value);
  if (schemaErrors.length > 0)
    throw new ConfigError(finish(schemaIssues(schemaErrors), undefined).slice(0, 25), source);
  const issues: RawIssue[] = [];
  const { routes, services } = resolveRoutesAndServices(value as LiveRoutesConfig, base.proxy, issues);
  if (issues.length > 0) throw new ConfigError(finish(issues, undefined).slice(0, 25), source);
  return Object.freeze({ ...base, routes, services });
}

/** Resolves routes and services (each route's undeclared service gets one with defaults). */
function resolveRoutesAndServices(
  input: { routes?: RouteConfig[]; services?: Record<string, ServiceConfig> },
  proxy: ResolvedProxyOptions,
  issues: RawIssue[],
): { routes: readonly ResolvedRoute[]; services: ReadonlyMap<string, ResolvedService> } {
  const services = new Map<string, ResolvedService>();
  for (const [name, s] of Object.entries(input.services ?? {})) {
    services.set(name, resolveService(name, s, issues));
  }
  const routes: ResolvedRoute[] = [];
  const names = new Map<string, number>();
  (input.routes ?? []).forEach((r, i) => {
    const route = resolveRoute(r, i, proxy, issues);
    const other = names.get(route.name);
    if (other !== undefined) {
      issues.push({ segments: ['routes', i, 'name'], message: `repeats the name of routes[${other}]` });
    }
    names.set(route.name, i);
    routes.push(route);
    if (!services.has(route.service)) services.set(route.service, resolveService(route.service, {}, issues));
  });
  checkStrategyEndpoints(routes, services, input.services ?? {}, issues);
  return { routes: Object.freeze(routes), services };
}

/**
 * Runs what only a strategy limits (ring points per endpoint for `ring-hash`, endpoints per
 * table for `maglev`) on the static instances of each service, for every strategy a route
 * uses it with: the balancer would refuse them when built, after the configuration was taken.
 * (Registry instances are checked as they arrive: those refused are left out.)
 */
function checkStrategyEndpoints(
  routes: readonly ResolvedRoute[],
  services: ReadonlyMap<string, ResolvedService>,
  written: Record<string, ServiceConfig>,
  issues: RawIssue[],
): void {
  const done = new Set<string>();
  for (const route of routes) {
    const service = services.get(route.service);
    if (service?.static === undefined || (route.strategy !== 'ring-hash' && route.strategy !== 'maglev')) continue;
    const key = `${route.service}\u0000${route.strategy}`;
    if (done.has(key)) continue;
    done.add(key);
    const s = written[route.service] ?? {};
    const endpoints = service.static;
    const base = ['services', route.service, 'static'];
    const before = issues.length;
    checkWith(issues, base, (field) => {
      const resolved: readonly Endpoint[] = resolveEndpoints(field, endpoints);
      let ringHash: ResolvedRingHashOptions;
      let maglev: ResolvedMaglevStrategyOptions;
      try {
        ringHash = resolveRingHashOptions(s.ringHash ?? {});
        maglev = resolveMaglevStrategyOptions(s.maglev ?? {});
      } catch {
        return; // already reported at services.<name>.ringHash / .maglev
      }
      checkEndpointsForStrategy(field, resolved, { strategy: route.strategy, ringHash, maglev });
    });
    for (const issue of issues.slice(before)) {
      issue.message += ` (route '${route.name}' uses it with ${route.strategy})`;
    }
  }
}

function resolveHashKey(h: HashKeyConfig): ResolvedHashKey {
  if (h === 'path' || h === 'ip') return Object.freeze({ type: h });
  if ('header' in h) return Object.freeze({ type: 'header', name: h.header.toLowerCase() });
  return Object.freeze({ type: 'cookie', name: h.cookie });
}

function resolveRoute(r: RouteConfig, i: number, proxy: ResolvedProxyOptions, issues: RawIssue[]): ResolvedRoute {
  const d = DEFAULT_GATEWAY_CONFIG;
  const at = (...rest: (string | number)[]): (string | number)[] => ['routes', i, ...rest];
  const strategy = r.strategy ?? d.strategy;
  const hashing = strategy === 'ring-hash' || strategy === 'maglev';
  if (r.hashKey !== undefined && !hashing) {
    issues.push({
      segments: at('hashKey'),
      message: `applies only to the ring-hash and maglev strategies, not '${strategy}'`,
    });
  }
  if (r.stripPrefix === true && r.rewritePrefix !== undefined) {
    issues.push({
      segments: at('rewritePrefix'),
      message: 'cannot be combined with stripPrefix (stripPrefix is rewritePrefix: /)',
    });
  }
  // The prefix is normalized as request paths are (requestPath.ts), so that it matches them.
  const target = checkRequestTarget(r.match.prefix);
  if ('error' in target) issues.push({ segments: at('match', 'prefix'), message: target.error });
  const normal = 'error' in target ? r.match.prefix : target.path;
  const prefix = normal.length > 1 && normal.endsWith('/') ? normal.slice(0, -1) : normal;
  let rewritePrefix = r.stripPrefix === true ? '/' : r.rewritePrefix;
  if (rewritePrefix !== undefined && rewritePrefix.length > 1 && rewritePrefix.endsWith('/')) {
    rewritePrefix = rewritePrefix.slice(0, -1);
  }
  const hosts = r.match.host === undefined ? undefined : Array.isArray(r.match.host) ? r.match.host : [r.match.host];
  const timeoutMs = r.timeoutMs ?? proxy.timeoutMs;
  const rt = r.retries ?? {};
  const on = (rt.on ?? d.retryOn).map((c) => String(c) as RetryCondition);
  const perTryTimeoutMs = rt.perTryTimeoutMs ?? timeoutMs;
  if (perTryTimeoutMs > timeoutMs) {
    issues.push({
      segments: at('retries', 'perTryTimeoutMs'),
      message: `must be at most the route's timeoutMs (${timeoutMs}), got ${perTryTimeoutMs}`,
    });
  }
  const rl = r.rateLimit;
  return Object.freeze({
    index: i,
    name: r.name ?? `${i}:${prefix}`,
    prefix,
    hosts: hosts === undefined ? undefined : Object.freeze(hosts.map((h) => h.toLowerCase())),
    methods: r.match.methods === undefined ? undefined : new Set(r.match.methods),
    headers: Object.freeze(
      Object.entries(r.match.headers ?? {}).map(([k, v]) => Object.freeze([k.toLowerCase(), v] as const)),
    ),
    service: r.service,
    strategy,
    hashKey: hashing ? resolveHashKey(r.hashKey ?? 'ip') : undefined,
    rewritePrefix,
    preserveHost: r.preserveHost ?? false,
    timeoutMs,
    bodyLimit: r.bodyLimit ?? proxy.bodyLimit,
    retries: Object.freeze({
      attempts: rt.attempts ?? d.retryAttempts,
      on: Object.freeze(on.slice()),
      onConnectFailure: on.includes('connect-failure'),
      onReset: on.includes('reset'),
      onStatus: new Set(on.filter((c) => /^\d+$/.test(c)).map(Number)),
      budgetPercent: rt.budgetPercent ?? d.budgetPercent,
      minRetryConcurrency: rt.minRetryConcurrency ?? d.minRetryConcurrency,
      perTryTimeoutMs: Math.min(perTryTimeoutMs, timeoutMs),
      idempotentOnly: rt.idempotentOnly ?? true,
      replayBufferBytes: rt.replayBufferBytes ?? d.replayBufferBytes,
    }),
    rateLimit:
      rl === undefined
        ? undefined
        : Object.freeze({
            rps: rl.rps,
            burst: rl.burst ?? Math.max(1, Math.ceil(rl.rps)),
            header: rl.key === undefined || rl.key === 'ip' ? undefined : rl.key.header.toLowerCase(),
          }),
  });
}

function resolveService(name: string, s: ServiceConfig, issues: RawIssue[]): ResolvedService {
  const d = DEFAULT_GATEWAY_CONFIG;
  const base = ['services', name];
  if (s.healthCheck !== undefined && s.healthCheck !== false) {
    const hc = s.healthCheck;
    checkWith(issues, [...base, 'healthCheck'], (f) => resolveHealthCheckOptions(hc, f));
  }
  if (s.outlierDetection !== undefined && s.outlierDetection !== false) {
    const od = s.outlierDetection;
    checkWith(issues, [...base, 'outlierDetection'], (f) => resolveOutlierDetectionOptions(od, f));
  }
  if (typeof s.circuitBreaker === 'object') {
    const cb = s.circuitBreaker;
    checkWith(issues, [...base, 'circuitBreaker'], (f) => resolveCircuitBreakerOptions(cb, f));
  }
  if (s.ringHash !== undefined) {
    const rh = s.ringHash;
    checkWith(issues, [...base, 'ringHash'], (f) => resolveRingHashOptions(rh, f));
  }
  if (s.maglev !== undefined) {
    const mg = s.maglev;
    checkWith(issues, [...base, 'maglev'], (f) => resolveMaglevStrategyOptions(mg, f));
  }
  if (s.ewma !== undefined) {
    const ew = s.ewma;
    checkWith(issues, [...base, 'ewma'], (f) => resolveEwmaOptions(ew, f));
  }
  let endpoints: EndpointInput[] | undefined;
  if (s.static !== undefined) {
    endpoints = [];
    const ids = new Map<string, number>();
    s.static.forEach((entry, i) => {
      const e = typeof entry === 'string' ? { address: entry } : entry;
      const address = e.address.endsWith('/') ? e.address.slice(0, -1) : e.address;
      // The schema's pattern lets through what is no URL (`http://h:port`): the proxy would
      // fail on it at the first request.
      if (!isUpstreamUrl(address)) {
        issues.push({
          segments: typeof entry === 'string' ? [...base, 'static', i] : [...base, 'static', i, 'address'],
          message: `is not a valid URL of an upstream (http:// or https://), got ${describe(e.address)}`,
        });
      }
      const id = e.id ?? address;
      const other = ids.get(id);
      if (other !== undefined) {
        issues.push({
          segments: [...base, 'static', i],
          message: `repeats the instance of static[${other}] (${describe(id)})`,
        });
      }
      ids.set(id, i);
      const endpoint: EndpointInput = {
        id,
        address,
        weight: e.weight ?? 1,
        ...(e.zone === undefined ? {} : { zone: e.zone }),
      };
      (endpoints as EndpointInput[]).push(Object.freeze(endpoint));
    });
  }
  return Object.freeze({
    name,
    static: endpoints === undefined ? undefined : Object.freeze(endpoints),
    healthCheck: s.healthCheck === false ? undefined : s.healthCheck,
    outlierDetection: s.outlierDetection ?? {},
    circuitBreaker: s.circuitBreaker ?? false,
    panicThreshold: s.panicThreshold ?? 0,
    ringHash: s.ringHash ?? {},
    maglev: s.maglev ?? {},
    ewma: s.ewma ?? {},
    connections: s.connections ?? d.connections,
    connectTimeoutMs: s.connectTimeoutMs ?? d.connectTimeoutMs,
  });
}
