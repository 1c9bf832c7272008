/**
 * A child process for the mutual-exclusion proof (test/lock/proof.test.ts): `WORKERS`
 * workers, each with its own connection and LockManager, take the lock `RESOURCE` `ROUNDS`
 * times each. Inside the lock a worker
 * - increments an occupancy counter in Redis; a value above 1 means two holders overlap;
 * - writes to a fenced key that only accepts a token larger than every token it has seen,
 *   and counts refused (stale) writes.
 * It prints one JSON line: { grants, stale, overlaps, tokens }.
 *
 * Run: REDIS_URL=... PREFIX=... RESOURCE=... WORKERS=3 ROUNDS=20 FAIR=0 node --import tsx test/lock/contender.ts
 */
import { Redis } from 'ioredis';
import { LockManager } from '../../src/lock/LockManager.js';
import { redisStore } from '../../src/store/redis/RedisStore.js';
import { FENCED_WRITE } from './fenced.js';

const env = (name: string, fallback?: string): string => {
  const value = process.env[name] ?? fallback;
  if (value === undefined) throw new Error(`${name} is required`);
  return value;
};

async function worker(url: string, prefix: string, resource: string, rounds: number, fair: boolean) {
  const store = redisStore(url, { prefix });
  const locks = new LockManager({ store, fair });
  const check = new Redis(url);
  check.defineCommand('fencedWrite', { numberOfKeys: 2, lua: FENCED_WRITE });
  const fenced = check as unknown as { fencedWrite(k1: string, k2: string, token: string): Promise<number> };
  const occupancy = `${prefix}check:{${resource}}:occupancy`;
  const stats = { grants: 0, stale: 0, overlaps: 0, tokens: [] as number[] };
  for (let i = 0; i < rounds; i++) {
    await locks.withLock(resource, { ttlMs: 5_000, waitMs: 60_000 }, async (lock) => {
      stats.grants++;
      stats.tokens.push(lock.token);
      if ((await check.incr(occupancy)) !== 1) stats.overlaps++;
      const accepted = await fenced.fencedWrite(
        `${prefix}check:{${resource}}:fenced`,
        `${prefix}check:{${resource}}:log`,
        String(lock.token),
      );
      if (accepted !== 1) stats.stale++;
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 2));
      await check.decr(occupancy);
    });
  }
  locks.close();
  await store.close();
  check.disconnect();
  return stats;
}

const url = env('REDIS_URL');
const prefix = env('PREFIX');
const resource = env('RESOURCE');
const workers = Number(env('WORKERS', '3'));
const rounds = Number(env('ROUNDS', '20'));
const fair = env('FAIR', '0') === '1';
const all = await Promise.all(Array.from({ length: workers }, () => worker(url, prefix, resource, rounds, fair)));
const total = { grants: 0, stale: 0, overlaps: 0, tokens: [] as number[], perWorker: all.map((s) => s.grants) };
for (const s of all) {
  total.grants += s.grants;
  total.stale += s.stale;
  total.overlaps += s.overlaps;
  total.tokens.push(...s.tokens);
}
process.stdout.write(`${JSON.stringify(total)}\n`);
