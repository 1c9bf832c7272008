/**
 * Config center speed on loopback Redis: get and set (plain and compare-and-set) against a
 * plain GET/SET of the same JSON, and how long a write takes to reach 50 watchers.
 *
 *   npm run bench config        (or: npx tsx bench/config.bench.ts)
 *
 * Uses REDIS_URL (default redis://127.0.0.1:6379), keys under `bench:config:<pid>:`
 * (deleted at the end).
 *
 * 1. One key holding a ~1 KB JSON value (a list of gateway routes):
 *    - ringway `get` (one HGET, decoded and parsed) vs naive GET + JSON.parse;
 *    - ringway `set` (one script: new version, history, revision, change log, publish) and
 *      `set` with `expectedVersion` (the same script, compare-and-set) vs naive
 *      JSON.stringify + SET (no version, no history, no notification);
 *    - the same ringway calls on the in-process memory store, for scale.
 *    Interleaved tinybench rounds, medians, per operation.
 * 2. Write to 50 watchers: 50 `ConfigCenter`s, each over its own Redis connections, in this
 *    process, watch the key; one writer sets it 200 times (one write at a time); for each
 *    write, the time from the start of `set()` to each watcher's callback: p50/p99 over every
 *    (write, watcher) pair and of the slowest watcher per write. Against naive watchers that
 *    poll GET every 100 ms (40 writes).
 *
 * Writes bench/results/config.json and prints markdown tables.
 */
import { Redis } from 'ioredis';
import { interleave, machine, table, writeResults } from './harness.js';
import { loadRingway } from './ringway.js';

const { ringway, from: ringwayFrom } = await loadRingway();
const { ConfigCenter, memoryStore, redisStore } = ringway;

const URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const PREFIX = `bench:config:${process.pid}:`;
const WATCHERS = 50;
const WRITES = 200;
const NAIVE_WRITES = 40;
const POLL_MS = 100;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function summary(samples: number[]): { p50: number; p99: number; max: number; n: number } {
  const s = [...samples].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? Number.NaN;
  const r = (x: number) => Number(x.toFixed(3));
  return { p50: r(at(0.5)), p99: r(at(0.99)), max: r(s.at(-1) ?? Number.NaN), n: s.length };
}

const routes = Array.from({ length: 8 }, (_, i) => ({
  match: { prefix: `/api/service-${i}`, methods: ['GET', 'POST'] },
  service: `service-${i}`,
  strategy: 'p2c',
  timeoutMs: 5_000,
  retries: { attempts: 2, on: ['connect-failure', 'reset', '502'] },
}));
const bytes = Buffer.byteLength(JSON.stringify(routes));

const client = new Redis(URL);
const redisBacked = new ConfigCenter({ store: redisStore(URL, { prefix: PREFIX }), namespace: 'bench' });
const memoryBacked = new ConfigCenter({ store: memoryStore(), namespace: 'bench' });
const naiveKey = `${PREFIX}naive:gateway.routes`;
await redisBacked.set('gateway.routes', routes);
await memoryBacked.set('gateway.routes', routes);
await client.set(naiveKey, JSON.stringify(routes));
let redisVersion = (await redisBacked.get('gateway.routes'))?.version ?? 0;
let memoryVersion = (await memoryBacked.get('gateway.routes'))?.version ?? 0;

const OPS = 300;
const MEMORY_OPS = 10_000;
let sink = 0;
const ops = await interleave(
  [
    {
      name: 'ringway get (Redis)',
      units: OPS,
      fn: async () => {
        for (let i = 0; i < OPS; i++) sink += (await redisBacked.get('gateway.routes'))?.version ?? 0;
      },
    },
    {
      name: 'naive GET + JSON.parse',
      units: OPS,
      fn: async () => {
        for (let i = 0; i < OPS; i++) sink += (JSON.parse((await client.get(naiveKey)) as string) as unknown[]).length;
      },
    },
    {
      name: 'ringway set (Redis)',
      units: OPS,
      fn: async () => {
        for (let i = 0; i < OPS; i++) redisVersion = (await redisBacked.set('gateway.routes', routes)).version;
      },
    },
    {
      name: 'ringway set, expectedVersion (Redis)',
      units: OPS,
      fn: async () => {
        for (let i = 0; i < OPS; i++) {
          redisVersion = (await redisBacked.set('gateway.routes', routes, { expectedVersion: redisVersion })).version;
        }
      },
    },
    {
      name: 'naive JSON.stringify + SET',
      units: OPS,
      fn: async () => {
        for (let i = 0; i < OPS; i++) await client.set(naiveKey, JSON.stringify(routes));
      },
    },
    {
      name: 'ringway get (memory store)',
      units: MEMORY_OPS,
      fn: async () => {
        for (let i = 0; i < MEMORY_OPS; i++) sink += (await memoryBacked.get('gateway.routes'))?.version ?? 0;
      },
    },
    {
      name: 'ringway set, expectedVersion (memory store)',
      units: MEMORY_OPS,
      fn: async () => {
        for (let i = 0; i < MEMORY_OPS; i++) {
          memoryVersion = (await memoryBacked.set('gateway.routes', routes, { expectedVersion: memoryVersion }))
            .version;
        }
      },
    },
  ],
  { rounds: 7, iterations: 3 },
);

// 2. Write to 50 watchers.
const watchers = Array.from(
  { length: WATCHERS },
  () => new ConfigCenter({ store: redisStore(URL, { prefix: PREFIX }), namespace: 'bench' }),
);
let expected = -1;
let started = 0;
const perWatcher: number[] = [];
const slowest: number[] = [];
let seen = 0;
let writeDone: () => void = () => {};
await Promise.all(
  watchers.map(
    (w) =>
      w.watch(
        'gateway.flag',
        (change) => {
          if (change.value !== expected) return;
          const latency = performance.now() - started;
          perWatcher.push(latency);
          if (++seen === WATCHERS) {
            slowest.push(latency);
            writeDone();
          }
        },
        { exact: true },
      ).ready,
  ),
);
await sleep(300); // every subscription active
for (let i = 1; i <= WRITES; i++) {
  expected = i;
  seen = 0;
  const done = new Promise<void>((resolve) => {
    writeDone = resolve;
  });
  started = performance.now();
  await redisBacked.set('gateway.flag', i);
  await Promise.race([done, sleep(5_000)]);
}
for (const w of watchers) await w.close();

// Naive watchers: poll GET every POLL_MS, each on its own connection.
const flagKey = `${PREFIX}naive:gateway.flag`;
const pollers = Array.from({ length: WATCHERS }, () => new Redis(URL));
const naivePerWatcher: number[] = [];
const naiveSlowest: number[] = [];
let naiveSeen = 0;
let naiveDone: () => void = () => {};
let polling = true;
const loops = pollers.map(async (p, w) => {
  await sleep((POLL_MS * w) / WATCHERS); // spread the polls, as independent clients would be
  let last: unknown;
  while (polling) {
    const raw = await p.get(flagKey);
    const value = raw === null ? undefined : (JSON.parse(raw) as unknown);
    if (value === expected && value !== last) {
      const latency = performance.now() - started;
      naivePerWatcher.push(latency);
      if (++naiveSeen === WATCHERS) {
        naiveSlowest.push(latency);
        naiveDone();
      }
    }
    last = value;
    await sleep(POLL_MS);
  }
});
for (let i = 1; i <= NAIVE_WRITES; i++) {
  expected = 10_000 + i;
  naiveSeen = 0;
  const done = new Promise<void>((resolve) => {
    naiveDone = resolve;
  });
  started = performance.now();
  await client.set(flagKey, JSON.stringify(expected));
  await Promise.race([done, sleep(5_000)]);
  await sleep(Math.random() * POLL_MS);
}
polling = false;
await Promise.all(loops);

const propagation = {
  ringway: { perWatcherMs: summary(perWatcher), slowestWatcherMs: summary(slowest), writes: WRITES },
  naivePolling: {
    pollMs: POLL_MS,
    perWatcherMs: summary(naivePerWatcher),
    slowestWatcherMs: summary(naiveSlowest),
    writes: NAIVE_WRITES,
  },
};

console.log(`\nget/set of one ${bytes}-byte JSON value, loopback Redis (memory store for scale)`);
console.log(table(ops, 'naive GET + JSON.parse', 'op'));
console.log(`\nWrite to ${WATCHERS} watchers (ms from set() to callback):`);
console.log('| watchers | per watcher p50 | p99 | slowest watcher p50 | p99 |');
console.log('|---|---:|---:|---:|---:|');
const row = (name: string, p: (typeof propagation)['ringway']) =>
  console.log(
    `| ${name} | ${p.perWatcherMs.p50.toFixed(2)} | ${p.perWatcherMs.p99.toFixed(2)} | ${p.slowestWatcherMs.p50.toFixed(2)} | ${p.slowestWatcherMs.p99.toFixed(2)} |`,
  );
row('ringway watch (pub/sub + revision)', propagation.ringway);
row(`naive: poll GET every ${POLL_MS} ms`, propagation.naivePolling);

writeResults('config', {
  machine: { ...machine(), ringway: ringwayFrom },
  valueBytes: bytes,
  watchers: WATCHERS,
  ops,
  propagation,
  note: 'loopback Redis 7 on the same 2-core machine; watchers and writer share this process',
});

await redisBacked.close();
await memoryBacked.close();
await redisBacked.options.store.close();
await memoryBacked.options.store.close();
for (const w of watchers) await w.options.store.close();
let cursor = '0';
do {
  const [next, keys] = await client.scan(cursor, 'MATCH', `${PREFIX}*`, 'COUNT', 500);
  cursor = next;
  if (keys.length > 0) await client.unlink(...keys);
} while (cursor !== '0');
for (const p of pollers) p.disconnect();
client.disconnect();
if (sink === 42) console.log('');
