/**
 * The registry when its Redis dies: a self-started redis-server (keeping nothing on disk) is
 * stopped while clients run, then started again, empty. While it is away, lookups keep
 * serving the last known instances, the registry reports itself degraded, and writes fail
 * with ERR_STORE_UNAVAILABLE. When it is back, heartbeats re-register every live instance,
 * watchers catch up, and no watcher ever saw the service empty.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { type RegistryEvent, ServiceRegistry } from '../../src/registry/ServiceRegistry.js';
import { redisStore } from '../../src/store/redis/RedisStore.js';
import { haveRedisServerBinary, type RedisServer, startRedisServer } from '../helpers/redis.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function eventually(check: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(10);
  }
}

describe.skipIf(!haveRedisServerBinary())('service registry: redis-server stopped and restarted', () => {
  let server: RedisServer | undefined;
  afterAll(async () => {
    await server?.stop();
  });

  const TTL_MS = 900;
  const storeFor = (url: string) =>
    redisStore(url, { commandTimeoutMs: 300, redisOptions: { retryStrategy: () => 50 } });

  it('serves cached instances while down, fails writes, re-registers and catches up when back', async () => {
    server = await startRedisServer();
    const stores = [storeFor(server.url), storeFor(server.url)];
    const owner = new ServiceRegistry({ store: stores[0]!, ttlMs: TTL_MS, sweepIntervalMs: 100 });
    const client = new ServiceRegistry({ store: stores[1]!, ttlMs: TTL_MS, sweepIntervalMs: 100 });
    const ownerEvents: RegistryEvent[] = [];
    const clientEvents: RegistryEvent[] = [];
    owner.onEvent((e) => ownerEvents.push(e));
    client.onEvent((e) => clientEvents.push(e));
    try {
      const a = await owner.register({ service: 'api', id: 'a', address: 'http://a' });
      const b = await owner.register({ service: 'api', id: 'b', address: 'http://b' });
      const seen: string[][] = [];
      const watch = client.watch('api', (instances) => seen.push(instances.map((i) => i.id)));
      await watch.ready;
      expect((await client.instances('api')).map((i) => i.id)).toEqual(['a', 'b']);

      await server.stop();
      await eventually(() => client.degraded && owner.degraded);
      expect(clientEvents.find((e) => e.type === 'degraded')).toBeDefined();
      // Longer than a ttl: nothing is expired locally, nothing is emptied.
      await sleep(TTL_MS * 2);
      expect((await client.instances('api')).map((i) => i.id)).toEqual(['a', 'b']);
      expect(client.health()).toMatchObject({ degraded: true });
      await expect(owner.register({ service: 'api', id: 'c', address: 'http://c' })).rejects.toMatchObject({
        code: 'ERR_STORE_UNAVAILABLE',
      });
      await expect(a.heartbeat()).rejects.toMatchObject({ code: 'ERR_STORE_UNAVAILABLE' });
      expect(a.state).toBe('active');

      await server.start(); // empty: it kept nothing on disk
      // Heartbeats re-register both; a fresh reader sees them in the store itself.
      const readerStore = storeFor(server.url);
      const reader = new ServiceRegistry({ store: readerStore, ttlMs: TTL_MS, sweepIntervalMs: 100 });
      try {
        await eventually(async () => (await reader.instances('api').catch(() => [])).length === 2);
        await eventually(() => !client.degraded && !owner.degraded);
        const reregistered = ownerEvents.filter((e) => e.type === 'reregistered').map((e) => ('id' in e ? e.id : ''));
        expect(reregistered.sort()).toEqual(['a', 'b']);
        expect((await client.instances('api')).map((i) => i.id)).toEqual(['a', 'b']);
        // The watcher never saw the service empty, and it follows changes after the restart.
        expect(seen.every((ids) => ids.length === 2)).toBe(true);
        await b.deregister();
        await eventually(() => seen.at(-1)?.join() === 'a');
        await owner.register({ service: 'api', id: 'c', address: 'http://c' });
        await eventually(() => seen.at(-1)?.join() === 'a,c');
        expect((await reader.instances('api')).map((i) => i.id)).toEqual(['a', 'c']);
      } finally {
        await reader.close();
        await readerStore.close();
      }
    } finally {
      await owner.close();
      await client.close();
      await Promise.all(stores.map((s) => s.close()));
    }
  }, 60_000);

  it('an outage longer than the ttl with the data kept: the service is not emptied when it comes back', async () => {
    server ??= await startRedisServer();
    const stores = [storeFor(server.url), storeFor(server.url)];
    const owner = new ServiceRegistry({ store: stores[0]!, ttlMs: TTL_MS, sweepIntervalMs: 100 });
    const client = new ServiceRegistry({ store: stores[1]!, ttlMs: TTL_MS, sweepIntervalMs: 100 });
    try {
      await owner.register({ service: 'keep', id: 'a', address: 'http://a' });
      await owner.register({ service: 'keep', id: 'b', address: 'http://b' });
      const seen: string[][] = [];
      await client.watch('keep', (instances) => seen.push(instances.map((i) => i.id))).ready;
      // Pause the server (it keeps its data) for longer than the ttl: every lease runs out.
      const pid = server.pid;
      process.kill(pid, 'SIGSTOP');
      try {
        await sleep(TTL_MS * 2.5);
      } finally {
        process.kill(pid, 'SIGCONT');
      }
      await eventually(() => !client.degraded && !owner.degraded);
      await sleep(TTL_MS);
      expect(seen.every((ids) => ids.length === 2)).toBe(true);
      expect((await client.instances('keep')).map((i) => i.id)).toEqual(['a', 'b']);
    } finally {
      await owner.close();
      await client.close();
      await Promise.all(stores.map((s) => s.close()));
    }
  }, 60_000);
});
