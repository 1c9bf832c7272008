/**
 * Redis publish/subscribe for the Redis store. Subscriptions share one extra connection
 * (a `duplicate()` of the store's client, opened on first use), since a connection in
 * subscriber mode cannot send other commands. Channels are re-subscribed on every reconnect.
 */
import type { Cluster, Redis } from 'ioredis';
import { StoreUnavailableError } from '../../errors.js';
import type { ChangeFeed, Unsubscribe } from '../Store.js';
import { type RedisClient, type RedisContext, timeBound } from './RedisContext.js';

/** The Redis store's {@link ChangeFeed}. */
export class RedisChangeFeed implements ChangeFeed {
  readonly #ctx: RedisContext;
  /** Full channel name -> listeners. */
  readonly #listeners = new Map<string, Set<(message: string) => void>>();
  /** Full channel name -> the SUBSCRIBE in flight or done. */
  readonly #subscribed = new Map<string, Promise<void>>();
  #subscriber: RedisClient | undefined;
  #closed = false;

  constructor(ctx: RedisContext) {
    this.#ctx = ctx;
  }

  async publish(channel: string, message: string): Promise<void> {
    await this.#ctx.bounded(() => this.#ctx.client.publish(this.#ctx.channel(channel), message));
  }

  async subscribe(channel: string, listener: (message: string) => void): Promise<Unsubscribe> {
    if (this.#closed) throw new StoreUnavailableError('the store is closed');
    const off = this.on(channel, listener);
    try {
      await this.ready(channel);
    } catch (err) {
      off();
      throw err;
    }
    return async () => off();
  }

  /**
   * Synchronous subscribe for the store's own parts: the subscription becomes active in the
   * background (and again after every reconnect). Returns the remover.
   */
  on(channel: string, listener: (message: string) => void): () => void {
    const full = this.#ctx.channel(channel);
    let set = this.#listeners.get(full);
    if (set === undefined) {
      set = new Set();
      this.#listeners.set(full, set);
      this.#startSubscription(full);
    }
    const entry = (message: string) => listener(message);
    set.add(entry);
    return () => {
      set.delete(entry);
      if (set.size > 0 || this.#listeners.get(full) !== set) return;
      this.#listeners.delete(full);
      this.#subscribed.delete(full);
      this.#subscriber?.unsubscribe(full).catch(() => {});
    };
  }

  /**
   * Settles when the subscription to `channel` (started by {@link RedisChangeFeed.on} or
   * subscribe) is active; rejects with StoreUnavailableError when it could not be made.
   */
  ready(channel: string): Promise<void> {
    const full = this.#ctx.channel(channel);
    // A SUBSCRIBE that failed (its entry is gone) is sent again for a channel still wanted.
    if (!this.#subscribed.has(full) && this.#listeners.has(full)) this.#startSubscription(full);
    const pending = this.#subscribed.get(full);
    if (pending !== undefined) return pending;
    return Promise.reject(new StoreUnavailableError(`not subscribed to ${channel}`));
  }

  /** Closes the subscriber connection. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#listeners.clear();
    this.#subscribed.clear();
    const subscriber = this.#subscriber;
    this.#subscriber = undefined;
    // The store's own connection, with nothing to flush: disconnect, not QUIT (which would
    // wait in the offline queue behind a pending SUBSCRIBE while the server is away).
    subscriber?.disconnect();
  }

  #startSubscription(full: string): void {
    if (this.#closed) return;
    const subscriber = this.#connection();
    const pending = timeBound(subscriber.subscribe(full), this.#ctx.commandTimeoutMs).then(() => undefined);
    // A failed SUBSCRIBE is sent again on the next 'ready' or the next ready()/subscribe();
    // callers of subscribe() see the error.
    pending.catch(() => {
      if (this.#subscribed.get(full) === pending) this.#subscribed.delete(full);
    });
    this.#subscribed.set(full, pending);
  }

  #connection(): RedisClient {
    if (this.#subscriber !== undefined) return this.#subscriber;
    const client = this.#ctx.client;
    const subscriber: RedisClient = client.isCluster ? (client as Cluster).duplicate() : (client as Redis).duplicate();
    this.#subscriber = subscriber;
    // Errors surface through commands; without a listener ioredis would log each one.
    subscriber.on('error', () => {});
    subscriber.on('message', (channel: string, message: string) => {
      const set = this.#listeners.get(channel);
      if (set === undefined) return;
      for (const listener of set) listener(message);
    });
    // ioredis re-subscribes channels whose SUBSCRIBE succeeded; re-issue every wanted
    // channel on every 'ready' as well (the first one included: a SUBSCRIBE queued while the
    // server was away is dropped after its retries). A second SUBSCRIBE of a channel is harmless.
    subscriber.on('ready', () => {
      for (const full of this.#listeners.keys()) this.#startSubscription(full);
    });
    return subscriber;
  }
}
