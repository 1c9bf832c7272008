/**
 * A held lock: its fencing token, `extend`, `release`, and a signal that fires when the lock
 * is known to be lost. Obtained from `LockManager.acquire`.
 */
import { LockLostError, LockNotHeldError } from '../errors.js';
import type { LockBackend } from '../store/Store.js';
import { checkTtl } from './options.js';

/** What a lock needs from the manager that granted it. */
export interface LockOwner {
  readonly backend: LockBackend;
  /** Trusted part of a lease of `ttlMs`: ttl minus the clock-drift allowance. */
  validityMs(ttlMs: number): number;
  /**
   * First of the locks this owner holds, linked through the locks themselves (cheaper than
   * a Set on the acquire/release path); maintained by Lock.
   */
  firstHeld: Lock | undefined;
  /** How many locks the list holds; maintained by Lock. */
  heldCount: number;
  /** The list is pruned of expired locks when a grant makes it longer than this; maintained by Lock. */
  pruneAt: number;
}

/**
 * A lock whose lease runs out unreleased and unwatched stays in its owner's list until the
 * list is walked (`held`, a restart check) or a grant finds the list twice as long as after
 * the last pruning, at least this long: amortized O(1) per grant, and the list stays within
 * max(this, 2 x the locks still held then).
 */
const MIN_PRUNE_AT = 64;

type LockStateName = 'held' | 'released' | 'lost';

/** The process' monotonic clock in ms. */
const now = () => performance.now();

/**
 * A lock this process holds on a named resource.
 *
 * - `token` is the fencing token: strictly greater than the token of every earlier holder
 *   of the same resource. Pass it to the resource you protect and have the resource refuse
 *   writes carrying a token lower than one it has seen (Kleppmann, "How to do distributed
 *   locking", 2016); that, not the lease, is what makes a paused holder harmless.
 * - The lock is trusted until `remainingMs` runs out (ttl minus a clock-drift allowance,
 *   counted from when the acquire or extend was sent). A plain lock does not extend itself.
 * - `signal` aborts, with a {@link LockLostError} as its reason, when the lock is known to be
 *   lost: an extend found someone else (or nobody) holding it, the store restarted without
 *   it, or its validity ran out.
 */
export class Lock {
  /** The resource name. */
  readonly name: string;
  /** Fencing token: strictly increasing per resource, never reused. */
  readonly token: number;
  /** Unique id of this acquisition in the store. */
  readonly holder: string;
  readonly #owner: LockOwner;
  /** Taken in fair mode (waiters likely queue behind it): a hint for the store's release. */
  readonly #fair: boolean;
  #ttlMs: number;
  /** Monotonic time until which the lease is trusted. */
  #validUntil: number;
  #state: LockStateName = 'held';
  #lostError: LockLostError | undefined;
  #controller: AbortController | undefined;
  #expiryTimer: NodeJS.Timeout | undefined;
  /** Neighbours in the owner's list of held locks. */
  #prev: Lock | undefined;
  #next: Lock | undefined;
  #linked = true;

  /**
   * @internal Created by LockManager. The lease is trusted for `leaseMs` (less the drift
   * allowance) from `sentAt`, a moment before the store granted it. `fair`: taken in fair mode.
   */
  constructor(
    owner: LockOwner,
    name: string,
    holder: string,
    token: number,
    ttlMs: number,
    sentAt: number,
    leaseMs: number,
    fair: boolean,
  ) {
    this.#owner = owner;
    this.#fair = fair;
    this.name = name;
    this.holder = holder;
    this.token = token;
    this.#ttlMs = ttlMs;
    this.#validUntil = sentAt + owner.validityMs(leaseMs);
    const first = owner.firstHeld;
    if (first !== undefined) {
      this.#next = first;
      first.#prev = this;
    }
    owner.firstHeld = this;
    if (++owner.heldCount > owner.pruneAt) Lock.heldBy(owner);
  }

  /**
   * @internal The locks `owner` holds, newest first. Locks found expired on the way are
   * marked lost, which takes them out of the list.
   */
  static heldBy(owner: LockOwner): Lock[] {
    const locks: Lock[] = [];
    const expired: Lock[] = [];
    const at = now();
    for (let lock = owner.firstHeld; lock !== undefined; lock = lock.#next) {
      if (at >= lock.#validUntil) expired.push(lock);
      else locks.push(lock);
    }
    let held = locks;
    if (expired.length > 0) {
      // After the walk: marking lost runs abort listeners, which may change the list.
      for (const lock of expired) lock.#checkExpiry();
      held = locks.filter((lock) => lock.#state === 'held');
    }
    owner.pruneAt = Math.max(MIN_PRUNE_AT, 2 * owner.heldCount);
    return held;
  }

  /** Lease length of the last acquire or extend, in ms. */
  get ttlMs(): number {
    return this.#ttlMs;
  }

  /** How long the lock is still trusted, in ms (0 once released or lost). */
  get remainingMs(): number {
    if (this.#state !== 'held') return 0;
    return Math.max(0, this.#validUntil - now());
  }

  /** True once the lock is known lost (including when its validity ran out). */
  get lost(): boolean {
    this.#checkExpiry();
    return this.#state === 'lost';
  }

  /** True once {@link Lock.release} was called. */
  get released(): boolean {
    return this.#state === 'released';
  }

  /** Aborts with a {@link LockLostError} when the lock is lost; never on a normal release. */
  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController();
      this.#checkExpiry();
      if (this.#state === 'lost') this.#controller.abort(this.#lostError);
      else if (this.#state === 'held') this.#armExpiry();
    }
    return this.#controller.signal;
  }

  /**
   * Sets the lease to `ttlMs` from now, if the lock is still ours.
   * @default ttlMs the lock's current `ttlMs`
   * @throws {LockNotHeldError} after {@link Lock.release}.
   * @throws {LockLostError} when the lock was lost (taken, expired, store restarted); the lock
   *   stays lost.
   * @throws {StoreUnavailableError} when the store cannot be reached (the lock is not lost yet).
   * @throws {InvalidOptionError} for a bad `ttlMs`.
   */
  async extend(ttlMs: number = this.#ttlMs): Promise<void> {
    checkTtl('ttlMs', ttlMs);
    this.#assertHeld();
    const sentAt = now();
    const ok = await this.#owner.backend.locks.extend(this.name, this.holder, ttlMs);
    if (!ok) {
      this.markLost(new LockLostError(`lock "${this.name}" was lost: its lease expired or another holder took it`));
    }
    this.#assertHeld();
    this.#ttlMs = ttlMs;
    this.#validUntil = sentAt + this.#owner.validityMs(ttlMs);
    if (this.#expiryTimer !== undefined) this.#armExpiry();
  }

  /**
   * Frees the resource if this lock still holds it. Resolves true when it did, false when
   * there was nothing to free (released before, expired, or taken). Releasing twice is harmless.
   * @throws {StoreUnavailableError} when the store cannot be reached (the lease then ends by itself).
   */
  release(): Promise<boolean> {
    if (this.#state === 'released') return Promise.resolve(false);
    this.#state = 'released';
    if (this.#expiryTimer !== undefined) this.#disarm();
    this.#unlink();
    return this.#owner.backend.locks.release(this.name, this.holder, this.#fair);
  }

  /** @internal Marks the lock lost (by the manager or an extend) and aborts its signal. */
  markLost(error: LockLostError): void {
    if (this.#state !== 'held') return;
    this.#state = 'lost';
    this.#lostError = error;
    this.#disarm();
    this.#unlink();
    this.#controller?.abort(error);
  }

  #assertHeld(): void {
    this.#checkExpiry();
    if (this.#state === 'released') throw new LockNotHeldError(`lock "${this.name}" was released`);
    if (this.#state === 'lost') throw this.#lostError!;
  }

  #checkExpiry(): void {
    if (this.#state === 'held' && now() >= this.#validUntil) {
      this.markLost(new LockLostError(`lock "${this.name}" expired: its ${this.#ttlMs} ms lease ran out`));
    }
  }

  #armExpiry(): void {
    if (this.#expiryTimer !== undefined) clearTimeout(this.#expiryTimer);
    const delay = Math.max(0, Math.ceil(this.#validUntil - now()));
    this.#expiryTimer = setTimeout(() => {
      this.#expiryTimer = undefined;
      this.#checkExpiry();
      if (this.#state === 'held') this.#armExpiry();
    }, delay).unref();
  }

  /** Leaves the owner's list of held locks. */
  #unlink(): void {
    if (!this.#linked) return;
    this.#linked = false;
    this.#owner.heldCount--;
    const prev = this.#prev;
    const next = this.#next;
    if (prev !== undefined) prev.#next = next;
    else if (this.#owner.firstHeld === this) this.#owner.firstHeld = next;
    if (next !== undefined) next.#prev = prev;
    this.#prev = undefined;
    this.#next = undefined;
  }

  #disarm(): void {
    if (this.#expiryTimer !== undefined) clearTimeout(this.#expiryTimer);
    this.#expiryTimer = undefined;
  }
}
