/**
 * Blocking queries, as Consul's (`?index=N&wait=30s`,
 * https://developer.hashicorp.com/consul/api-docs/features/blocking): the answer comes at
 * once when the index of what is asked for differs from `N`, else as soon as it changes,
 * else when the wait ends (with the same index, so the client asks again). One wait loop,
 * {@link awaitCondition}, serves the registry ({@link awaitIndex}: a service's index) and
 * the config center ({@link ConfigWaits}: a key's version, or a prefix's revision).
 */

import type { FastifyReply } from 'fastify';
import type { ConfigCenter, ConfigWatch } from '../../src/config/ConfigCenter.js';
import type { ServiceInstance } from '../../src/registry/ServiceInstance.js';
import type { ServiceRegistry } from '../../src/registry/ServiceRegistry.js';

/** Header carrying the index of a blocking query's answer (Consul's is `X-Consul-Index`). */
export const INDEX_HEADER = 'x-ringway-index';

/** Longest wait a blocking query may ask for (Consul's too). */
export const MAX_WAIT_MS = 600_000;

/** The wait when a query gives `index` without `wait` (Consul's default). */
export const DEFAULT_WAIT_MS = 300_000;

/** `wait` as Consul writes it: an integer with `ms`, `s` or `m` (no unit: seconds). */
export const WAIT_PATTERN = '^[0-9]{1,9}(ms|s|m)?$';

/** Milliseconds of a `wait` value matching {@link WAIT_PATTERN}, or undefined past {@link MAX_WAIT_MS}. */
export function parseWait(wait: string): number | undefined {
  const m = /^(\d{1,9})(ms|s|m)?$/.exec(wait);
  if (m === null) return undefined;
  const n = Number(m[1]);
  const ms = m[2] === 'ms' ? n : m[2] === 'm' ? n * 60_000 : n * 1_000;
  return ms <= MAX_WAIT_MS ? ms : undefined;
}

/**
 * Resolves true once `holds()` is true (checked at once, and each time the `poke` given to
 * `subscribe` is called), or false when `waitMs` ends or `signal` aborts first. `subscribe`
 * returns its remover, called once the wait ends (also when `poke` ran inside `subscribe`).
 * A `waitMs` of 0 still lets what `subscribe` started deliver its first state (a timer tick).
 */
export function awaitCondition(
  subscribe: (poke: () => void) => () => void,
  holds: () => boolean,
  waitMs: number,
  signal: AbortSignal,
): Promise<boolean> {
  return new Promise((resolve) => {
    let finished = false;
    let timer: NodeJS.Timeout | undefined;
    let unsubscribe: (() => void) | undefined;
    const finish = (held: boolean): void => {
      if (finished) return;
      finished = true;
      if (timer !== undefined) clearTimeout(timer);
      signal.removeEventListener('abort', stop);
      unsubscribe?.();
      resolve(held);
    };
    const stop = (): void => finish(false);
    const poke = (): void => {
      if (!finished && holds()) finish(true);
    };
    const off = subscribe(poke);
    if (finished) {
      off();
      return;
    }
    unsubscribe = off;
    poke();
    if (finished) return;
    if (signal.aborted) {
      finish(false);
      return;
    }
    signal.addEventListener('abort', stop);
    timer = setTimeout(stop, waitMs);
  });
}

/** A service's instances at an index. */
export interface IndexedInstances {
  readonly index: number;
  readonly instances: readonly ServiceInstance[];
}

/**
 * Resolves with the service's instances and index once `done(index, instances)` holds, or when `waitMs`
 * ends or `signal` aborts (then with the latest state seen). Rejects when the registry could
 * not say anything about the service within the wait (store unreachable, never cached).
 */
export async function awaitIndex(
  registry: ServiceRegistry,
  service: string,
  done: (index: number, instances: readonly ServiceInstance[]) => boolean,
  waitMs: number,
  signal: AbortSignal,
): Promise<IndexedInstances> {
  let latest: IndexedInstances | undefined;
  await awaitCondition(
    (poke) => {
      const watch = registry.watch(service, (instances, change) => {
        latest = { index: change.index, instances };
        poke();
      });
      return () => watch.close();
    },
    () => latest !== undefined && done(latest.index, latest.instances),
    waitMs,
    signal,
  );
  if (latest === undefined) throw new Error(`registry: service ${service} could not be read`);
  return latest;
}

/** What a config blocking query follows: a key (`exact`) or every key under a prefix, in a namespace. */
export interface ConfigTarget {
  readonly namespace: string;
  readonly prefix: string;
  readonly exact: boolean;
}

/** One watch shared by the blocking queries on one target. */
interface SharedWatch {
  readonly watch: ConfigWatch;
  /** The watch has read the current state: a later write reaches it as a change. */
  loaded: boolean;
  /** Writes and deletes the watch saw after its first read. */
  changes: number;
  readonly pokes: Set<() => void>;
  users: number;
}

/**
 * Blocking queries on the config center. The queries waiting on one key, or one prefix,
 * share one `ConfigCenter.watch` (as the registry's watches of one service share one view),
 * opened by the first and closed by the last; it tells them when to read again. Whether an
 * answer is new is the caller's test (`differs`), made on what `read` returns from the store.
 */
export class ConfigWaits {
  readonly #config: ConfigCenter;
  readonly #shared = new Map<string, SharedWatch>();

  constructor(config: ConfigCenter) {
    this.#config = config;
  }

  /** How many watches are open now (one per target being waited on). */
  get watches(): number {
    return this.#shared.size;
  }

  /**
   * Answers with `read()` at once when `differs` holds for it (or `read` fails: the error is
   * the answer); otherwise reads again after each write or delete under the target until
   * `differs` holds, and answers with the last read when `waitMs` ends or `signal` aborts.
   * The watch has read the store before the read it waits from, so a write after that read
   * is never missed; while the store cannot be reached, the wait ends with a read (which
   * then fails, or answers from the center's cache).
   */
  async wait<T>(
    target: ConfigTarget,
    read: () => Promise<T>,
    differs: (answer: T) => boolean,
    waitMs: number,
    signal: AbortSignal,
  ): Promise<T> {
    const deadline = performance.now() + waitMs;
    const remaining = (): number => Math.max(0, deadline - performance.now());
    const now = await read();
    if (differs(now) || waitMs <= 0 || signal.aborted) return now;
    const { key, shared } = this.#acquire(target);
    const subscribe = (poke: () => void): (() => void) => {
      shared.pokes.add(poke);
      return () => shared.pokes.delete(poke);
    };
    try {
      if (!shared.loaded && !(await awaitCondition(subscribe, () => shared.loaded, remaining(), signal))) {
        return await read();
      }
      let seen = shared.changes;
      let answer = await read();
      while (!differs(answer)) {
        const before = seen;
        const woke = await awaitCondition(subscribe, () => shared.changes !== before, remaining(), signal);
        if (!woke) break;
        seen = shared.changes;
        answer = await read();
      }
      return answer;
    } finally {
      this.#release(key, shared);
    }
  }

  /** Closes every shared watch (the waits themselves end through their signals). */
  close(): void {
    for (const shared of this.#shared.values()) shared.watch.close();
    this.#shared.clear();
  }

  #acquire(target: ConfigTarget): { key: string; shared: SharedWatch } {
    const key = JSON.stringify([target.namespace, target.prefix, target.exact]);
    let shared = this.#shared.get(key);
    if (shared === undefined) {
      const pokes = new Set<() => void>();
      const state: { shared?: SharedWatch } = {};
      const poke = (): void => {
        for (const p of [...pokes]) p();
      };
      const watch = this.#config.watch(
        target.prefix,
        (change) => {
          if (change.reason === 'initial' || state.shared === undefined) return;
          state.shared.changes++;
          poke();
        },
        { namespace: target.namespace, exact: target.exact },
      );
      shared = { watch, loaded: false, changes: 0, pokes, users: 0 };
      state.shared = shared;
      const s = shared;
      void watch.ready.then(() => {
        s.loaded = true;
        poke();
      });
      this.#shared.set(key, shared);
    }
    shared.users++;
    return { key, shared };
  }

  #release(key: string, shared: SharedWatch): void {
    shared.users--;
    if (shared.users > 0) return;
    shared.watch.close();
    if (this.#shared.get(key) === shared) this.#shared.delete(key);
  }
}

/**
 * Aborts when the client goes away (reason: an Error "the client left") or the admin API
 * closes (reason: the closing signal's); `done()` detaches the listeners.
 */
export function requestSignal(reply: FastifyReply, closing: AbortSignal): { signal: AbortSignal; done(): void } {
  const abort = new AbortController();
  // The response's `close`: the connection closed before the answer (the request's own
  // `close` fires as soon as its body was read).
  const clientLeft = (): void => abort.abort(new Error('the client left'));
  const closed = (): void => abort.abort(closing.reason);
  reply.raw.once('close', clientLeft);
  // Gone already (it left while the caller was still reading the store): no close will come.
  if (reply.raw.destroyed) clientLeft();
  if (closing.aborted) closed();
  else closing.addEventListener('abort', closed, { once: true });
  return {
    signal: abort.signal,
    done: () => {
      reply.raw.off('close', clientLeft);
      closing.removeEventListener('abort', closed);
    },
  };
}
