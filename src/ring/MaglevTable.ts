/**
 * Maglev hashing (Eisenbud et al., "Maglev: A Fast and Reliable Software Network Load
 * Balancer", NSDI 2016, section 3.4): a lookup table of `size` entries (a prime, 65537 by
 * default), filled by letting nodes take turns claiming their next preferred entry. A key
 * maps to entry[xxh64(key) mod size]: one hash and one load, whatever the number of nodes.
 *
 * Entries per node differ by at most a few (the paper: M > 100 x N keeps every node's share
 * within 1%); a weight of w gives w times the turns, hence about w times the entries.
 * Removing one of N nodes remaps its ~1/N of the keys and, unlike a ring, a little more
 * (other nodes' entries shift when the turn order changes); adding one is symmetric.
 *
 * The table lives in WebAssembly memory and is built once: to change the members, build a
 * new table (a 65537-entry table for 100 nodes builds in about 2 ms, 5 ms with unequal
 * weights). Nodes are put in id order before the fill, so every process builds the
 * identical table from the same members given in any order; `toJSON()` is therefore all
 * another process needs.
 *
 * @example
 * ```ts
 * const table = new MaglevTable(['lb-a', 'lb-b', { id: 'lb-c', weight: 2 }]);
 * table.get('10.1.2.3:5555');   // 'lb-a', 'lb-b' or 'lb-c'
 * table.counts();               // Map { 'lb-a' => ~16384, 'lb-b' => ~16384, 'lb-c' => ~32769 }
 * const copy = MaglevTable.fromJSON(table.toJSON()); // the same table, anywhere
 * ```
 */
import { InvalidOptionError } from '../errors.js';
import { checkInt, checkName, checkNumber } from '../validate.js';
import { checkIndicesOut, type Key, NO_OWNER, type WasmCore, wasmCore } from '../wasm/index.js';
import { MAX_NODE_ID_LENGTH, type RingNodeInput } from './HashRing.js';

/** A node given to the table: its id, or its id and weight. */
export type MaglevNodeInput = RingNodeInput;

/** Options of {@link MaglevTable}. */
export interface MaglevOptions {
  /**
   * Entries in the table: a prime, at least as large as the number of nodes. The paper
   * advises more than 100 x nodes for a spread within 1%. 4 bytes per entry.
   * @default 65537
   */
  size?: number;
}

/** Resolved, frozen Maglev options. */
export interface ResolvedMaglevOptions {
  readonly size: number;
}

/** What {@link MaglevTable.toJSON} returns and {@link MaglevTable.fromJSON} takes. */
export interface MaglevJSON {
  readonly version: 1;
  readonly size: number;
  readonly nodes: readonly { readonly id: string; readonly weight: number }[];
}

/** Defaults of {@link MaglevOptions}: 65537 entries, the paper's table size. */
export const DEFAULT_MAGLEV_OPTIONS = Object.freeze({ size: 65537 });

/** Largest table size: the largest prime below 2^24 (64 MiB of entries). */
export const MAX_MAGLEV_SIZE = 16_777_213;
/** Largest node weight. */
export const MAX_MAGLEV_WEIGHT = 1_000_000;

/** Whether n is prime (trial division; n <= 2^24 needs at most ~2000 divisions). */
function isPrime(n: number): boolean {
  if (n < 2) return false;
  if (n % 2 === 0) return n === 2;
  for (let d = 3; d * d <= n; d += 2) if (n % d === 0) return false;
  return true;
}

/**
 * Merges defaults into `partial`, validates and freezes the result.
 * @throws {InvalidOptionError} when `size` is not a prime in [2, {@link MAX_MAGLEV_SIZE}].
 */
export function resolveMaglevOptions(partial: MaglevOptions = {}): ResolvedMaglevOptions {
  if (typeof partial !== 'object' || partial === null) {
    throw new InvalidOptionError('options', partial, 'must be an object');
  }
  const size = partial.size ?? DEFAULT_MAGLEV_OPTIONS.size;
  checkInt('size', size, 2, MAX_MAGLEV_SIZE);
  if (!isPrime(size)) throw new InvalidOptionError('size', size, 'must be a prime (e.g. 65537, 655373)');
  return Object.freeze({ size });
}

/** Addresses of one table in WASM memory; freed when the table is collected. */
interface TableMemory {
  table: number;
}

const finalizer = new FinalizationRegistry<TableMemory>((mem) => wasmCore().free(mem.table));

/** A Maglev lookup table on WebAssembly. See the module comment. */
export class MaglevTable {
  /** The resolved options. */
  readonly options: ResolvedMaglevOptions;
  private readonly core: WasmCore;
  private readonly mem: TableMemory;
  private readonly ids: readonly string[];
  private readonly weights: readonly number[];
  private readonly slots: ReadonlyMap<string, number>;
  private readonly entryCounts: Uint32Array;

  /**
   * Builds the table.
   * @param nodes members as ids or `{ id, weight }` (weight > 0, default 1); ids unique.
   * @throws {InvalidOptionError} on a bad size, id or weight, a repeated id, or more nodes
   *   than entries.
   */
  constructor(nodes: readonly MaglevNodeInput[] = [], options: MaglevOptions = {}) {
    this.options = resolveMaglevOptions(options);
    const size = this.options.size;
    if (!Array.isArray(nodes)) throw new InvalidOptionError('nodes', nodes, 'must be an array');
    if (nodes.length > size) throw new InvalidOptionError('nodes', nodes, `must have at most size (${size}) nodes`);
    const seen = new Set<string>();
    const resolved = nodes.map((node: unknown, i) => {
      const r = resolveNode(`nodes[${i}]`, node);
      if (seen.has(r.id)) throw new InvalidOptionError(`nodes[${i}].id`, r.id, 'must be unique');
      seen.add(r.id);
      return r;
    });
    // Id order makes the table independent of the order the caller listed the nodes in.
    resolved.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    this.ids = Object.freeze(resolved.map((r) => r.id));
    this.weights = Object.freeze(resolved.map((r) => r.weight));
    this.slots = new Map(this.ids.map((id, slot) => [id, slot]));
    this.core = wasmCore();
    this.mem = { table: this.core.alloc(size * 4) };
    finalizer.register(this, this.mem);
    this.build();
    this.entryCounts = new Uint32Array(Math.max(this.ids.length, 1));
    const u32 = this.core.u32;
    const base = this.mem.table >>> 2;
    for (let e = 0; e < size; e++) {
      const slot = u32[base + e] as number;
      if (slot !== NO_OWNER) this.entryCounts[slot] = (this.entryCounts[slot] as number) + 1;
    }
  }

  /**
   * Rebuilds a table from {@link MaglevTable.toJSON} output (or its JSON string).
   * @throws {InvalidOptionError} when the version is not 1 or a field is out of range.
   */
  static fromJSON(json: MaglevJSON | string): MaglevTable {
    const data: unknown = typeof json === 'string' ? JSON.parse(json) : json;
    if (typeof data !== 'object' || data === null || (data as { version?: unknown }).version !== 1) {
      throw new InvalidOptionError('json.version', (data as { version?: unknown } | null)?.version, 'must be 1');
    }
    const { size, nodes } = data as MaglevJSON;
    return new MaglevTable(nodes, { size });
  }

  /** Node ids, sorted (the order of the fill; indexes from getManyIndices point here). */
  get nodes(): readonly string[] {
    return this.ids;
  }

  /** Entries in the table (the `size` option), not the number of nodes. */
  get size(): number {
    return this.options.size;
  }

  /** Whether a node is in the table (it may still own no entries, given a tiny weight). */
  has(id: string): boolean {
    return this.slots.has(id);
  }

  /** Weight of a node, or undefined when it is not in the table. */
  weightOf(id: string): number | undefined {
    const slot = this.slots.get(id);
    return slot === undefined ? undefined : this.weights[slot];
  }

  /**
   * The node a key maps to, or undefined when the table has no nodes. A string and its
   * UTF-8 bytes map to the same node. Allocates nothing.
   * @throws {TypeError} when the key is neither a string nor bytes.
   */
  get(key: Key): string | undefined {
    const core = this.core;
    const len = core.writeKey(key);
    const slot = core.exports.maglevLookup(this.mem.table, this.options.size, core.scratchPtr, len) >>> 0;
    return slot === NO_OWNER ? undefined : this.ids[slot];
  }

  /** Index into {@link MaglevTable.nodes} a key maps to, or 0xffffffff without nodes. */
  getIndex(key: Key): number {
    const core = this.core;
    const len = core.writeKey(key);
    return core.exports.maglevLookup(this.mem.table, this.options.size, core.scratchPtr, len) >>> 0;
  }

  /**
   * Nodes for many keys with one WASM call. Keys may mix strings and bytes.
   * @throws {TypeError} when a key is neither a string nor bytes.
   */
  getMany(keys: ArrayLike<Key>): (string | undefined)[] {
    return this.core.namesAt(this.lookupBatch(keys), keys.length, this.ids);
  }

  /**
   * Indexes into {@link MaglevTable.nodes} for many keys with one WASM call; 0xffffffff for
   * every key when the table has no nodes. Pass `out` (at least keys.length long) to
   * allocate nothing.
   * @throws {InvalidOptionError} when `out` is too short.
   */
  getManyIndices(keys: ArrayLike<Key>, out?: Uint32Array): Uint32Array {
    const result = checkIndicesOut(keys.length, out);
    return this.core.indicesAt(this.lookupBatch(keys), keys.length, result);
  }

  /** Entries per node, in {@link MaglevTable.nodes} order; they sum to `size` (or 0). */
  counts(): Map<string, number> {
    return new Map(this.ids.map((id, slot) => [id, this.entryCounts[slot] as number]));
  }

  /** Size and members (sorted by id, with weights): enough to rebuild the same table. */
  toJSON(): MaglevJSON {
    return {
      version: 1,
      size: this.options.size,
      nodes: this.ids.map((id, slot) => ({ id, weight: this.weights[slot] as number })),
    };
  }

  private build(): void {
    const core = this.core;
    const n = this.ids.length;
    const { data, offsets } = core.packKeys(this.ids);
    const weights = core.alloc(Math.max(n, 1) * 8);
    new Float64Array(core.u8.buffer, weights, n).set(this.weights);
    core.exports.maglevBuild(data, offsets, n, weights, this.options.size, this.mem.table);
    core.refresh(); // the build allocates its scratch: memory may have grown
    core.free(weights);
  }

  private lookupBatch(keys: ArrayLike<Key>): number {
    if (keys === null || typeof keys !== 'object' || typeof keys.length !== 'number') {
      throw new TypeError('keys must be an array of strings, Buffers or Uint8Arrays');
    }
    const core = this.core;
    const { data, offsets, out } = core.packKeys(keys);
    core.exports.maglevLookupBatch(this.mem.table, this.options.size, data, offsets, keys.length, out);
    return out;
  }
}

function resolveNode(field: string, node: unknown): { id: string; weight: number } {
  if (typeof node === 'string') return { id: checkName(field, node, MAX_NODE_ID_LENGTH), weight: 1 };
  if (typeof node !== 'object' || node === null) {
    throw new InvalidOptionError(field, node, 'must be a node id or { id, weight }');
  }
  const { id, weight } = node as { id?: unknown; weight?: unknown };
  return {
    id: checkName(`${field}.id`, id, MAX_NODE_ID_LENGTH),
    weight: checkNumber(`${field}.weight`, weight ?? 1, 0, MAX_MAGLEV_WEIGHT, true),
  };
}
