/**
 * `round-robin`: each endpoint in turn, weights ignored. The cheapest strategy and the most
 * even when endpoints are alike and requests cost about the same.
 */
import type { EndpointState } from '../EndpointState.js';
import type { PickContext, Skip, Strategy } from './Strategy.js';

export class RoundRobinStrategy implements Strategy {
  readonly name = 'round-robin';
  readonly usesLatency = false;
  readonly usesLoad = false;
  private endpoints: readonly EndpointState[] = [];
  private next = 0;

  setEndpoints(endpoints: readonly EndpointState[]): void {
    this.endpoints = endpoints;
    if (this.next >= endpoints.length) this.next = 0;
  }

  pick(_ctx: PickContext | undefined, skip: Skip | undefined): EndpointState | undefined {
    const list = this.endpoints;
    const n = list.length;
    if (n === 0) return undefined;
    let i = this.next;
    for (let k = 0; k < n; k++) {
      const s = list[i] as EndpointState;
      i = i + 1 === n ? 0 : i + 1;
      if (skip === undefined || !skip(s)) {
        this.next = i;
        return s;
      }
    }
    return undefined;
  }

  loadChanged(): void {}
  observe(): void {}
}
