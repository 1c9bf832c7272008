// The registry's local copies of services nobody watches are bounded: dropped after
// `idleViewMs` without a lookup, and at most `maxIdleViews` of them (least recently looked up
// dropped first). Watched services are never dropped; a dropped service reads again on its
// next lookup; a lookup waiting for its first state is never dropped under it.
import { afterEach, describe, expect, it } from 'vitest';
import { InvalidOptionError } from '../../src/errors.js';
import { resolveRegistryOptions } from '../../src/registry/RegistryOptions.js';
import { ServiceRegistry } from '../../src/registry/ServiceRegistry.js';
import { memoryStore } from '../../src/store/memory/MemoryStore.js';
import type { Store } from '../../src/store/Store.js';
import { until } from '../server/helpers.js';

const open: { registry: ServiceRegistry; store: Store }[] = [];

function make(options: { idleViewMs?: number; maxIdleViews?: number }): { registry: ServiceRegistry; store: Store } {
  const store = memoryStore();
  const registry = new ServiceRegistry({ store, sweepIntervalMs: 10, ...options });
  open.push({ registry, store });
  return { registry, store };
}

const cached = (registry: ServiceRegistry): string[] =>
  registry
    .health()
    .services.map((s) => s.service)
    .sort();

afterEach(async () => {
  for (const { registry, store } of open.splice(0)) {
    await registry.close();
    await store.close();
  }
});

describe('idle service views', () => {
  it('has defaults and checks the options', () => {
    const store = memoryStore();
    expect(resolveRegistryOptions({ store })).toMatchObject({ idleViewMs: 60_000, maxIdleViews: 1_000 });
    for (const bad of [{ idleViewMs: 0 }, { maxIdleViews: 0 }, { maxIdleViews: 1.5 }, { idleViewMs: '1m' }]) {
      expect(() => resolveRegistryOptions({ store, ...(bad as object) })).toThrow(InvalidOptionError);
    }
    return store.close();
  });

  it('drops a service nobody watches or looks up for idleViewMs, never a watched one', async () => {
    const { registry } = make({ idleViewMs: 50 });
    await registry.register({ service: 'asked', id: 'a-1', address: 'http://127.0.0.1:1' });
    const watched: number[] = [];
    const watch = registry.watch('watched', (instances) => watched.push(instances.length));
    await watch.ready;
    expect(await registry.instances('asked')).toHaveLength(1);
    expect(cached(registry)).toEqual(['asked', 'watched']);
    await until(() => !cached(registry).includes('asked'), 10_000, 'the idle view to be dropped');
    expect(cached(registry)).toEqual(['watched']);
    // Read again on the next lookup, with what the store has now.
    expect((await registry.instances('asked')).map((i) => i.id)).toEqual(['a-1']);
    // The watched view kept working: it sees a registration made now.
    await registry.register({ service: 'watched', id: 'w-1', address: 'http://127.0.0.1:2' });
    await until(() => watched.at(-1) === 1, 10_000, 'the watch to see w-1');
    // Once unwatched, it idles out too.
    watch.close();
    await until(() => cached(registry).length === 0, 10_000, 'both views to be dropped');
  });

  it('keeps at most maxIdleViews unwatched services, dropping the least recently looked up', async () => {
    const { registry } = make({ idleViewMs: 3_600_000, maxIdleViews: 3 });
    const watch = registry.watch('routed', () => {});
    await watch.ready;
    for (let i = 0; i < 50; i++) {
      await expect(registry.instances(`name-${i}`)).resolves.toEqual([]);
      const names = cached(registry);
      expect(names.length, String(i)).toBeLessThanOrEqual(4);
      expect(names).toContain('routed');
      expect(names).toContain(`name-${i}`);
    }
    expect(cached(registry)).toEqual(['name-47', 'name-48', 'name-49', 'routed']);
    watch.close();
  });

  it('never drops a view while a lookup waits for its first state', async () => {
    const { registry } = make({ idleViewMs: 3_600_000, maxIdleViews: 1 });
    for (let i = 0; i < 20; i++) {
      await registry.register({ service: `burst-${i}`, id: 'x', address: 'http://127.0.0.1:1' });
    }
    // Twenty first lookups at once, with room for one idle view: each still gets its answer.
    const all = await Promise.all(Array.from({ length: 20 }, (_, i) => registry.instances(`burst-${i}`)));
    expect(all.map((instances) => instances.map((x) => x.id))).toEqual(Array.from({ length: 20 }, () => ['x']));
    // The bound holds again at the next sweep, once no lookup pins them.
    await until(() => cached(registry).length <= 1, 10_000, 'the bound to hold');
  });
});
