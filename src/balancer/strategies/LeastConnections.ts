/**
 * `least-connections`: the endpoint with the fewest requests in flight per unit of weight
 * (nginx's `least_conn`, HAProxy's `leastconn`). Among equals, weighted turns: each
 * endpoint carries a virtual deadline that moves 1 / weight further on each pick (the
 * earliest-deadline-first order Envoy's weighted schedulers use), so idle endpoints share
 * requests in proportion to their weights and no endpoint is favoured by its position.
 *
 * An indexed binary min-heap keyed by (inFlight / weight, deadline) holds the endpoints in
 * rotation: a pick reads the root, and each change of an in-flight count moves one endpoint
 * up or down: O(log n), not a scan of every endpoint.
 */
import type { EndpointState } from '../EndpointState.js';
import type { PickContext, Skip, Strategy } from './Strategy.js';

export class LeastConnectionsStrategy implements Strategy {
  readonly name = 'least-connections';
  readonly usesLatency = false;
  readonly usesLoad = true;
  private heap: EndpointState[] = [];
  /** Virtual time: the start of the last pick's deadline interval. */
  private vtime = 0;
  private picks = 0;

  setEndpoints(endpoints: readonly EndpointState[]): void {
    for (const s of this.heap) s.heapIndex = -1;
    this.heap = endpoints.slice();
    const heap = this.heap;
    for (let i = 0; i < heap.length; i++) {
      const s = heap[i] as EndpointState;
      s.heapIndex = i;
      // A newcomer (or a returning endpoint) starts at the current virtual time, with no
      // credit for the time it was away.
      if (s.lastPicked < this.vtime) s.lastPicked = this.vtime;
      // A deadline is at most one turn (1 / weight) ahead: picks keep it so, and a weight
      // that went up must not leave a deadline set by the old, longer turn (the endpoint
      // would wait that out before getting its new share).
      const latest = this.vtime + 1 / s.weight;
      if (s.lastPicked > latest) s.lastPicked = latest;
    }
    for (let i = (heap.length >> 1) - 1; i >= 0; i--) this.down(i);
  }

  pick(_ctx: PickContext | undefined, skip: Skip | undefined): EndpointState | undefined {
    const heap = this.heap;
    if (heap.length === 0) return undefined;
    let best = heap[0] as EndpointState;
    if (skip?.(best)) {
      // Constrained pick: the least loaded acceptable endpoint, by a scan.
      let found: EndpointState | undefined;
      for (const s of heap) if (!skip(s) && (found === undefined || less(s, found))) found = s;
      if (found === undefined) return undefined;
      best = found;
    }
    const start = Math.max(best.lastPicked, this.vtime);
    this.vtime = start;
    best.lastPicked = start + 1 / best.weight;
    best.pickOrder = ++this.picks;
    // The balancer raises best.inFlight next and calls loadChanged, which moves it down.
    return best;
  }

  loadChanged(state: EndpointState): void {
    const i = state.heapIndex;
    if (i < 0 || this.heap[i] !== state) return;
    if (!this.up(i)) this.down(i);
  }

  observe(): void {}

  /** Moves heap[i] towards the root while it beats its parent; returns whether it moved. */
  private up(i: number): boolean {
    const heap = this.heap;
    const s = heap[i] as EndpointState;
    const start = i;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const parent = heap[p] as EndpointState;
      if (!less(s, parent)) break;
      heap[i] = parent;
      parent.heapIndex = i;
      i = p;
    }
    heap[i] = s;
    s.heapIndex = i;
    return i !== start;
  }

  private down(i: number): void {
    const heap = this.heap;
    const n = heap.length;
    const s = heap[i] as EndpointState;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      let c = l;
      if (r < n && less(heap[r] as EndpointState, heap[l] as EndpointState)) c = r;
      const child = heap[c] as EndpointState;
      if (!less(child, s)) break;
      heap[i] = child;
      child.heapIndex = i;
      i = c;
    }
    heap[i] = s;
    s.heapIndex = i;
  }
}

/**
 * Whether a goes before b: fewer in flight per unit of weight, then the earlier deadline,
 * then the one picked longer ago (so that equals take strict turns).
 */
function less(a: EndpointState, b: EndpointState): boolean {
  // Cross-multiplied to compare inFlight / weight without dividing.
  const la = a.inFlight * b.weight;
  const lb = b.inFlight * a.weight;
  if (la !== lb) return la < lb;
  if (a.lastPicked !== b.lastPicked) return a.lastPicked < b.lastPicked;
  return a.pickOrder < b.pickOrder;
}
