/**
 * The config center across processes on one Redis: ten writers spread over four child
 * processes, fifty compare-and-set increments each, with watchers in this process and in
 * another child. Nothing is lost: the counter ends at 500, the versions the writers got are
 * exactly 1..500, and every watcher ends at version 500.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigCenter } from '../../src/config/ConfigCenter.js';
import { redisStore } from '../../src/store/redis/RedisStore.js';
import { deletePrefix, redisUrl, requireRedis, testPrefix } from '../helpers/redis.js';
import { killChildren, startChild } from '../registry/childProcess.js';
import type { CasResult } from './casIncrements.js';

const available = await requireRedis('config across processes');
const prefix = testPrefix('config-procs');

describe.skipIf(!available)('config center: several processes, one Redis', () => {
  afterAll(async () => {
    await killChildren();
    await deletePrefix(redisUrl(), prefix);
  });

  it('10 writers in 4 processes x 50 CAS increments: 500, versions 1..500, every watcher at 500', async () => {
    const common = { REDIS_URL: redisUrl(), PREFIX: prefix, NAMESPACE: 'proof', KEY: 'counter' };
    const writers = [3, 3, 2, 2].map((n) =>
      startChild('config/fixtures/casWriter.ts', { ...common, WRITERS: String(n), INCREMENTS: '50' }),
    );
    const remote = startChild('config/fixtures/watcher.ts', { ...common, TARGET: '500' });
    const stores = [0, 1, 2].map(() => redisStore(redisUrl(), { prefix }));
    const centers = stores.map((store) => new ConfigCenter({ store, namespace: 'proof' }));
    const seen = centers.map(() => [] as number[]);
    try {
      await Promise.all(
        centers.map((c, i) => c.watch('counter', (ch) => seen[i]!.push(ch.version), { exact: true }).ready),
      );
      await Promise.all([...writers, remote].map((c) => c.waitFor((l) => l === 'ready', 60_000)));
      for (const w of writers) w.send('go');
      const results = await Promise.all(
        writers.map(async (w) => JSON.parse(await w.waitFor((l) => l.startsWith('{'), 90_000)) as CasResult),
      );
      const versions = results.flatMap((r) => r.versions).sort((a, b) => a - b);
      expect(versions).toEqual(Array.from({ length: 500 }, (_, i) => i + 1));
      const conflicts = results.reduce((n, r) => n + r.conflicts, 0);
      console.log(`config processes: 500 increments, ${conflicts} CAS conflicts retried`);
      expect(await centers[0]!.get('counter')).toMatchObject({ value: 500, version: 500, stale: false });
      const history = await centers[0]!.history('counter');
      expect(history.map((h) => h.version)).toEqual(Array.from({ length: 50 }, (_, i) => 500 - i));
      expect(history.map((h) => h.value)).toEqual(Array.from({ length: 50 }, (_, i) => 500 - i));
      const remoteSeen = JSON.parse(await remote.waitFor((l) => l.startsWith('{'), 30_000)) as { versions: number[] };
      expect(remoteSeen.versions.at(-1)).toBe(500);
      const deadline = Date.now() + 10_000;
      while (!seen.every((s) => s.at(-1) === 500) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      for (const s of [...seen, remoteSeen.versions]) {
        expect(s.at(-1)).toBe(500);
        expect([...s].sort((a, b) => a - b)).toEqual(s); // in order, never backwards
      }
    } finally {
      await Promise.all(centers.map((c) => c.close()));
      await Promise.all(stores.map((s) => s.close()));
    }
  }, 150_000);
});
