import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { InvalidOptionError, StoreUnavailableError } from '../../src/errors.js';
import { entityKey } from '../../src/store/keys.js';
import { redisStore } from '../../src/store/redis/RedisStore.js';
import type { RestartEvent } from '../../src/store/Store.js';
import {
  deletePrefix,
  haveRedisServerBinary,
  type RedisServer,
  redisUrl,
  requireRedis,
  startRedisServer,
  testPrefix,
} from '../helpers/redis.js';
import { run } from './contract.js';

const available = await requireRedis('store contract on Redis');
const prefix = testPrefix('store-redis');

describe.skipIf(!available)('redis store', () => {
  afterAll(() => deletePrefix(redisUrl(), prefix));

  run('redis (URL)', async () => redisStore(redisUrl(), { prefix }));
  run('redis (client passed in)', async () => {
    const client = new Redis(redisUrl());
    const store = redisStore(client, { prefix });
    const close = store.close.bind(store);
    // The caller owns the client: closing the store leaves it open.
    return Object.assign(store, {
      close: async () => {
        await close();
        expect(client.status).not.toBe('end');
        client.disconnect();
      },
    });
  });

  it('every key of one resource carries one hash tag', async () => {
    const store = redisStore(redisUrl(), { prefix });
    const client = new Redis(redisUrl());
    try {
      const r = `tag:${Date.now()}`;
      await store.locks.acquire({ resource: r, holder: 'a', ttlMs: 5_000, fair: false, queueTtlMs: 5_000 });
      await store.locks.acquire({ resource: r, holder: 'b', ttlMs: 5_000, fair: true, queueTtlMs: 5_000 });
      const keys = (await client.keys(`${prefix}lock:{${r}}*`)).sort();
      expect(keys).toEqual(['', ':fence', ':q', ':qt', ':qttl'].map((part) => `${prefix}lock:{${r}}${part}`));
      const slots = new Set(
        await Promise.all(keys.map((k) => client.call('CLUSTER', 'KEYSLOT', k).catch(() => 'n/a'))),
      );
      expect(slots.size).toBe(1);
    } finally {
      client.disconnect();
      await store.close();
    }
  });

  it('rate limits: a take let through short owes it, and the stored tokens are rounded down', async () => {
    // `at` in the future: the server clock is "behind" it, so the script refills nothing and
    // the bucket holds exactly what is written here.
    const store = redisStore(redisUrl(), { prefix });
    const client = new Redis(redisUrl());
    try {
      const key = `debt:${Date.now()}`;
      const bucket = entityKey(prefix, 'ratelimit', key);
      const future = String((Date.now() + 3_600_000) * 1000);
      await client.hset(bucket, 'tokens', '0.9999995', 'at', future);
      const limit = { capacity: 1, refillPerSec: 1 };
      expect(await store.rateLimits.take(key, limit)).toEqual({ allowed: true, remaining: 0, retryAfterMs: 0 });
      // 5e-7 owed, kept as -0.000001 (rounded down): the next take is refused, and says 0 left.
      expect(await client.hget(bucket, 'tokens')).toBe('-0.000001');
      expect(await store.rateLimits.take(key, limit)).toEqual({ allowed: false, remaining: 0, retryAfterMs: 1000 });
      await client.hset(bucket, 'tokens', '0.1234567', 'at', future);
      await store.rateLimits.take(key, limit);
      expect(await client.hget(bucket, 'tokens')).toBe('0.123456');
    } finally {
      client.disconnect();
      await store.close();
    }
  });

  it('locks: a counter left behind (a promoted replica that missed the last grant) does not give a token out again (found in failover review)', async () => {
    const store = redisStore(redisUrl(), { prefix });
    const client = new Redis(redisUrl());
    try {
      const fence = (r: string) => `${entityKey(prefix, 'lock', r)}:fence`;
      for (const fair of [false, true]) {
        const r = `behind:${fair}:${Date.now()}`;
        const req = { resource: r, ttlMs: 5_000, fair, queueTtlMs: 1_000 };
        const before = await store.locks.acquire({ ...req, holder: 'a' });
        if (!before.acquired) throw new Error('not acquired');
        await store.locks.release(r, 'a');
        const lost = await store.locks.acquire({ ...req, holder: 'b' });
        if (!lost.acquired) throw new Error('not acquired');
        // The failover: the new master has neither b's lease nor its token, only a's.
        await client.del(entityKey(prefix, 'lock', r));
        await client.set(fence(r), String(before.token), 'PX', 60_000);
        const again = await store.locks.acquire({ ...req, holder: 'c' });
        if (!again.acquired) throw new Error('not acquired');
        expect(again.token).toBeGreaterThan(lost.token);
      }
    } finally {
      client.disconnect();
      await store.close();
    }
  });

  it('locks: extend keeps the fencing counter of a lock held past fenceRetentionMs (found in review)', async () => {
    const store = redisStore(redisUrl(), { prefix, fenceRetentionMs: 300 });
    const client = new Redis(redisUrl());
    try {
      const r = `held-long:${Date.now()}`;
      const a = await store.locks.acquire({ resource: r, holder: 'a', ttlMs: 400, fair: false, queueTtlMs: 1_000 });
      for (let i = 0; i < 4; i++) {
        await new Promise((resolve) => setTimeout(resolve, 150));
        expect(await store.locks.extend(r, 'a', 400)).toBe(true);
      }
      // 600 ms after the grant, twice the retention: the counter is still there.
      const fence = `${entityKey(prefix, 'lock', r)}:fence`;
      expect(Number(await client.pttl(fence))).toBeGreaterThan(0);
      // Gone already (a hold that outlived it before this version): extend writes it back.
      await client.del(fence);
      expect(await store.locks.extend(r, 'a', 400)).toBe(true);
      expect(await client.get(fence)).toBe(String(a.acquired && a.token));
      expect(await store.locks.release(r, 'a')).toBe(true);
      const b = await store.locks.acquire({ resource: r, holder: 'b', ttlMs: 400, fair: false, queueTtlMs: 1_000 });
      expect(a.acquired && b.acquired && b.token > a.token).toBe(true);
    } finally {
      client.disconnect();
      await store.close();
    }
  });

  it('a publish refused because the store is closed is not sent (found in review)', async () => {
    const client = new Redis(redisUrl());
    const listener = new Redis(redisUrl());
    const got: string[] = [];
    await listener.subscribe(`${prefix}after-close`);
    listener.on('message', (_c: string, m: string) => got.push(m));
    const store = redisStore(client, { prefix });
    await store.close();
    await expect(store.changes.publish('after-close', 'x')).rejects.toMatchObject({ code: 'ERR_STORE_UNAVAILABLE' });
    await new Promise((r) => setTimeout(r, 100));
    expect(got).toEqual([]);
    client.disconnect();
    listener.disconnect();
  });

  it('rejects bad arguments and options', () => {
    expect(() => redisStore('http://x')).toThrow(InvalidOptionError);
    expect(() => redisStore(42 as unknown as string)).toThrow(TypeError);
    expect(() => redisStore(redisUrl(), { prefix: 'a{b' })).toThrow(/prefix/);
    expect(() => redisStore(redisUrl(), { commandTimeoutMs: 0 })).toThrow(/commandTimeoutMs/);
    expect(() => redisStore(redisUrl(), { fenceRetentionMs: 1.5 })).toThrow(/fenceRetentionMs/);
  });
});

describe.skipIf(!haveRedisServerBinary())('redis store against a server that dies', () => {
  let server: RedisServer;
  afterAll(async () => {
    await server?.stop();
  });

  it('fails with StoreUnavailableError instead of hanging, and works again after a restart', async () => {
    server = await startRedisServer();
    const store = redisStore(server.url, { commandTimeoutMs: 500, redisOptions: { retryStrategy: () => 50 } });
    const req = { resource: 'r', holder: 'a', ttlMs: 10_000, fair: false, queueTtlMs: 1_000 };
    const first = await store.locks.acquire(req);
    expect(first.acquired).toBe(true);
    await server.stop();
    await expect(store.locks.acquire({ ...req, holder: 'b' })).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(store.time()).rejects.toMatchObject({ code: 'ERR_STORE_UNAVAILABLE' });
    await server.start();
    // Back, empty: the old lease is gone, and the token continues above the old one.
    let second: Awaited<ReturnType<typeof store.locks.acquire>> | undefined;
    for (let i = 0; i < 100 && second === undefined; i++) {
      second = await store.locks.acquire({ ...req, holder: 'b' }).catch(() => undefined);
      if (second === undefined) await new Promise((r) => setTimeout(r, 50));
    }
    expect(second?.acquired).toBe(true);
    if (first.acquired && second?.acquired) expect(second.token).toBeGreaterThan(first.token);
    await store.close();
  });

  it('a subscription made while the server is down is made when it comes back (found in review)', async () => {
    server ??= await startRedisServer();
    const store = redisStore(server.url, { commandTimeoutMs: 300, redisOptions: { retryStrategy: () => 50 } });
    const publisher = new Redis(server.url, { retryStrategy: () => 50, maxRetriesPerRequest: 1 });
    publisher.on('error', () => {});
    try {
      await store.time();
      await server.stop();
      const got: string[] = [];
      store.changes.on('down-then-up', (m) => got.push(m));
      // Down long enough for the queued SUBSCRIBE to be dropped after its retries.
      await new Promise((r) => setTimeout(r, 600));
      await server.start();
      const prefixed = 'ringway:down-then-up';
      for (let i = 0; i < 100 && got.length === 0; i++) {
        await publisher.publish(prefixed, `m${i}`).catch(() => 0);
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(got.length).toBeGreaterThan(0);
    } finally {
      publisher.disconnect();
      await store.close();
    }
  });

  it('a SUBSCRIBE that timed out is sent again when asked, not failed forever (found in review)', async () => {
    server ??= await startRedisServer();
    const store = redisStore(server.url, { commandTimeoutMs: 200 });
    await store.time();
    const pid = server.pid;
    process.kill(pid, 'SIGSTOP');
    try {
      store.changes.on('stopped', () => {});
      await new Promise((r) => setTimeout(r, 400));
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    await new Promise((r) => setTimeout(r, 100));
    const got: string[] = [];
    const off = await store.changes.subscribe('stopped', (m) => got.push(m));
    await store.changes.publish('stopped', 'hello');
    for (let i = 0; i < 50 && got.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(got).toEqual(['hello']);
    await off();
    await store.close();
  });

  it('close() returns while the server is down, also with a client that retries forever (found in review)', async () => {
    server ??= await startRedisServer();
    const client = new Redis(server.url, { maxRetriesPerRequest: null, retryStrategy: () => 50 });
    client.on('error', () => {});
    const store = redisStore(client);
    await store.time();
    await server.stop();
    try {
      store.changes.on('c', () => {});
      const closed = store.close().then(() => 'closed');
      expect(await Promise.race([closed, new Promise((r) => setTimeout(() => r('hung'), 2_000))])).toBe('closed');
    } finally {
      client.disconnect();
      await server.start();
    }
  });

  it('a server that stops answering fails every command in flight, however many, and works when it answers again', async () => {
    server ??= await startRedisServer();
    const store = redisStore(server.url, { commandTimeoutMs: 300 });
    const req = (resource: string) => ({ resource, holder: 'a', ttlMs: 10_000, fair: false, queueTtlMs: 1_000 });
    expect((await store.locks.acquire(req('before'))).acquired).toBe(true);
    const pid = server.pid;
    process.kill(pid, 'SIGSTOP'); // connected, but no replies: only the store's deadlines end the wait
    try {
      const early = [1, 2, 3].map((i) => store.locks.acquire(req(`early${i}`)));
      await new Promise((resolve) => setTimeout(resolve, 100));
      const late = [store.locks.release('before', 'a'), store.time()];
      for (const pending of [...early, ...late]) {
        await expect(pending).rejects.toMatchObject({
          code: 'ERR_STORE_UNAVAILABLE',
          message: expect.stringContaining('no reply within 300 ms'),
        });
      }
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    // The late replies to the abandoned commands arrive and are dropped; new commands work.
    expect((await store.locks.acquire(req('after'))).acquired).toBe(true);
    expect((await store.locks.inspect('after')).holder).toBe('a');
    await store.close();
  });

  it('a connection that drops fails the commands in flight at once, also when it is back before commandTimeoutMs (found in failover review)', async () => {
    server ??= await startRedisServer();
    // A long command timeout: only the drop can end these calls before the test's own timeout.
    const store = redisStore(server.url, { commandTimeoutMs: 60_000 });
    const req = (resource: string) => ({ resource, holder: 'a', ttlMs: 10_000, fair: false, queueTtlMs: 1_000 });
    expect((await store.locks.acquire(req('before-drop'))).acquired).toBe(true);
    const pid = server.pid;
    process.kill(pid, 'SIGSTOP'); // sent, no reply...
    const inFlight = [store.locks.acquire(req('in-flight')), store.time(), store.config.get('ns', 'k')];
    const outcomes = inFlight.map((p) =>
      p.then(
        () => 'resolved',
        (err: { code?: string; message?: string }) => `${err.code}: ${err.message}`,
      ),
    );
    try {
      await new Promise((resolve) => setTimeout(resolve, 100));
      // ...the connection drops (as in a failover or a network blip) and the client
      // reconnects at once: ioredis (no resend) forgets the commands it had sent.
      (store.client as unknown as { stream: { destroy(): void } }).stream.destroy();
      await new Promise((resolve) => setTimeout(resolve, 200));
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    for (const outcome of await Promise.all(outcomes)) {
      expect(outcome).toMatch(/^ERR_STORE_UNAVAILABLE: .*connection closed/);
    }
    // The client reconnects by itself and works.
    let after: boolean | undefined;
    for (let i = 0; i < 100 && after === undefined; i++) {
      after = await store.locks.acquire(req('after-drop')).then(
        (r) => r.acquired,
        () => undefined,
      );
      if (after === undefined) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(after).toBe(true);
    await store.close();
  }, 20_000);

  it('close() returns when the server stopped answering: QUIT is bounded by commandTimeoutMs, then the connection is dropped (found in lifecycle review)', async () => {
    server ??= await startRedisServer();
    const store = redisStore(server.url, { commandTimeoutMs: 300 });
    const off = await store.changes.subscribe('paused-close', () => {});
    expect(typeof off).toBe('function');
    await store.time();
    const pid = server.pid;
    process.kill(pid, 'SIGSTOP'); // connected, answers nothing
    try {
      await store.close(); // hung for ever before (the test's timeout ends it)
      expect(store.closed).toBe(true);
      await expect(store.time()).rejects.toMatchObject({ code: 'ERR_STORE_UNAVAILABLE' });
    } finally {
      process.kill(pid, 'SIGCONT');
    }
  }, 15_000);

  it('a command that timed out sends no follow-up: a failed acquire is not granted later (found in review)', async () => {
    server ??= await startRedisServer();
    const store = redisStore(server.url, { commandTimeoutMs: 200 });
    const admin = new Redis(server.url);
    const req = (resource: string, fair: boolean) => ({
      resource,
      holder: 'gave-up',
      ttlMs: 30_000,
      fair,
      queueTtlMs: 1_000,
    });
    try {
      // Both lock scripts known to the server (a fresh resource takes PLAIN_ACQUIRE, then ACQUIRE).
      expect((await store.locks.acquire({ ...req('warm', false), holder: 'a' })).acquired).toBe(true);
      const pid = server.pid;
      // 'job': PLAIN_ACQUIRE answers "ACQUIRE decides" (no counter yet) after the caller gave up.
      process.kill(pid, 'SIGSTOP');
      try {
        await expect(store.locks.acquire(req('job', false))).rejects.toBeInstanceOf(StoreUnavailableError);
      } finally {
        process.kill(pid, 'SIGCONT');
      }
      // 'forgotten': the server forgot ACQUIRE, and answers NOSCRIPT after the caller gave up.
      await admin.script('FLUSH');
      process.kill(pid, 'SIGSTOP');
      try {
        await expect(store.locks.acquire(req('forgotten', true))).rejects.toBeInstanceOf(StoreUnavailableError);
      } finally {
        process.kill(pid, 'SIGCONT');
      }
      await new Promise((resolve) => setTimeout(resolve, 100)); // the late replies arrive
      expect((await store.locks.inspect('job')).holder).toBeUndefined();
      expect((await store.locks.inspect('forgotten')).holder).toBeUndefined();
    } finally {
      admin.disconnect();
      await store.close();
    }
  });

  it('sends the lock scripts in full when the server has forgotten them (SCRIPT FLUSH)', async () => {
    server ??= await startRedisServer();
    const store = redisStore(server.url);
    const admin = new Redis(server.url);
    try {
      const req = { resource: 'flushed', holder: 'a', ttlMs: 10_000, fair: false, queueTtlMs: 1_000 };
      const first = await store.locks.acquire(req);
      expect(first.acquired).toBe(true);
      await admin.script('FLUSH');
      expect(await store.locks.release('flushed', 'a')).toBe(true);
      await admin.script('FLUSH');
      const second = await store.locks.acquire({ ...req, holder: 'b' });
      expect(second.acquired).toBe(true);
      if (first.acquired && second.acquired) expect(second.token).toBeGreaterThan(first.token);
      await admin.script('FLUSH');
      expect(await store.locks.acquire({ ...req, holder: 'c' })).toMatchObject({ acquired: false, position: -1 });
    } finally {
      admin.disconnect();
      await store.close();
    }
  });

  it('reports a restart (new run id) to onRestart listeners', async () => {
    server ??= await startRedisServer();
    const store = redisStore(server.url, { commandTimeoutMs: 500, redisOptions: { retryStrategy: () => 50 } });
    const events: RestartEvent[] = [];
    store.onRestart((e) => events.push(e));
    const removed: RestartEvent[] = [];
    store.onRestart((e) => removed.push(e))();
    await store.time();
    await new Promise((r) => setTimeout(r, 100)); // the first run id is read after connecting
    await server.restart();
    const deadline = Date.now() + 10_000;
    while (events.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(events).toHaveLength(1);
    expect(events[0]!.runId).not.toBe(events[0]!.previousRunId);
    expect(events[0]!.server).toBe(`127.0.0.1:${server.port}`);
    expect(removed).toHaveLength(0);
    await store.close();
  });
});
