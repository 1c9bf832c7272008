/**
 * The gateway as a library (`ringway/gateway`): create and run a
 * gateway from code, validate configurations, and the schemas and error catalogue the
 * control plane builds on. This file only re-exports.
 */
export {
  type AdminOptions,
  AdminServer,
  DEFAULT_ADMIN_HOST,
  DEFAULT_ADMIN_PORT,
  INDEX_HEADER,
} from './admin/AdminServer.js';
export { INSTANCES_QUERY, REGISTRATION_BODY } from './admin/schemas.js';
export { COMMANDS, type CommandSpec, FLAGS, type FlagSpec, helpText, main } from './cli.js';
export { ConfigError, type ConfigIssue, formatIssue } from './config/ConfigError.js';
export {
  DEFAULT_GATEWAY_CONFIG,
  type GatewayConfig,
  type HashKeyConfig,
  IDEMPOTENT_METHODS,
  type LiveRoutesConfig,
  type RateLimitConfig,
  type ResolvedGatewayConfig,
  type ResolvedRoute,
  type ResolvedService,
  type RetryConfig,
  type RouteConfig,
  resolveGatewayConfig,
  resolveLiveRoutes,
  type ServiceConfig,
} from './config/GatewayConfig.js';
export {
  DEFAULT_ROUTES_KEY,
  LiveRoutes,
  type LiveRoutesOptions,
  type RejectedRoutes,
  type RoutesOrigin,
} from './config/LiveRoutes.js';
export { loadGatewayConfig, parseGatewayConfig } from './config/loadConfig.js';
export {
  GATEWAY_CONFIG_SCHEMA,
  LIVE_ROUTES_SCHEMA,
  RETRY_CONDITIONS,
  type RetryCondition,
  ROUTE_SCHEMA,
  ROUTE_STRATEGIES,
  SERVICE_SCHEMA,
} from './config/schema.js';
export { GATEWAY_ERRORS, type GatewayErrorBody, type GatewayErrorCode } from './errors.js';
export { createGateway, Gateway, type GatewayOptions, type RoutesView } from './gateway.js';
export { GatewayMetrics, LATENCY_BUCKETS } from './metrics/GatewayMetrics.js';
export type { InstanceSource, SourceInstance, SourceWatch } from './upstreams/Upstreams.js';
