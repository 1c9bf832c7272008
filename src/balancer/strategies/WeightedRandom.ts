/**
 * `weighted-random`: a random endpoint with probability weight / total weight, in O(1) per
 * pick with Walker's alias method as Vose builds it (M. D. Vose, "A linear algorithm for
 * generating random numbers with a given distribution", IEEE TSE 17(9), 1991): one random
 * number picks a column and, with its fractional part, one of the column's two entries.
 */
import type { EndpointState } from '../EndpointState.js';
import { type PickContext, type Skip, type Strategy, scanFrom } from './Strategy.js';

/** Alias tries before a constrained pick falls back to a weighted scan. */
const TRIES = 3;

export class WeightedRandomStrategy implements Strategy {
  readonly name = 'weighted-random';
  readonly usesLatency = false;
  readonly usesLoad = false;
  private endpoints: readonly EndpointState[] = [];
  /** prob[i]: chance that column i yields endpoint i (else alias[i]). */
  private prob = new Float64Array(0);
  private alias = new Int32Array(0);
  private readonly random: () => number;

  constructor(random: () => number) {
    this.random = random;
  }

  setEndpoints(endpoints: readonly EndpointState[]): void {
    this.endpoints = endpoints;
    const n = endpoints.length;
    this.prob = new Float64Array(n);
    this.alias = new Int32Array(n);
    if (n === 0) return;
    let total = 0;
    for (const s of endpoints) total += s.weight;
    // Scaled so that the average column holds exactly 1.
    const scaled = new Float64Array(n);
    const small: number[] = [];
    const large: number[] = [];
    for (let i = 0; i < n; i++) {
      scaled[i] = ((endpoints[i] as EndpointState).weight * n) / total;
      ((scaled[i] as number) < 1 ? small : large).push(i);
    }
    while (small.length > 0 && large.length > 0) {
      const s = small.pop() as number;
      const l = large.pop() as number;
      this.prob[s] = scaled[s] as number;
      this.alias[s] = l;
      scaled[l] = (scaled[l] as number) + (scaled[s] as number) - 1;
      ((scaled[l] as number) < 1 ? small : large).push(l);
    }
    // What is left is 1 up to rounding.
    for (const i of large) {
      this.prob[i] = 1;
      this.alias[i] = i;
    }
    for (const i of small) {
      this.prob[i] = 1;
      this.alias[i] = i;
    }
  }

  pick(_ctx: PickContext | undefined, skip: Skip | undefined): EndpointState | undefined {
    const list = this.endpoints;
    const n = list.length;
    if (n === 0) return undefined;
    for (let t = 0; t < TRIES; t++) {
      const u = this.random() * n;
      const column = Math.min(n - 1, Math.floor(u));
      const s = list[
        u - column < (this.prob[column] as number) ? column : (this.alias[column] as number)
      ] as EndpointState;
      if (skip === undefined || !skip(s)) return s;
    }
    return this.weightedScan(skip as Skip);
  }

  /** A weighted draw among the endpoints `skip` accepts, in O(n). */
  private weightedScan(skip: Skip): EndpointState | undefined {
    const list = this.endpoints;
    let total = 0;
    for (const s of list) if (!skip(s)) total += s.weight;
    if (total === 0) return undefined;
    let r = this.random() * total;
    for (const s of list) {
      if (skip(s)) continue;
      r -= s.weight;
      if (r < 0) return s;
    }
    return scanFrom(list, 0, skip);
  }

  loadChanged(): void {}
  observe(): void {}
}
