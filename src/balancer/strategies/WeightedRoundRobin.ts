/**
 * `weighted-round-robin`: nginx's smooth weighted round robin (ngx_http_upstream_round_robin.c,
 * 2012): before each pick every endpoint's current weight grows by its weight, the largest
 * current weight wins (the first in order on a tie) and drops by the total weight. Weights
 * a=5, b=1, c=1 give a a b a c a a: the heavy endpoint's turns are spread out, never bunched.
 *
 * nginx scans every endpoint per pick. Here the same sequence comes from a kinetic
 * tournament tree (Basch, Guibas & Hershberger, "Data structures for mobile data", 1999):
 * after t steps endpoint i's current weight is w_i x t + b_i, a line in t whose intercept
 * b_i drops by the total weight at each of its wins. Each node of a tree over the endpoints
 * keeps the winner of its subtree and the first step at which that winner would change; a
 * pick recomputes only the nodes whose time has come plus the path of the endpoint that won,
 * O(log n) amortized instead of O(n), and gives exactly nginx's order (tests check it
 * against a plain transcription of nginx's loop).
 *
 * With integer weights the sequence repeats every W / g picks (W the total weight, g the
 * weights' greatest common divisor), after which every current weight is back at zero. Up
 * to {@link MAX_SCHEDULE} picks, the first period is recorded as it is decided and later
 * periods replay it: O(1) per pick, with no rebuild stall when the rotation changes.
 */
import type { EndpointState } from '../EndpointState.js';
import { type PickContext, type Skip, type Strategy, scanFrom } from './Strategy.js';

/** Steps after which keys are rebased to keep w x t exact in a double (weights <= 1e6). */
const REBASE_STEPS = 2 ** 31;

/** Longest period recorded for replay (4 bytes a pick). */
export const MAX_SCHEDULE = 1 << 18;

export class WeightedRoundRobinStrategy implements Strategy {
  readonly name = 'weighted-round-robin';
  readonly usesLatency = false;
  readonly usesLoad = false;
  private endpoints: readonly EndpointState[] = [];
  /** Leaves of the tree: a power of two >= the number of endpoints. */
  private leaves = 1;
  private slope = new Float64Array(0);
  private intercept = new Float64Array(0);
  /** Winner (endpoint index) of each node; nodes 1 .. leaves-1 inner, leaves .. 2*leaves-1 leaves. */
  private winner = new Int32Array(2);
  /** Step at which a node must be recomputed (-Infinity: now; Infinity: never). */
  private melt = new Float64Array(2);
  private total = 0;
  /** The step being decided, from 1. */
  private step = 1;
  /** The first period, recorded as decided (empty when weights are not integers or the period is too long). */
  private schedule = new Int32Array(0);
  /** Entries of `schedule` decided so far. */
  private recorded = 0;
  /** Position in the period. */
  private position = 0;
  private readonly rebaseAfter: number;

  /** @param rebaseAfter steps between rebases (tests lower it to exercise the rebase). */
  constructor(rebaseAfter: number = REBASE_STEPS) {
    this.rebaseAfter = rebaseAfter;
  }

  setEndpoints(endpoints: readonly EndpointState[]): void {
    this.endpoints = endpoints;
    const n = endpoints.length;
    let leaves = 1;
    while (leaves < n) leaves <<= 1;
    this.leaves = leaves;
    this.slope = new Float64Array(n);
    this.intercept = new Float64Array(n);
    this.winner = new Int32Array(2 * leaves).fill(-1);
    this.melt = new Float64Array(2 * leaves).fill(Number.NEGATIVE_INFINITY);
    this.total = 0;
    for (let i = 0; i < n; i++) {
      const w = (endpoints[i] as EndpointState).weight;
      this.slope[i] = w;
      this.total += w;
      this.winner[leaves + i] = i;
    }
    for (let i = leaves; i < 2 * leaves; i++) this.melt[i] = Number.POSITIVE_INFINITY;
    // As nginx after a reconfiguration: every current weight starts at 0.
    this.step = 1;
    const period = periodOf(endpoints);
    this.schedule = new Int32Array(period <= MAX_SCHEDULE ? period : 0);
    this.recorded = 0;
    this.position = 0;
  }

  pick(_ctx: PickContext | undefined, skip: Skip | undefined): EndpointState | undefined {
    const list = this.endpoints;
    const n = list.length;
    if (n === 0) return undefined;
    // A skipped endpoint forfeits its turn (it is charged as if picked), as the schedule
    // would otherwise pile its missed turns up for later.
    for (let tries = 0; tries < n; tries++) {
      const s = list[this.next()] as EndpointState;
      if (skip === undefined || !skip(s)) return s;
    }
    return scanFrom(list, 0, skip);
  }

  loadChanged(): void {}
  observe(): void {}

  /** The next endpoint's index: replayed from the recorded period, or decided now. */
  private next(): number {
    const schedule = this.schedule;
    const period = schedule.length;
    if (period === 0) return this.decide();
    const at = this.position;
    this.position = at + 1 === period ? 0 : at + 1;
    if (at < this.recorded) return schedule[at] as number;
    const i = this.decide();
    schedule[at] = i;
    this.recorded = at + 1;
    return i;
  }

  /** Decides the current step and moves to the next; returns the winner's index. */
  private decide(): number {
    if (this.step >= this.rebaseAfter) this.rebase();
    const t = this.step;
    this.refresh(1, t);
    const i = this.winner[1] as number;
    this.intercept[i] = (this.intercept[i] as number) - this.total;
    this.step = t + 1;
    // The winner's line moved: every node on its path must be recomputed.
    for (let node = (this.leaves + i) >> 1; node >= 1; node >>= 1) this.melt[node] = Number.NEGATIVE_INFINITY;
    return i;
  }

  /** Brings the subtree at `node` up to date for step t. */
  private refresh(node: number, t: number): void {
    if ((this.melt[node] as number) > t) return;
    if (node >= this.leaves) return;
    this.refresh(2 * node, t);
    this.refresh(2 * node + 1, t);
    this.recompute(node, t);
  }

  /** Winner of `node` at step t from its children's winners, and when that stops holding. */
  private recompute(node: number, t: number): void {
    const l = this.winner[2 * node] as number;
    const r = this.winner[2 * node + 1] as number;
    let win: number;
    let until = Number.POSITIVE_INFINITY;
    if (l < 0) {
      win = r;
    } else if (r < 0) {
      win = l;
    } else if (this.key(l, t) >= this.key(r, t)) {
      // The left subtree holds the earlier endpoints: it wins ties, as nginx's first max does.
      win = l;
      until = this.overtakes(r, l, t, false);
    } else {
      win = r;
      until = this.overtakes(l, r, t, true);
    }
    this.winner[node] = win;
    const m = Math.min(until, this.melt[2 * node] as number, this.melt[2 * node + 1] as number);
    this.melt[node] = m;
  }

  private key(i: number, t: number): number {
    return (this.slope[i] as number) * t + (this.intercept[i] as number);
  }

  /** Whether `c` beats `h` at step t (`orEqual`: a tie is enough, for a challenger on the left). */
  private beats(c: number, h: number, t: number, orEqual: boolean): boolean {
    const kc = this.key(c, t);
    const kh = this.key(h, t);
    return orEqual ? kc >= kh : kc > kh;
  }

  /**
   * First step after t at which challenger `c` beats holder `h`, or Infinity when that is
   * never, or not before the next rebase: a rebase recomputes every inner node anyway, so a
   * later overtake never matters. The bound also keeps every step searched exact: with
   * slopes a rounding error apart, the overtake lands past 2^53, where `at + 1 === at`.
   */
  private overtakes(c: number, h: number, t: number, orEqual: boolean): number {
    const ds = (this.slope[c] as number) - (this.slope[h] as number);
    if (ds <= 0) return Number.POSITIVE_INFINITY;
    const gap = (this.intercept[h] as number) - (this.intercept[c] as number);
    // c wins once ds x T exceeds (or, for a left challenger, reaches) the gap.
    let at = orEqual ? Math.ceil(gap / ds) : Math.floor(gap / ds) + 1;
    if (!(at > t)) return this.settle(c, h, t + 1, orEqual);
    const last = this.rebaseAfter;
    if (at > last) return Number.POSITIVE_INFINITY;
    // Correct a quotient rounded the wrong way (only possible with fractional weights).
    while (at > t + 1 && this.beats(c, h, at - 1, orEqual)) at--;
    while (!this.beats(c, h, at, orEqual)) {
      if (++at > last) return Number.POSITIVE_INFINITY;
    }
    return at;
  }

  /** First step from `t` at which `c` beats `h` (t when it already does), or Infinity if not before the next rebase. */
  private settle(c: number, h: number, t: number, orEqual: boolean): number {
    let at = t;
    const last = this.rebaseAfter;
    while (!this.beats(c, h, at, orEqual)) {
      if (++at > last) return Number.POSITIVE_INFINITY;
    }
    return at;
  }

  /** Shifts time back to step 1 without changing any current weight. */
  private rebase(): void {
    const shift = this.step - 1;
    for (let i = 0; i < this.slope.length; i++) {
      this.intercept[i] = (this.intercept[i] as number) + (this.slope[i] as number) * shift;
    }
    this.step = 1;
    this.melt.fill(Number.NEGATIVE_INFINITY, 1, this.leaves);
  }
}

/** Picks in one period of the sequence for integer weights (W / gcd), or Infinity. */
function periodOf(endpoints: readonly EndpointState[]): number {
  let g = 0;
  let total = 0;
  for (const s of endpoints) {
    const w = s.weight;
    if (!Number.isInteger(w)) return Number.POSITIVE_INFINITY;
    g = gcd(g, w);
    total += w;
  }
  return g === 0 ? 0 : total / g;
}

function gcd(a: number, b: number): number {
  while (b !== 0) {
    const t = a % b;
    a = b;
    b = t;
  }
  return a;
}
