/**
 * The gateway's limiter over `store.rateLimits` on a real, self-started redis-server: shared
 * buckets, the key layout, long client keys, and failing open (counted) while Redis is down.
 */
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { StoreRateLimiter } from '../../../server/ratelimit/StoreRateLimiter.js';
import { redisStore } from '../../../src/store/redis/RedisStore.js';
import { haveRedisServerBinary, type RedisServer, startRedisServer } from '../../helpers/redis.js';

const limit = { rps: 0.001, burst: 3, header: undefined };

describe.skipIf(!haveRedisServerBinary())('StoreRateLimiter (Redis)', () => {
  let server: RedisServer | undefined;
  afterAll(() => server?.stop());

  it('shares one bucket between limiters, keeps it in <prefix>ratelimit:{key}, and digests long keys', async () => {
    server ??= await startRedisServer();
    const a = redisStore(server.url, { prefix: 'rl:' });
    const b = redisStore(server.url, { prefix: 'rl:' });
    const admin = new Redis(server.url);
    try {
      const la = new StoreRateLimiter(a.rateLimits);
      const lb = new StoreRateLimiter(b.rateLimits);
      const waits = [];
      for (let i = 0; i < 5; i++) waits.push(await (i % 2 === 0 ? la : lb).take('route|1.2.3.4', limit));
      expect(waits.slice(0, 3)).toEqual([0, 0, 0]);
      expect(waits[3]).toBeGreaterThan(0);
      expect(waits[4]).toBeGreaterThan(0);
      expect(await admin.hgetall('rl:ratelimit:{route|1.2.3.4}')).toMatchObject({ tokens: expect.any(String) });
      expect(await admin.pttl('rl:ratelimit:{route|1.2.3.4}')).toBeGreaterThan(0);
      // A key longer than the store takes becomes a digest: still limited, still per key.
      const long = `route|h:${'x'.repeat(5_000)}`;
      for (let i = 0; i < 3; i++) expect(await la.take(long, limit)).toBe(0);
      expect(await la.take(long, limit)).toBeGreaterThan(0);
      expect(await la.take(`${long}y`, limit)).toBe(0);
      expect(la.failures + lb.failures).toBe(0);
    } finally {
      admin.disconnect();
      await a.close();
      await b.close();
    }
  });

  it('lets requests through and counts the failure while Redis is down, and limits again once it is back', async () => {
    server ??= await startRedisServer();
    const store = redisStore(server.url, { commandTimeoutMs: 300, redisOptions: { retryStrategy: () => 50 } });
    try {
      const rl = new StoreRateLimiter(store.rateLimits);
      for (let i = 0; i < 3; i++) expect(await rl.take('down', limit)).toBe(0);
      expect(await rl.take('down', limit)).toBeGreaterThan(0);
      await server.stop();
      for (let i = 0; i < 3; i++) expect(await rl.take('down', limit)).toBe(0);
      expect(rl.failures).toBe(3);
      await server.start();
      // Back (empty, as after a crash): the bucket starts full again and limits again.
      let wait = 0;
      const deadline = Date.now() + 10_000;
      while (Date.now() < deadline) {
        const before = rl.failures;
        wait = await rl.take('down', limit);
        if (rl.failures === before && wait > 0) break;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      expect(wait).toBeGreaterThan(0);
      rl.close();
    } finally {
      await store.close();
    }
  });
});
