/**
 * The registry across processes on one Redis: instances registered by child processes are
 * seen here; one killed with SIGKILL (no deregister, no goodbye) disappears on time, within
 * its ttl plus a sweep interval (plus scheduling slack on a busy machine), and the others stay.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { ServiceRegistry } from '../../src/registry/ServiceRegistry.js';
import type { RegistryChange } from '../../src/registry/ServiceView.js';
import { redisStore } from '../../src/store/redis/RedisStore.js';
import { deletePrefix, redisUrl, requireRedis, testPrefix } from '../helpers/redis.js';
import { killChildren, startChild } from './childProcess.js';

const available = await requireRedis('registry across processes');
const prefix = testPrefix('registry-procs');

const TTL_MS = 1_500;
const SWEEP_MS = 200;

describe.skipIf(!available)('service registry: several processes, one Redis', () => {
  afterAll(async () => {
    await killChildren();
    await deletePrefix(redisUrl(), prefix);
  });

  it('an instance process killed with SIGKILL expires on time; the others stay', async () => {
    const common = { REDIS_URL: redisUrl(), PREFIX: prefix, SERVICE: 'orders', TTL_MS: String(TTL_MS) };
    const children = ['o-1', 'o-2', 'o-3'].map((id) =>
      startChild('registry/fixtures/instance.ts', { ...common, ID: id }),
    );
    const store = redisStore(redisUrl(), { prefix });
    const registry = new ServiceRegistry({ store, sweepIntervalMs: SWEEP_MS });
    const changes: { at: number; change: RegistryChange; ids: string[] }[] = [];
    try {
      await Promise.all(children.map((c) => c.waitFor((l) => l.startsWith('{'), 60_000)));
      const watch = registry.watch('orders', (instances, change) =>
        changes.push({ at: Date.now(), change, ids: instances.map((i) => i.id) }),
      );
      await watch.ready;
      expect((await registry.instances('orders')).map((i) => i.id)).toEqual(['o-1', 'o-2', 'o-3']);
      // Several heartbeats later, all still there.
      await new Promise((r) => setTimeout(r, TTL_MS * 1.5));
      expect((await registry.instances('orders')).map((i) => i.id)).toEqual(['o-1', 'o-2', 'o-3']);
      const victim = children[1]!;
      const killedAt = Date.now();
      victim.kill('SIGKILL');
      await victim.exited;
      const deadline = killedAt + TTL_MS + SWEEP_MS + 5_000;
      while (!changes.some((c) => c.change.type === 'expire') && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 10));
      }
      const expiry = changes.find((c) => c.change.type === 'expire');
      expect(expiry, 'no expiry seen').toBeDefined();
      expect(expiry!.change).toMatchObject({ type: 'expire', id: 'o-2' });
      expect(expiry!.ids).toEqual(['o-1', 'o-3']);
      const afterKill = expiry!.at - killedAt;
      console.log(
        `registry processes: SIGKILLed instance expired ${afterKill} ms after the kill (ttl ${TTL_MS} ms, sweep ${SWEEP_MS} ms)`,
      );
      // On time: within ttl + one sweep after the kill, with slack for a loaded 2-core machine.
      expect(afterKill).toBeLessThanOrEqual(TTL_MS + SWEEP_MS + 1_000);
      // And not before its lease could have ended (its last heartbeat was at most ttl/3 before the kill).
      expect(afterKill).toBeGreaterThanOrEqual(Math.floor((TTL_MS * 2) / 3) - 50);
      expect((await registry.instances('orders')).map((i) => i.id)).toEqual(['o-1', 'o-3']);
      // A clean exit deregisters at once.
      children[0]!.send('bye');
      await children[0]!.exited;
      await new Promise((r) => setTimeout(r, 100));
      expect(changes.at(-1)?.change).toMatchObject({ type: 'deregister', id: 'o-1' });
      expect((await registry.instances('orders')).map((i) => i.id)).toEqual(['o-3']);
    } finally {
      await registry.close();
      await store.close();
    }
  }, 120_000);
});
