// ConfigCenter.snapshot (entries with the namespace revision, and whether a prefix changed
// since a revision), rollback's `deleted`, and SchemaRegistry redefining schemas that carry
// an `$id`: on the memory store and on the real Redis.
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigCenter } from '../../src/config/ConfigCenter.js';
import { SchemaRegistry } from '../../src/config/SchemaRegistry.js';
import { InvalidOptionError, NotFoundError, ValidationError } from '../../src/errors.js';
import { memoryStore } from '../../src/store/memory/MemoryStore.js';
import { redisStore } from '../../src/store/redis/RedisStore.js';
import type { Store } from '../../src/store/Store.js';
import { deletePrefix, redisUrl, requireRedis, testPrefix } from '../helpers/redis.js';

const redisAvailable = await requireRedis('config snapshot on Redis');
const prefix = testPrefix('config-snapshot');

function suite(name: string, open: () => Store): void {
  describe(`ConfigCenter.snapshot on ${name}`, () => {
    const store = open();
    const config = new ConfigCenter({ store, namespace: 'snap', namespaces: ['other'], logLimit: 5 });
    afterAll(async () => {
      await config.close();
      await store.close();
    });

    it('returns the entries under the prefix and the revision they were read at', async () => {
      const empty = await config.snapshot('app/');
      // A namespace never written has no generation yet.
      expect(empty).toEqual({ entries: [], revision: 0, generation: '', changed: undefined });
      await config.set('app/a', 1);
      await config.set('app/b', { x: true });
      await config.set('zzz', 'outside');
      const s = await config.snapshot('app/');
      expect(s.revision).toBe(3);
      expect(s.generation).toMatch(/^\d+$/);
      expect(s.entries.map((e) => [e.key, e.value, e.version, e.stale])).toEqual([
        ['app/a', 1, 1, false],
        ['app/b', { x: true }, 1, false],
      ]);
      expect(s.changed).toBeUndefined();
    });

    it('says whether a key under the prefix changed since a revision', async () => {
      const at = (await config.snapshot('app/')).revision;
      expect((await config.snapshot('app/', { since: at })).changed).toBe(false);
      await config.set('zzz', 'still outside');
      const unrelated = await config.snapshot('app/', { since: at });
      expect(unrelated.revision).toBe(at + 1);
      expect(unrelated.changed).toBe(false);
      await config.delete('app/a');
      const deleted = await config.snapshot('app/', { since: at });
      expect(deleted.changed).toBe(true);
      expect(deleted.entries.map((e) => e.key)).toEqual(['app/b']);
      // A revision ahead of the store (one that lost its data) counts as a change.
      expect((await config.snapshot('app/', { since: deleted.revision + 10 })).changed).toBe(true);
      // Past the change log (logLimit 5), the store cannot tell: a change, to be safe.
      for (let i = 0; i < 6; i++) await config.set('zzz', i);
      expect((await config.snapshot('app/', { since: at })).changed).toBe(true);
    });

    it('with the generation of `since`, a revision of another generation counts as changed', async () => {
      const s = await config.snapshot('app/');
      const { revision: since, generation } = s;
      expect((await config.snapshot('app/', { since, generation })).changed).toBe(false);
      await config.set('zzz', 'outside again');
      expect((await config.snapshot('app/', { since, generation })).changed).toBe(false);
      // The same revision numbers in a generation the store no longer has: a change.
      const other = await config.snapshot('app/', { since, generation: `${generation}0` });
      expect(other).toMatchObject({ changed: true, generation });
      expect((await config.snapshot('app/', { since: since + 1, generation: '1' })).changed).toBe(true);
      // The empty position (a namespace not written yet) follows into the first generation.
      const fresh = await config.snapshot('new/', { namespace: 'other' });
      expect(fresh).toMatchObject({ revision: 0, generation: '' });
      await config.set('elsewhere', 1, { namespace: 'other' });
      const later = { since: 0, generation: '', namespace: 'other' };
      expect((await config.snapshot('new/', later)).changed).toBe(false);
      await config.set('new/a', 1, { namespace: 'other' });
      expect((await config.snapshot('new/', later)).changed).toBe(true);
    });

    it('keeps namespaces apart and checks its arguments', async () => {
      await config.set('app/a', 'other ns', { namespace: 'other' });
      const other = await config.snapshot('app/', { namespace: 'other' });
      expect(other.revision).toBe(3);
      expect(other.entries.map((e) => e.value)).toEqual(['other ns']);
      await expect(config.snapshot('', { namespace: 'nope' })).rejects.toBeInstanceOf(NotFoundError);
      await expect(config.snapshot('', { since: -1 })).rejects.toBeInstanceOf(InvalidOptionError);
      await expect(config.snapshot('', { since: 0, generation: 7 as never })).rejects.toThrow(/generation/);
      await expect(config.snapshot('x'.repeat(300))).rejects.toBeInstanceOf(InvalidOptionError);
    });

    it('rollback says whether it deleted the key', async () => {
      const v1 = await config.set('rb', { n: 1 });
      await config.delete('rb');
      const del = (await config.history('rb'))[0];
      expect(del?.deleted).toBe(true);
      const back = await config.rollback('rb', v1.version);
      expect(back).toMatchObject({ version: 3, deleted: false });
      const again = await config.rollback('rb', 2);
      expect(again).toMatchObject({ version: 4, deleted: true });
      expect(await config.get('rb')).toBeUndefined();
      // Rolling back to a delete while the key is already deleted writes nothing.
      expect(await config.rollback('rb', 2)).toMatchObject({ version: 4, deleted: true });
    });
  });
}

suite('memory', () => memoryStore());
if (redisAvailable) {
  suite('redis', () => redisStore(redisUrl(), { prefix }));
  afterAll(() => deletePrefix(redisUrl(), prefix));
}

describe.skipIf(!redisAvailable)('ConfigCenter.snapshot when Redis lost its data', () => {
  const lossPrefix = testPrefix('config-snapshot-loss');
  afterAll(() => deletePrefix(redisUrl(), lossPrefix));

  it('a revision from before the loss counts as changed when its generation is given', async () => {
    const store = redisStore(redisUrl(), { prefix: lossPrefix });
    const config = new ConfigCenter({ store, namespace: 'lost' });
    try {
      await config.set('app/a', 'before');
      const before = await config.snapshot('app/');
      expect(before).toMatchObject({ revision: 1, changed: undefined });
      // As a restart without persistence would: every key of the store is gone.
      await deletePrefix(redisUrl(), lossPrefix);
      await config.set('app/b', 'after');
      const same = await config.snapshot('app/', { since: before.revision, generation: before.generation });
      expect(same.revision).toBe(before.revision);
      expect(same.generation).not.toBe(before.generation);
      expect(same.entries.map((e) => [e.key, e.value])).toEqual([['app/b', 'after']]);
      expect(same.changed).toBe(true);
      // Also when the new generation's own changes after that revision lie outside the prefix.
      await config.set('zzz', 'outside');
      const behind = await config.snapshot('app/', { since: before.revision, generation: before.generation });
      expect(behind).toMatchObject({ revision: 2, changed: true });
      // Within the new generation, judged as before.
      const now = { since: behind.revision, generation: behind.generation };
      expect((await config.snapshot('app/', now)).changed).toBe(false);
    } finally {
      await config.close();
      await store.close();
    }
  });
});

describe('SchemaRegistry with $id', () => {
  it('redefines a key whose schema has an $id, and a failed define changes nothing', () => {
    const r = new SchemaRegistry();
    r.define('ns', 'a', { $id: 'limits', type: 'object', properties: { rps: {} }, required: ['rps'] });
    r.define('ns', 'a', { $id: 'limits', type: 'object', properties: { burst: {} }, required: ['burst'] });
    expect(() => r.check('ns', 'a', { rps: 1 })).toThrow(ValidationError);
    r.check('ns', 'a', { burst: 1 });
    // Another key may not take the id; the first key's schema still works and can be referenced.
    expect(() => r.define('ns', 'b', { $id: 'limits', type: 'string' })).toThrow(InvalidOptionError);
    r.check('ns', 'a', { burst: 1 });
    expect(r.has('ns', 'b')).toBe(false);
    r.define('ns', 'b', { type: 'array', items: { $ref: 'limits' } });
    expect(() => r.check('ns', 'b', [{}])).toThrow(ValidationError);
    // An invalid replacement keeps the schema in force.
    expect(() => r.define('ns', 'a', { type: 'nonsense' })).toThrow(InvalidOptionError);
    expect(() => r.check('ns', 'a', {})).toThrow(ValidationError);
    // Undefined, the id is free again.
    expect(r.undefine('ns', 'a')).toBe(true);
    r.define('ns', 'c', { $id: 'limits', type: 'string' });
    r.check('ns', 'c', 'ok');
  });
});

describe('ConfigCenter.snapshot against a model', () => {
  it('says changed exactly when a write under the prefix came after `since` (while the log covers it)', async () => {
    const LOG = 12;
    const keys = ['a/1', 'a/2', 'a', 'ab', 'b/1'];
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ key: fc.constantFrom(...keys), del: fc.boolean() }), { maxLength: 30 }),
        fc.constantFrom('', 'a/', 'a', 'b/', 'c'),
        fc.nat({ max: 35 }),
        async (ops, prefix, since) => {
          const store = memoryStore();
          const config = new ConfigCenter({ store, logLimit: LOG, historyLimit: 100 });
          try {
            // The model: the namespace revision counts every write and every delete that found a value.
            const written: string[] = [];
            const live = new Map<string, number>();
            for (const [i, op] of ops.entries()) {
              if (op.del) {
                if (await config.delete(op.key)) written.push(op.key);
                live.delete(op.key);
              } else {
                await config.set(op.key, i);
                written.push(op.key);
                live.set(op.key, i);
              }
            }
            const s = await config.snapshot(prefix, { since });
            expect(s.revision).toBe(written.length);
            const expected = [...live].filter(([k]) => k.startsWith(prefix)).sort(([a], [b]) => (a < b ? -1 : 1));
            expect(s.entries.map((e) => [e.key, e.value])).toEqual(expected);
            const under = written.slice(since).some((k) => k.startsWith(prefix));
            if (since > written.length || under) expect(s.changed).toBe(true);
            else if (written.length - since <= LOG) expect(s.changed).toBe(false);
          } finally {
            await config.close();
            await store.close();
          }
        },
      ),
      { numRuns: 200 },
    );
  });
});
