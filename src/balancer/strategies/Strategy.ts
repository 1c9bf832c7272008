/**
 * The seam between the balancer and its strategies. The balancer decides which endpoints
 * may take traffic (health, ejection, breakers, panic) and hands that set to the strategy
 * with {@link Strategy.setEndpoints} whenever it changes; the strategy picks from it.
 */
import type { Key } from '../../wasm/index.js';
import type { EndpointState } from '../EndpointState.js';

/** Every strategy `createBalancer` knows. */
export const BALANCER_STRATEGIES = [
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

/** A strategy's name. */
export type StrategyName = (typeof BALANCER_STRATEGIES)[number];

/** What a pick may look at. */
export interface PickContext {
  /** The hash key of `ring-hash` and `maglev` (a string, or bytes that map as their UTF-8 string). */
  readonly key?: Key | undefined;
}

/**
 * Says whether an endpoint must be passed over for this pick (a half-open breaker whose
 * trial places are taken, or an endpoint the caller asked to avoid).
 */
export type Skip = (state: EndpointState) => boolean;

/** A load-balancing strategy over the endpoints in rotation. */
export interface Strategy {
  readonly name: StrategyName;
  /** The endpoints in rotation changed (membership, health, weight): rebuild what depends on them. */
  setEndpoints(endpoints: readonly EndpointState[]): void;
  /**
   * Picks an endpoint, or undefined when there is none. With `skip`, never returns an
   * endpoint it rejects (undefined when it rejects all). Called only when the pick is taken.
   * `now` is the balancer's clock when the strategy `usesLatency`, else NaN.
   */
  pick(ctx: PickContext | undefined, skip: Skip | undefined, now: number): EndpointState | undefined;
  /** An endpoint's in-flight count changed (it may be out of rotation). */
  loadChanged(state: EndpointState): void;
  /** A result came back with its latency (strategies that use latency set `usesLatency`). */
  observe(state: EndpointState, latencyMs: number, now: number): void;
  /** Whether the balancer should measure and report latencies. */
  readonly usesLatency: boolean;
  /** Whether the balancer should report in-flight changes. */
  readonly usesLoad: boolean;
}

/**
 * The first endpoint at or after `start` (cyclically) that `skip` accepts: the fallback of
 * every strategy when its own choice is skipped. O(n); only constrained picks get here.
 */
export function scanFrom(
  endpoints: readonly EndpointState[],
  start: number,
  skip: Skip | undefined,
): EndpointState | undefined {
  const n = endpoints.length;
  for (let k = 0; k < n; k++) {
    let i = start + k;
    if (i >= n) i -= n;
    const s = endpoints[i] as EndpointState;
    if (skip === undefined || !skip(s)) return s;
  }
  return undefined;
}

/** A uniformly random index in [0, n). */
export function randomIndex(random: () => number, n: number): number {
  // Math.min guards a random() that returns 1 (out of contract, but cheap to survive).
  return Math.min(n - 1, Math.floor(random() * n));
}

/**
 * Checks a hash key before it reaches the WASM wrapper: a string, or bytes.
 * @throws {TypeError} naming what came instead.
 */
export function checkKey(key: unknown): void {
  if (typeof key !== 'string' && !(key instanceof Uint8Array)) {
    throw new TypeError(`ctx.key must be a string, Buffer or Uint8Array, got ${key === null ? 'null' : typeof key}`);
  }
}
