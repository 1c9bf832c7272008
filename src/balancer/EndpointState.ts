/**
 * Everything a balancer tracks about one endpoint, in one object so that a pick reads it
 * without lookups. Internal: strategies read and write their own fields here (the heap
 * position of least-connections, the latency estimate of ewma).
 */
import type { CircuitBreaker } from './CircuitBreaker.js';
import type { Endpoint } from './Endpoint.js';
import { OutlierState } from './OutlierDetector.js';

export class EndpointState {
  /** The endpoint as last given (update() may replace address, weight, zone, meta). */
  endpoint: Endpoint;
  readonly id: string;
  /** Leases of this endpoint not yet released. */
  inFlight = 0;
  /** Active health (true when no active checks run). */
  healthy = true;
  /** Why the active check failed when the endpoint turned unhealthy (status() prefers the checker's latest failure). */
  healthReason = '';
  readonly outlier = new OutlierState();
  breaker: CircuitBreaker | undefined = undefined;
  /** Left the balancer through update(); leases still out release harmlessly. */
  removed = false;
  /** In the set the strategy picks from now. */
  inRotation = false;

  // Strategy scratch space.
  /** least-connections: position in the heap, -1 when not in it. */
  heapIndex = -1;
  /** least-connections: virtual deadline, to take turns among equally loaded endpoints. */
  lastPicked = 0;
  /** least-connections: order of the last pick, the last tie-break (earlier first). */
  pickOrder = 0;
  /** ring-hash (bounded): the in-flight count last added to the ring's total. */
  ringLoad = 0;
  /** ewma: the peak-EWMA latency estimate, in ms. */
  cost = 0;
  /** ewma: clock at the last update of `cost`; NaN until the strategy first sees the endpoint. */
  costStamp = Number.NaN;

  /** The endpoint's weight, copied here for the hot paths. */
  weight: number;

  constructor(endpoint: Endpoint) {
    this.endpoint = endpoint;
    this.id = endpoint.id;
    this.weight = endpoint.weight;
  }

  /** Takes a new description of the same endpoint (same id); returns whether the weight changed. */
  replace(endpoint: Endpoint): boolean {
    const changed = endpoint.weight !== this.weight;
    this.endpoint = endpoint;
    this.weight = endpoint.weight;
    return changed;
  }
}
