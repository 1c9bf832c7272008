/**
 * `random`: a uniformly random endpoint, weights ignored. No shared state between picks, so
 * many independent balancers (one per process) spread load without coordinating.
 */
import type { EndpointState } from '../EndpointState.js';
import { type PickContext, randomIndex, type Skip, type Strategy, scanFrom } from './Strategy.js';

/** Random tries before a constrained pick falls back to a scan. */
const TRIES = 3;

export class RandomStrategy implements Strategy {
  readonly name = 'random';
  readonly usesLatency = false;
  readonly usesLoad = false;
  private endpoints: readonly EndpointState[] = [];
  private readonly random: () => number;

  constructor(random: () => number) {
    this.random = random;
  }

  setEndpoints(endpoints: readonly EndpointState[]): void {
    this.endpoints = endpoints;
  }

  pick(_ctx: PickContext | undefined, skip: Skip | undefined): EndpointState | undefined {
    return pickRandom(this.endpoints, this.random, skip);
  }

  loadChanged(): void {}
  observe(): void {}
}

/** A uniformly random endpoint that `skip` accepts (shared with the hash strategies' keyless picks). */
export function pickRandom(
  endpoints: readonly EndpointState[],
  random: () => number,
  skip: Skip | undefined,
): EndpointState | undefined {
  const n = endpoints.length;
  if (n === 0) return undefined;
  if (skip === undefined) return endpoints[randomIndex(random, n)];
  for (let t = 0; t < TRIES; t++) {
    const s = endpoints[randomIndex(random, n)] as EndpointState;
    if (!skip(s)) return s;
  }
  return scanFrom(endpoints, randomIndex(random, n), skip);
}
