/**
 * Per-try timeouts without a Node timer per request. Tries of one route start with the same
 * timeout, so their deadlines arrive in the order they were added: one FIFO queue per
 * timeout value, and one timer per queue armed for its earliest live deadline, the idea of
 * Node's own per-duration timer lists (and of Varghese & Lauck's timing wheels) without a
 * `Timeout` object per request. Adding is an array push; cancelling clears the slot (so the
 * try can be collected at once), in O(1).
 *
 * An item may bring a deadline of its own up to 1 ms sooner than `ms` from now (a first try
 * whose deadline is its request's, which started a moment before): it then fires on time
 * unless an item before it in the queue has a later deadline, and then at most 1 ms late,
 * within a Node timer's own precision.
 */

/** Something with a deadline. */
export interface Timed {
  /** Slot in its queue (set by the queue; -1 when not queued). */
  slot: number;
  /** Called once when its deadline passes, unless cancelled first. */
  onDeadline(): void;
}

/** Cleared slots at the front are dropped once there are this many (and they are half the array). */
const COMPACT_AT = 1024;

class Queue<T extends Timed> {
  readonly ms: number;
  /** Live entries and cleared slots (undefined), oldest first, from `head`. */
  items: (T | undefined)[] = [];
  /** Deadline of each item, parallel to `items`. */
  deadlines: number[] = [];
  head = 0;
  /** Absolute index of `items[0]`: slots stay valid across compaction. */
  base = 0;
  timer: NodeJS.Timeout | undefined = undefined;
  readonly #now: () => number;

  constructor(ms: number, now: () => number) {
    this.ms = ms;
    this.#now = now;
  }

  add(item: T, at: number | undefined): void {
    item.slot = this.base + this.items.length;
    this.items.push(item);
    this.deadlines.push(at ?? this.#now() + this.ms);
    this.#dropCleared();
    if (this.timer === undefined) this.#arm(this.ms);
  }

  cancel(item: T): void {
    const i = item.slot - this.base;
    if (i >= 0 && i < this.items.length && this.items[i] === item) this.items[i] = undefined;
    item.slot = -1;
  }

  #dropCleared(): void {
    const items = this.items;
    while (this.head < items.length && items[this.head] === undefined) this.head++;
    if (this.head >= COMPACT_AT && this.head * 2 >= items.length) {
      items.splice(0, this.head);
      this.deadlines.splice(0, this.head);
      this.base += this.head;
      this.head = 0;
    }
  }

  #arm(ms: number): void {
    this.timer = setTimeout(() => this.#fire(), Math.max(1, Math.ceil(ms)));
    this.timer.unref();
  }

  #fire(): void {
    this.timer = undefined;
    const now = this.#now();
    const items = this.items;
    while (this.head < items.length) {
      const item = items[this.head];
      if (item === undefined) {
        this.head++;
        continue;
      }
      const deadline = this.deadlines[this.head] as number;
      if (deadline > now) {
        this.#dropCleared();
        this.#arm(deadline - now);
        return;
      }
      items[this.head] = undefined;
      this.head++;
      item.slot = -1;
      item.onDeadline();
    }
    // Empty: start over (the slots handed out stay unique through `base`).
    this.base += items.length;
    this.items = [];
    this.deadlines = [];
    this.head = 0;
  }

  /** Live entries (for tests). */
  get size(): number {
    let n = 0;
    for (let i = this.head; i < this.items.length; i++) if (this.items[i] !== undefined) n++;
    return n;
  }
}

/** Deadlines grouped by timeout value. */
export class DeadlineQueue<T extends Timed> {
  readonly #queues = new Map<number, Queue<T>>();
  readonly #now: () => number;

  /** @param now monotonic clock in ms. @default performance.now */
  constructor(now: () => number = () => performance.now()) {
    this.#now = now;
  }

  /**
   * Calls `item.onDeadline()` in `ms` milliseconds unless {@link cancel}led first; or at `at`
   * (on the queue's clock), which must be less than 1 ms sooner than that.
   */
  add(item: T, ms: number, at?: number): void {
    let q = this.#queues.get(ms);
    if (q === undefined) {
      q = new Queue(ms, this.#now);
      this.#queues.set(ms, q);
    }
    q.add(item, at);
  }

  /** Cancels `item` (added with timeout `ms`); harmless if it already fired or was cancelled. */
  cancel(item: T, ms: number): void {
    if (item.slot < 0) return;
    this.#queues.get(ms)?.cancel(item);
  }

  /** Live deadlines (for tests). */
  get size(): number {
    let n = 0;
    for (const q of this.#queues.values()) n += q.size;
    return n;
  }
}
