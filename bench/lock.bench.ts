/**
 * Lock speed and fairness, ringway against redlock 5 on the same redis-server.
 *
 *   npm run bench lock        (or: npx tsx bench/lock.bench.ts)
 *
 * Uses REDIS_URL (default redis://127.0.0.1:6379), keys under `bench:lock:`.
 *
 * 1. Uncontended acquire + release, one after another on one connection each:
 *    - ringway: `LockManager.acquire` + `lock.release` over `redisStore`;
 *    - redlock 5.0.0-beta.2 with one client: `redlock.acquire` + `lock.release`;
 *    - floor: the two scripts ringway sends for an uncontended plain pair (PLAIN_ACQUIRE and
 *      PLAIN_RELEASE, lockScripts.ts) with raw ioredis `evalsha`, the same arguments, no
 *      library code around them: the same two round trips, the least they can cost;
 *    - redlock's scripts, raw: what redlock sends (its own two scripts, by `evalsha`) without
 *      redlock's code: the difference to the floor is what fencing tokens and the fair queue
 *      cost in the scripts.
 *    Interleaved tinybench rounds, medians; then client CPU per pair (process.cpuUsage over
 *    a fixed number of pairs, interleaved, medians).
 *    Redis-side cost per pair: when `redis-server` is on the PATH (Linux), the same four on a
 *    private redis-server the bench starts and stops (the shared one serves other clients):
 *    the server's CPU time per pair (/proc/<pid>/stat: the command plus its network work) and
 *    the time inside the commands (INFO commandstats, usec of EVALSHA/EVAL).
 * 2. 10 workers, each with its own connection, contending for one key for a fixed time,
 *    releasing at once (hold 0 ms) or after 1 ms of "work": redlock with its defaults (a
 *    worker whose acquire fails after its retries tries again), ringway plain, ringway fair.
 *    Throughput, each worker's share of grants against the mean, and the wait per grant
 *    (from when a worker starts wanting the lock until it has it): p50, p99, max. Runs are
 *    interleaved; the run with the median throughput is reported.
 *
 * Writes bench/results/lock.json and prints markdown tables.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
// @ts-expect-error redlock 5.0.0-beta.2's package.json "exports" has no "types" entry, so NodeNext finds none.
import RedlockModule from 'redlock';
import { entityKey } from '../src/store/keys.js';
import { PLAIN_ACQUIRE_SCRIPT, PLAIN_RELEASE_SCRIPT } from '../src/store/redis/lockScripts.js';
import { haveRedisServerBinary, startRedisServer } from '../test/helpers/redis.js';
import { interleave, machine, table, writeResults } from './harness.js';
import { loadRingway } from './ringway.js';

// ringway as users run it: the build, when fresh (see ringway.ts).
const { ringway, from: ringwayFrom } = await loadRingway();
const { LockManager, redisStore } = ringway;

/** The part of redlock 5's API used here (its own types: node_modules/redlock/dist/index.d.ts). */
interface RedlockLike {
  acquire(resources: string[], duration: number): Promise<{ release(): Promise<unknown> }>;
  /** Its Lua scripts and their SHA-1s. */
  readonly scripts: {
    readonly acquireScript: { readonly value: string; readonly hash: string };
    readonly releaseScript: { readonly value: string; readonly hash: string };
  };
}
const Redlock = RedlockModule as new (clients: Redis[], settings?: { retryCount?: number }) => RedlockLike;

const URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const PREFIX = 'bench:lock:';
const PAIRS = 200; // acquire + release pairs per tinybench sample
const CPU_PAIRS = 3_000;
const CONTENTION_WORKERS = 10;
const CONTENTION_MS = Number(process.env.LOCK_BENCH_CONTENTION_MS ?? 4_000);
/** Work done while holding the lock, in ms, per contention scenario (0: release at once). */
const HOLDS_MS = [0, 1];
const TTL = 10_000;

const connect = (url = URL) => {
  const c = new Redis(url);
  c.on('error', () => {});
  return c;
};

// ---- 1. uncontended ------------------------------------------------------------------

const RINGWAY = 'ringway acquire+release';
const REDLOCK = 'redlock 5 acquire+release';
const FLOOR = 'floor: same 2 scripts, raw ioredis';
const REDLOCK_FLOOR = "redlock's 2 scripts, raw ioredis";

/** The four ways to make one uncontended pair against `url`, each on its own connection. */
async function pairs(url: string): Promise<{ tasks: [string, () => Promise<void>][]; close(): Promise<void> }> {
  const store = redisStore(url, { prefix: PREFIX });
  const locks = new LockManager({ store });
  const redlockClient = connect(url);
  const redlock = new Redlock([redlockClient], { retryCount: 0 });
  const floorClient = connect(url);
  const acquireSha = String(await floorClient.script('LOAD', PLAIN_ACQUIRE_SCRIPT.lua));
  const releaseSha = String(await floorClient.script('LOAD', PLAIN_RELEASE_SCRIPT.lua));
  const lease = entityKey(PREFIX, 'lock', 'floor');
  const fence = `${lease}:fence`;
  await floorClient.set(fence, '1', 'PX', 86_400_000); // a live counter: the plain scripts' common case
  const rawClient = connect(url);
  const { acquireScript, releaseScript } = redlock.scripts;
  await rawClient.script('LOAD', acquireScript.value);
  await rawClient.script('LOAD', releaseScript.value);
  const rawKey = `${PREFIX}uncontended-redlock-raw`;
  let seq = 0;
  const tasks: [string, () => Promise<void>][] = [
    [
      RINGWAY,
      async () => {
        const lock = await locks.acquire('uncontended-ringway', { ttlMs: TTL });
        await lock.release();
      },
    ],
    [
      REDLOCK,
      async () => {
        const lock = await redlock.acquire([`${PREFIX}uncontended-redlock`], TTL);
        await lock.release();
      },
    ],
    [
      FLOOR,
      async () => {
        const holder = `floor.${++seq}`; // shaped like a LockManager holder id
        const token = await floorClient.evalsha(acquireSha, 2, lease, fence, holder, TTL, 86_400_000);
        if (Number(token) <= 0) throw new Error('floor: not acquired');
        if ((await floorClient.evalsha(releaseSha, 1, lease, holder)) !== 1) throw new Error('floor: not released');
      },
    ],
    [
      REDLOCK_FLOOR,
      async () => {
        const value = (++seq).toString(16).padStart(32, '0'); // redlock's values: 32 hex digits
        const got = await rawClient.evalsha(acquireScript.hash, 1, rawKey, value, TTL);
        if (got !== 1) throw new Error('redlock floor: not acquired');
        await rawClient.evalsha(releaseScript.hash, 1, rawKey, value);
      },
    ],
  ];
  // Warm every path (script loading, JIT) before measuring.
  for (let i = 0; i < 500; i++) for (const [, pair] of tasks) await pair();
  return {
    tasks,
    close: async () => {
      locks.close();
      await store.close();
      for (const c of [redlockClient, floorClient, rawClient]) c.disconnect();
    },
  };
}

const shared = await pairs(URL);
const repeat = (pair: () => Promise<void>) => async () => {
  for (let i = 0; i < PAIRS; i++) await pair();
};
const uncontended = await interleave(
  shared.tasks.map(([name, pair]) => ({ name, units: PAIRS, fn: repeat(pair) })),
  { rounds: 9, iterations: 5 },
);

/**
 * Runs each task `count` pairs at a time in 5 interleaved rounds and returns, per task, the
 * median of `measure`'s per-pair figures.
 */
async function perPair<M>(
  tasks: [string, () => Promise<void>][],
  count: number,
  start: () => Promise<M> | M,
  stop: (started: M) => Promise<number> | number,
): Promise<Record<string, number>> {
  const samples = new Map<string, number[]>(tasks.map(([name]) => [name, []]));
  for (let round = 0; round < 5; round++) {
    for (let k = 0; k < tasks.length; k++) {
      const [name, pair] = tasks[(k + round) % tasks.length]!;
      const started = await start();
      for (let i = 0; i < count; i++) await pair();
      samples.get(name)!.push((await stop(started)) / count);
    }
  }
  return Object.fromEntries([...samples].map(([name, v]) => [name, median(v)]));
}

/** Client CPU (user + system) per pair, in µs. */
const cpu = await perPair(
  shared.tasks,
  CPU_PAIRS,
  () => process.cpuUsage(),
  (before) => {
    const used = process.cpuUsage(before);
    return used.user + used.system;
  },
);
await shared.close();

/** Redis-side cost per pair on a private redis-server (see the module comment), or undefined. */
async function redisSide(): Promise<Record<string, { serverCpuUs: number; inCommandsUs: number }> | undefined> {
  if (process.platform !== 'linux' || !haveRedisServerBinary()) return undefined;
  const server = await startRedisServer();
  const pid = server.pid;
  try {
    const url = server.url;
    const admin = connect(url);
    const tick = 1e6 / Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()); // µs per clock tick
    const serverCpu = () => {
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      return (Number(fields[11]) + Number(fields[12])) * tick; // utime + stime
    };
    const inCommands = async () => {
      let usec = 0;
      for (const line of (await admin.info('commandstats')).split('\n')) {
        const m = /^cmdstat_(?:evalsha|eval):calls=\d+,usec=(\d+)/.exec(line);
        if (m) usec += Number(m[1]);
      }
      return usec;
    };
    const own = await pairs(url);
    const cpuUs = await perPair(own.tasks, 5_000, serverCpu, (before) => serverCpu() - before);
    const commandUs = await perPair(own.tasks, 5_000, inCommands, async (before) => (await inCommands()) - before);
    await own.close();
    admin.disconnect();
    return Object.fromEntries(
      own.tasks.map(([name]) => [name, { serverCpuUs: cpuUs[name]!, inCommandsUs: commandUs[name]! }]),
    );
  } finally {
    await server.stop();
  }
}
const redisCost = await redisSide();

// ---- 2. contention -------------------------------------------------------------------

interface ContentionResult {
  name: string;
  holdMs: number;
  grants: number;
  perSecond: number;
  perWorker: number[];
  minShareOfMean: number;
  maxShareOfMean: number;
  waitP50Ms: number;
  waitP99Ms: number;
  waitMaxMs: number;
  failedAttempts: number;
}

type Worker = { acquire: () => Promise<(() => Promise<unknown>) | undefined>; close: () => Promise<void> };

async function contend(name: string, make: (i: number) => Worker, holdMs: number): Promise<ContentionResult> {
  const workers = Array.from({ length: CONTENTION_WORKERS }, (_, i) => make(i));
  const perWorker = new Array<number>(workers.length).fill(0);
  const waits: number[] = [];
  let failedAttempts = 0;
  const end = performance.now() + CONTENTION_MS;
  await Promise.all(
    workers.map(async (w, i) => {
      while (performance.now() < end) {
        const wantedAt = performance.now();
        let release: (() => Promise<unknown>) | undefined;
        while (release === undefined && performance.now() < end) {
          release = await w.acquire();
          if (release === undefined) failedAttempts++;
        }
        if (release === undefined) break;
        waits.push(performance.now() - wantedAt);
        perWorker[i]!++;
        if (holdMs > 0) await new Promise((resolve) => setTimeout(resolve, holdMs));
        await release();
      }
    }),
  );
  for (const w of workers) await w.close();
  const grants = perWorker.reduce((a, b) => a + b, 0);
  const mean = grants / workers.length;
  waits.sort((a, b) => a - b);
  return {
    name,
    holdMs,
    grants,
    perSecond: grants / (CONTENTION_MS / 1000),
    perWorker,
    minShareOfMean: Math.min(...perWorker) / mean,
    maxShareOfMean: Math.max(...perWorker) / mean,
    waitP50Ms: quantile(waits, 0.5),
    waitP99Ms: quantile(waits, 0.99),
    waitMaxMs: waits[waits.length - 1] ?? 0,
    failedAttempts,
  };
}

const redlockWorker = (i: number): Worker => {
  const client = connect();
  const r = new Redlock([client]); // its defaults: 10 retries, 200 ms apart, +-100 ms jitter
  return {
    acquire: async () => {
      try {
        const lock = await r.acquire([`${PREFIX}contended-redlock`], TTL);
        return () => lock.release();
      } catch {
        return undefined;
      }
    },
    close: async () => {
      client.disconnect();
      void i;
    },
  };
};

const ringWorker =
  (fair: boolean) =>
  (i: number): Worker => {
    const store = redisStore(URL, { prefix: PREFIX });
    const locks = new LockManager({ store, fair });
    const resource = fair ? 'contended-fair' : 'contended-plain';
    return {
      acquire: async () => {
        try {
          const lock = await locks.acquire(resource, { ttlMs: TTL, waitMs: 60_000 });
          return () => lock.release();
        } catch {
          return undefined;
        }
      },
      close: async () => {
        locks.close();
        await store.close();
        void i;
      },
    };
  };

const contention: ContentionResult[] = [];
const contenders: [string, (i: number) => Worker][] = [
  ['redlock 5 (defaults)', redlockWorker],
  ['ringway plain', ringWorker(false)],
  ['ringway fair', ringWorker(true)],
];
const contentionRounds = Number(process.env.LOCK_BENCH_CONTENTION_ROUNDS ?? 3);
for (const holdMs of HOLDS_MS) {
  const samples = new Map<string, ContentionResult[]>();
  for (let round = 0; round < contentionRounds; round++) {
    for (let k = 0; k < contenders.length; k++) {
      const [name, make] = contenders[(k + round) % contenders.length]!;
      const result = await contend(name, make, holdMs);
      samples.set(name, [...(samples.get(name) ?? []), result]);
    }
  }
  for (const [name] of contenders) {
    // The round with the median throughput represents each contender.
    const rs = (samples.get(name) ?? []).sort((a, b) => a.perSecond - b.perSecond);
    contention.push(rs[Math.floor(rs.length / 2)]!);
  }
}

// ---- report --------------------------------------------------------------------------

const byName = (name: string) => uncontended.find((r) => r.name === name)!.nsPerUnit;
const scenario = (name: string, holdMs: number) => contention.find((c) => c.name === name && c.holdMs === holdMs)!;
const ratios: Record<string, number> = {
  'ringway vs redlock (rate)': byName(REDLOCK) / byName(RINGWAY),
  'ringway vs floor (rate)': byName(FLOOR) / byName(RINGWAY),
  'redlock vs floor (rate)': byName(FLOOR) / byName(REDLOCK),
  "floor vs redlock's scripts raw (rate)": byName(REDLOCK_FLOOR) / byName(FLOOR),
};
for (const holdMs of HOLDS_MS) {
  const base = scenario('redlock 5 (defaults)', holdMs).perSecond;
  ratios[`contention hold ${holdMs} ms: ringway plain vs redlock (throughput)`] =
    scenario('ringway plain', holdMs).perSecond / base;
  ratios[`contention hold ${holdMs} ms: ringway fair vs redlock (throughput)`] =
    scenario('ringway fair', holdMs).perSecond / base;
}

console.log(`\nUncontended acquire + release (${URL}), per pair:`);
console.log(table(uncontended, 'redlock 5 acquire+release', 'pair'));
console.log('\nClient CPU per pair (user + system, µs):');
for (const [k, v] of Object.entries(cpu)) console.log(`  ${k}: ${v.toFixed(1)} µs`);
if (redisCost === undefined) console.log('\nRedis-side cost: skipped (needs redis-server on the PATH, Linux)');
else {
  console.log('\nRedis-side cost per pair, private redis-server (µs): server CPU | inside the commands');
  for (const [k, v] of Object.entries(redisCost)) {
    console.log(`  ${k}: ${v.serverCpuUs.toFixed(1)} | ${v.inCommandsUs.toFixed(1)}`);
  }
}
console.log(
  `\n${CONTENTION_WORKERS} workers contending for one key, ${CONTENTION_MS} ms per run, median of ${contentionRounds} runs:`,
);
console.log(
  '| implementation | hold ms | grants/s | min share / mean | max share / mean | wait p50 ms | wait p99 ms | wait max ms |',
);
console.log('|---|---:|---:|---:|---:|---:|---:|---:|');
for (const c of contention) {
  console.log(
    `| ${c.name} | ${c.holdMs} | ${c.perSecond.toFixed(0)} | ${c.minShareOfMean.toFixed(2)} | ${c.maxShareOfMean.toFixed(2)} | ${c.waitP50Ms.toFixed(1)} | ${c.waitP99Ms.toFixed(1)} | ${c.waitMaxMs.toFixed(0)} |`,
  );
}
for (const c of contention)
  console.log(`  ${c.name}, hold ${c.holdMs} ms: grants per worker ${c.perWorker.join(', ')}`);
console.log('\nRatios:');
for (const [k, v] of Object.entries(ratios)) console.log(`  ${k}: ${v.toFixed(2)}`);

console.log(`\nringway ran from ${ringwayFrom}`);

writeResults('lock', {
  machine: machine(),
  redis: URL,
  ringway: ringwayFrom,
  pairsPerSample: PAIRS,
  uncontended,
  cpuMicrosPerPair: cpu,
  redisSideMicrosPerPair: redisCost ?? null,
  contention: {
    workers: CONTENTION_WORKERS,
    durationMs: CONTENTION_MS,
    rounds: contentionRounds,
    holdsMs: HOLDS_MS,
    results: contention,
  },
  ratios,
});

const cleanup = connect();
const keys = await cleanup.keys(`${PREFIX}*`);
if (keys.length > 0) await cleanup.unlink(...keys);
cleanup.disconnect();

function median(values: number[]): number {
  const s = values.slice().sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}
