/**
 * Proof of mutual exclusion and fencing on a real Redis, checked independently of the lock:
 * several processes contend for one lock; an occupancy counter catches overlaps and a fenced
 * key that only accepts increasing tokens catches stale writes.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { LockLostError } from '../../src/errors.js';
import { LockManager } from '../../src/lock/LockManager.js';
import { redisStore } from '../../src/store/redis/RedisStore.js';
import { deletePrefix, redisUrl, requireRedis, testPrefix } from '../helpers/redis.js';
import { FENCED_WRITE } from './fenced.js';

const available = await requireRedis('lock proofs');
const prefix = testPrefix('lock-proof');
const contender = fileURLToPath(new URL('./contender.ts', import.meta.url));

interface Stats {
  grants: number;
  stale: number;
  overlaps: number;
  tokens: number[];
  perWorker: number[];
}

function runContender(env: Record<string, string>): Promise<Stats> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', contender], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    child.stderr.on('data', (d: Buffer) => (err += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (code !== 0) reject(new Error(`contender exited ${code}: ${err}`));
      else resolve(JSON.parse(out.trim().split('\n').pop()!) as Stats);
    });
  });
}

describe.skipIf(!available)('mutual exclusion across processes', () => {
  afterAll(() => deletePrefix(redisUrl(), prefix));

  for (const fair of [false, true]) {
    it(`${fair ? 'fair' : 'plain'} mode: 3 processes x 3 workers, zero overlaps, zero stale writes`, async () => {
      const resource = `contended-${fair ? 'fair' : 'plain'}`;
      const processes = 3;
      const workers = 3;
      const rounds = 15;
      const results = await Promise.all(
        Array.from({ length: processes }, () =>
          runContender({
            REDIS_URL: redisUrl(),
            PREFIX: prefix,
            RESOURCE: resource,
            WORKERS: String(workers),
            ROUNDS: String(rounds),
            FAIR: fair ? '1' : '0',
          }),
        ),
      );
      const grants = results.reduce((a, r) => a + r.grants, 0);
      expect(grants).toBe(processes * workers * rounds);
      expect(results.reduce((a, r) => a + r.overlaps, 0)).toBe(0);
      expect(results.reduce((a, r) => a + r.stale, 0)).toBe(0);
      // The fenced key's log holds every grant's token, strictly increasing, none repeated.
      const check = new Redis(redisUrl());
      const log = (await check.lrange(`${prefix}check:{${resource}}:log`, 0, -1)).map(Number);
      check.disconnect();
      expect(log).toHaveLength(grants);
      for (let i = 1; i < log.length; i++) expect(log[i]!).toBeGreaterThan(log[i - 1]!);
      expect(new Set(results.flatMap((r) => r.tokens)).size).toBe(grants);
    }, 120_000);
  }

  it('a holder paused past its ttl is fenced out and told it lost the lock', async () => {
    const store = redisStore(redisUrl(), { prefix });
    const a = new LockManager({ store });
    const b = new LockManager({ store });
    const check = new Redis(redisUrl());
    check.defineCommand('fencedWrite', { numberOfKeys: 2, lua: FENCED_WRITE });
    const write = (token: number) =>
      (check as unknown as { fencedWrite(a: string, b: string, t: string): Promise<number> }).fencedWrite(
        `${prefix}paused:{r}:fenced`,
        `${prefix}paused:{r}:log`,
        String(token),
      );
    try {
      const slow = await a.acquire('paused', { ttlMs: 80 });
      // `slow` pauses (a GC pause, a stopped VM) past its lease; `fast` takes the lock.
      await new Promise((resolve) => setTimeout(resolve, 250));
      const fast = await b.acquire('paused', { waitMs: 0 });
      expect(fast.token).toBeGreaterThan(slow.token);
      expect(await write(fast.token)).toBe(1);
      // `slow` wakes up and writes with its old token: the resource refuses it.
      expect(await write(slow.token)).toBe(0);
      await expect(slow.extend()).rejects.toBeInstanceOf(LockLostError);
      expect(slow.lost).toBe(true);
      expect(await slow.release()).toBe(false);
      expect((await b.inspect('paused')).holder).toBe(fast.holder);
      await fast.release();
    } finally {
      a.close();
      b.close();
      check.disconnect();
      await store.close();
    }
  });
});
