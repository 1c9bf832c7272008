/**
 * `npm start` until the gateway lands: a ring of three cache nodes, a few keys and where
 * they map, then what moves when a node joins and when one leaves.
 */
import { HashRing } from '../src/index.js';

const ring = new HashRing({ nodes: ['cache-a', 'cache-b', { id: 'cache-c', weight: 2 }] });
const keys = ['user:1', 'user:2', 'user:42', 'cart:7', 'session:abc', 'invoice:2026-11', 'ключ:1', 'photo:9'];

function show(title: string, r: HashRing): Map<string, string | undefined> {
  console.log(`\n${title}  (${r.size} nodes, ${r.pointCount} points)`);
  const placed = new Map<string, string | undefined>();
  for (const key of keys) {
    const node = r.get(key);
    placed.set(key, node);
    console.log(`  ${key.padEnd(18)} -> ${node}   replicas: ${r.getN(key, 2).join(', ')}`);
  }
  return placed;
}

function share(r: HashRing): string {
  const counts = new Map<string, number>();
  const sample = Array.from({ length: 100_000 }, (_, i) => `key:${i}`);
  for (const node of r.getMany(sample)) counts.set(node as string, (counts.get(node as string) ?? 0) + 1);
  return [...counts].map(([node, n]) => `${node} ${(n / 1000).toFixed(1)}%`).join(', ');
}

const before = show('ringway HashRing (xxHash64 on WebAssembly, 160 points per unit of weight)', ring);
console.log(`  share of 100k keys: ${share(ring)}`);

ring.add('cache-d');
const added = show('after add("cache-d")', ring);
const movedIn = keys.filter((k) => before.get(k) !== added.get(k));
console.log(`  moved: ${movedIn.length ? movedIn.join(', ') : 'none'} (only to cache-d)`);

ring.remove('cache-b');
const removed = show('after remove("cache-b")', ring);
const movedOut = keys.filter((k) => added.get(k) !== removed.get(k));
console.log(`  moved: ${movedOut.length ? movedOut.join(', ') : 'none'} (only keys that were on cache-b)`);
console.log(`  share of 100k keys: ${share(ring)}`);
