/**
 * The rest of the hashing family: ketama mode against the `hashring` package, Maglev against
 * the ring, jump hash and bounded loads; then what the README reports about each scheme:
 * balance (max/mean keys per node) and disruption (keys moved when a node joins or leaves,
 * against the ideal 1/n).
 *
 *   npm run bench hashing        (or: npx tsx bench/hashing.bench.ts)
 *
 * 1M keys of about 15 bytes over 100 nodes. Ketama mode's answers are checked equal to
 * hashring's on all 1M keys before any timing; hashring and getBounded run on the first
 * 100k keys; every figure is per key. Interleaved rounds, medians. Writes
 * bench/results/hashing.json.
 */
import HashRingPkg from 'hashring';
import { interleave, machine, table, writeResults } from './harness.js';
import { loadRingway } from './ringway.js';

const { ringway, from: ringwayFrom } = await loadRingway();
const { HashRing, jumpHash, MaglevTable } = ringway;

const KEYS = 1_000_000;
const PEER_KEYS = 100_000;
const NODES = 100;

const nodes = Array.from({ length: NODES }, (_, i) => `cache-${String(i).padStart(3, '0')}`);
// About 15 bytes each: "user:" + 10 characters (the ring bench's keys).
const keys = Array.from({ length: KEYS }, (_, i) => `user:${((i * 2654435761) >>> 0).toString(36).padStart(10, '0')}`);
const byteKeys = keys.map((k) => Buffer.from(k));
const bigKeys = keys.map((_, i) => BigInt.asUintN(64, BigInt(i) * 0x9e3779b97f4a7c15n));
const peerKeys = keys.slice(0, PEER_KEYS);

const ring = new HashRing({ nodes });
const ketama = new HashRing({ hash: 'ketama', nodes });
const hashring = new HashRingPkg(nodes);
const maglev = new MaglevTable(nodes);

// Same answers first: ketama mode against hashring on every key.
const ketamaAnswers = ketama.getMany(keys);
for (let i = 0; i < KEYS; i++) {
  if (ketamaAnswers[i] !== hashring.get(keys[i] as string))
    throw new Error(`ketama disagrees with hashring on ${keys[i]}`);
}
if (JSON.stringify(ketama.getMany(byteKeys.slice(0, 20_000))) !== JSON.stringify(ketamaAnswers.slice(0, 20_000))) {
  throw new Error('ketama byte keys disagree');
}
console.log(`ketama mode = hashring on all ${KEYS / 1e6}M keys`);

// Loads for getBounded: a steady state with every node near the average.
const loads = new Map(nodes.map((id, i) => [id, 1000 + (i % 7) * 40]));

const out = new Uint32Array(KEYS);
let sink = 0;
const lookups = await interleave(
  [
    { name: 'ketama getMany(strings)', units: KEYS, fn: () => ketama.getMany(keys) },
    {
      name: 'ketama get(string)',
      units: KEYS,
      fn: () => {
        for (let i = 0; i < KEYS; i++) sink += (ketama.get(keys[i] as string) as string).length;
      },
    },
    {
      name: 'hashring 3.2 get',
      units: PEER_KEYS,
      fn: () => {
        for (let i = 0; i < PEER_KEYS; i++) sink += hashring.get(peerKeys[i] as string).length;
      },
    },
    { name: 'Maglev getManyIndices(bytes)', units: KEYS, fn: () => maglev.getManyIndices(byteKeys, out) },
    { name: 'HashRing getManyIndices(bytes)', units: KEYS, fn: () => ring.getManyIndices(byteKeys, out) },
    { name: 'Maglev getMany(bytes)', units: KEYS, fn: () => maglev.getMany(byteKeys) },
    { name: 'HashRing getMany(bytes)', units: KEYS, fn: () => ring.getMany(byteKeys) },
    { name: 'Maglev getMany(strings)', units: KEYS, fn: () => maglev.getMany(keys) },
    { name: 'HashRing getMany(strings)', units: KEYS, fn: () => ring.getMany(keys) },
    {
      name: 'Maglev get(string)',
      units: KEYS,
      fn: () => {
        for (let i = 0; i < KEYS; i++) sink += (maglev.get(keys[i] as string) as string).length;
      },
    },
    {
      name: 'HashRing get(string)',
      units: KEYS,
      fn: () => {
        for (let i = 0; i < KEYS; i++) sink += (ring.get(keys[i] as string) as string).length;
      },
    },
    {
      name: 'jumpHash(string, 100)',
      units: KEYS,
      fn: () => {
        for (let i = 0; i < KEYS; i++) sink += jumpHash(keys[i] as string, NODES);
      },
    },
    {
      name: 'jumpHash(bigint, 100)',
      units: KEYS,
      fn: () => {
        for (let i = 0; i < KEYS; i++) sink += jumpHash(bigKeys[i] as bigint, NODES);
      },
    },
    {
      name: 'HashRing getBounded(string, Map)',
      units: PEER_KEYS,
      fn: () => {
        for (let i = 0; i < PEER_KEYS; i++) sink += (ring.getBounded(peerKeys[i] as string, loads) as string).length;
      },
    },
  ],
  { rounds: 7, iterations: 3 },
);

// Builds of 100 nodes: ms per build.
const builds = await interleave(
  [
    { name: 'HashRing build (xxh64, 160 points)', units: 1, fn: () => new HashRing({ nodes }) },
    { name: 'HashRing build (ketama)', units: 1, fn: () => new HashRing({ hash: 'ketama', nodes }) },
    { name: 'hashring 3.2 build', units: 1, fn: () => new HashRingPkg(nodes) },
    { name: 'MaglevTable build (65537)', units: 1, fn: () => new MaglevTable(nodes) },
  ],
  { rounds: 5, iterations: 5 },
);

// Balance and disruption, for the README. Each scheme maps the 1M keys to node indexes.
type Mapper = (ids: string[]) => (key: string) => string;
const schemes: Record<string, Mapper> = {
  'ring (xxh64, 160 points)': (ids) => {
    const r = new HashRing({ nodes: ids });
    return (k) => r.get(k) as string;
  },
  'ketama (md5, 160 points)': (ids) => {
    const r = new HashRing({ hash: 'ketama', nodes: ids });
    return (k) => r.get(k) as string;
  },
  'maglev (65537 entries)': (ids) => {
    const t = new MaglevTable(ids);
    return (k) => t.get(k) as string;
  },
  'jump (xxh64 key)': (ids) => (k) => ids[jumpHash(k, ids.length)] as string,
};

function assign(map: (key: string) => string): string[] {
  return keys.map(map);
}

function maxOverMean(owners: string[], n: number): number {
  const counts = new Map<string, number>();
  for (const o of owners) counts.set(o, (counts.get(o) ?? 0) + 1);
  return Math.max(...counts.values()) / (owners.length / n);
}

function movedFraction(a: string[], b: string[]): number {
  let moved = 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) moved++;
  return moved / a.length;
}

const added = [...nodes, 'cache-new'];
// Jump hash can only drop the last bucket; the others drop a node from the middle.
const removedMiddle = nodes.filter((id) => id !== 'cache-042');
const removedLast = nodes.slice(0, -1);
const quality = Object.entries(schemes).map(([name, make]) => {
  const base = assign(make(nodes));
  const onAdd = movedFraction(base, assign(make(added)));
  const onRemove = movedFraction(base, assign(make(name.startsWith('jump') ? removedLast : removedMiddle)));
  return {
    scheme: name,
    maxOverMean: Number(maxOverMean(base, NODES).toFixed(4)),
    movedOnAdd: Number(onAdd.toFixed(5)),
    movedOnAddVsIdeal: Number((onAdd / (1 / (NODES + 1))).toFixed(3)),
    movedOnRemove: Number(onRemove.toFixed(5)),
    movedOnRemoveVsIdeal: Number((onRemove / (1 / NODES)).toFixed(3)),
  };
});
// Bounded loads: the 1M keys placed one after another, for two values of c.
for (const c of [1.25, 1.1]) {
  const counts = new Map<string, number>();
  for (let i = 0; i < KEYS; i++) {
    const node = ring.getBounded(keys[i] as string, counts, c) as string;
    counts.set(node, (counts.get(node) ?? 0) + 1);
  }
  quality.push({
    scheme: `ring + bounded loads (c = ${c})`,
    maxOverMean: Number((Math.max(...counts.values()) / (KEYS / NODES)).toFixed(4)),
    movedOnAdd: Number.NaN,
    movedOnAddVsIdeal: Number.NaN,
    movedOnRemove: Number.NaN,
    movedOnRemoveVsIdeal: Number.NaN,
  });
}

const get = (name: string) => lookups.find((r) => r.name === name)?.nsPerUnit as number;
const ratios = {
  'ketama getMany(strings) vs hashring get': get('hashring 3.2 get') / get('ketama getMany(strings)'),
  'ketama get(string) vs hashring get': get('hashring 3.2 get') / get('ketama get(string)'),
  'Maglev vs HashRing getManyIndices(bytes)':
    get('HashRing getManyIndices(bytes)') / get('Maglev getManyIndices(bytes)'),
  'Maglev vs HashRing getMany(bytes)': get('HashRing getMany(bytes)') / get('Maglev getMany(bytes)'),
  'Maglev vs HashRing getMany(strings)': get('HashRing getMany(strings)') / get('Maglev getMany(strings)'),
  'Maglev vs HashRing get(string)': get('HashRing get(string)') / get('Maglev get(string)'),
  'getBounded vs get(string)': get('HashRing get(string)') / get('HashRing getBounded(string, Map)'),
};

console.log(
  `\nLookups: ${KEYS / 1e6}M keys (~15 bytes), ${NODES} nodes; hashring and getBounded on ${PEER_KEYS / 1e3}k`,
);
console.log(table(lookups, 'hashring 3.2 get'));
console.log('\nBuild of 100 nodes (ms per build):');
for (const r of builds) console.log(`  ${r.name}: ${(r.nsPerUnit / 1e6).toFixed(2)} ms`);
console.log('\nRatios (> 1: the first is faster):');
for (const [k, v] of Object.entries(ratios)) console.log(`  ${k}: ${v.toFixed(2)}`);
console.log(`\nBalance and disruption: ${KEYS / 1e6}M keys, ${NODES} nodes; add = 101st node, remove = one node`);
console.log('| scheme | max/mean | moved on add (x ideal) | moved on remove (x ideal) |');
console.log('|---|---:|---:|---:|');
for (const q of quality) {
  const add = Number.isNaN(q.movedOnAdd) ? 'n/a' : `${(q.movedOnAdd * 100).toFixed(2)}% (${q.movedOnAddVsIdeal}x)`;
  const rem = Number.isNaN(q.movedOnRemove)
    ? 'n/a'
    : `${(q.movedOnRemove * 100).toFixed(2)}% (${q.movedOnRemoveVsIdeal}x)`;
  console.log(`| ${q.scheme} | ${q.maxOverMean.toFixed(3)} | ${add} | ${rem} |`);
}
writeResults('hashing', {
  machine: { ...machine(), ringway: ringwayFrom },
  keys: KEYS,
  peerKeys: PEER_KEYS,
  nodes: NODES,
  ketamaVerifiedKeys: KEYS,
  lookups,
  builds,
  ratios,
  quality: quality.map((q) => Object.fromEntries(Object.entries(q).map(([k, v]) => [k, Number.isNaN(v) ? null : v]))),
});
if (sink === 42) console.log('');
