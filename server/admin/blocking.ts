/**
 * Blocking queries on the service registry, as Consul's (`?index=N&wait=30s`,
 * https://developer.hashicorp.com/consul/api-docs/features/blocking): the answer comes at
 * once when the service's index differs from `N`, else as soon as it changes, else when
 * the wait ends (with the same index, so the client asks again).
 */

import type { ServiceInstance } from '../../src/registry/ServiceInstance.js';
import type { ServiceRegistry } from '../../src/registry/ServiceRegistry.js';

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
export function awaitIndex(
  registry: ServiceRegistry,
  service: string,
  done: (index: number, instances: readonly ServiceInstance[]) => boolean,
  waitMs: number,
  signal: AbortSignal,
): Promise<IndexedInstances> {
  return new Promise((resolve, reject) => {
    let latest: IndexedInstances | undefined;
    let finished = false;
    let timer: NodeJS.Timeout | undefined;
    let closeWatch: (() => void) | undefined;
    const finish = (): void => {
      if (finished) return;
      finished = true;
      if (timer !== undefined) clearTimeout(timer);
      signal.removeEventListener('abort', finish);
      closeWatch?.();
      if (latest === undefined) reject(new Error(`registry: service ${service} could not be read`));
      else resolve(latest);
    };
    const watch = registry.watch(service, (instances, change) => {
      latest = { index: change.index, instances };
      if (done(change.index, instances)) finish();
    });
    closeWatch = () => watch.close();
    if (finished) {
      watch.close();
      return;
    }
    if (signal.aborted) {
      finish();
      return;
    }
    signal.addEventListener('abort', finish);
    timer = setTimeout(finish, waitMs);
  });
}
