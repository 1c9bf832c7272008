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
 * `hash: 'ketama'` places points and keys as libketama and the `hashring` npm package (3.x,
 * default options) do, so a fleet already keyed that way keeps every key where it is. With
 * N servers of total weight W, server s gets floor(w_s / W x (vnodes / 4) x N) MD5 digests
 * of `${id}-${i}`, each giving 4 points (its little-endian 32-bit words); a key sits at the
 * first 4 bytes of its MD5, read the same way. Differences from the other modes, all
 * inherited from ketama:
 * - `vnodes` is the number of points of a server of average weight and must be a multiple
 *   of 4 (the default 160 is libketama's and hashring's 40 digests x 4); any other value v
 *   matches hashring built with `{ 'vnode count': v / 4 }`.
 * - Point counts depend on the total weight, so `add` and `remove` rebuild the whole ring
 *   (every server's points are recomputed, as hashring does), and a node's count may be 0.
 * - Equal 32-bit positions (P points give about P^2 / 2^33 equal pairs: ~3 for 1000
 *   servers of 160 points) keep member order, the order nodes were given and added, as
 *   hashring's stable sort does, and a key on such a position goes to the first of them.
 *   Members therefore keep their order: `nodes` and `toJSON()` list them in it, and two
 *   processes must list the same servers in the same order to agree on every key, as with
 *   hashring itself.
 * - Weights are summed in member order, as hashring does; integer weights (libketama's
 *   memory sizes) make the result independent of that order.
 *
 * @example
 * ```ts
 * const ring = new HashRing({ nodes: ['cache-a', { id: 'cache-b', weight: 2 }] });
 * ring.get('user:42');        // 'cache-a' or 'cache-b'
 * ring.getN('user:42', 2);    // both, in clockwise order: a replica preference list
 * ```
 */
import { describe, InvalidOptionError } from '../errors.js';
import { checkInt, checkName, checkNumber, checkOneOf } from '../validate.js';
import { checkIndicesOut, type Key, NO_OWNER, type WasmCore, wasmCore } from '../wasm/index.js';

/** Hash functions a ring can use; `ketama` is MD5 placed as libketama and `hashring` place it. */
export const RING_HASHES = ['xxh64', 'xxh32', 'ketama'] as const;
export type RingHash = (typeof RING_HASHES)[number];

/** A node given to the ring: its id, or its id and weight. */
export type RingNodeInput = string | { readonly id: string; readonly weight?: number };

/** Options of {@link HashRing}. */
export interface RingOptions {
  /**
   * Points per unit of weight. More points spread keys more evenly and cost memory and
   * build time (12 bytes per point). With `hash: 'ketama'`: points of a server of average
   * weight, a multiple of 4 (hashring's `'vnode count'` is vnodes / 4).
   * @default 160
   */
  vnodes?: number;
  /**
   * Hash of keys and points: `xxh64` (Envoy's), `xxh32`, or `ketama` (MD5, libketama's and
   * the `hashring` package's placement; see the module comment).
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
/**
 * Most points in one ring (2^25, about 33.5M: some 1 GB of WASM memory with the build's
 * scratch space). Past it the sizes handed to WASM would not fit its 32-bit addresses.
 */
export const MAX_RING_POINTS = 2 ** 25;
/** Longest node id, in UTF-16 code units. */
export const MAX_NODE_ID_LENGTH = 1024;

const HASH_KIND: Record<RingHash, number> = { xxh64: 0, xxh32: 1, ketama: 2 };

/** Default `c` of {@link HashRing.getBounded}: no node takes more than 1.25 x the average. */
export const DEFAULT_BOUNDED_LOAD_FACTOR = 1.25;

/** Current loads for {@link HashRing.getBounded}: node id -> load; a missing node has 0. */
export type RingLoads = ReadonlyMap<string, number> | Readonly<Record<string, number>>;

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
  if (hash === 'ketama' && vnodes % 4 !== 0) {
    throw new InvalidOptionError('vnodes', vnodes, "must be a multiple of 4 with hash 'ketama' (4 points per digest)");
  }
  const input = partial.nodes ?? [];
  if (!Array.isArray(input)) throw new InvalidOptionError('nodes', input, 'must be an array');
  const seen = new Set<string>();
  const nodes = input.map((node: unknown, i) => {
    const resolved = resolveNode(`nodes[${i}]`, node, vnodes, hash);
    if (seen.has(resolved.id)) throw new InvalidOptionError(`nodes[${i}].id`, resolved.id, 'must be unique');
    seen.add(resolved.id);
    return Object.freeze(resolved);
  });
  checkTotalPoints('nodes', nodes.length, ringPoints(vnodes, hash, nodes));
  return Object.freeze({ vnodes, hash, nodes: Object.freeze(nodes) });
}

/** Points a ring of `nodes` has (for ketama, the most it can have: vnodes per node). */
function ringPoints(vnodes: number, hash: RingHash, nodes: readonly { weight: number }[]): number {
  if (hash === 'ketama') return vnodes * nodes.length;
  let total = 0;
  for (const node of nodes) total += pointCount(vnodes, node.weight);
  return total;
}

function checkTotalPoints(field: string, value: unknown, points: number): void {
  if (points > MAX_RING_POINTS) {
    throw new InvalidOptionError(field, value, `give ${points} points in all, more than ${MAX_RING_POINTS} points`);
  }
}

function resolveNode(field: string, node: unknown, vnodes: number, hash: RingHash): { id: string; weight: number } {
  if (typeof node === 'string') return { id: checkName(field, node, MAX_NODE_ID_LENGTH), weight: 1 };
  if (typeof node !== 'object' || node === null) {
    throw new InvalidOptionError(field, node, 'must be a node id or { id, weight }');
  }
  const { id, weight } = node as { id?: unknown; weight?: unknown };
  return {
    id: checkName(`${field}.id`, id, MAX_NODE_ID_LENGTH),
    weight: checkWeight(`${field}.weight`, weight ?? 1, vnodes, hash),
  };
}

function checkWeight(field: string, weight: unknown, vnodes: number, hash: RingHash): number {
  checkNumber(field, weight, 0, MAX_POINTS_PER_NODE, true);
  // Ketama weights are relative (libketama's are memory sizes): points come from shares.
  if (hash !== 'ketama' && pointCount(vnodes, weight as number) > MAX_POINTS_PER_NODE) {
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
  /** Scratch for getBounded: the load of each slot. */
  private slotLoads = new Float64Array(0);

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
    if (this.options.hash === 'ketama') this.ketamaBuild(this.options.nodes);
    else this.bulkBuild(this.options.nodes);
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
   * the others). Only keys that now map to the new node move. In ketama mode the whole ring
   * is rebuilt (point counts depend on the total weight) and the node joins the end of the
   * member order.
   * @throws {InvalidOptionError} on a bad id or weight, or an id already present.
   */
  add(id: string, options: RingNodeOptions = {}): this {
    checkName('id', id, MAX_NODE_ID_LENGTH);
    const weight = checkWeight('weight', options.weight ?? 1, this.options.vnodes, this.options.hash);
    if (this.slots.has(id)) throw new InvalidOptionError('id', id, 'is already in the ring');
    const added =
      this.options.hash === 'ketama'
        ? this.options.vnodes * (this.size + 1)
        : this.points + pointCount(this.options.vnodes, weight);
    checkTotalPoints('id', id, added);
    if (this.options.hash === 'ketama') {
      this.ketamaRebuild([...this.members(), { id, weight }]);
      return this;
    }
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
    // Merge in place (from the back) into arrays with room to spare, so that a run of adds
    // copies the ring about once rather than once per add.
    if (n + k > mem.cap) this.growTo(n + k + ((n + k) >>> 2));
    const ties = core.exports.ringInsertPoints(mem.pos, mem.own, n, bPos, bOwn, k);
    this.points = n + k;
    if (ties > 0) this.orderTies();
    if (n > 0 && tableBits(n + k) === mem.bits) {
      // Same bucket count: shift bucket starts instead of rescanning every point.
      this.writeDesc();
      core.exports.ringTableInsert(mem.desc, bPos, k);
    } else {
      this.rebuildTable();
    }
    core.free(bPos);
    core.free(bOwn);
    return this;
  }

  /** Moves the points into arrays of `cap` (plus the sentinel). */
  private growTo(cap: number): void {
    const core = this.core;
    const mem = this.mem;
    const pos = core.alloc((cap + 1) * 8);
    const own = core.alloc(cap * 4);
    if (this.points > 0) {
      core.u8.copyWithin(pos, mem.pos, mem.pos + this.points * 8);
      core.u8.copyWithin(own, mem.own, mem.own + this.points * 4);
    }
    core.free(mem.pos);
    core.free(mem.own);
    mem.pos = pos;
    mem.own = own;
    mem.cap = cap;
  }

  /**
   * Removes a node and its points. Only the keys it owned move. Returns whether it was there.
   * In ketama mode the whole ring is rebuilt, as `add` does, and keys of other nodes can move
   * too (every share grows).
   */
  remove(id: string): boolean {
    const slot = this.slots.get(id);
    if (slot === undefined) return false;
    if (this.options.hash === 'ketama') {
      this.ketamaRebuild(this.members().filter((node) => node.id !== id));
      return true;
    }
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
   * Consistent hashing with bounded loads (Mirrokni, Thorup, Zadimoghaddam, "Consistent
   * Hashing with Bounded Loads", SODA 2018, arXiv:1608.01350): the first node clockwise
   * from the key whose load, with this key added, stays within ceil(c x average), that is
   * load + 1 <= ceil(c x (total + 1) / size), where total sums the loads of the ring's
   * nodes. With c = 1 + e no node ever holds more than ceil((1 + e) x average) of the keys
   * placed this way, and the paper bounds the keys that move on a change by O(1 / e^2)
   * times the ideal. The bound is the same for every node, whatever its weight.
   *
   * The caller keeps the loads (e.g. open connections per node) and passes them in; a node
   * missing from `loads` has load 0 and ids not in the ring are ignored. A node is always
   * found: at most `size` - 1 nodes can be at the bound (except, in ketama mode, when a node
   * has no points; then the key goes to `get(key)`). Costs one read of `loads` per node to
   * sum them, plus the walk: about 1 us for 100 nodes with a Map, 2-3x that with a plain
   * object (own properties are checked one by one).
   *
   * @param c the load factor, finite and > 1. @default 1.25
   * @returns the node, or undefined on an empty ring.
   * @throws {InvalidOptionError} when `c` is not a finite number > 1, or a load is not a
   *   finite number >= 0 (the field names the node).
   * @throws {TypeError} when the key is neither a string nor bytes, or `loads` is neither a
   *   Map nor a plain object.
   */
  getBounded(key: Key, loads: RingLoads, c: number = DEFAULT_BOUNDED_LOAD_FACTOR): string | undefined {
    checkNumber('c', c, 1, Number.MAX_VALUE, true);
    const isMap = loads instanceof Map;
    if (!isMap && (typeof loads !== 'object' || loads === null || Array.isArray(loads))) {
      throw new TypeError(`loads must be a Map or a plain object of node id -> load, got ${describe(loads)}`);
    }
    const core = this.core;
    const len = core.writeKey(key);
    const size = this.ids.length;
    if (size === 0) return undefined;
    if (this.slotLoads.length < size) this.slotLoads = new Float64Array(Math.max(16, size * 2));
    const slotLoads = this.slotLoads;
    const total = isMap
      ? this.readMapLoads(loads as ReadonlyMap<string, unknown>, slotLoads)
      : this.readRecordLoads(loads as Readonly<Record<string, unknown>>, slotLoads);
    const bound = Math.ceil((c * (total + 1)) / size);
    const first = core.exports.ringIndexOf(this.mem.desc, core.scratchPtr, len) >>> 0;
    const marks = this.nextMarks();
    const stamp = this.stamp;
    const own = core.u32;
    const base = this.mem.own >>> 2;
    const points = this.points;
    let i = first;
    let seen = 0;
    for (let steps = 0; steps < points && seen < size; steps++) {
      const slot = own[base + i] as number;
      if (marks[slot] !== stamp) {
        marks[slot] = stamp;
        if ((slotLoads[slot] as number) + 1 <= bound) return this.ids[slot];
        seen++;
      }
      i = i + 1 === points ? 0 : i + 1;
    }
    return this.ids[own[base + first] as number];
  }

  /**
   * Nodes for many keys with one WASM call. Keys may mix strings and bytes.
   * @throws {TypeError} when a key is neither a string nor bytes.
   */
  getMany(keys: ArrayLike<Key>): (string | undefined)[] {
    return this.core.namesAt(this.lookupBatch(keys), keys.length, this.ids);
  }

  /**
   * Slots (indexes into {@link HashRing.nodes}) for many keys with one WASM call; 0xffffffff
   * for every key on an empty ring. Pass `out` (at least keys.length long) to allocate nothing.
   * @throws {InvalidOptionError} when `out` is too short.
   */
  getManyIndices(keys: ArrayLike<Key>, out?: Uint32Array): Uint32Array {
    const result = checkIndicesOut(keys.length, out);
    return this.core.indicesAt(this.lookupBatch(keys), keys.length, result);
  }

  /**
   * The members, sorted by id: the same JSON for the same members in any order. In ketama
   * mode, in member order instead, which decides ties (see the module comment).
   */
  toJSON(): RingJSON {
    const nodes = this.members();
    if (this.options.hash !== 'ketama') nodes.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
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

  /** getBounded: copies each node's load from a Map into slotLoads; returns their sum. */
  private readMapLoads(loads: ReadonlyMap<string, unknown>, slotLoads: Float64Array): number {
    const ids = this.ids;
    let total = 0;
    for (let slot = 0; slot < ids.length; slot++) {
      const value = loads.get(ids[slot] as string);
      const load = value === undefined ? 0 : value;
      if (typeof load !== 'number' || !(load >= 0 && load < Number.POSITIVE_INFINITY)) {
        throw badLoad(ids[slot] as string, load);
      }
      slotLoads[slot] = load;
      total += load;
    }
    return total;
  }

  /** getBounded: as readMapLoads, from a plain object's own properties. */
  private readRecordLoads(loads: Readonly<Record<string, unknown>>, slotLoads: Float64Array): number {
    const ids = this.ids;
    let total = 0;
    for (let slot = 0; slot < ids.length; slot++) {
      const id = ids[slot] as string;
      const value = Object.hasOwn(loads, id) ? loads[id] : undefined;
      const load = value === undefined ? 0 : value;
      if (typeof load !== 'number' || !(load >= 0 && load < Number.POSITIVE_INFINITY)) throw badLoad(id, load);
      slotLoads[slot] = load;
      total += load;
    }
    return total;
  }

  /** The members with their weights, in slot order (member order in ketama mode). */
  private members(): { id: string; weight: number }[] {
    return this.ids.map((id, slot) => ({ id, weight: this.weights[slot] as number }));
  }

  /**
   * Ketama build (libketama, `hashring` 3.x continuum()): digests per server from its share
   * of the total weight, generated in member order, one stable sort so that equal positions
   * keep member order. Ring positions are the 32-bit points moved to the high half.
   */
  private ketamaBuild(nodes: ResolvedRingOptions['nodes']): void {
    const n = nodes.length;
    if (n === 0) {
      this.rebuildTable();
      return;
    }
    const core = this.core;
    const mem = this.mem;
    // Summed in member order and computed in this exact order of float operations, as
    // hashring does: floor(weight / total * digestsPerServer * servers).
    let totalWeight = 0;
    for (const node of nodes) totalWeight += node.weight;
    const perServer = this.options.vnodes / 4;
    const digests = nodes.map((node) => Math.floor((node.weight / totalWeight) * perServer * n));
    const total = digests.reduce((a, b) => a + b, 0) * 4;
    const pos = core.alloc((total + 1) * 8);
    const own = core.alloc(Math.max(total, 1) * 4);
    let at = 0;
    for (let k = 0; k < n; k++) {
      const node = nodes[k] as ResolvedRingOptions['nodes'][number];
      const slot = this.addSlot(node.id, node.weight);
      const count = digests[k] as number;
      if (count === 0) continue;
      core.ensureScratch(node.id.length * 3 + 16);
      const prefixLen = core.writeKey(`${node.id}-`);
      core.exports.ringKetamaPositions(core.scratchPtr, prefixLen, count, pos + at * 8);
      core.u32.fill(slot, (own >>> 2) + at, (own >>> 2) + at + count * 4);
      at += count * 4;
    }
    const tPos = core.alloc(Math.max(total, 1) * 8);
    const tOwn = core.alloc(Math.max(total, 1) * 4);
    core.exports.ringSortPoints(pos, own, total, tPos, tOwn);
    core.free(tPos);
    core.free(tOwn);
    mem.pos = pos;
    mem.own = own;
    mem.cap = total;
    this.points = total;
    this.rebuildTable();
  }

  /** Ketama add/remove: drops every point and builds the ring again for `nodes`. */
  private ketamaRebuild(nodes: { id: string; weight: number }[]): void {
    const core = this.core;
    const mem = this.mem;
    core.free(mem.pos);
    core.free(mem.own);
    mem.pos = 0;
    mem.own = 0;
    mem.cap = 0;
    this.points = 0;
    this.ids.length = 0;
    this.weights.length = 0;
    this.slots.clear();
    this.nodesCache = undefined;
    this.ketamaBuild(nodes);
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
    // A quarter to spare, so that the next adds merge in place without copying the ring.
    const cap = total + (total >>> 2) + 1;
    const pos = core.alloc((cap + 1) * 8);
    const own = core.alloc(cap * 4);
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
    mem.cap = cap;
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
    this.writeDesc();
    core.exports.ringBuildTable(mem.desc);
  }

  /** Writes the ring's addresses and sizes into its WASM descriptor. */
  private writeDesc(): void {
    const mem = this.mem;
    const d = mem.desc >>> 2;
    const u32 = this.core.u32;
    u32[d + D_POS] = mem.pos;
    u32[d + D_OWN] = mem.own;
    u32[d + D_N] = this.points;
    u32[d + D_TABLE] = mem.table;
    u32[d + D_SHIFT] = 64 - mem.bits;
    u32[d + D_KIND] = this.kind;
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

function badLoad(id: string, load: unknown): InvalidOptionError {
  return new InvalidOptionError(`loads[${JSON.stringify(id)}]`, load, 'must be a finite number >= 0');
}

/** Node order for ties: UTF-16 code-unit order, as `<` on strings. */
function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
