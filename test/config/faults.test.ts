import { afterAll, describe, expect, it } from 'vitest';
import { ConfigCenter, type ConfigChange, type ConfigEvent } from '../../src/config/ConfigCenter.js';
import { redisStore } from '../../src/store/redis/RedisStore.js';
import {
  deletePrefix,
  haveRedisServerBinary,
  type RedisServer,
  redisUrl,
  replyCutter,
  requireRedis,
  startRedisServer,
  testPrefix,
} from '../helpers/redis.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function eventually(check: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(10);
  }
}

describe.skipIf(!haveRedisServerBinary())('config center: redis-server stopped and restarted', () => {
  let server: RedisServer | undefined;
  afterAll(async () => {
    await server?.stop();
  });

  it('stale reads while down, writes fail, watches keep their values and catch up when back', async () => {
    server = await startRedisServer();
    const storeFor = (url: string) =>
      redisStore(url, { commandTimeoutMs: 300, redisOptions: { retryStrategy: () => 50 } });
    const stores = [storeFor(server.url), storeFor(server.url)];
    const writer = new ConfigCenter({ store: stores[0]!, namespace: 'prod', pollIntervalMs: 100 });
    const reader = new ConfigCenter({ store: stores[1]!, namespace: 'prod', pollIntervalMs: 100 });
    const events: ConfigEvent[] = [];
    reader.onEvent((e) => events.push(e));
    try {
      await writer.set('app.a', { v: 1 });
      await writer.set('app.b', 'two');
      const changes: ConfigChange[] = [];
      const watch = reader.watch('app.', (c) => changes.push(c));
      await watch.ready;
      expect(changes.map((c) => `${c.reason}:${c.key}@${c.version}`)).toEqual(['initial:app.a@1', 'initial:app.b@1']);
      expect(await reader.get('app.a')).toMatchObject({ value: { v: 1 }, stale: false });

      await server.stop();
      expect(await reader.get('app.a')).toMatchObject({ value: { v: 1 }, version: 1, stale: true });
      expect((await reader.list('app.')).map((e) => [e.key, e.stale])).toEqual([
        ['app.a', true],
        ['app.b', true],
      ]);
      await expect(writer.set('app.a', { v: 2 })).rejects.toMatchObject({ code: 'ERR_STORE_UNAVAILABLE' });
      await expect(writer.delete('app.b')).rejects.toMatchObject({ code: 'ERR_STORE_UNAVAILABLE' });
      await eventually(() => reader.degraded && writer.degraded);
      expect(events[0]).toMatchObject({ type: 'degraded' });

      await server.start(); // empty
      await eventually(() => events.some((e) => e.type === 'lost'));
      expect(events.find((e) => e.type === 'lost')).toMatchObject({ namespace: 'prod', keys: ['app.a', 'app.b'] });
      expect(changes.filter((c) => c.type === 'delete')).toEqual([]);
      expect(reader.health().watches[0]?.lost).toEqual(['app.a', 'app.b']);
      // Writes work again and reach the watch, in order.
      await eventually(
        async () =>
          await writer
            .set('app.a', { v: 3 })
            .then(() => true)
            .catch(() => false),
      );
      await writer.set('app.b', 'three');
      await eventually(() => changes.length === 4);
      expect(changes.slice(2).map((c) => `${c.reason}:${c.key}@${c.version}=${JSON.stringify(c.value)}`)).toEqual([
        'change:app.a@1={"v":3}',
        'change:app.b@1="three"',
      ]);
      expect(reader.health().watches[0]?.lost).toEqual([]);
      expect(await reader.get('app.a')).toMatchObject({ value: { v: 3 }, stale: false });
      await eventually(() => !reader.degraded && !writer.degraded);
    } finally {
      await writer.close();
      await reader.close();
      await Promise.all(stores.map((s) => s.close()));
    }
  }, 60_000);
});

const haveRedis = await requireRedis('config writes whose reply is lost');

/** Waits (bounded) until the store answers again after its connection dropped. */
async function reconnected(store: { time(): Promise<number> }): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (
      await store.time().then(
        () => true,
        () => false,
      )
    )
      return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error('the store did not reconnect');
}

describe.skipIf(!haveRedis)('config center: a write whose reply is lost', () => {
  it('fails with ERR_STORE_UNAVAILABLE and is applied once: never sent again after a reconnect', async () => {
    // ioredis re-sends commands left unanswered by a dropped connection unless told not to;
    // the store's scripts are not idempotent, so a resend would apply a write twice and turn
    // a CAS that succeeded into a conflict.
    const target = new URL(redisUrl());
    const cutter = await replyCutter({ host: target.hostname, port: Number(target.port || 6379) });
    const prefix = testPrefix('config-lost-reply');
    const store = redisStore(cutter.url, {
      prefix,
      commandTimeoutMs: 2_000,
      redisOptions: { retryStrategy: () => 20 },
    });
    const config = new ConfigCenter({ store, namespace: 'lost', pollIntervalMs: 60_000 });
    try {
      await config.set('counter', 0);
      cutter.arm('written');
      await expect(config.set('counter', 1, { expectedVersion: 1 })).rejects.toMatchObject({
        code: 'ERR_STORE_UNAVAILABLE',
      });
      // The call failed when the connection closed, before the client was back.
      await reconnected(store);
      cutter.arm('written');
      await expect(config.set('plain', 'once')).rejects.toMatchObject({ code: 'ERR_STORE_UNAVAILABLE' });
      await reconnected(store);
      // Each ran exactly once.
      expect((await config.history('counter')).map((h) => [h.version, h.value])).toEqual([
        [2, 1],
        [1, 0],
      ]);
      expect((await config.history('plain')).map((h) => [h.version, h.value])).toEqual([[1, 'once']]);
    } finally {
      await config.close();
      await store.close();
      await cutter.close();
      await deletePrefix(redisUrl(), prefix);
    }
  }, 20_000);
});
