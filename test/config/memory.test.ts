import { describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG_OPTIONS, resolveConfigOptions } from '../../src/config/ConfigOptions.js';
import { memoryStore } from '../../src/store/memory/MemoryStore.js';
import { run } from '../store/configContract.js';

run('memory', async () => memoryStore());

describe('config options', () => {
  it('applies defaults, adds the default namespace to namespaces, and freezes', async () => {
    const store = memoryStore();
    const o = resolveConfigOptions({ store, namespace: 'prod', namespaces: ['shared', 'prod'] });
    expect(o).toMatchObject({
      namespace: 'prod',
      namespaces: ['prod', 'shared'],
      maxValueBytes: 262_144,
      maxKeyLength: 256,
      historyLimit: 50,
      logLimit: 1_000,
      pollIntervalMs: 1_000,
    });
    expect(Object.isFrozen(o) && Object.isFrozen(o.namespaces)).toBe(true);
    expect(resolveConfigOptions({ store }).namespace).toBe(DEFAULT_CONFIG_OPTIONS.namespace);
    await store.close();
  });
});
