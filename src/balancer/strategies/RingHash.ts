/**
 * `ring-hash`: consistent hashing on a {@link HashRing} (Karger et al., 1997; Envoy's
 * `RING_HASH`) over the endpoints in rotation, keyed by `ctx.key`. A key keeps its endpoint
 * while that endpoint stays; when one leaves (or is ejected) only its keys move, each to
 * the next endpoint clockwise. Weights scale each endpoint's points on the ring.
 *
 * With `boundedLoad: c` (> 1) the pick follows Mirrokni, Thorup and Zadimoghaddam,
 * "Consistent Hashing with Bounded Loads" (SODA 2018), with the in-flight requests as the
 * load: the first endpoint clockwise whose load, with this request, stays within
 * ceil(c x average). The common case (the key's own endpoint is under the bound) costs one
 * ring lookup; only an overloaded owner leads to the ring's walk ({@link HashRing.getBounded}).
 *
 * Without a key the pick is uniformly random (as Envoy's ring hash without a hash policy).
 */
import { InvalidOptionError } from '../../errors.js';
import { HashRing, MAX_POINTS_PER_NODE, RING_HASHES, type RingHash } from '../../ring/HashRing.js';
import { checkInt, checkNumber, checkObject, checkOneOf } from '../../validate.js';
import type { Key } from '../../wasm/index.js';
import type { Endpoint } from '../Endpoint.js';
import type { EndpointState } from '../EndpointState.js';
import { pickRandom } from './Random.js';
import type { PickContext, Skip, Strategy } from './Strategy.js';
import { checkKey, scanFrom } from './Strategy.js';

/** Distinct endpoints a bounded pick tries clockwise before the ring's full walk. */
const BOUNDED_PROBES = 8;

/** Options of the ring-hash strategy. */
export interface RingHashOptions {
  /** Ring points per unit of weight. @default 160 */
  vnodes?: number;
  /** Hash of keys and points (see {@link HashRing}). @default 'xxh64' */
  hash?: RingHash;
  /**
   * Bounded-load factor c > 1 (1.25: no endpoint above 1.25 x the average in-flight), or
   * undefined for plain consistent hashing.
   * @default undefined
   */
  boundedLoad?: number | undefined;
}

/** Resolved, frozen ring-hash options. */
export interface ResolvedRingHashOptions {
  readonly vnodes: number;
  readonly hash: RingHash;
  readonly boundedLoad: number | undefined;
}

/** Defaults of {@link RingHashOptions}. */
export const DEFAULT_RING_HASH_OPTIONS: ResolvedRingHashOptions = Object.freeze({
  vnodes: 160,
  hash: 'xxh64',
  boundedLoad: undefined,
});

/**
 * Merges defaults into `partial`, checks every field and freezes the result.
 * @throws {InvalidOptionError} naming the field (prefixed with `field`) and the value.
 */
export function resolveRingHashOptions(partial: RingHashOptions = {}, field = 'ringHash'): ResolvedRingHashOptions {
  const o = checkObject(field, partial) as RingHashOptions;
  const d = DEFAULT_RING_HASH_OPTIONS;
  const vnodes = checkInt(`${field}.vnodes`, o.vnodes ?? d.vnodes, 1, MAX_POINTS_PER_NODE);
  const hash = checkOneOf(`${field}.hash`, o.hash ?? d.hash, RING_HASHES);
  if (hash === 'ketama' && vnodes % 4 !== 0) {
    throw new InvalidOptionError(`${field}.vnodes`, vnodes, "must be a multiple of 4 with hash 'ketama'");
  }
  return Object.freeze({
    vnodes,
    hash,
    boundedLoad:
      o.boundedLoad === undefined ? undefined : checkNumber(`${field}.boundedLoad`, o.boundedLoad, 1, 1_000_000, true),
  });
}

/**
 * Checks that every endpoint fits on the ring: round(vnodes x weight) points at most.
 * @throws {InvalidOptionError} naming e.g. `endpoints[3].weight`.
 */
export function checkRingEndpoints(
  field: string,
  endpoints: readonly Endpoint[],
  options: ResolvedRingHashOptions,
): void {
  if (options.hash === 'ketama') return;
  endpoints.forEach((e, i) => {
    if (Math.round(options.vnodes * e.weight) > MAX_POINTS_PER_NODE) {
      throw new InvalidOptionError(
        `${field}[${i}].weight`,
        e.weight,
        `gives more than ${MAX_POINTS_PER_NODE} ring points at ringHash.vnodes=${options.vnodes}`,
      );
    }
  });
}

export class RingHashStrategy implements Strategy {
  readonly name = 'ring-hash';
  readonly usesLatency = false;
  readonly usesLoad: boolean;
  private readonly options: ResolvedRingHashOptions;
  private ring: HashRing;
  private endpoints: readonly EndpointState[] = [];
  private byId = new Map<string, EndpointState>();
  /** In-flight requests of the endpoints on the ring: getBounded's total. */
  private totalLoad = 0;
  private readonly random: () => number;

  constructor(options: ResolvedRingHashOptions, random: () => number) {
    this.options = options;
    this.random = random;
    this.usesLoad = options.boundedLoad !== undefined;
    this.ring = new HashRing({ vnodes: options.vnodes, hash: options.hash });
  }

  setEndpoints(endpoints: readonly EndpointState[]): void {
    const next = new Map<string, EndpointState>();
    for (const s of endpoints) next.set(s.id, s);
    const ring = this.ring;
    const stale = ring.nodes.filter((id) => next.get(id)?.weight !== ring.weightOf(id));
    const fresh = endpoints.length - (ring.size - stale.length);
    if (stale.length + fresh > endpoints.length / 2 || ring.size === 0) {
      // Many changes (or the first build): one bulk build beats node-by-node merges.
      this.ring = new HashRing({
        vnodes: this.options.vnodes,
        hash: this.options.hash,
        nodes: endpoints.map((s) => ({ id: s.id, weight: s.weight })),
      });
    } else {
      for (const id of stale) ring.remove(id);
      for (const s of endpoints) if (!ring.has(s.id)) ring.add(s.id, { weight: s.weight });
    }
    this.endpoints = endpoints;
    this.byId = next;
    this.totalLoad = 0;
    for (const s of endpoints) {
      s.ringLoad = s.inFlight;
      this.totalLoad += s.inFlight;
    }
  }

  pick(ctx: PickContext | undefined, skip: Skip | undefined): EndpointState | undefined {
    const key = ctx?.key;
    if (key === undefined) return pickRandom(this.endpoints, this.random, skip);
    checkKey(key);
    const ring = this.ring;
    const id = ring.get(key);
    if (id === undefined) return undefined;
    let s = this.byId.get(id) as EndpointState;
    const c = this.options.boundedLoad;
    if (c !== undefined) {
      // The bound and the clockwise order are getBounded's, with the same arithmetic: the
      // owner when it is under the bound, else the first of the next few distinct endpoints
      // that is; only if none of those is, getBounded itself (which reads every load).
      const bound = Math.ceil((c * (this.totalLoad + 1)) / ring.size);
      if (s.inFlight + 1 > bound) s = this.nextUnder(key, bound) ?? this.walk(key, c);
    }
    if (skip === undefined || !skip(s)) return s;
    // The owner is taken: the next acceptable endpoint clockwise, as a replica list would.
    for (const other of ring.getN(key, ring.size)) {
      const candidate = this.byId.get(other) as EndpointState;
      if (!skip(candidate)) return candidate;
    }
    // None on the ring: with hash 'ketama' an endpoint whose share is under 1 / (40 x n)
    // has no point there, yet it is in rotation and may take the request.
    return scanFrom(this.endpoints, 0, skip);
  }

  /** The first of the key's next {@link BOUNDED_PROBES} endpoints clockwise under the bound. */
  private nextUnder(key: Key, bound: number): EndpointState | undefined {
    for (const id of this.ring.getN(key, BOUNDED_PROBES)) {
      const s = this.byId.get(id) as EndpointState;
      if (s.inFlight + 1 <= bound) return s;
    }
    return undefined;
  }

  /** The ring's own bounded walk over every load: the rare case of a crowded neighbourhood. */
  private walk(key: Key, c: number): EndpointState {
    const loads = new Map<string, number>();
    for (const s of this.endpoints) loads.set(s.id, s.inFlight);
    return this.byId.get(this.ring.getBounded(key, loads, c) as string) as EndpointState;
  }

  loadChanged(state: EndpointState): void {
    if (this.byId.get(state.id) !== state) return;
    this.totalLoad += state.inFlight - state.ringLoad;
    state.ringLoad = state.inFlight;
  }

  observe(): void {}
}
