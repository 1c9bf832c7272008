/**
 * In-process publish/subscribe for the memory store. Messages are delivered on a later
 * microtask, never inside the publishing call, as they would arrive from Redis.
 */
import type { ChangeFeed, Unsubscribe } from '../Store.js';

/** The memory store's {@link ChangeFeed}. */
export class MemoryChangeFeed implements ChangeFeed {
  readonly #channels = new Map<string, Set<(message: string) => void>>();
  readonly #assertOpen: () => void;

  constructor(assertOpen: () => void) {
    this.#assertOpen = assertOpen;
  }

  async publish(channel: string, message: string): Promise<void> {
    this.#assertOpen();
    this.emit(channel, message);
  }

  async subscribe(channel: string, listener: (message: string) => void): Promise<Unsubscribe> {
    this.#assertOpen();
    const off = this.on(channel, listener);
    return async () => off();
  }

  /** Synchronous subscribe for the store's own parts; returns the remover. */
  on(channel: string, listener: (message: string) => void): () => void {
    let set = this.#channels.get(channel);
    if (set === undefined) {
      set = new Set();
      this.#channels.set(channel, set);
    }
    // A wrapper, so that the same listener subscribed twice is two subscriptions.
    const entry = (message: string) => listener(message);
    set.add(entry);
    return () => {
      set.delete(entry);
      if (set.size === 0 && this.#channels.get(channel) === set) this.#channels.delete(channel);
    };
  }

  /** Synchronous publish for the store's own parts (delivery is still deferred). */
  emit(channel: string, message: string): void {
    const set = this.#channels.get(channel);
    if (set === undefined) return;
    // Checked again at delivery: a listener removed meanwhile (or a store closed) hears
    // nothing more, as on Redis.
    for (const listener of set) {
      queueMicrotask(() => {
        if (set.has(listener)) listener(message);
      });
    }
  }

  /** Drops every subscription (store closed); messages already queued are not delivered. */
  clear(): void {
    for (const set of this.#channels.values()) set.clear();
    this.#channels.clear();
  }
}
