/**
 * `p2c`: the power of two random choices (M. Mitzenmacher, "The Power of Two Choices in
 * Randomized Load Balancing", IEEE TPDS 12(10), 2001; Envoy's least_request with
 * choice_count 2): two distinct endpoints at random, and the one with fewer requests in
 * flight wins. The maximum load drops from O(log n / log log n) to O(log log n) at O(1)
 * cost, with no shared ordering between balancers.
 *
 * Weights: the comparison is (inFlight + 1) / weight, the load each would have with this
 * request, so with equal weights it is plain fewer-in-flight and a heavier endpoint takes
 * proportionally more.
 */
import type { EndpointState } from '../EndpointState.js';
import { type PickContext, randomIndex, type Skip, type Strategy, scanFrom } from './Strategy.js';

export class PowerOfTwoChoicesStrategy implements Strategy {
  readonly name = 'p2c';
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
    const pair = pickPair(this.endpoints, this.random, skip);
    if (pair === undefined || pair.b === undefined) return pair?.a;
    const { a, b } = pair;
    // Fewer in flight per unit of weight, counting the request about to be sent; ties go
    // to the first draw, which is itself random.
    return (b.inFlight + 1) * a.weight < (a.inFlight + 1) * b.weight ? b : a;
  }

  loadChanged(): void {}
  observe(): void {}
}

/** Two distinct random endpoints that `skip` accepts (or one when only one is accepted). */
export interface Pair {
  a: EndpointState;
  b: EndpointState | undefined;
}

const pairScratch: Pair = { a: undefined as unknown as EndpointState, b: undefined };

/**
 * Draws two distinct endpoints uniformly (the second from the n - 1 others). The result is a
 * shared scratch object: read it before the next call.
 */
export function pickPair(
  endpoints: readonly EndpointState[],
  random: () => number,
  skip: Skip | undefined,
): Pair | undefined {
  const n = endpoints.length;
  if (n === 0) return undefined;
  const out = pairScratch;
  if (n === 1) {
    const only = endpoints[0] as EndpointState;
    if (skip?.(only)) return undefined;
    out.a = only;
    out.b = undefined;
    return out;
  }
  const i = randomIndex(random, n);
  let j = randomIndex(random, n - 1);
  if (j >= i) j++;
  let a = endpoints[i] as EndpointState;
  let b: EndpointState | undefined = endpoints[j] as EndpointState;
  if (skip !== undefined) {
    const skipA = skip(a);
    const skipB = skip(b);
    if (skipA && skipB) {
      // Both taken: the first acceptable one after a random point, alone.
      const s = scanFrom(endpoints, i, skip);
      if (s === undefined) return undefined;
      a = s;
      b = undefined;
    } else if (skipA) {
      a = b;
      b = undefined;
    } else if (skipB) {
      b = undefined;
    }
  }
  out.a = a;
  out.b = b;
  return out;
}
