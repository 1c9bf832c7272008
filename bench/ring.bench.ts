/**
 * Ring lookup and build speed, ringway against the rings a Node user would pick instead.
 *
 *   npm run bench ring        (or: npx tsx bench/ring.bench.ts)
 *
 * 1M keys of about 15 bytes over 100 nodes at 160 points each: ringway getMany on byte keys
 * and on strings, get on a string; the plain-TypeScript TunedRing (same hash, same answers,
 * typed arrays and a prefix table); the `hashring` (ketama, md5, its default options) and
 * `consistent-hash` packages. Slow peers run on the first 100k keys; every figure is per
 * key. Interleaved rounds, medians. Then the build of a 1000-node ring and the cost of adding
 * one node to it. Writes bench/results/ring.json.
 */
import ConsistentHash from 'consistent-hash';
import HashRingPkg from 'hashring';
import { interleave, machine, table, writeResults } from './harness.js';
import { loadRingway } from './ringway.js';

const { ringway, from: ringwayFrom } = await loadRingway();
const { HashRing } = ringway;

import { TunedRing } from './tunedRing.js';

const KEYS = 1_000_000;
const PEER_KEYS = 100_000;
const NODES = 100;

const nodes = Array.from({ length: NODES }, (_, i) => `cache-${String(i).padStart(3, '0')}`);
// About 15 bytes each: "user:" + 10 characters.
const keys = Array.from({ length: KEYS }, (_, i) => `user:${((i * 2654435761) >>> 0).toString(36).padStart(10, '0')}`);
const byteKeys = keys.map((k) => Buffer.from(k));
const peerKeys = keys.slice(0, PEER_KEYS);

const ring = new HashRing({ nodes });
const tuned = new TunedRing(nodes);
const hashring = new HashRingPkg(nodes);
const consistent = new ConsistentHash({ weight: 160 });
for (const n of nodes) consistent.add(n);

// Same answers first: the comparison is between equal rings.
const sample = keys.slice(0, 20_000);
const expected = ring.getMany(sample);
if (JSON.stringify(tuned.getMany(sample)) !== JSON.stringify(expected)) throw new Error('TunedRing disagrees');
if (JSON.stringify(ring.getMany(sample.map((k) => Buffer.from(k)))) !== JSON.stringify(expected)) {
  throw new Error('byte keys disagree');
}

const out = new Uint32Array(KEYS);
let sink = 0;
const lookups = await interleave(
  [
    { name: 'ringway getManyIndices(bytes)', units: KEYS, fn: () => ring.getManyIndices(byteKeys, out) },
    { name: 'ringway getMany(bytes)', units: KEYS, fn: () => ring.getMany(byteKeys) },
    { name: 'ringway getMany(strings)', units: KEYS, fn: () => ring.getMany(keys) },
    {
      name: 'ringway get(string)',
      units: KEYS,
      fn: () => {
        for (let i = 0; i < KEYS; i++) sink += (ring.get(keys[i] as string) as string).length;
      },
    },
    {
      name: 'TunedRing get(string) (plain TS)',
      units: KEYS,
      fn: () => {
        for (let i = 0; i < KEYS; i++) sink += (tuned.get(keys[i] as string) as string).length;
      },
    },
    {
      name: 'TunedRing get(bytes) (plain TS)',
      units: KEYS,
      fn: () => {
        for (let i = 0; i < KEYS; i++) sink += (tuned.get(byteKeys[i] as Buffer) as string).length;
      },
    },
    {
      name: 'hashring 3.2 get',
      units: PEER_KEYS,
      fn: () => {
        for (let i = 0; i < PEER_KEYS; i++) sink += (hashring.get(peerKeys[i] as string) as string).length;
      },
    },
    {
      name: 'consistent-hash 1.2 get',
      units: PEER_KEYS,
      fn: () => {
        for (let i = 0; i < PEER_KEYS; i++) sink += (consistent.get(peerKeys[i] as string) as string).length;
      },
    },
  ],
  { rounds: 7, iterations: 3 },
);

// Allocation of get(string): bytes allocated per call over 1M calls (should be ~0).
globalThis.gc?.();
const heapBefore = process.memoryUsage().heapUsed;
for (let i = 0; i < KEYS; i++) sink += (ring.get(keys[i] as string) as string).length;
const heapAfter = process.memoryUsage().heapUsed;
const bytesPerGet = Math.max(0, heapAfter - heapBefore) / KEYS;

// Build: a 1000-node ring from scratch, and one more node added to it.
const bigNodes = Array.from({ length: 1000 }, (_, i) => `node-${i}`);
let addCounter = 0;
const builds = await interleave(
  [
    { name: 'ringway build, 1000 nodes', units: 1, fn: () => new HashRing({ nodes: bigNodes }) },
    { name: 'TunedRing build, 1000 nodes', units: 1, fn: () => new TunedRing(bigNodes) },
    {
      name: 'ringway add 1 node to 1000',
      units: 1,
      fn: () => {
        const r = new HashRing({ nodes: bigNodes });
        const t0 = process.hrtime.bigint();
        r.add(`extra-${addCounter++}`);
        return { overriddenDuration: Number(process.hrtime.bigint() - t0) / 1e6 };
      },
    },
  ],
  { rounds: 5, iterations: 3 },
);

const get = (name: string) => lookups.find((r) => r.name === name)?.nsPerUnit as number;
const b = (name: string) => builds.find((r) => r.name === name)?.nsPerUnit as number;
const ratios = {
  'getMany(bytes) vs TunedRing get(string)': get('TunedRing get(string) (plain TS)') / get('ringway getMany(bytes)'),
  'getMany(strings) vs TunedRing get(string)':
    get('TunedRing get(string) (plain TS)') / get('ringway getMany(strings)'),
  'getMany(strings) vs hashring': get('hashring 3.2 get') / get('ringway getMany(strings)'),
  'getMany(strings) vs consistent-hash': get('consistent-hash 1.2 get') / get('ringway getMany(strings)'),
  'get(string) vs hashring': get('hashring 3.2 get') / get('ringway get(string)'),
  'build: ringway time / TunedRing time': b('ringway build, 1000 nodes') / b('TunedRing build, 1000 nodes'),
  'add one node / full build': b('ringway add 1 node to 1000') / b('ringway build, 1000 nodes'),
};

console.log(
  `\nLookups: ${KEYS / 1e6}M keys (~15 bytes), ${NODES} nodes x 160 points; peers on ${PEER_KEYS / 1e3}k keys`,
);
console.log(table(lookups, 'hashring 3.2 get'));
console.log(`\nget(string) heap growth: ${bytesPerGet.toFixed(3)} bytes per call`);
console.log('\nBuild (ms per build; "add" is the add alone):');
for (const r of builds) console.log(`  ${r.name}: ${(r.nsPerUnit / 1e6).toFixed(2)} ms`);
console.log('\nRatios:');
for (const [k, v] of Object.entries(ratios)) console.log(`  ${k}: ${v.toFixed(2)}`);
writeResults('ring', {
  machine: { ...machine(), ringway: ringwayFrom },
  keys: KEYS,
  peerKeys: PEER_KEYS,
  nodes: NODES,
  lookups,
  builds,
  bytesPerGet,
  ratios,
});
if (sink === 42) console.log('');
