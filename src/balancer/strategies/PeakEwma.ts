/**
 * `ewma`: peak-EWMA latency with two random choices, as Finagle's `PeakEwma` balancer and
 * linkerd (tower's `PeakEwma`) do it:
 *
 * - each endpoint keeps a latency estimate that jumps straight to any sample above it (so a
 *   slow endpoint is penalised at once) and otherwise decays towards the samples with
 *   weight exp(-dt / decayMs), dt being the time since the last update (an unevenly spaced
 *   series: Eckner, "Algorithms for unevenly spaced time series", 2012);
 * - reading the estimate decays it towards zero, so an endpoint that was slow but has had no
 *   traffic since is tried again, cautiously;
 * - the cost of an endpoint is estimate x (inFlight + 1) / weight; two distinct random
 *   endpoints are drawn and the cheaper one wins. An endpoint with no estimate yet and a
 *   request in flight costs a large penalty, so a newcomer gets one probe at a time until
 *   its first response.
 */
import { checkInt, checkNumber, checkObject } from '../../validate.js';
import type { EndpointState } from '../EndpointState.js';
import { MAX_DURATION_MS } from '../limits.js';
import { pickPair } from './PowerOfTwoChoices.js';
import type { PickContext, Skip, Strategy } from './Strategy.js';

/** Cost of an endpoint with requests in flight and no estimate (Finagle: Long.MaxValue >> 16 ns). */
const PENALTY = 1e12;

/** Options of the ewma strategy. */
export interface EwmaOptions {
  /** Time constant of the decay, in ms: the estimate halves in decayMs x ln 2. @default 10_000 */
  decayMs?: number;
  /**
   * Estimate of an endpoint before its first response, in ms. 0 (Finagle's way) lets a
   * newcomer take one request at a time until it answers; linkerd starts at 30.
   * @default 0
   */
  initialLatencyMs?: number;
}

/** Resolved, frozen ewma options. */
export interface ResolvedEwmaOptions {
  readonly decayMs: number;
  readonly initialLatencyMs: number;
}

/** Defaults of {@link EwmaOptions}: Finagle's 10 s decay. */
export const DEFAULT_EWMA_OPTIONS: ResolvedEwmaOptions = Object.freeze({ decayMs: 10_000, initialLatencyMs: 0 });

/**
 * Merges defaults into `partial`, checks every field and freezes the result.
 * @throws {InvalidOptionError} naming the field (prefixed with `field`) and the value.
 */
export function resolveEwmaOptions(partial: EwmaOptions = {}, field = 'ewma'): ResolvedEwmaOptions {
  const o = checkObject(field, partial) as EwmaOptions;
  const d = DEFAULT_EWMA_OPTIONS;
  return Object.freeze({
    decayMs: checkInt(`${field}.decayMs`, o.decayMs ?? d.decayMs, 1, MAX_DURATION_MS),
    initialLatencyMs: checkNumber(
      `${field}.initialLatencyMs`,
      o.initialLatencyMs ?? d.initialLatencyMs,
      0,
      MAX_DURATION_MS,
    ),
  });
}

export class PeakEwmaStrategy implements Strategy {
  readonly name = 'ewma';
  readonly usesLatency = true;
  readonly usesLoad = false;
  private endpoints: readonly EndpointState[] = [];
  private readonly random: () => number;
  private readonly now: () => number;
  private readonly options: ResolvedEwmaOptions;

  constructor(options: ResolvedEwmaOptions, random: () => number, now: () => number) {
    this.options = options;
    this.random = random;
    this.now = now;
  }

  setEndpoints(endpoints: readonly EndpointState[]): void {
    this.endpoints = endpoints;
    let now: number | undefined;
    for (const s of endpoints) {
      if (Number.isNaN(s.costStamp)) {
        now ??= this.now();
        s.cost = this.options.initialLatencyMs;
        s.costStamp = now;
      }
    }
  }

  pick(_ctx: PickContext | undefined, skip: Skip | undefined, now: number): EndpointState | undefined {
    const pair = pickPair(this.endpoints, this.random, skip);
    if (pair === undefined || pair.b === undefined) return pair?.a;
    const { a, b } = pair;
    if (Number.isNaN(now)) now = this.now();
    return this.load(b, now) < this.load(a, now) ? b : a;
  }

  loadChanged(): void {}

  observe(state: EndpointState, latencyMs: number, now: number): void {
    const w = this.weightAt(state, now);
    state.cost = latencyMs > state.cost ? latencyMs : state.cost * w + latencyMs * (1 - w);
    state.costStamp = now;
  }

  /** The decayed estimate x (inFlight + 1) / weight; decays the stored estimate (Finagle's observe(0)). */
  private load(state: EndpointState, now: number): number {
    state.cost *= this.weightAt(state, now);
    state.costStamp = now;
    if (state.cost === 0 && state.inFlight > 0) return PENALTY + state.inFlight;
    return (state.cost * (state.inFlight + 1)) / state.weight;
  }

  private weightAt(state: EndpointState, now: number): number {
    const dt = now - state.costStamp;
    // A fresh estimate (or a stamp of another clock) has no age.
    return dt > 0 ? Math.exp(-dt / this.options.decayMs) : 1;
  }
}
