/**
 * The memory store's {@link LockStorage}: the same semantics as the Redis scripts in
 * `../redis/lockScripts.ts`, step for step, on plain maps. Expired entries are dropped when
 * touched and by the store's periodic sweep.
 */
import {
  type AcquireOutcome,
  type AcquireRequest,
  checkOwner,
  holderOwner,
  LOCK_RELEASED_CHANNEL,
  type LockState,
  type LockStorage,
  ownerChannel,
  parseHandOver,
  type ReleaseSubscription,
} from '../LockStorage.js';
import type { MemoryContext } from './MemoryContext.js';

interface Lease {
  holder: string;
  token: number;
  expiresAt: number;
}

interface Fence {
  last: number;
  expiresAt: number;
}

interface Queue {
  /** Waiter ids, head first. */
  order: string[];
  /** Waiter id -> time after which it loses its place. */
  deadlines: Map<string, number>;
  /** Waiter id -> the ttl it asked for (the lease it gets when the resource is handed over). */
  ttls: Map<string, number>;
}

/** In-process lock leases, fencing counters and fair queues. */
export class MemoryLockStorage implements LockStorage {
  readonly #ctx: MemoryContext;
  readonly #fenceRetentionMs: number;
  readonly #leases = new Map<string, Lease>();
  readonly #fences = new Map<string, Fence>();
  readonly #queues = new Map<string, Queue>();

  constructor(ctx: MemoryContext, fenceRetentionMs: number) {
    this.#ctx = ctx;
    this.#fenceRetentionMs = fenceRetentionMs;
  }

  async acquire(request: AcquireRequest): Promise<AcquireOutcome> {
    this.#ctx.assertOpen();
    const { resource, holder, ttlMs, fair, queueTtlMs } = request;
    const now = this.#ctx.now();
    const lease = this.#lease(resource, now);
    if (lease !== undefined && lease.holder === holder) {
      // Already ours: handed over while we waited.
      return { acquired: true, token: lease.token, remainingMs: Math.max(0, Math.ceil(lease.expiresAt - now)) };
    }
    const head = this.#queueHead(resource, now);
    if (lease === undefined && (head === undefined || head === holder)) {
      const token = this.#nextToken(resource, now);
      this.#leases.set(resource, { holder, token, expiresAt: now + ttlMs });
      if (head === holder) this.#dequeue(resource, holder);
      return { acquired: true, token };
    }
    const retryAfterMs = lease === undefined ? 0 : Math.max(0, Math.ceil(lease.expiresAt - now));
    if (fair) {
      let queue = this.#queues.get(resource);
      if (queue === undefined) {
        queue = { order: [], deadlines: new Map(), ttls: new Map() };
        this.#queues.set(resource, queue);
      }
      if (!queue.deadlines.has(holder)) queue.order.push(holder);
      queue.deadlines.set(holder, now + queueTtlMs);
      queue.ttls.set(holder, ttlMs);
      return { acquired: false, retryAfterMs, position: queue.order.indexOf(holder) };
    }
    return { acquired: false, retryAfterMs, position: -1 };
  }

  async extend(resource: string, holder: string, ttlMs: number): Promise<boolean> {
    this.#ctx.assertOpen();
    const now = this.#ctx.now();
    const lease = this.#lease(resource, now);
    if (lease === undefined || lease.holder !== holder) return false;
    lease.expiresAt = now + ttlMs;
    // The counter lives at least fenceRetentionMs more (ours is the last token granted).
    const fence = this.#fences.get(resource);
    const last = fence === undefined || fence.expiresAt <= now ? lease.token : fence.last;
    this.#fences.set(resource, { last, expiresAt: now + this.#fenceRetentionMs });
    return true;
  }

  async raiseToken(resource: string, holder: string, token: number): Promise<boolean> {
    this.#ctx.assertOpen();
    const now = this.#ctx.now();
    const lease = this.#lease(resource, now);
    if (lease === undefined || lease.holder !== holder) return false;
    if (token > lease.token) lease.token = token;
    const fence = this.#fences.get(resource);
    const last = fence === undefined || fence.expiresAt <= now ? 0 : fence.last;
    // Only a raise writes the counter (and renews it), as on Redis.
    if (lease.token > last) this.#fences.set(resource, { last: lease.token, expiresAt: now + this.#fenceRetentionMs });
    return true;
  }

  async release(resource: string, holder: string): Promise<boolean> {
    this.#ctx.assertOpen();
    const now = this.#ctx.now();
    const lease = this.#lease(resource, now);
    if (lease === undefined || lease.holder !== holder) return false;
    this.#leases.delete(resource);
    this.#handOver(resource, now);
    return true;
  }

  async leaveQueue(resource: string, holder: string): Promise<void> {
    this.#ctx.assertOpen();
    const now = this.#ctx.now();
    this.#dequeue(resource, holder);
    // Handed to us as we gave up: give it back. A free resource goes to the next waiter.
    if (this.#lease(resource, now)?.holder === holder) this.#leases.delete(resource);
    if (this.#lease(resource, now) === undefined) this.#handOver(resource, now);
  }

  /** Grants a free resource to the first live waiter of its queue and announces it. */
  #handOver(resource: string, now: number): void {
    const head = this.#queueHead(resource, now);
    if (head === undefined) return;
    const ttlMs = this.#queues.get(resource)?.ttls.get(head);
    if (ttlMs === undefined) return;
    const token = this.#nextToken(resource, now);
    this.#leases.set(resource, { holder: head, token, expiresAt: now + ttlMs });
    this.#dequeue(resource, head);
    const message = `${head} ${token} ${resource}`;
    this.#ctx.feed.emit(LOCK_RELEASED_CHANNEL, message);
    const owner = holderOwner(head);
    if (owner !== undefined) this.#ctx.feed.emit(ownerChannel(owner), message);
  }

  async inspect(resource: string): Promise<LockState> {
    this.#ctx.assertOpen();
    const now = this.#ctx.now();
    this.#queueHead(resource, now);
    const lease = this.#lease(resource, now);
    // Live places only, as on Redis (a waiter behind the head that stopped polling is dropped
    // when it reaches the head, or by the sweep).
    const q = this.#queues.get(resource);
    const queue = q === undefined ? [] : q.order.filter((id) => (q.deadlines.get(id) ?? 0) > now);
    if (lease === undefined) return { holder: undefined, token: 0, ttlMs: 0, queue };
    return { holder: lease.holder, token: lease.token, ttlMs: Math.ceil(lease.expiresAt - now), queue };
  }

  onReleased(listener: (resource: string, holder: string, token: number) => void, owner?: string): ReleaseSubscription {
    const channel = owner === undefined ? LOCK_RELEASED_CHANNEL : ownerChannel(checkOwner(owner));
    const off = this.#ctx.feed.on(channel, (message) => {
      const handOver = parseHandOver(message);
      if (handOver !== undefined) listener(handOver.resource, handOver.holder, handOver.token);
    });
    return { ready: Promise.resolve(), close: off };
  }

  /** Drops every expired lease, fence and queued waiter. */
  sweep(): void {
    const now = this.#ctx.now();
    for (const [resource, lease] of this.#leases) if (lease.expiresAt <= now) this.#leases.delete(resource);
    for (const [resource, fence] of this.#fences) if (fence.expiresAt <= now) this.#fences.delete(resource);
    for (const [resource, queue] of this.#queues) {
      for (const [holder, deadline] of queue.deadlines) if (deadline <= now) this.#dequeue(resource, holder);
      if (queue.order.length === 0) this.#queues.delete(resource);
    }
  }

  /** The live lease of `resource`, dropping an expired one. */
  #lease(resource: string, now: number): Lease | undefined {
    const lease = this.#leases.get(resource);
    if (lease !== undefined && lease.expiresAt <= now) {
      this.#leases.delete(resource);
      return undefined;
    }
    return lease;
  }

  /** The head of the fair queue after dropping waiters at the head that stopped polling. */
  #queueHead(resource: string, now: number): string | undefined {
    const queue = this.#queues.get(resource);
    if (queue === undefined) return undefined;
    while (queue.order.length > 0) {
      const head = queue.order[0]!;
      const deadline = queue.deadlines.get(head);
      if (deadline !== undefined && deadline > now) return head;
      queue.order.shift();
      queue.deadlines.delete(head);
      queue.ttls.delete(head);
    }
    this.#queues.delete(resource);
    return undefined;
  }

  #dequeue(resource: string, holder: string): void {
    const queue = this.#queues.get(resource);
    if (queue === undefined) return;
    const at = queue.order.indexOf(holder);
    if (at >= 0) queue.order.splice(at, 1);
    queue.deadlines.delete(holder);
    queue.ttls.delete(holder);
    if (queue.order.length === 0) this.#queues.delete(resource);
  }

  /** `last + 1` while the counter lives, else the clock in microseconds (see LockStorage). */
  #nextToken(resource: string, now: number): number {
    const fence = this.#fences.get(resource);
    const token = fence === undefined || fence.expiresAt <= now ? Math.floor(now * 1000) : fence.last + 1;
    this.#fences.set(resource, { last: token, expiresAt: now + this.#fenceRetentionMs });
    return token;
  }
}
