/**
 * A consistent-hash ring (Karger et al., 1997) whose points, table and lookups live in
 * WebAssembly memory.
 *
 * Each node of weight w gets round(vnodes x w) points (at least one). Point i of node `id`
 * sits at xxHash64(`${id}_${i}`), as in Envoy's ring hash. A key maps to the owner of the
 * first point clockwise from the key's hash. Points at equal positions are ordered by node
 * name, so every process that builds a ring from the same members, in any order, builds the
 * same ring.
 *
 * @example
 * ```ts
 * const ring = new HashRing({ nodes: ['cache-a', { id: 'cache-b', weight: 2 }] });
 * ring.get('user:42');        // 'cache-a' or 'cache-b'
 * ring.getN('user:42', 2);    // both, in clockwise order: a replica preference list
 * ```
 */
import { InvalidOptionError } from '../errors.js';
import { checkInt, checkName, checkNumber, checkOneOf } from '../validate.js';
import { type Key, NO_OWNER, type WasmCore, wasmCore } from '../wasm/index.js';

/** Hash functions a ring can use. */
export const RING_HASHES = ['xxh64', 'xxh32'] as const;
export type RingHash = (typeof RING_HASHES)[number];

/** A node given to the ring: its id, or its id and weight. */
export type RingNodeInput = string | { readonly id: string; readonly weight?: number };

/** Options of {@link HashRing}. */
export interface RingOptions {
  /**
   * Points per unit of weight. More points spread keys more evenly and cost memory and
   * build time (12 bytes per point).
   * @default 160
   */
  vnodes?: number;
  /**
   * Hash of keys and points: `xxh64` (Envoy's), or `xxh32`.
   * @default 'xxh64'
   */
  hash?: RingHash;
  /** Initial members, built in one pass. @default [] */
  nodes?: readonly RingNodeInput[];
}

/** Options of {@link HashRing.add}. */
export interface RingNodeOptions {
  /** Relative weight: a node of weight 2 gets twice the points. @default 1 */
  weight?: number;
}

/** Resolved, frozen ring options. */
export interface ResolvedRingOptions {
  readonly vnodes: number;
  readonly hash: RingHash;
  readonly nodes: readonly { readonly id: string; readonly weight: number }[];
}

/** What {@link HashRing.toJSON} returns and {@link HashRing.fromJSON} takes. */
export interface RingJSON {
  readonly version: 1;
  readonly hash: RingHash;
  readonly vnodes: number;
  readonly nodes: readonly { readonly id: string; readonly weight: number }[];
}

export const DEFAULT_RING_OPTIONS = Object.freeze({ vnodes: 160, hash: 'xxh64' as RingHash });

/** Most points one node may have (12 bytes each). */
export const MAX_POINTS_PER_NODE = 1_000_000;
/** Longest node id, in UTF-16 code units. */
export const MAX_NODE_ID_LENGTH = 1024;

const HASH_KIND: Record<RingHash, number> = { xxh64: 0, xxh32: 1 };

/**
 * Merges defaults into `partial`, validates every field and freezes the result.
 * @throws {InvalidOptionError} naming the field and the value.
 */
export function resolveRingOptions(partial: RingOptions = {}): ResolvedRingOptions {
  if (typeof partial !== 'object' || partial === null) {
    throw new InvalidOptionError('options', partial, 'must be an object');
  }
  const vnodes = checkInt('vnodes', partial.vnodes ?? DEFAULT_RING_OPTIONS.vnodes, 1, MAX_POINTS_PER_NODE);
  const hash = checkOneOf('hash', partial.hash ?? DEFAULT_RING_OPTIONS.hash, RING_HASHES);
  const input = partial.nodes ?? [];
  if (!Array.isArray(input)) throw new InvalidOptionError('nodes', input, 'must be an array');
  const seen = new Set<string>();
  const nodes = input.map((node: unknown, i) => {
    const resolved = resolveNode(`nodes[${i}]`, node, vnodes);
    if (seen.has(resolved.id)) throw new InvalidOptionError(`nodes[${i}].id`, resolved.id, 'must be unique');
    seen.add(resolved.id);
    return Object.freeze(resolved);
  });
  return Object.freeze({ vnodes, hash, nodes: Object.freeze(nodes) });
}

function resolveNode(field: string, node: unknown, vnodes: number): { id: string; weight: number } {
  if (typeof node === 'string') return { id: checkName(field, node, MAX_NODE_ID_LENGTH), weight: 1 };
  if (typeof node !== 'object' || node === null) {
    throw new InvalidOptionError(field, node, 'must be a node id or { id, weight }');
  }
  const { id, weight } = node as { id?: unknown; weight?: unknown };
  return {
    id: checkName(`${field}.id`, id, MAX_NODE_ID_LENGTH),
    weight: checkWeight(`${field}.weight`, weight ?? 1, vnodes),
  };
}

function checkWeight(field: string, weight: unknown, vnodes: number): number {
  checkNumber(field, weight, 0, MAX_POINTS_PER_NODE, true);
  if (pointCount(vnodes, weight as number) > MAX_POINTS_PER_NODE) {
    throw new InvalidOptionError(field, weight, `gives more than ${MAX_POINTS_PER_NODE} points at vnodes=${vnodes}`);
  }
  return weight as number;
}

function pointCount(vnodes: number, weight: number): number {
  return Math.max(1, Math.round(vnodes * weight));
}

/** Addresses of one ring's data in WASM memory; freed when the ring is collected. */
interface RingMemory {
  /** Descriptor: pos, own, n, table, shift, kind (six u32). */
  desc: number;
  pos: number;
  own: number;
  /** Points the pos/own arrays can hold (pos has one more, for the sentinel). */
  cap: number;
  table: number;
  bits: number;
}

const D_POS = 0;
const D_OWN = 1;
const D_N = 2;
const D_TABLE = 3;
const D_SHIFT = 4;
const D_KIND = 5;

const finalizer = new FinalizationRegistry<RingMemory>((mem) => {
  const core = wasmCore();
  core.free(mem.pos);
  core.free(mem.own);
  core.free(mem.table);
  core.free(mem.desc);
});

/** Prefix-table bits for n points: about one point per bucket, at most 2^20 buckets. */
function tableBits(n: number): number {
  return Math.min(20, Math.max(1, 32 - Math.clz32(n)));
}

/**
 * A consistent-hash ring on WebAssembly. See the module comment for the mapping.
 */
export class HashRing {
  /** The resolved options (vnodes and hash; `nodes` as given to the constructor). */
  readonly options: ResolvedRingOptions;
  private readonly core: WasmCore;
  private readonly mem: RingMemory;
  private readonly kind: number;
  /** Node id per slot; slots are dense, 0 .. size - 1. */
  private readonly ids: string[] = [];
  private readonly weights: number[] = [];
  private readonly slots = new Map<string, number>();
  private points = 0;
  private nodesCache: readonly string[] | undefined;
  /** Scratch for getN: marks[slot] === stamp when the slot was already taken. */
  private marks = new Uint32Array(0);
  private stamp = 0;

  /**
   * @throws {InvalidOptionError} when an option is out of range or a node id repeats.
   */
  constructor(options: RingOptions = {}) {
    this.options = resolveRingOptions(options);
    this.core = wasmCore();
    this.kind = HASH_KIND[this.options.hash];
    const desc = this.core.alloc(24);
    this.mem = { desc, pos: 0, own: 0, cap: 0, table: 0, bits: 0 };
    finalizer.register(this, this.mem);
    const u32 = this.core.u32;
    u32.fill(0, desc >>> 2, (desc >>> 2) + 6);
    u32[(desc >>> 2) + D_KIND] = this.kind;
    this.bulkBuild(this.options.nodes);
  }

  /** Rebuilds a ring from {@link HashRing.toJSON} output. */
  static fromJSON(json: RingJSON | string): HashRing {
    const data: unknown = typeof json === 'string' ? JSON.parse(json) : json;
    if (typeof data !== 'object' || data === null || (data as { version?: unknown }).version !== 1) {
      throw new InvalidOptionError('json.version', (data as { version?: unknown } | null)?.version, 'must be 1');
    }
    const { hash, vnodes, nodes } = data as RingJSON;
    return new HashRing({ hash, vnodes, nodes });
  }

  /** Node ids, in the order they joined (a removed node's place is taken by the last). */
  get nodes(): readonly string[] {
    if (this.nodesCache === undefined) this.nodesCache = Object.freeze(this.ids.slice());
    return this.nodesCache;
  }

  /** Number of nodes. */
  get size(): number {
    return this.ids.length;
  }

  /** Number of points on the ring. */
  get pointCount(): number {
    return this.points;
  }

  has(id: string): boolean {
    return this.slots.has(id);
  }

  /** Weight of a node, or undefined when it is not in the ring. */
  weightOf(id: string): number | undefined {
    const slot = this.slots.get(id);
    return slot === undefined ? undefined : this.weights[slot];
  }

  /**
   * Adds a node: its points are hashed, sorted and merged into the table (no rebuild of
   * the others). Only keys that now map to the new node move.
   * @throws {InvalidOptionError} on a bad id or weight, or an id already present.
   */
  add(id: string, options: RingNodeOptions = {}): this {
    checkName('id', id, MAX_NODE_ID_LENGTH);
    const weight = checkWeight('weight', options.weight ?? 1, this.options.vnodes);
    if (this.slots.has(id)) throw new InvalidOptionError('id', id, 'is already in the ring');
    const core = this.core;
    const mem = this.mem;
    const slot = this.addSlot(id, weight);
    const k = pointCount(this.options.vnodes, weight);
    const n = this.points;
    // The new node's points, sorted, in scratch arrays.
    const bPos = core.alloc(k * 8);
    const bOwn = core.alloc(k * 4);
    const tPos = core.alloc(k * 8);
    const tOwn = core.alloc(k * 4);
    this.generate(id, k, bPos);
    core.u32.fill(slot, bOwn >>> 2, (bOwn >>> 2) + k);
    core.exports.ringSortPoints(bPos, bOwn, k, tPos, tOwn);
    core.free(tPos);
    core.free(tOwn);
    // Merge into fresh arrays; the old ones are freed after.
    const cap = n + k;
    const pos = core.alloc((cap + 1) * 8);
    const own = core.alloc(cap * 4);
    const ties =
      n === 0
        ? (core.u8.copyWithin(pos, bPos, bPos + k * 8), core.u8.copyWithin(own, bOwn, bOwn + k * 4), 0)
        : core.exports.ringMergePoints(mem.pos, mem.own, n, bPos, bOwn, k, pos, own);
    core.free(bPos);
    core.free(bOwn);
    core.free(mem.pos);
    core.free(mem.own);
    mem.pos = pos;
    mem.own = own;
    mem.cap = cap;
    this.points = cap;
    if (ties > 0) this.orderTies();
    this.rebuildTable();
    return this;
  }

  /**
   * Removes a node and its points. Only the keys it owned move. Returns whether it was there.
   */
  remove(id: string): boolean {
    const slot = this.slots.get(id);
    if (slot === undefined) return false;
    const last = this.ids.length - 1;
    const mem = this.mem;
    this.points = this.core.exports.ringRemoveOwner(mem.pos, mem.own, this.points, slot, last) >>> 0;
    const lastId = this.ids[last] as string;
    this.ids[slot] = lastId;
    this.weights[slot] = this.weights[last] as number;
    this.slots.set(lastId, slot);
    this.ids.pop();
    this.weights.pop();
    this.slots.delete(id);
    this.nodesCache = undefined;
    this.rebuildTable();
    return true;
  }

  /**
   * The node a key maps to, or undefined on an empty ring. A string and its UTF-8 bytes map
   * to the same node. Allocates nothing.
   * @throws {TypeError} when the key is neither a string nor bytes.
   */
  get(key: Key): string | undefined {
    const core = this.core;
    const len = core.writeKey(key);
    const slot = core.exports.ringLookup(this.mem.desc, core.scratchPtr, len) >>> 0;
    return slot === NO_OWNER ? undefined : this.ids[slot];
  }

  /** Slot (index into {@link HashRing.nodes}) a key maps to, or 0xffffffff on an empty ring. */
  getIndex(key: Key): number {
    const core = this.core;
    const len = core.writeKey(key);
    return core.exports.ringLookup(this.mem.desc, core.scratchPtr, len) >>> 0;
  }

  /**
   * Up to `n` distinct nodes, walking clockwise from the key: a replica preference list.
   * The first is `get(key)`.
   * @throws {InvalidOptionError} when n is not a non-negative integer.
   */
  getN(key: Key, n: number): string[] {
    checkInt('n', n, 0, 0xffffffff);
    const core = this.core;
    const len = core.writeKey(key);
    const out: string[] = [];
    const want = Math.min(n, this.ids.length);
    if (want === 0) return out;
    let i = core.exports.ringIndexOf(this.mem.desc, core.scratchPtr, len) >>> 0;
    const marks = this.nextMarks();
    const stamp = this.stamp;
    const own = core.u32;
    const base = this.mem.own >>> 2;
    const total = this.points;
    for (let steps = 0; steps < total && out.length < want; steps++) {
      const slot = own[base + i] as number;
      if (marks[slot] !== stamp) {
        marks[slot] = stamp;
        out.push(this.ids[slot] as string);
      }
      i = i + 1 === total ? 0 : i + 1;
    }
    return out;
  }

  /**
   * Nodes for many keys with one WASM call. Keys may mix strings and bytes.
   * @throws {TypeError} when a key is neither a string nor bytes.
   */
  getMany(keys: ArrayLike<Key>): (string | undefined)[] {
    const count = keys.length;
    const outPtr = this.lookupBatch(keys);
    const u32 = this.core.u32;
    const ids = this.ids;
    const result = new Array<string | undefined>(count);
    const base = outPtr >>> 2;
    for (let i = 0; i < count; i++) result[i] = ids[u32[base + i] as number];
    return result;
  }

  /**
   * Slots (indexes into {@link HashRing.nodes}) for many keys with one WASM call; 0xffffffff
   * for every key on an empty ring. Pass `out` (at least keys.length long) to allocate nothing.
   * @throws {InvalidOptionError} when `out` is too short.
   */
  getManyIndices(keys: ArrayLike<Key>, out?: Uint32Array): Uint32Array {
    const count = keys.length;
    if (out !== undefined && (!(out instanceof Uint32Array) || out.length < count)) {
      throw new InvalidOptionError('out', out, `must be a Uint32Array of length >= ${count}`);
    }
    const result = out ?? new Uint32Array(count);
    const outPtr = this.lookupBatch(keys);
    const u32 = this.core.u32;
    const base = outPtr >>> 2;
    for (let i = 0; i < count; i++) result[i] = u32[base + i] as number;
    return result;
  }

  /** The members, sorted by id: the same JSON for the same members in any order. */
  toJSON(): RingJSON {
    const nodes = this.ids
      .map((id, slot) => ({ id, weight: this.weights[slot] as number }))
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    return { version: 1, hash: this.options.hash, vnodes: this.options.vnodes, nodes };
  }

  /**
   * Position and owner of every point, in ring order: for tests, tools and debugging.
   * Positions of 32-bit hashes are shifted to the high half, as the table stores them.
   */
  points64(): { position: bigint; node: string }[] {
    const out: { position: bigint; node: string }[] = [];
    const u32 = this.core.u32;
    for (let i = 0; i < this.points; i++) {
      const at = (this.mem.pos >>> 2) + i * 2;
      const position = (BigInt(u32[at + 1] as number) << 32n) | BigInt(u32[at] as number);
      out.push({ position, node: this.ids[u32[(this.mem.own >>> 2) + i] as number] as string });
    }
    return out;
  }

  private lookupBatch(keys: ArrayLike<Key>): number {
    if (keys === null || typeof keys !== 'object' || typeof keys.length !== 'number') {
      throw new TypeError('keys must be an array of strings, Buffers or Uint8Arrays');
    }
    const core = this.core;
    const { data, offsets, out } = core.packKeys(keys);
    core.exports.ringLookupBatch(this.mem.desc, data, offsets, keys.length, out);
    return out;
  }

  private addSlot(id: string, weight: number): number {
    const slot = this.ids.length;
    this.ids.push(id);
    this.weights.push(weight);
    this.slots.set(id, slot);
    this.nodesCache = undefined;
    return slot;
  }

  /** Writes the positions of a node's `count` points at `out`. */
  private generate(id: string, count: number, out: number): void {
    const core = this.core;
    core.ensureScratch(id.length * 3 + 16);
    const prefixLen = core.writeKey(`${id}_`);
    core.exports.ringPointPositions(this.kind, core.scratchPtr, prefixLen, 0, count, out);
  }

  /** One pass for the constructor's nodes: generate in name order, one stable sort. */
  private bulkBuild(nodes: ResolvedRingOptions['nodes']): void {
    if (nodes.length === 0) {
      this.rebuildTable();
      return;
    }
    const core = this.core;
    const mem = this.mem;
    const counts = nodes.map((node) => pointCount(this.options.vnodes, node.weight));
    const total = counts.reduce((a, b) => a + b, 0);
    const pos = core.alloc((total + 1) * 8);
    const own = core.alloc(total * 4);
    const slotsByName = nodes.map((node) => this.addSlot(node.id, node.weight));
    const order = slotsByName.slice().sort((a, b) => compareIds(this.ids[a] as string, this.ids[b] as string));
    let at = 0;
    for (const slot of order) {
      const count = counts[slot] as number;
      this.generate(this.ids[slot] as string, count, pos + at * 8);
      core.u32.fill(slot, (own >>> 2) + at, (own >>> 2) + at + count);
      at += count;
    }
    const tPos = core.alloc(total * 8);
    const tOwn = core.alloc(total * 4);
    core.exports.ringSortPoints(pos, own, total, tPos, tOwn);
    core.free(tPos);
    core.free(tOwn);
    mem.pos = pos;
    mem.own = own;
    mem.cap = total;
    this.points = total;
    this.rebuildTable();
  }

  /** Orders every run of equal positions by node id (merge put old points first). */
  private orderTies(): void {
    const core = this.core;
    const { pos, own } = this.mem;
    const n = this.points;
    let i = core.exports.ringNextTie(pos, n, 0) >>> 0;
    while (i < n) {
      const u32 = core.u32;
      const lo = u32[(pos >>> 2) + i * 2];
      const hi = u32[(pos >>> 2) + i * 2 + 1];
      let j = i + 1;
      while (j < n && u32[(pos >>> 2) + j * 2] === lo && u32[(pos >>> 2) + j * 2 + 1] === hi) j++;
      const run = Array.from(u32.subarray((own >>> 2) + i, (own >>> 2) + j));
      run.sort((a, b) => compareIds(this.ids[a] as string, this.ids[b] as string));
      u32.set(run, (own >>> 2) + i);
      i = core.exports.ringNextTie(pos, n, j) >>> 0;
    }
  }

  private rebuildTable(): void {
    const core = this.core;
    const mem = this.mem;
    const bits = tableBits(this.points);
    if (bits !== mem.bits) {
      core.free(mem.table);
      mem.table = core.alloc(((1 << bits) + 1) * 4);
      mem.bits = bits;
    }
    if (mem.pos === 0) {
      mem.pos = core.alloc(8);
      mem.own = core.alloc(4);
    }
    const d = mem.desc >>> 2;
    const u32 = core.u32;
    u32[d + D_POS] = mem.pos;
    u32[d + D_OWN] = mem.own;
    u32[d + D_N] = this.points;
    u32[d + D_TABLE] = mem.table;
    u32[d + D_SHIFT] = 64 - bits;
    u32[d + D_KIND] = this.kind;
    core.exports.ringBuildTable(mem.desc);
  }

  private nextMarks(): Uint32Array {
    if (this.marks.length < this.ids.length) this.marks = new Uint32Array(Math.max(16, this.ids.length * 2));
    this.stamp = (this.stamp + 1) >>> 0;
    if (this.stamp === 0) {
      this.marks.fill(0);
      this.stamp = 1;
    }
    return this.marks;
  }
}

/** Node order for ties: UTF-16 code-unit order, as `<` on strings. */
function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
