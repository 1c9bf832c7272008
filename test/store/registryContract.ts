/**
 * The registry contract: every backend (memory, Redis standalone, Cluster) must pass these
 * same tests, on the storage part (`store.registry`) and through `ServiceRegistry`. Each
 * backend's test file calls `run(name, makeStore)`.
 *
 * Tests never assert how long something took; where expiry matters they use short ttls,
 * wait well past them, and check the outcome.
 */
import fc from 'fast-check';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { InvalidOptionError, StoreUnavailableError } from '../../src/errors.js';
import type { RegistryOptions } from '../../src/registry/RegistryOptions.js';
import { type RegistryEvent, ServiceRegistry } from '../../src/registry/ServiceRegistry.js';
import type { RegistryChange } from '../../src/registry/ServiceView.js';
import {
  type RegistryLimits,
  type RegistryStorage,
  type RegistrySync,
  registryChannel,
  type StoredInstance,
} from '../../src/store/RegistryStorage.js';
import type { Store } from '../../src/store/Store.js';

/** Makes a store (its own key prefix on a shared server). */
export type MakeStore = () => Promise<Store>;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let counter = 0;
/** A service name no other test uses. */
const fresh = (what: string) => `${what}-${++counter}-${Math.random().toString(36).slice(2, 8)}`;

/** Waits until `check()` is true, polling; fails after `ms`. */
async function eventually(check: () => boolean | Promise<boolean>, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(5);
  }
}

const LIMITS: RegistryLimits = { logLimit: 64, tombstoneMs: 3_600_000 };

/** A store whose registry part never delivers change notifications (a watcher that is always "disconnected"). */
export function deafStore(store: Store): Store {
  const registry = new Proxy(store.registry, {
    get(target, prop) {
      if (prop === 'onChange') return () => () => {};
      const value = Reflect.get(target, prop, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  }) as RegistryStorage;
  return new Proxy(store, {
    get(target, prop) {
      if (prop === 'registry') return registry;
      const value = Reflect.get(target, prop, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

/** Applies `sync` to a map of instances (id -> record) as a watcher would. */
function applySync(state: Map<string, string>, sync: RegistrySync): Map<string, string> {
  if (sync.kind === 'current') return state;
  if (sync.kind === 'snapshot') return new Map(sync.instances.map((i) => [i.id, i.record]));
  const next = new Map(state);
  for (const c of sync.changes) {
    if (c.type === 'register' || c.type === 'update') next.set(c.id, c.record);
    else next.delete(c.id);
  }
  return next;
}

const records = (instances: StoredInstance[]) => new Map(instances.map((i) => [i.id, i.record]));

/** Runs the registry contract against the backend `makeStore` creates. */
export function run(name: string, makeStore: MakeStore): void {
  describe(`registry contract: ${name}`, () => {
    let store: Store;
    const registries: ServiceRegistry[] = [];
    const registry = (options: Partial<RegistryOptions> = {}) => {
      const r = new ServiceRegistry({ store, ttlMs: 600, sweepIntervalMs: 50, ...options });
      registries.push(r);
      return r;
    };
    beforeAll(async () => {
      store = await makeStore();
    });
    afterEach(async () => {
      await Promise.all(registries.splice(0).map((r) => r.close()));
    });
    afterAll(async () => {
      await store.close();
    });

    describe('storage part', () => {
      const write = (service: string, id: string, record = `{"id":"${id}"}`, ttlMs = 10_000) => ({
        service,
        id,
        record,
        ttlMs,
        ...LIMITS,
      });

      it('epochs strictly increase per id; a renew with an older epoch is superseded', async () => {
        const s = fresh('svc');
        const a = await store.registry.register(write(s, 'x'));
        const b = await store.registry.register(write(s, 'x'));
        expect(a.status).toBe('registered');
        expect(b.epoch).toBeGreaterThan(a.epoch);
        expect(Number.isSafeInteger(b.epoch)).toBe(true);
        const stale = await store.registry.renew({ ...write(s, 'x', '{"stale":true}'), epoch: a.epoch });
        expect(stale.status).toBe('superseded');
        expect(stale.epoch).toBe(b.epoch);
        const sync = await store.registry.sync(s, undefined, LIMITS);
        expect(sync.kind === 'snapshot' && sync.instances.map((i) => [i.id, i.epoch, i.record])).toEqual([
          ['x', b.epoch, '{"id":"x"}'],
        ]);
        // The newer one renews, changes its record, and is renewed again without a change.
        expect((await store.registry.renew({ ...write(s, 'x'), epoch: b.epoch })).status).toBe('renewed');
        expect((await store.registry.renew({ ...write(s, 'x', '{"v":2}'), epoch: b.epoch })).status).toBe('updated');
        expect((await store.registry.renew({ ...write(s, 'x', '{"v":2}'), epoch: b.epoch })).status).toBe('renewed');
      });

      it('a removed registration leaves a tombstone: an older epoch cannot come back, its own can', async () => {
        const s = fresh('svc');
        const old = await store.registry.register(write(s, 'x'));
        const newer = await store.registry.register(write(s, 'x'));
        expect(await store.registry.deregister(s, 'x', old.epoch, LIMITS)).toBe(false); // not the live one
        expect(await store.registry.deregister(s, 'x', newer.epoch, LIMITS)).toBe(true);
        expect(await store.registry.deregister(s, 'x', newer.epoch, LIMITS)).toBe(false);
        expect((await store.registry.renew({ ...write(s, 'x'), epoch: old.epoch })).status).toBe('superseded');
        // A registration whose lease ran out may write itself again (a long pause, a lost store).
        const short = await store.registry.register(write(s, 'y', '{"y":1}', 100));
        await sleep(250);
        const again = await store.registry.renew({ ...write(s, 'y', '{"y":1}'), epoch: short.epoch });
        expect(again.status).toBe('reregistered');
        expect(again.epoch).toBe(short.epoch);
        // And a new registration after all that is newer than every tombstone.
        const fresher = await store.registry.register(write(s, 'x'));
        expect(fresher.epoch).toBeGreaterThan(newer.epoch);
      });

      it('every change bumps the index by one; sync returns exactly the missed changes', async () => {
        const s = fresh('svc');
        const empty = await store.registry.sync(s, undefined, LIMITS);
        expect(empty).toEqual({ kind: 'snapshot', gen: '', index: 0, instances: [] });
        const a = await store.registry.register(write(s, 'a'));
        const b = await store.registry.register(write(s, 'b'));
        await store.registry.renew({ ...write(s, 'a', '{"a":2}'), epoch: a.epoch });
        await store.registry.renew({ ...write(s, 'a', '{"a":2}'), epoch: a.epoch }); // no change
        await store.registry.deregister(s, 'b', b.epoch, LIMITS);
        const all = await store.registry.sync(s, { gen: '', index: 0 }, LIMITS);
        expect(all.kind).toBe('changes');
        if (all.kind !== 'changes') return;
        expect(all.index).toBe(4);
        expect(all.changes.map((c) => [c.index, c.type, c.id])).toEqual([
          [1, 'register', 'a'],
          [2, 'register', 'b'],
          [3, 'update', 'a'],
          [4, 'deregister', 'b'],
        ]);
        expect(all.changes.every((c) => c.gen === all.gen)).toBe(true);
        const from2 = await store.registry.sync(s, { gen: all.gen, index: 2 }, LIMITS);
        expect(from2.kind === 'changes' && from2.changes.map((c) => c.index)).toEqual([3, 4]);
        expect(await store.registry.sync(s, { gen: all.gen, index: 4 }, LIMITS)).toEqual({
          kind: 'current',
          gen: all.gen,
          index: 4,
        });
        // Another generation: a snapshot, never "continue".
        const other = await store.registry.sync(s, { gen: `${all.gen}0`, index: 3 }, LIMITS);
        expect(other.kind).toBe('snapshot');
        expect(other.kind === 'snapshot' && [...records(other.instances).keys()]).toEqual(['a']);
      });

      it('a gap the log no longer covers is answered with a snapshot', async () => {
        const s = fresh('svc');
        const small = { logLimit: 3, tombstoneMs: 3_600_000 };
        for (let i = 0; i < 6; i++) await store.registry.register({ ...write(s, `i${i}`), ...small });
        const head = await store.registry.sync(s, undefined, small);
        expect(head.index).toBe(6);
        const covered = await store.registry.sync(s, { gen: head.gen, index: 3 }, small);
        expect(covered.kind === 'changes' && covered.changes.map((c) => c.id)).toEqual(['i3', 'i4', 'i5']);
        const gap = await store.registry.sync(s, { gen: head.gen, index: 2 }, small);
        expect(gap.kind).toBe('snapshot');
        expect(gap.kind === 'snapshot' && gap.instances.length).toBe(6);
      });

      it('expiry: a lease that ran out is swept by the next sync or renew, as an expire change', async () => {
        const s = fresh('svc');
        await store.registry.register(write(s, 'short', '{}', 1_000));
        const keep = await store.registry.register(write(s, 'long'));
        const before = await store.registry.sync(s, undefined, LIMITS);
        expect(before.kind === 'snapshot' && before.instances.map((i) => i.id).sort()).toEqual(['long', 'short']);
        await sleep(1_300);
        const after = await store.registry.sync(s, { gen: before.gen, index: before.index }, LIMITS);
        expect(after.kind === 'changes' && after.changes.map((c) => [c.type, c.id, c.expiresAt])).toEqual([
          ['expire', 'short', 0],
        ]);
        expect((await store.registry.renew({ ...write(s, 'long'), epoch: keep.epoch })).status).toBe('renewed');
        expect(await store.registry.services()).toContain(s);
      });

      it('services() lists services with a live instance only', async () => {
        const live = fresh('svc');
        const gone = fresh('svc');
        const expired = fresh('svc');
        await store.registry.register(write(live, 'a'));
        const g = await store.registry.register(write(gone, 'a'));
        await store.registry.register(write(expired, 'a', '{}', 100));
        await store.registry.deregister(gone, 'a', g.epoch, LIMITS);
        await sleep(250);
        const names = await store.registry.services();
        expect(names).toContain(live);
        expect(names).not.toContain(gone);
        expect(names).not.toContain(expired);
        expect([...names].sort()).toEqual(names);
      });

      it('names with braces, # and non-ASCII characters stay distinct', async () => {
        const base = fresh('svc');
        const names = [`${base}{x}`, `${base}{y}`, `#${base}`, `${base}-ü`, `${base}/a:b`];
        for (const n of names) await store.registry.register(write(n, 'a', JSON.stringify({ n })));
        for (const n of names) {
          const sync = await store.registry.sync(n, undefined, LIMITS);
          expect(sync.kind === 'snapshot' && sync.instances.map((i) => i.record)).toEqual([JSON.stringify({ n })]);
        }
      });

      it('onChange delivers each change entry, in order', async () => {
        const s = fresh('svc');
        const got: number[] = [];
        const off = store.registry.onChange(s, (e) => got.push(e.index));
        // onChange subscribes in the background; subscribe() on the same channel resolves once it is active.
        const probe = await store.changes.subscribe(registryChannel(s), () => {});
        for (let i = 0; i < 5; i++) await store.registry.register(write(s, `i${i}`));
        await eventually(() => got.length === 5);
        expect(got).toEqual([1, 2, 3, 4, 5]);
        off();
        await probe();
      });

      it('model check: catching up from any earlier position yields the current state (fast-check)', async () => {
        const op = fc.oneof(
          fc.record({ kind: fc.constant('register' as const), id: fc.integer({ min: 0, max: 3 }) }),
          fc.record({ kind: fc.constant('update' as const), id: fc.integer({ min: 0, max: 3 }), v: fc.nat(9) }),
          fc.record({ kind: fc.constant('deregister' as const), id: fc.integer({ min: 0, max: 3 }) }),
        );
        await fc.assert(
          fc.asyncProperty(
            fc.array(op, { minLength: 1, maxLength: 20 }),
            fc.integer({ min: 1, max: 8 }),
            async (ops, logLimit) => {
              const s = fresh('model');
              const limits = { logLimit, tombstoneMs: 3_600_000 };
              const epochs = new Map<number, number>();
              const model = new Map<string, string>();
              const states: { sync: RegistrySync; state: Map<string, string> }[] = [];
              for (const o of ops) {
                const id = `i${o.id}`;
                if (o.kind === 'register') {
                  const r = await store.registry.register({ ...write(s, id, `{"r":0}`), ...limits });
                  epochs.set(o.id, r.epoch);
                  model.set(id, '{"r":0}');
                } else if (o.kind === 'update') {
                  const epoch = epochs.get(o.id);
                  if (epoch !== undefined) {
                    const r = await store.registry.renew({ ...write(s, id, `{"r":${o.v}}`), ...limits, epoch });
                    if (r.status !== 'superseded') model.set(id, `{"r":${o.v}}`);
                  }
                } else {
                  const epoch = epochs.get(o.id);
                  if (epoch !== undefined && (await store.registry.deregister(s, id, epoch, limits))) model.delete(id);
                  epochs.delete(o.id);
                }
                const sync = await store.registry.sync(s, undefined, limits);
                states.push({ sync, state: applySync(new Map(), sync) });
              }
              const last = states.at(-1)!;
              expect(last.state).toEqual(model);
              for (const { sync, state } of states) {
                const pos = { gen: sync.gen, index: sync.index };
                const caught = await store.registry.sync(s, pos, limits);
                expect(applySync(state, caught)).toEqual(model);
                if (caught.kind === 'changes') {
                  expect(caught.changes.map((c) => c.index)).toEqual(
                    Array.from({ length: last.sync.index - sync.index }, (_, i) => sync.index + 1 + i),
                  );
                }
              }
            },
          ),
          { numRuns: 15 },
        );
      });
    });

    describe('ServiceRegistry', () => {
      it('register: instances() returns the registration plus healthy and lastSeen; services() lists it', async () => {
        const r = registry();
        const s = fresh('users');
        const reg = await r.register({
          service: s,
          id: 'users-1',
          address: 'http://127.0.0.1:3001',
          weight: 2,
          tags: ['v2'],
          meta: { version: '2.1' },
          zone: 'a',
        });
        expect(reg.state).toBe('active');
        expect(reg.interval).toBe(200);
        const [instance, ...rest] = await r.instances(s);
        expect(rest).toEqual([]);
        expect(instance).toMatchObject({
          service: s,
          id: 'users-1',
          address: 'http://127.0.0.1:3001',
          weight: 2,
          tags: ['v2'],
          meta: { version: '2.1' },
          zone: 'a',
          healthy: true,
          ttlMs: 600,
          epoch: reg.epoch,
        });
        expect(Math.abs(instance!.lastSeen - (await store.time()))).toBeLessThan(5_000);
        expect(Object.isFrozen(instance)).toBe(true);
        expect(await r.services()).toContain(s);
      });

      it('a register right after watch() is seen by lookups and the watcher at once (no sync request lost)', async () => {
        // No sweep within the test: only the notification and read-your-writes can bring it in.
        const r = registry({ ttlMs: 60_000, sweepIntervalMs: 60_000 });
        const s = fresh('users');
        const seen: [string, string[]][] = [];
        r.watch(s, (instances, change) => seen.push([change.type, instances.map((i) => i.id)]));
        await r.register({ service: s, id: 'a', address: 'http://x' });
        expect((await r.instances(s)).map((i) => i.id)).toEqual(['a']);
        await eventually(() => seen.some(([, ids]) => ids.includes('a')), 2_000);
        expect(seen.at(-1)?.[1]).toEqual(['a']);
      });

      it('meta keys are data: __proto__ and constructor are kept as own entries, through the store', async () => {
        const r = registry();
        const observer = registry();
        const s = fresh('users');
        const meta = JSON.parse('{"__proto__":"p","constructor":"c","a":"b"}') as Record<string, string>;
        const reg = await r.register({ service: s, id: 'x', address: 'http://x', meta });
        const expected = [
          ['__proto__', 'p'],
          ['constructor', 'c'],
          ['a', 'b'],
        ];
        const [own] = await r.instances(s);
        const [seen] = await observer.instances(s);
        for (const m of [reg.instance.meta, own?.meta, seen?.meta]) {
          expect(Object.entries(m ?? {})).toEqual(expected);
          expect(Object.getPrototypeOf(m)).toBe(Object.prototype);
        }
        // The heartbeat's record is the one stored (no spurious update), and update() keeps them too.
        expect(await reg.heartbeat()).toBe('renewed');
        await reg.update({ meta: JSON.parse('{"__proto__":"q"}') as Record<string, string> });
        await eventually(async () => (await observer.instances(s))[0]?.meta.a === undefined);
        expect(Object.entries((await observer.instances(s))[0]?.meta ?? {})).toEqual([['__proto__', 'q']]);
        await expect(
          r.register({ service: s, id: 'y', address: 'http://y', meta: JSON.parse('{"__proto__":1}') }),
        ).rejects.toThrow(/meta\.__proto__/);
      });

      it('filters by healthyOnly, tags and zone', async () => {
        const r = registry();
        const s = fresh('users');
        await r.register({ service: s, id: 'a', address: 'http://a', tags: ['v1', 'canary'], zone: 'z1' });
        await r.register({ service: s, id: 'b', address: 'http://b', tags: ['v2'], zone: 'z2' });
        const c = await r.register({ service: s, id: 'c', address: 'http://c', tags: ['v2'], zone: 'z1' });
        await c.setHealthy(false);
        const ids = async (q: Parameters<ServiceRegistry['instances']>[1]) =>
          (await r.instances(s, q)).map((i) => i.id);
        expect(await ids({})).toEqual(['a', 'b', 'c']);
        expect(await ids({ healthyOnly: true })).toEqual(['a', 'b']);
        expect(await ids({ tags: ['v2'] })).toEqual(['b', 'c']);
        expect(await ids({ tags: ['v1', 'canary'] })).toEqual(['a']);
        expect(await ids({ tags: ['v2'], zone: 'z1' })).toEqual(['c']);
        expect(await ids({ zone: 'z3' })).toEqual([]);
        expect(await ids({ healthyOnly: true, zone: 'z1' })).toEqual(['a']);
      });

      it('heartbeats keep a registration alive well past its ttl until deregister()', async () => {
        const r = registry();
        const s = fresh('users');
        const reg = await r.register({ service: s, id: 'a', address: 'http://a', ttlMs: 400 });
        await sleep(1_300);
        expect((await r.instances(s)).map((i) => i.id)).toEqual(['a']);
        expect(reg.lastHeartbeatAt).toBeGreaterThan(0);
        expect(await reg.deregister()).toBe(true);
        expect(await reg.deregister()).toBe(false);
        expect(reg.state).toBe('deregistered');
        expect(await r.instances(s)).toEqual([]);
        await expect(reg.heartbeat()).rejects.toMatchObject({ code: 'ERR_NOT_FOUND' });
      });

      it('an instance that stops heartbeating expires within ttl + a sweep, seen by another client', async () => {
        const owner = registry();
        const client = registry();
        const s = fresh('users');
        const reg = await owner.register({ service: s, id: 'dies', address: 'http://a', ttlMs: 300 });
        const changes: RegistryChange[] = [];
        const w = client.watch(s, (_, change) => changes.push(change));
        await w.ready;
        expect((await client.instances(s)).map((i) => i.id)).toEqual(['dies']);
        reg.stop(); // as a crash: no deregister
        await eventually(async () => (await client.instances(s)).length === 0, 3_000);
        expect(changes.at(-1)).toMatchObject({ type: 'expire', id: 'dies' });
      });

      it('watch: the current state first, then every change in index order, to every watcher', async () => {
        const r = registry();
        const other = registry();
        const s = fresh('users');
        await r.register({ service: s, id: 'a', address: 'http://a' });
        const seen: [string, number, string[]][] = [];
        const seenOther: number[] = [];
        const w = r.watch(s, (instances, change) => seen.push([change.type, change.index, instances.map((i) => i.id)]));
        const w2 = other.watch(s, (_, change) => seenOther.push(change.index));
        await Promise.all([w.ready, w2.ready]);
        const b = await other.register({ service: s, id: 'b', address: 'http://b' });
        await b.update({ weight: 5 });
        await b.deregister();
        await eventually(() => seen.length === 4 && seenOther.length === 4);
        expect(seen).toEqual([
          ['snapshot', 1, ['a']],
          ['register', 2, ['a', 'b']],
          ['update', 3, ['a', 'b']],
          ['deregister', 4, ['a']],
        ]);
        expect(seenOther).toEqual([1, 2, 3, 4]);
        w.close();
        w.close();
        await r.register({ service: s, id: 'c', address: 'http://c' });
        await eventually(() => seenOther.length === 5);
        expect(seen).toHaveLength(4);
        w2.close();
      });

      it('a watcher that hears no notifications still sees every change, from the index (catch-up)', async () => {
        const writer = registry();
        const deaf = new ServiceRegistry({ store: deafStore(store), ttlMs: 600, sweepIntervalMs: 100 });
        registries.push(deaf);
        const s = fresh('users');
        const seen: [string, number][] = [];
        const w = deaf.watch(s, (_, change) => seen.push([change.type, change.index]));
        await w.ready;
        const a = await writer.register({ service: s, id: 'a', address: 'http://a' });
        await writer.register({ service: s, id: 'b', address: 'http://b' });
        await a.update({ tags: ['x'] });
        await a.deregister();
        await eventually(() => seen.length === 5);
        expect(seen).toEqual([
          ['snapshot', 0],
          ['register', 1],
          ['register', 2],
          ['update', 3],
          ['deregister', 4],
        ]);
        expect((await deaf.instances(s)).map((i) => i.id)).toEqual(['b']);
      });

      it('a stale registration (older epoch, resumed after a pause) cannot overwrite a newer one', async () => {
        const paused = registry();
        const successor = registry();
        const events: RegistryEvent[] = [];
        paused.onEvent((e) => events.push(e));
        const s = fresh('users');
        const old = await paused.register({ service: s, id: 'x', address: 'http://old' });
        const next = await successor.register({ service: s, id: 'x', address: 'http://new' });
        expect(next.epoch).toBeGreaterThan(old.epoch);
        expect(await old.heartbeat()).toBe('superseded');
        expect(old.state).toBe('superseded');
        expect(events).toContainEqual({ type: 'superseded', service: s, id: 'x' });
        expect((await successor.instances(s)).map((i) => i.address)).toEqual(['http://new']);
        // Even once the newer registration is gone, the old one stays out.
        await next.deregister();
        expect(await old.heartbeat()).toBe('superseded');
        expect(await successor.instances(s)).toEqual([]);
        await expect(old.update({ weight: 3 })).rejects.toMatchObject({ code: 'ERR_NOT_FOUND' });
      });

      it('a registration that expired during a pause writes itself again at its next heartbeat', async () => {
        const r = registry();
        const events: RegistryEvent[] = [];
        r.onEvent((e) => events.push(e));
        const s = fresh('users');
        const reg = await r.register({ service: s, id: 'x', address: 'http://x', ttlMs: 200 });
        reg.stop();
        await sleep(400);
        expect(await r.instances(s)).toEqual([]);
        // A new handle with the same epoch stands for the resumed process.
        const resumed = await store.registry.renew({
          service: s,
          id: 'x',
          epoch: reg.epoch,
          record: JSON.stringify({
            service: s,
            id: 'x',
            address: 'http://x',
            weight: 1,
            tags: [],
            meta: {},
            zone: null,
            healthy: true,
            ttlMs: 200,
          }),
          ttlMs: 10_000,
          ...LIMITS,
        });
        expect(resumed.status).toBe('reregistered');
        await eventually(async () => (await r.instances(s)).length === 1);
      });

      it('update() and setHealthy() change what watchers and lookups see', async () => {
        const r = registry();
        const s = fresh('users');
        const reg = await r.register({ service: s, id: 'a', address: 'http://a' });
        await reg.update({ address: 'http://a2', tags: ['blue'], meta: { k: 'v' }, zone: 'z' });
        let [i] = await r.instances(s);
        expect(i).toMatchObject({ address: 'http://a2', tags: ['blue'], meta: { k: 'v' }, zone: 'z', healthy: true });
        await reg.setHealthy(false);
        expect(await r.instances(s, { healthyOnly: true })).toEqual([]);
        await reg.update({ zone: undefined, healthy: true });
        [i] = await r.instances(s);
        expect(i).toMatchObject({ zone: undefined, healthy: true, address: 'http://a2' });
        await expect(reg.update({ weight: -1 })).rejects.toBeInstanceOf(InvalidOptionError);
        await expect(reg.update({ id: 'other' } as never)).rejects.toThrow(/patch.id/);
      });

      it('self-preservation: more than the set share expiring at once is reported', async () => {
        const owner = registry();
        const watcher = registry({ selfPreservation: { threshold: 0.5, minInstances: 3, windowMs: 5_000 } });
        const events: RegistryEvent[] = [];
        watcher.onEvent((e) => events.push(e));
        const s = fresh('users');
        const regs = [];
        for (let i = 0; i < 4; i++)
          regs.push(await owner.register({ service: s, id: `i${i}`, address: 'http://x', ttlMs: 300 }));
        const w = watcher.watch(s, () => {});
        await w.ready;
        for (const reg of regs.slice(0, 3)) reg.stop();
        await eventually(() => events.some((e) => e.type === 'self-preservation' && e.active), 4_000);
        const event = events.find((e) => e.type === 'self-preservation');
        expect(event).toMatchObject({ service: s, active: true, total: 4 });
        expect(watcher.health().services.find((x) => x.service === s)?.selfPreservation).toBe(true);
      });

      it('one expiry among many is not self-preservation', async () => {
        const owner = registry();
        const watcher = registry();
        const events: RegistryEvent[] = [];
        watcher.onEvent((e) => events.push(e));
        const s = fresh('users');
        const regs = [];
        // The one that dies has a short lease; the others a long one, so a slow machine cannot expire them.
        for (let i = 0; i < 4; i++)
          regs.push(
            await owner.register({ service: s, id: `i${i}`, address: 'http://x', ttlMs: i === 0 ? 300 : 3_000 }),
          );
        await watcher.watch(s, () => {}).ready;
        regs[0]!.stop();
        await eventually(async () => (await watcher.instances(s)).length === 3);
        expect(events.filter((e) => e.type === 'self-preservation')).toEqual([]);
      });

      it('store gone: cached instances are still served, the registry says it is degraded, writes fail', async () => {
        const own = await makeStore();
        const r = new ServiceRegistry({ store: own, ttlMs: 600, sweepIntervalMs: 50 });
        const events: RegistryEvent[] = [];
        r.onEvent((e) => events.push(e));
        const s = fresh('users');
        await r.register({ service: s, id: 'a', address: 'http://a' });
        expect((await r.instances(s)).map((i) => i.id)).toEqual(['a']);
        const known = await r.services();
        await own.close();
        await eventually(() => r.degraded);
        expect(events[0]).toMatchObject({ type: 'degraded' });
        expect(r.health().degraded).toBe(true);
        expect(r.health().lastError).toBeInstanceOf(StoreUnavailableError);
        // Never empties a service because the store went away.
        await sleep(800);
        expect((await r.instances(s)).map((i) => i.id)).toEqual(['a']);
        expect(await r.services()).toEqual(known);
        await expect(r.register({ service: s, id: 'b', address: 'http://b' })).rejects.toMatchObject({
          code: 'ERR_STORE_UNAVAILABLE',
        });
        await expect(r.instances(fresh('never-read'))).rejects.toBeInstanceOf(StoreUnavailableError);
        await r.close();
      });

      it('close(): deregisters what it registered; later calls fail; closing twice is harmless', async () => {
        const r = registry();
        const observer = registry();
        const s = fresh('users');
        await r.register({ service: s, id: 'a', address: 'http://a' });
        await r.close();
        await r.close();
        expect(r.closed).toBe(true);
        expect(await observer.instances(s)).toEqual([]);
        await expect(r.instances(s)).rejects.toBeInstanceOf(StoreUnavailableError);
        expect(() => r.watch(s, () => {})).toThrow(StoreUnavailableError);
      });

      it('a register() that close() overtakes fails as calls after close do, and leaves nothing registered', async () => {
        const r = registry({ ttlMs: 300 });
        const observer = registry();
        const s = fresh('users');
        const pending = r.register({ service: s, id: 'late', address: 'http://late' });
        await r.close();
        const outcome = await pending.catch((e: unknown) => e);
        expect(outcome).toBeInstanceOf(StoreUnavailableError);
        expect((outcome as Error).message).toMatch(/closed/);
        expect(await observer.instances(s)).toEqual([]);
        // Nothing heartbeats it back: well past its ttl it is still gone.
        await sleep(1_500);
        expect(await observer.instances(s)).toEqual([]);
        expect(await store.registry.services()).not.toContain(s);
      });

      it('bad input: clear typed errors naming the field', async () => {
        const r = registry();
        const ok = { service: 's', id: 'i', address: 'http://a' };
        const bad: [Record<string, unknown>, RegExp][] = [
          [{ ...ok, service: '' }, /service/],
          [{ ...ok, service: 'x'.repeat(257) }, /service/],
          [{ ...ok, service: 'a\nb' }, /service.*control/],
          [{ ...ok, id: 42 }, /id/],
          [{ ...ok, id: '\ud800' }, /id/],
          [{ ...ok, address: '' }, /address/],
          [{ ...ok, address: undefined }, /address/],
          [{ ...ok, weight: -1 }, /weight/],
          [{ ...ok, weight: Number.NaN }, /weight/],
          [{ ...ok, tags: 'v2' }, /tags/],
          [{ ...ok, tags: [''] }, /tags\[0\]/],
          [{ ...ok, meta: { a: 1 } }, /meta\.a/],
          [{ ...ok, meta: [] }, /meta/],
          [{ ...ok, zone: '' }, /zone/],
          [{ ...ok, healthy: 'yes' }, /healthy/],
          [{ ...ok, ttlMs: 50 }, /ttlMs/],
          [{ ...ok, ttlMs: 1.5 }, /ttlMs/],
        ];
        for (const [input, message] of bad) {
          const err = await r.register(input as never).catch((e: unknown) => e);
          expect(err, JSON.stringify(input)).toBeInstanceOf(InvalidOptionError);
          expect((err as Error).message).toMatch(message);
        }
        await expect(r.register(null as never)).rejects.toThrow(/registration/);
        await expect(r.instances(42 as never)).rejects.toBeInstanceOf(TypeError);
        await expect(r.instances('')).rejects.toBeInstanceOf(InvalidOptionError);
        await expect(r.instances('s', { healthyOnly: 1 } as never)).rejects.toThrow(/healthyOnly/);
        await expect(r.instances('s', { tags: [1] } as never)).rejects.toThrow(/tags/);
        await expect(r.instances('s', { zone: 1 } as never)).rejects.toThrow(/zone/);
        expect(() => r.watch(42 as never, () => {})).toThrow(TypeError);
        expect(() => r.watch('s', 'nope' as never)).toThrow(TypeError);
        expect(() => r.onEvent(null as never)).toThrow(TypeError);
      });
    });
  });
}
