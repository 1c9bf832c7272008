import { describe, expect, it } from 'vitest';
import { InvalidOptionError } from '../../src/errors.js';
import { DEFAULT_REGISTRY_OPTIONS, resolveRegistryOptions } from '../../src/registry/RegistryOptions.js';
import { ServiceRegistry } from '../../src/registry/ServiceRegistry.js';
import { memoryStore } from '../../src/store/memory/MemoryStore.js';
import { run } from '../store/registryContract.js';

run('memory', async () => memoryStore());

describe('registry options', () => {
  it('applies defaults and freezes', () => {
    const store = memoryStore();
    const o = resolveRegistryOptions({ store });
    expect(o).toMatchObject({ ttlMs: 15_000, sweepIntervalMs: 1_000, logLimit: 256, tombstoneMs: 86_400_000 });
    expect(o.selfPreservation).toEqual({ threshold: 0.5, windowMs: 15_000, minInstances: 3 });
    expect(Object.isFrozen(o)).toBe(true);
    expect(DEFAULT_REGISTRY_OPTIONS.ttlMs).toBe(15_000);
    return store.close();
  });

  it('rejects bad options, naming the field and the value', () => {
    const store = memoryStore();
    const bad: [Record<string, unknown>, RegExp][] = [
      [{}, /store/],
      [{ store: {} }, /store/],
      [{ store, ttlMs: 99 }, /ttlMs.*got 99/],
      [{ store, ttlMs: '15s' }, /ttlMs/],
      [{ store, sweepIntervalMs: 0 }, /sweepIntervalMs/],
      [{ store, logLimit: 0 }, /logLimit/],
      [{ store, tombstoneMs: -1 }, /tombstoneMs/],
      [{ store, selfPreservation: { threshold: 0 } }, /selfPreservation.threshold/],
      [{ store, selfPreservation: { threshold: 1.5 } }, /selfPreservation.threshold/],
      [{ store, selfPreservation: { minInstances: 0 } }, /selfPreservation.minInstances/],
      [{ store, selfPreservation: 3 }, /selfPreservation/],
    ];
    for (const [options, message] of bad) {
      expect(() => new ServiceRegistry(options as never), JSON.stringify(Object.keys(options))).toThrow(
        InvalidOptionError,
      );
      expect(() => new ServiceRegistry(options as never)).toThrow(message);
    }
    expect(() => new ServiceRegistry(null as never)).toThrow(/options/);
    return store.close();
  });
});
