/**
 * Service registry speed on loopback Redis: lookups from the local copy against a store read
 * per lookup, and how long a change takes to reach 50 watchers.
 *
 *   npm run bench registry        (or: npx tsx bench/registry.bench.ts)
 *
 * Uses REDIS_URL (default redis://127.0.0.1:6379), keys under `bench:registry:<pid>:`
 * (deleted at the end).
 *
 * 1. Lookups of a service with 20 instances, `instances(service, { healthyOnly: true })`:
 *    - ringway `ServiceRegistry.instances` (served from the view, kept current by
 *      notifications and the index);
 *    - naive: HGETALL of the instances hash + JSON.parse of each record + the same filter,
 *      one round trip per lookup (what a client without a cache does);
 *    - ringway's own snapshot script per lookup (`store.registry.sync`, no position): the
 *      store read the cache saves.
 *    Interleaved tinybench rounds, medians, per lookup.
 * 2. Change propagation: 50 watchers, each its own `ServiceRegistry` over its own Redis
 *    connections, in this process; one instance changes its weight 200 times (one change at
 *    a time); for each change, the time from the start of `update()` to each watcher's
 *    callback: p50/p99 over every (change, watcher) pair, and of the slowest watcher per
 *    change. Against naive watchers that poll HGET every 100 ms (40 changes).
 *
 * Writes bench/results/registry.json and prints markdown tables.
 */
import { Redis } from 'ioredis';
import type { RegistryOptions } from '../src/registry/RegistryOptions.js';
import { entityKey } from '../src/store/keys.js';
import { interleave, machine, table, writeResults } from './harness.js';
import { loadRingway } from './ringway.js';

const { ringway, from: ringwayFrom } = await loadRingway();
const { ServiceRegistry, redisStore } = ringway;

const URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const PREFIX = `bench:registry:${process.pid}:`;
const INSTANCES = 20;
const WATCHERS = 50;
const CHANGES = 200;
const NAIVE_CHANGES = 40;
const POLL_MS = 100;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
}

function summary(samples: number[]): { p50: number; p99: number; max: number; n: number } {
  const s = [...samples].sort((a, b) => a - b);
  const r = (x: number) => Number(x.toFixed(3));
  return { p50: r(quantile(s, 0.5)), p99: r(quantile(s, 0.99)), max: r(s.at(-1) ?? Number.NaN), n: s.length };
}

const client = new Redis(URL);
const mkRegistry = (options: Partial<RegistryOptions> = {}) =>
  new ServiceRegistry({ store: redisStore(URL, { prefix: PREFIX }), ttlMs: 15_000, ...options });

// 1. Lookups.
const owner = mkRegistry();
const regs = [];
for (let i = 0; i < INSTANCES; i++) {
  regs.push(
    await owner.register({
      service: 'users',
      id: `users-${i}`,
      address: `http://10.0.0.${i}:3000`,
      tags: ['v2'],
      meta: { build: '1234' },
      zone: i % 2 === 0 ? 'a' : 'b',
      healthy: i !== 3,
    }),
  );
}
const reader = mkRegistry();
const instKey = entityKey(PREFIX, 'registry', 'users', 'inst');
if ((await reader.instances('users', { healthyOnly: true })).length !== INSTANCES - 1) throw new Error('setup');
const naive = async () => {
  const all = await client.hgetall(instKey);
  return Object.values(all)
    .map((r) => JSON.parse(r) as { healthy: boolean; id: string })
    .filter((i) => i.healthy)
    .sort((a, b) => (a.id < b.id ? -1 : 1));
};
if ((await naive()).length !== INSTANCES - 1) throw new Error('naive setup');
const limits = { logLimit: 256, tombstoneMs: 86_400_000 };
const readerStore = reader.options.store;

const CACHED = 10_000;
const REMOTE = 300;
let sink = 0;
const lookups = await interleave(
  [
    {
      name: 'ringway instances() (local copy)',
      units: CACHED,
      fn: async () => {
        for (let i = 0; i < CACHED; i++) sink += (await reader.instances('users', { healthyOnly: true })).length;
      },
    },
    {
      name: 'naive HGETALL + parse per lookup',
      units: REMOTE,
      fn: async () => {
        for (let i = 0; i < REMOTE; i++) sink += (await naive()).length;
      },
    },
    {
      name: 'ringway snapshot script per lookup',
      units: REMOTE,
      fn: async () => {
        for (let i = 0; i < REMOTE; i++) {
          const s = await readerStore.registry.sync('users', undefined, limits);
          sink += s.kind === 'snapshot' ? s.instances.length : 0;
        }
      },
    },
  ],
  { rounds: 7, iterations: 5 },
);

// 2. Change propagation to 50 watchers.
const watchers = Array.from({ length: WATCHERS }, () => mkRegistry());
const target = regs[0]!;
let expected = 0;
let started = 0;
const perWatcher: number[] = [];
const slowest: number[] = [];
let seenThisRound = 0;
let roundDone: () => void = () => {};
await Promise.all(
  watchers.map(
    (w) =>
      w.watch('users', (instances, change) => {
        if (change.type !== 'update') return;
        const weight = instances.find((i) => i.id === target.id)?.weight;
        if (weight !== expected) return;
        const latency = performance.now() - started;
        perWatcher.push(latency);
        seenThisRound++;
        if (seenThisRound === WATCHERS) {
          slowest.push(latency);
          roundDone();
        }
      }).ready,
  ),
);
await sleep(300); // every subscription active
for (let i = 1; i <= CHANGES; i++) {
  expected = 100 + i;
  seenThisRound = 0;
  const done = new Promise<void>((resolve) => {
    roundDone = resolve;
  });
  started = performance.now();
  await target.update({ weight: expected });
  await Promise.race([done, sleep(5_000)]);
}

// The ringway watchers are done (closing them keeps them from reacting to the next phase).
for (const w of watchers) await w.close();

// Naive watchers: poll HGET every POLL_MS, each on its own connection.
const pollers = Array.from({ length: WATCHERS }, () => new Redis(URL));
const naiveLatency: number[] = [];
const naiveSlowest: number[] = [];
let naiveSeen = 0;
let naiveDone: () => void = () => {};
let polling = true;
const pollLoops = pollers.map(async (p, w) => {
  await sleep((POLL_MS * w) / WATCHERS); // spread the polls, as independent clients would be
  let last = -1;
  while (polling) {
    const raw = await p.hget(instKey, target.id);
    const weight = raw === null ? -1 : (JSON.parse(raw) as { weight: number }).weight;
    if (weight === expected && weight !== last) {
      const latency = performance.now() - started;
      naiveLatency.push(latency);
      naiveSeen++;
      if (naiveSeen === WATCHERS) {
        naiveSlowest.push(latency);
        naiveDone();
      }
    }
    last = weight;
    await sleep(POLL_MS);
  }
});
for (let i = 1; i <= NAIVE_CHANGES; i++) {
  expected = 1_000 + i;
  naiveSeen = 0;
  const done = new Promise<void>((resolve) => {
    naiveDone = resolve;
  });
  started = performance.now();
  await target.update({ weight: expected });
  await Promise.race([done, sleep(5_000)]);
  await sleep(Math.random() * POLL_MS);
}
polling = false;
await Promise.all(pollLoops);

const propagation = {
  ringway: { perWatcherMs: summary(perWatcher), slowestWatcherMs: summary(slowest), changes: CHANGES },
  naivePolling: {
    pollMs: POLL_MS,
    perWatcherMs: summary(naiveLatency),
    slowestWatcherMs: summary(naiveSlowest),
    changes: NAIVE_CHANGES,
  },
};

console.log(`\nLookups: one service of ${INSTANCES} instances, healthyOnly filter, loopback Redis`);
console.log(table(lookups, 'naive HGETALL + parse per lookup', 'lookup'));
console.log(`\nChange to ${WATCHERS} watchers (ms from update() to callback):`);
console.log('| watchers | per watcher p50 | p99 | slowest watcher p50 | p99 |');
console.log('|---|---:|---:|---:|---:|');
const row = (name: string, p: (typeof propagation)['ringway']) =>
  console.log(
    `| ${name} | ${p.perWatcherMs.p50.toFixed(2)} | ${p.perWatcherMs.p99.toFixed(2)} | ${p.slowestWatcherMs.p50.toFixed(2)} | ${p.slowestWatcherMs.p99.toFixed(2)} |`,
  );
row('ringway watch (pub/sub + index)', propagation.ringway);
row(`naive: poll HGET every ${POLL_MS} ms`, propagation.naivePolling);

writeResults('registry', {
  machine: { ...machine(), ringway: ringwayFrom },
  instances: INSTANCES,
  watchers: WATCHERS,
  lookups,
  propagation,
  note: 'loopback Redis 7 on the same 2-core machine; watchers and writer share this process',
});

await Promise.all([owner, reader].map((r) => r.close()));
for (const r of [owner, reader, ...watchers]) await r.options.store.close();
let cursor = '0';
do {
  const [next, keys] = await client.scan(cursor, 'MATCH', `${PREFIX}*`, 'COUNT', 500);
  cursor = next;
  if (keys.length > 0) await client.unlink(...keys);
} while (cursor !== '0');
for (const p of pollers) p.disconnect();
client.disconnect();
if (sink === 42) console.log('');
