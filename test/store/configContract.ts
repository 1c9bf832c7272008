/**
 * The config contract: every backend (memory, Redis standalone, Cluster) must pass these
 * same tests, on the storage part (`store.config`) and through `ConfigCenter`. Each backend's
 * test file calls `run(name, makeStore)`.
 */
import fc from 'fast-check';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ConfigCenter, type ConfigChange, type ConfigEvent } from '../../src/config/ConfigCenter.js';
import type { ConfigOptions } from '../../src/config/ConfigOptions.js';
import {
  InvalidOptionError,
  NotFoundError,
  StoreUnavailableError,
  ValidationError,
  VersionConflictError,
} from '../../src/errors.js';
import { type ConfigStorage, type ConfigSync, type ConfigWrite, configChannel } from '../../src/store/ConfigStorage.js';
import type { Store } from '../../src/store/Store.js';
import { casIncrements } from '../config/casIncrements.js';

/** Makes a store (its own key prefix on a shared server). */
export type MakeStore = () => Promise<Store>;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let counter = 0;
/** A namespace no other test uses. */
const freshNs = () => `ns-${++counter}-${Math.random().toString(36).slice(2, 8)}`;

/** Waits until `check()` is true, polling; fails after `ms`. */
async function eventually(check: () => boolean | Promise<boolean>, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(5);
  }
}

/**
 * A store whose config part never delivers change notifications (pub/sub lost), and whose
 * calls fail with StoreUnavailableError while `link.down` is true (a disconnected client).
 */
export function deafConfigStore(store: Store, link: { down: boolean } = { down: false }): Store {
  const config = new Proxy(store.config, {
    get(target, prop) {
      if (prop === 'onChange') return () => () => {};
      const value = Reflect.get(target, prop, target);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) =>
        link.down
          ? Promise.reject(new StoreUnavailableError('link down (test)'))
          : (value as (...a: unknown[]) => unknown).apply(target, args);
    },
  }) as ConfigStorage;
  return new Proxy(store, {
    get(target, prop) {
      if (prop === 'config') return config;
      const value = Reflect.get(target, prop, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

/** Applies `sync` to a map key -> value text as a watcher would (snapshots replace). */
function applySync(state: Map<string, string>, sync: ConfigSync): Map<string, string> {
  if (sync.kind === 'current') return state;
  if (sync.kind === 'snapshot') return new Map(sync.entries.map((e) => [e.key, e.value]));
  const next = new Map(state);
  for (const c of sync.changes) {
    if (c.deleted) next.delete(c.key);
    else next.set(c.key, c.value);
  }
  return next;
}

/** Runs the config contract against the backend `makeStore` creates. */
export function run(name: string, makeStore: MakeStore): void {
  describe(`config contract: ${name}`, () => {
    let store: Store;
    const centers: ConfigCenter[] = [];
    const center = (options: Partial<ConfigOptions> = {}) => {
      const c = new ConfigCenter({ store, namespace: freshNs(), pollIntervalMs: 50, ...options });
      centers.push(c);
      return c;
    };
    beforeAll(async () => {
      store = await makeStore();
    });
    afterEach(async () => {
      await Promise.all(centers.splice(0).map((c) => c.close()));
    });
    afterAll(async () => {
      await store.close();
    });

    describe('storage part', () => {
      const w = (namespace: string, key: string, value: string | undefined, expectedVersion?: number): ConfigWrite => ({
        namespace,
        key,
        value,
        expectedVersion,
        historyLimit: 10,
        logLimit: 100,
      });

      it('versions are gapless across writes and deletes; 0 expects "no live value"', async () => {
        const ns = freshNs();
        expect(await store.config.get(ns, 'k')).toBeUndefined();
        expect(await store.config.write(w(ns, 'k', '1', 1))).toEqual({ status: 'conflict', actual: 0 });
        const v1 = await store.config.write(w(ns, 'k', '1', 0));
        expect(v1).toMatchObject({ status: 'written', version: 1, rev: 1 });
        expect(await store.config.write(w(ns, 'k', '2', 0))).toEqual({ status: 'conflict', actual: 1 });
        expect(await store.config.write(w(ns, 'k', '2', 1))).toMatchObject({ status: 'written', version: 2 });
        expect(await store.config.write(w(ns, 'k', undefined, 1))).toEqual({ status: 'conflict', actual: 2 });
        expect(await store.config.write(w(ns, 'k', undefined))).toMatchObject({ status: 'written', version: 3 });
        expect(await store.config.write(w(ns, 'k', undefined))).toEqual({ status: 'absent' });
        expect(await store.config.get(ns, 'k')).toBeUndefined();
        expect(await store.config.write(w(ns, 'k', '"back"', 0))).toMatchObject({
          status: 'written',
          version: 4,
          rev: 4,
        });
        const got = await store.config.get(ns, 'k');
        expect(got).toMatchObject({ key: 'k', version: 4, deleted: false, value: '"back"' });
        expect(Math.abs(got!.updatedAt - (await store.time()))).toBeLessThan(5_000);
        const history = await store.config.history(ns, 'k', 10);
        expect(history.map((h) => [h.version, h.deleted, h.value])).toEqual([
          [4, false, '"back"'],
          [3, true, 'null'],
          [2, false, '2'],
          [1, false, '1'],
        ]);
        expect((await store.config.history(ns, 'k', 2)).map((h) => h.version)).toEqual([4, 3]);
      });

      it('history keeps historyLimit versions; namespaces do not share keys', async () => {
        const ns = freshNs();
        const other = freshNs();
        for (let i = 1; i <= 15; i++) await store.config.write(w(ns, 'k', String(i)));
        await store.config.write(w(other, 'k', '"other"'));
        expect((await store.config.history(ns, 'k', 100)).map((h) => h.version)).toEqual([
          15, 14, 13, 12, 11, 10, 9, 8, 7, 6,
        ]);
        expect((await store.config.get(ns, 'k'))?.value).toBe('15');
        expect((await store.config.get(other, 'k'))?.value).toBe('"other"');
      });

      it('sync: a snapshot of the prefix, then exactly the missed changes with their values', async () => {
        const ns = freshNs();
        await store.config.write(w(ns, 'app.a', '1'));
        await store.config.write(w(ns, 'app.b', '{"x":[1,"y"]}'));
        await store.config.write(w(ns, 'other', 'true'));
        const snap = await store.config.sync(ns, 'app.', undefined);
        expect(snap.kind === 'snapshot' && snap.entries.map((e) => [e.key, e.version, e.value])).toEqual([
          ['app.a', 1, '1'],
          ['app.b', 1, '{"x":[1,"y"]}'],
        ]);
        expect(snap.rev).toBe(3);
        await store.config.write(w(ns, 'app.a', '2'));
        await store.config.write(w(ns, 'other', 'false'));
        await store.config.write(w(ns, 'app.a', '3'));
        await store.config.write(w(ns, 'app.b', undefined));
        const missed = await store.config.sync(ns, 'app.', { gen: snap.gen, rev: snap.rev });
        expect(missed.kind).toBe('changes');
        expect(
          missed.kind === 'changes' && missed.changes.map((c) => [c.rev, c.key, c.version, c.deleted, c.value]),
        ).toEqual([
          [4, 'app.a', 2, false, '2'],
          [6, 'app.a', 3, false, '3'],
          [7, 'app.b', 2, true, 'null'],
        ]);
        expect(missed.rev).toBe(7);
        expect(await store.config.sync(ns, 'app.', { gen: snap.gen, rev: 7 })).toEqual({
          kind: 'current',
          gen: snap.gen,
          rev: 7,
        });
        const otherGen = await store.config.sync(ns, 'app.', { gen: `${snap.gen}9`, rev: 2 });
        expect(otherGen.kind === 'snapshot' && otherGen.entries.map((e) => e.key)).toEqual(['app.a']);
        // list() is the snapshot without a position
        expect(await store.config.sync(freshNs(), '', undefined)).toEqual({
          kind: 'snapshot',
          gen: '',
          rev: 0,
          entries: [],
        });
      });

      it('sync answers with a snapshot when the log or a key history no longer covers the gap', async () => {
        const ns = freshNs();
        const small = { historyLimit: 2, logLimit: 3 };
        await store.config.write({ ...w(ns, 'a', '0'), ...small });
        const start = await store.config.sync(ns, '', undefined);
        for (let i = 1; i <= 4; i++) await store.config.write({ ...w(ns, 'a', String(i)), ...small });
        // The log holds 3 entries, the gap is 4: snapshot.
        expect((await store.config.sync(ns, '', { gen: start.gen, rev: 1 })).kind).toBe('snapshot');
        // The log covers revs 4..5, but history of `a` keeps versions 4..5 only: rev 3 (version 3) is gone.
        expect((await store.config.sync(ns, '', { gen: start.gen, rev: 2 })).kind).toBe('snapshot');
        // From rev 3: revs 4 and 5 are versions 4 and 5, both still in the history.
        const covered = await store.config.sync(ns, '', { gen: start.gen, rev: 3 });
        expect(covered.kind === 'changes' && covered.changes.map((c) => [c.version, c.value])).toEqual([
          [4, '3'],
          [5, '4'],
        ]);
      });

      it('onChange delivers each change with its value, in revision order', async () => {
        const ns = freshNs();
        const got: [number, string, string][] = [];
        const off = store.config.onChange(ns, (c) => got.push([c.rev, c.key, c.value]));
        // onChange subscribes in the background; subscribe() on the same channel resolves once it is active.
        const probe = await store.changes.subscribe(configChannel(ns), () => {});
        await store.config.write(w(ns, 'a', '"line1\\nline2"'));
        await store.config.write(w(ns, 'b/ü', '{"é":1}'));
        await store.config.write(w(ns, 'a', undefined));
        await eventually(() => got.length === 3);
        expect(got).toEqual([
          [1, 'a', '"line1\\nline2"'],
          [2, 'b/ü', '{"é":1}'],
          [3, 'a', 'null'],
        ]);
        off();
        await probe();
      });

      it('keys with braces, #, slashes and non-ASCII characters stay distinct', async () => {
        const ns = freshNs();
        const keys = ['a{b}', 'a{c}', '#a', 'a/b:c', 'ключ', 'a*', 'a?', 'a[1]'];
        for (const k of keys) await store.config.write(w(ns, k, JSON.stringify(k)));
        for (const k of keys) expect((await store.config.get(ns, k))?.value).toBe(JSON.stringify(k));
        const all = await store.config.sync(ns, 'a', undefined);
        expect(all.kind === 'snapshot' && all.entries.map((e) => e.key)).toEqual([
          'a*',
          'a/b:c',
          'a?',
          'a[1]',
          'a{b}',
          'a{c}',
        ]);
      });

      it('model check: versions and catch-up from any earlier revision (fast-check)', async () => {
        const op = fc.record({
          key: fc.constantFrom('p.a', 'p.b', 'q.c'),
          del: fc.boolean(),
          v: fc.nat(99),
          cas: fc.boolean(),
        });
        await fc.assert(
          fc.asyncProperty(
            fc.array(op, { minLength: 1, maxLength: 25 }),
            fc.integer({ min: 1, max: 6 }),
            async (ops, logLimit) => {
              const ns = freshNs();
              const model = new Map<string, { version: number; value: string | undefined }>();
              const states: { sync: ConfigSync; state: Map<string, string> }[] = [];
              for (const o of ops) {
                const cur = model.get(o.key) ?? { version: 0, value: undefined };
                const live = cur.value === undefined ? 0 : cur.version;
                const value = o.del ? undefined : String(o.v);
                const result = await store.config.write({
                  namespace: ns,
                  key: o.key,
                  value,
                  expectedVersion: o.cas ? live : undefined,
                  historyLimit: 3,
                  logLimit,
                });
                if (o.del && live === 0) {
                  expect(result.status).toBe('absent');
                } else {
                  expect(result).toMatchObject({ status: 'written', version: cur.version + 1 });
                  model.set(o.key, { version: cur.version + 1, value });
                }
                const sync = await store.config.sync(ns, 'p.', undefined);
                states.push({ sync, state: applySync(new Map(), sync) });
              }
              const expected = new Map(
                [...model]
                  .filter(([k, e]) => k.startsWith('p.') && e.value !== undefined)
                  .map(([k, e]) => [k, e.value!]),
              );
              for (const [key, e] of model) {
                const got = await store.config.get(ns, key);
                expect(got === undefined ? undefined : [got.version, got.value]).toEqual(
                  e.value === undefined ? undefined : [e.version, e.value],
                );
              }
              for (const { sync, state } of states) {
                const caught = await store.config.sync(ns, 'p.', { gen: sync.gen, rev: sync.rev });
                expect(applySync(state, caught)).toEqual(expected);
              }
            },
          ),
          { numRuns: 15 },
        );
      });
    });

    describe('ConfigCenter', () => {
      it('set, get, list, delete, history and rollback', async () => {
        const config = center();
        expect(await config.get('gateway.routes')).toBeUndefined();
        const routes = [{ prefix: '/api/users', service: 'users' }];
        expect(await config.set('gateway.routes', routes)).toMatchObject({ version: 1 });
        await config.set('gateway.routes', [], { expectedVersion: 1 });
        await config.set('gateway.timeout', 5_000);
        expect(await config.get('gateway.routes')).toMatchObject({
          key: 'gateway.routes',
          value: [],
          version: 2,
          stale: false,
        });
        expect((await config.list('gateway.')).map((e) => [e.key, e.version])).toEqual([
          ['gateway.routes', 2],
          ['gateway.timeout', 1],
        ]);
        expect((await config.list()).length).toBe(2);
        expect(await config.rollback('gateway.routes', 1)).toMatchObject({ version: 3 });
        expect((await config.get('gateway.routes'))?.value).toEqual(routes);
        const history = await config.history('gateway.routes');
        expect(history.map((h) => [h.version, h.value])).toEqual([
          [3, routes],
          [2, []],
          [1, routes],
        ]);
        expect((await config.history('gateway.routes', { limit: 1 })).map((h) => h.version)).toEqual([3]);
        expect(await config.delete('gateway.timeout')).toBe(true);
        expect(await config.delete('gateway.timeout')).toBe(false);
        expect(await config.get('gateway.timeout')).toBeUndefined();
        // Rolling back to before the delete brings it back; to the delete deletes it again.
        expect(await config.rollback('gateway.timeout', 1)).toMatchObject({ version: 3 });
        expect((await config.get('gateway.timeout'))?.value).toBe(5_000);
        expect(await config.rollback('gateway.timeout', 2)).toMatchObject({ version: 4 });
        expect(await config.get('gateway.timeout')).toBeUndefined();
        await expect(config.rollback('gateway.routes', 9)).rejects.toBeInstanceOf(NotFoundError);
        await expect(config.rollback('never', 1)).rejects.toThrow(/no history/);
      });

      it('compare-and-set: a stale expectedVersion fails with VersionConflictError and changes nothing', async () => {
        const config = center();
        await config.set('k', 'a');
        const err = await config.set('k', 'b', { expectedVersion: 0 }).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(VersionConflictError);
        expect(err).toMatchObject({ code: 'ERR_VERSION_CONFLICT', expected: 0, actual: 1, statusCode: 412 });
        await expect(config.delete('k', { expectedVersion: 5 })).rejects.toMatchObject({ actual: 1 });
        await expect(config.rollback('k', 1, { expectedVersion: 7 })).rejects.toBeInstanceOf(VersionConflictError);
        expect(await config.get('k')).toMatchObject({ value: 'a', version: 1 });
        expect(await config.delete('k', { expectedVersion: 1 })).toBe(true);
        expect(await config.set('k', 'c', { expectedVersion: 0 })).toMatchObject({ version: 3 });
      });

      it('rollback to a delete of a key already deleted writes nothing, also with expectedVersion 0', async () => {
        const config = center();
        await config.set('k', 1);
        await config.delete('k');
        const [head] = await config.history('k');
        const noop = { version: 2, updatedAt: head?.updatedAt, deleted: true };
        expect(await config.rollback('k', 2, { expectedVersion: 0 })).toEqual(noop);
        expect(await config.rollback('k', 2)).toEqual(noop);
        expect((await config.history('k')).map((h) => [h.version, h.deleted])).toEqual([
          [2, true],
          [1, false],
        ]);
        // Another expected version is still a conflict: the key has no live value.
        await expect(config.rollback('k', 2, { expectedVersion: 1 })).rejects.toMatchObject({
          code: 'ERR_VERSION_CONFLICT',
          expected: 1,
          actual: 0,
        });
      });

      it('no lost update: 10 writers x 50 CAS increments end at 500, gapless, every watcher at the end', async () => {
        const namespace = freshNs();
        const writers = [center({ namespace }), center({ namespace })];
        const watchers = [center({ namespace }), center({ namespace }), center({ namespace })];
        const seen = watchers.map(() => [] as number[]);
        await Promise.all(
          watchers.map((c, i) => c.watch('counter', (ch) => seen[i]!.push(ch.version), { exact: true }).ready),
        );
        const { versions, conflicts } = await casIncrements(writers, 'counter', 10, 50);
        expect(await writers[0]!.get('counter')).toMatchObject({ value: 500, version: 500 });
        expect([...versions].sort((a, b) => a - b)).toEqual(Array.from({ length: 500 }, (_, i) => i + 1));
        expect(conflicts).toBeGreaterThanOrEqual(0);
        await eventually(() => seen.every((s) => s.at(-1) === 500), 10_000);
        for (const s of seen) {
          // Every watcher saw versions in increasing order (each one, unless it resynchronised).
          expect([...s].sort((a, b) => a - b)).toEqual(s);
        }
      });

      it('define(): writes that fail the schema are refused, pointing at the field; the value stays', async () => {
        const config = center();
        config.define('gateway.routes', {
          type: 'array',
          items: {
            type: 'object',
            required: ['prefix', 'service'],
            additionalProperties: false,
            properties: {
              prefix: { type: 'string', pattern: '^/' },
              service: { type: 'string' },
              timeoutMs: { type: 'integer', minimum: 1 },
            },
          },
        });
        const good = [{ prefix: '/a', service: 'users' }];
        await config.set('gateway.routes', good);
        const cases: [unknown, string, RegExp][] = [
          [[{ prefix: 'a', service: 'users' }], '/0/prefix', /must match pattern/],
          [[good[0], { prefix: '/b' }], '/1/service', /is required/],
          [[{ ...good[0], timeoutMs: 0 }], '/0/timeoutMs', /must be >= 1/],
          [[{ ...good[0], extra: 1 }], '/0/extra', /not allowed/],
          [{ prefix: '/a' }, '', /must be array/],
        ];
        for (const [value, path, message] of cases) {
          const err = await config.set('gateway.routes', value as never).catch((e: unknown) => e);
          expect(err, JSON.stringify(value)).toBeInstanceOf(ValidationError);
          expect(err).toMatchObject({ code: 'ERR_VALIDATION', path, statusCode: 400 });
          expect((err as Error).message).toMatch(message);
          if (path !== '') expect((err as Error).message).toContain(path);
        }
        expect(await config.get('gateway.routes')).toMatchObject({ value: good, version: 1 });
        // Another key is unaffected; undefine() lifts the schema.
        await config.set('gateway.other', { anything: true });
        expect(config.undefine('gateway.routes')).toBe(true);
        expect(config.undefine('gateway.routes')).toBe(false);
        await config.set('gateway.routes', 'free now');
        // A rollback to a value the (new) schema refuses is refused too.
        config.define('gateway.routes', { type: 'string' });
        await expect(config.rollback('gateway.routes', 1)).rejects.toBeInstanceOf(ValidationError);
        expect((await config.get('gateway.routes'))?.value).toBe('free now');
        expect(() => config.define('x', { type: 'nope' })).toThrow(InvalidOptionError);
        expect(() => config.define('x', 'schema' as never)).toThrow(/schema/);
      });

      it('watch: current values first, then every change in order; exact keys; close stops it', async () => {
        const config = center();
        const writer = center({ namespace: config.options.namespace });
        await config.set('app.a', 1);
        await config.set('app.b', 2);
        await config.set('other', 3);
        const got: string[] = [];
        const exact: string[] = [];
        const w = config.watch('app.', (c) =>
          got.push(`${c.reason}:${c.type}:${c.key}@${c.version}=${JSON.stringify(c.value)}`),
        );
        const e = config.watch('app.a', (c) => exact.push(`${c.key}@${c.version}`), { exact: true });
        await Promise.all([w.ready, e.ready]);
        expect(got).toEqual(['initial:set:app.a@1=1', 'initial:set:app.b@1=2']);
        await writer.set('app.a', { n: 2 });
        await writer.set('other', 4);
        await writer.set('app.ab', 'x');
        await writer.delete('app.b');
        await eventually(() => got.length === 5);
        expect(got.slice(2)).toEqual([
          'change:set:app.a@2={"n":2}',
          'change:set:app.ab@1="x"',
          'change:delete:app.b@2=undefined',
        ]);
        expect(exact).toEqual(['app.a@1', 'app.a@2']);
        w.close();
        w.close();
        await writer.set('app.a', 3);
        await eventually(() => exact.length === 3);
        expect(got).toHaveLength(5);
        e.close();
      });

      it('a write right after watch() reaches the watch at once, not at the next poll (no sync request lost)', async () => {
        const config = center({ pollIntervalMs: 60_000 });
        const got: string[] = [];
        const w = config.watch('k', (c) => got.push(`${c.reason}:${c.key}@${c.version}`));
        await config.set('k', 1);
        await w.ready;
        await eventually(() => got.length > 0, 2_000);
        expect(got).toHaveLength(1);
        expect(got[0]).toMatch(/^(initial|change):k@1$/);
        await config.set('k', 2);
        await eventually(() => got.length === 2, 2_000);
        expect(got[1]).toBe('change:k@2');
      });

      it('a watch that hears no notifications still reports every change, from its revision (catch-up)', async () => {
        const writer = center();
        const namespace = writer.options.namespace;
        const deaf = new ConfigCenter({ store: deafConfigStore(store), namespace, pollIntervalMs: 100 });
        centers.push(deaf);
        const got: string[] = [];
        await deaf.watch('', (c) => got.push(`${c.reason}:${c.key}@${c.version}`)).ready;
        await writer.set('a', 1);
        await writer.set('a', 2);
        await writer.set('b', 1);
        await writer.delete('a');
        await eventually(() => got.length === 4);
        expect(got).toEqual(['change:a@1', 'change:a@2', 'change:b@1', 'change:a@3']);
      });

      it('a watch disconnected while others write reports each missed change when it is back', async () => {
        const writer = center();
        const namespace = writer.options.namespace;
        const link = { down: false };
        const away = new ConfigCenter({ store: deafConfigStore(store, link), namespace, pollIntervalMs: 50 });
        centers.push(away);
        const events: ConfigEvent[] = [];
        away.onEvent((e) => events.push(e));
        const got: string[] = [];
        await away.watch('', (c) => got.push(`${c.reason}:${c.type}:${c.key}@${c.version}`)).ready;
        link.down = true;
        await eventually(() => away.degraded);
        await writer.set('a', 1);
        await writer.set('a', 2);
        await writer.set('b', 1);
        await writer.delete('a');
        await sleep(150);
        expect(got).toEqual([]);
        link.down = false;
        await eventually(() => got.length === 4);
        expect(got).toEqual(['change:set:a@1', 'change:set:a@2', 'change:set:b@1', 'change:delete:a@3']);
        await eventually(() => !away.degraded);
        expect(events.map((e) => e.type)).toEqual(['degraded', 'recovered']);
      });

      it('a watch that fell behind beyond the log reports the difference (resync)', async () => {
        const writer = center({ logLimit: 2 });
        const namespace = writer.options.namespace;
        await writer.set('gone', 1);
        await writer.set('kept', 1);
        const link = { down: false };
        const away = new ConfigCenter({ store: deafConfigStore(store, link), namespace, pollIntervalMs: 50 });
        centers.push(away);
        const got: string[] = [];
        await away.watch('', (c) => got.push(`${c.reason}:${c.type}:${c.key}@${c.version}`)).ready;
        expect(got).toEqual(['initial:set:gone@1', 'initial:set:kept@1']);
        link.down = true;
        for (let i = 0; i < 5; i++) await writer.set('kept', i + 2);
        await writer.delete('gone');
        link.down = false;
        await eventually(() => got.length === 4);
        expect(got.slice(2)).toEqual(['resync:set:kept@6', 'resync:delete:gone@1']);
      });

      it('store gone: last values are served stale, writes fail with ERR_STORE_UNAVAILABLE, degraded', async () => {
        const own = await makeStore();
        const config = new ConfigCenter({ store: own, namespace: freshNs(), pollIntervalMs: 50 });
        const events: ConfigEvent[] = [];
        config.onEvent((e) => events.push(e));
        await config.set('a', { on: true });
        await config.get('missing');
        const w = config.watch('w.', () => {});
        await config.set('w.x', 1);
        await w.ready;
        await eventually(async () => (await config.list('w.')).length === 1);
        await own.close();
        expect(await config.get('a')).toMatchObject({ value: { on: true }, version: 1, stale: true });
        expect(await config.get('missing')).toBeUndefined();
        expect(await config.list('w.')).toEqual([expect.objectContaining({ key: 'w.x', value: 1, stale: true })]);
        expect(config.degraded).toBe(true);
        expect(events[0]).toMatchObject({ type: 'degraded' });
        await expect(config.set('a', 2)).rejects.toMatchObject({ code: 'ERR_STORE_UNAVAILABLE' });
        await expect(config.get('never-read')).rejects.toBeInstanceOf(StoreUnavailableError);
        await expect(config.list('elsewhere.')).rejects.toBeInstanceOf(StoreUnavailableError);
        expect((await config.get('a'))?.value).toEqual({ on: true });
        await config.close();
      });

      it('values are JSON only, within the size limit: clear ValidationErrors with the field path', async () => {
        const config = center({ maxValueBytes: 1_024 });
        const cycle: Record<string, unknown> = {};
        cycle.self = cycle;
        const sparse: unknown[] = [1];
        sparse[2] = 3;
        const bad: [unknown, string, RegExp][] = [
          [undefined, '', /undefined is not a JSON value/],
          [{ a: { b: undefined } }, '/a/b', /undefined/],
          [{ f: () => 1 }, '/f', /function/],
          [[1, Number.NaN], '/1', /NaN/],
          [{ x: Number.POSITIVE_INFINITY }, '/x', /Infinity/],
          [{ big: 1n }, '/big', /bigint/],
          [{ d: new Date(0) }, '/d', /Date/],
          [{ m: new Map() }, '/m', /Map/],
          [{ s: Symbol('x') }, '/s', /symbol/],
          [cycle, '/self', /cycle/],
          [sparse, '/1', /sparse/],
          [{ 'a/b': { '~': undefined } }, '/a~1b/~0', /undefined/],
          ['x'.repeat(2_000), '', /2002 bytes as JSON, over the limit of 1024 \(maxValueBytes\)/],
        ];
        for (const [value, path, message] of bad) {
          const err = await config.set('k', value as never).catch((e: unknown) => e);
          expect(err).toBeInstanceOf(ValidationError);
          expect(err).toMatchObject({ code: 'ERR_VALIDATION', path });
          expect((err as Error).message).toMatch(message);
        }
        expect(await config.get('k')).toBeUndefined();
        // What JSON can hold comes back equal.
        const value = {
          s: 'ü\n"\\',
          n: -0.5,
          i: 12345678901234,
          b: false,
          z: null,
          a: [[], {}],
          o: Object.create(null),
        };
        await config.set('k', value);
        expect((await config.get('k'))?.value).toEqual(JSON.parse(JSON.stringify(value)));
      });

      it('bad keys, namespaces and options: clear typed errors', async () => {
        const config = center({ namespaces: ['shared'] });
        await expect(config.get(42 as never)).rejects.toBeInstanceOf(TypeError);
        await expect(config.get('')).rejects.toBeInstanceOf(InvalidOptionError);
        await expect(config.get('k'.repeat(257))).rejects.toThrow(/key/);
        await expect(config.set('a\u0000b', 1)).rejects.toThrow(/control/);
        await expect(config.get('k', { namespace: 'unknown' })).rejects.toBeInstanceOf(NotFoundError);
        await expect(config.get('k', { namespace: 'unknown' })).rejects.toThrow(/options.namespaces/);
        await expect(config.set('k', 1, { namespace: 'bad name!' })).rejects.toBeInstanceOf(InvalidOptionError);
        await expect(config.set('k', 1, { expectedVersion: -1 })).rejects.toThrow(/expectedVersion/);
        await expect(config.set('k', 1, { expectedVersion: 1.5 })).rejects.toThrow(/expectedVersion/);
        await expect(config.rollback('k', 0)).rejects.toThrow(/version/);
        await expect(config.history('k', { limit: 0 })).rejects.toThrow(/limit/);
        await expect(config.list(7 as never)).rejects.toBeInstanceOf(TypeError);
        expect(() => config.watch('k', 'x' as never)).toThrow(TypeError);
        expect(() => config.watch('', () => {}, { exact: true })).toThrow(InvalidOptionError);
        expect(() => config.define('k', {}, { namespace: 'nope' })).toThrow(NotFoundError);
        // The declared extra namespace works and is separate.
        await config.set('k', 'default-ns');
        await config.set('k', 'shared-ns', { namespace: 'shared' });
        expect((await config.get('k'))?.value).toBe('default-ns');
        expect((await config.get('k', { namespace: 'shared' }))?.value).toBe('shared-ns');
        for (const options of [
          {},
          { store: {} },
          { store, namespace: '' },
          { store, namespace: 'a b' },
          { store, namespaces: 'x' },
          { store, namespaces: ['ok', ''] },
          { store, maxValueBytes: 0 },
          { store, maxValueBytes: 64 * 1024 * 1024 },
          { store, historyLimit: 0 },
          { store, logLimit: 1.5 },
          { store, pollIntervalMs: 1 },
          { store, maxKeyLength: 0 },
        ]) {
          expect(() => new ConfigCenter(options as never), JSON.stringify(Object.keys(options))).toThrow(
            InvalidOptionError,
          );
        }
        const closed = center();
        await closed.close();
        await expect(closed.get('k')).rejects.toBeInstanceOf(StoreUnavailableError);
      });
    });
  });
}

export type { ConfigChange };
