/**
 * Balancer speed: acquire + release per second for every strategy, at 10 and 1000 endpoints,
 * beside undici's BalancedPool picking an upstream.
 *
 *   npm run bench balancer        (or: npx tsx bench/balancer.bench.ts)
 *
 * Workload: 64 requests stay in flight; each operation acquires one lease and releases the
 * oldest (ok, with a latency), so least-connections, p2c and ewma compare real loads and the
 * heap moves. Endpoint weights are 1..10 (the same for every strategy); ring-hash and maglev
 * get a key from a pool of 4096, and ring-hash is run with and without a bounded load
 * (c = 1.25), and with all weights 1 (its ring holds 160 points per unit of weight, so
 * weights 1..10 make a ring of 880k points at 1000 endpoints, 160k with weights 1).
 * Outlier detection is on (the default) and sees only successes.
 *
 * Peer: undici 7's BalancedPool (its upstream choice alone, `[kGetDispatcher]()`, the hook
 * its pool calls per request: an interleaved weighted round robin over upstream weights
 * that it adjusts on connection errors). It has no release, so its figure is the pick alone,
 * against ringway's acquire + release. No connection is opened anywhere.
 *
 * Interleaved rounds, medians (bench/harness.ts). Writes bench/results/balancer.json.
 */
import { BalancedPool } from 'undici';
import type { Balancer } from '../src/balancer/Balancer.js';
import type { Lease } from '../src/balancer/Lease.js';
import type { BalancerOptions } from '../src/balancer/options.js';
import { type BenchTask, interleave, machine, type TaskResult, writeResults } from './harness.js';
import { loadRingway } from './ringway.js';

const { ringway, from: ringwayFrom } = await loadRingway();
const { createBalancer, BALANCER_STRATEGIES } = ringway;

const SIZES = [10, 1000] as const;
const OPS = 20_000;
const WINDOW = 64;
const KEYS = Array.from({ length: 4096 }, (_, i) => `user:${((i * 2654435761) >>> 0).toString(36)}`);

function endpointList(n: number) {
  return Array.from({ length: n }, (_, i) => ({
    id: `svc-${i}`,
    address: `http://10.0.${i >> 8}.${i & 255}:8080`,
    weight: 1 + ((i * 7919) % 10),
  }));
}

/** A deterministic random() so every run draws the same picks. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Variant {
  name: string;
  options: BalancerOptions;
  keyed: boolean;
  /** All weights 1 instead of 1..10 (a ring of 160 points per endpoint instead of 880 on average). */
  equalWeights?: boolean;
}

const variants: Variant[] = BALANCER_STRATEGIES.map((strategy) => ({
  name: strategy,
  options: { strategy },
  keyed: strategy === 'ring-hash' || strategy === 'maglev',
}));
variants.push(
  {
    name: 'ring-hash bounded 1.25',
    options: { strategy: 'ring-hash', ringHash: { boundedLoad: 1.25 } },
    keyed: true,
  },
  { name: 'ring-hash, weights all 1', options: { strategy: 'ring-hash' }, keyed: true, equalWeights: true },
);

/** One sample: OPS acquire + release pairs with WINDOW leases in flight. */
function workload(lb: Balancer, keyed: boolean): () => void {
  const ring: Lease[] = [];
  for (let i = 0; i < WINDOW; i++) ring.push(lb.acquire(keyed ? { key: KEYS[i] as string } : undefined) as Lease);
  let at = 0;
  let k = WINDOW;
  const ctx = { key: '' };
  return () => {
    for (let i = 0; i < OPS; i++) {
      let lease: Lease;
      if (keyed) {
        ctx.key = KEYS[k++ & 4095] as string;
        lease = lb.acquire(ctx) as Lease;
      } else {
        lease = lb.acquire() as Lease;
      }
      (ring[at] as Lease).release({ ok: true, latencyMs: 2 + (i & 7) });
      ring[at] = lease;
      at = at + 1 === WINDOW ? 0 : at + 1;
    }
  };
}

const kGetDispatcher = Object.getOwnPropertySymbols(BalancedPool.prototype).find(
  (s) => s.description === 'get dispatcher',
) as symbol;
if (kGetDispatcher === undefined) throw new Error("undici's BalancedPool has no [kGetDispatcher]: update the bench");

const pools: BalancedPool[] = [];
const tasks: BenchTask[] = [];
for (const n of SIZES) {
  const list = endpointList(n);
  const equal = list.map((e) => ({ ...e, weight: 1 }));
  for (const v of variants) {
    const lb = createBalancer({ ...v.options, endpoints: v.equalWeights ? equal : list, random: seeded(n) });
    tasks.push({ name: `${v.name} @${n}`, units: OPS, fn: workload(lb, v.keyed) });
  }
  const pool = new BalancedPool(list.map((e) => e.address));
  pools.push(pool);
  const pick = (pool as unknown as Record<symbol, () => unknown>)[kGetDispatcher]?.bind(pool) as () => unknown;
  const peerOps = n >= 1000 ? OPS / 20 : OPS;
  tasks.push({
    name: `undici BalancedPool pick @${n}`,
    units: peerOps,
    fn: () => {
      for (let i = 0; i < peerOps; i++) if (pick() === undefined) throw new Error('no upstream');
    },
  });
}

const results = await interleave(tasks, { rounds: 7, iterations: 5 });
for (const pool of pools) await pool.close();

const byName = (name: string) => results.find((r) => r.name === name) as TaskResult;
const rows: string[] = [
  '| strategy | ns per acquire+release @10 | ops/s @10 | ns @1000 | ops/s @1000 |',
  '|---|---:|---:|---:|---:|',
];
const fmt = (n: number) => (n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : `${(n / 1e3).toFixed(0)}k`);
for (const v of [...variants.map((x) => x.name), 'undici BalancedPool pick']) {
  const a = byName(`${v} @10`);
  const b = byName(`${v} @1000`);
  rows.push(
    `| ${v} | ${a.nsPerUnit.toFixed(0)} | ${fmt(a.perSecond)} | ${b.nsPerUnit.toFixed(0)} | ${fmt(b.perSecond)} |`,
  );
}
const ratios: Record<string, number> = {};
for (const n of SIZES) {
  const peer = byName(`undici BalancedPool pick @${n}`).nsPerUnit;
  ratios[`undici pick / weighted-round-robin acquire+release @${n}`] =
    peer / byName(`weighted-round-robin @${n}`).nsPerUnit;
  ratios[`undici pick / round-robin acquire+release @${n}`] = peer / byName(`round-robin @${n}`).nsPerUnit;
}
const slowest = Math.max(
  ...results.filter((r) => r.name.endsWith('@1000') && !r.name.startsWith('undici')).map((r) => r.nsPerUnit),
);

console.log(`\nacquire + release, ${WINDOW} in flight, weights 1..10 (undici: its pick alone)\n`);
console.log(rows.join('\n'));
console.log(`\nslowest ringway strategy at 1000 endpoints: ${slowest.toFixed(0)} ns (target < 1000 ns)`);
console.log('\nRatios (> 1: ringway faster):');
for (const [k, v] of Object.entries(ratios)) console.log(`  ${k}: ${v.toFixed(2)}`);

writeResults('balancer', {
  machine: { ...machine(), ringway: ringwayFrom },
  ops: OPS,
  inFlight: WINDOW,
  weights: '1 + (i * 7919) % 10',
  results,
  slowestAt1000Ns: slowest,
  ratios,
});
