/**
 * The one place that loads ringway's WebAssembly module and touches `WebAssembly`.
 *
 * The module is compiled synchronously on first use (Node compiles a module this small in
 * well under a millisecond), so every constructor in the library stays synchronous. The
 * bytes are embedded in a generated module, so the package loads the same from any folder
 * or bundler.
 *
 * Memory is shared by every ring and table: `alloc`/`free` come from AssemblyScript's TLSF
 * allocator. Growth detaches the old `ArrayBuffer`, so the views here are rebuilt after
 * every call that may allocate; hot-path calls never allocate.
 */
import { setFlagsFromString } from 'node:v8';
import { InvalidOptionError } from '../errors.js';
import { WASM_BYTES } from './bytes.generated.js';

// The few parts of the WebAssembly JS API used here. Node has them all; TypeScript's
// ES libs do not declare them (only lib.dom does), and this keeps the package's .d.ts free
// of DOM types.
declare const WebAssembly: {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: object };
};

/** WebAssembly.Memory, as far as ringway uses it. */
export interface WasmMemory {
  readonly buffer: ArrayBuffer;
}

/** The raw exports of build/release.wasm, with their real signatures. */
export interface RingwayWasmExports {
  readonly memory: WasmMemory;
  alloc(size: number): number;
  free(ptr: number): void;
  xxh64(ptr: number, len: number, seed: bigint): bigint;
  xxh32(ptr: number, len: number, seed: number): number;
  ringHash(kind: number, ptr: number, len: number): bigint;
  ringFindIndex(desc: number, position: bigint): number;
  ringIndexOf(desc: number, ptr: number, len: number): number;
  ringLookup(desc: number, ptr: number, len: number): number;
  ringLookupBatch(desc: number, data: number, offsets: number, count: number, out: number): void;
  ringBuildTable(desc: number): void;
  ringPointPositions(kind: number, prefix: number, prefixLen: number, from: number, count: number, out: number): void;
  ringSortPoints(pos: number, own: number, n: number, tmpPos: number, tmpOwn: number): void;
  ringMergePoints(
    aPos: number,
    aOwn: number,
    na: number,
    bPos: number,
    bOwn: number,
    nb: number,
    outPos: number,
    outOwn: number,
  ): number;
  ringRemoveOwner(pos: number, own: number, n: number, slot: number, lastSlot: number): number;
  ringInsertPoints(pos: number, own: number, n: number, bPos: number, bOwn: number, k: number): number;
  ringTableInsert(desc: number, bPos: number, k: number): void;
  ringNextTie(pos: number, n: number, from: number): number;
  ringKetamaPositions(prefix: number, prefixLen: number, digests: number, out: number): void;
  md5(ptr: number, len: number, out: number): void;
  md5Word(ptr: number, len: number): number;
  jumpHash(key: bigint, buckets: number): number;
  jumpHashBytes(ptr: number, len: number, buckets: number): number;
  maglevBuild(data: number, offsets: number, n: number, weights: number, m: number, table: number): void;
  maglevLookup(table: number, m: number, ptr: number, len: number): number;
  maglevLookupBatch(table: number, m: number, data: number, offsets: number, count: number, out: number): void;
}

/** The owner value WASM returns for "no node" (an empty ring). */
export const NO_OWNER = 0xffffffff;

const encoder = new TextEncoder();

/**
 * `String.prototype.charCodeAt`, called as `charCodeAt.call(key, i)` in the key copy loops.
 * Once any object in the process has String.prototype as its prototype (ioredis'
 * `VerbatimString extends String` does it on load), V8 (Node 20) no longer inlines
 * `key.charCodeAt(i)`, and an 8-byte key's copy goes from about 50 ns to 150-300 ns; the
 * captured function is inlined either way (bench/stringPrototype.bench.ts).
 */
const charCodeAt = String.prototype.charCodeAt;

/** A key as the library accepts it: a string (hashed as UTF-8) or raw bytes. */
export type Key = string | Uint8Array;

/**
 * The loaded module, its memory views and reusable scratch buffers. One per process.
 */
export class WasmCore {
  readonly exports: RingwayWasmExports;
  /** Byte view of linear memory; rebuilt whenever memory grows. */
  u8: Uint8Array;
  /** u32 view of linear memory; rebuilt whenever memory grows. */
  u32: Uint32Array;
  /** Scratch buffer for one key (single-key calls). */
  scratchPtr = 0;
  /** Capacity of the scratch buffer in bytes. */
  scratchCap = 0;
  /** Batch buffers: packed key bytes, u32 offsets, u32 results. */
  private batchData = 0;
  private batchDataCap = 0;
  private batchOffsets = 0;
  private batchOut = 0;
  private batchCount = 0;

  constructor(exports: RingwayWasmExports) {
    this.exports = exports;
    this.u8 = new Uint8Array(exports.memory.buffer);
    this.u32 = new Uint32Array(exports.memory.buffer);
    this.ensureScratch(256);
  }

  /** Rebuilds the views if memory has grown. */
  refresh(): void {
    if (this.u8.buffer !== this.exports.memory.buffer) {
      this.u8 = new Uint8Array(this.exports.memory.buffer);
      this.u32 = new Uint32Array(this.exports.memory.buffer);
    }
  }

  /** Allocates `size` bytes (8-byte aligned, as TLSF gives 16) and refreshes the views. */
  alloc(size: number): number {
    // WASM takes a 32-bit size: a larger one would wrap and the caller write past its block.
    if (!(size < 2 ** 31)) throw new RangeError(`cannot allocate ${size} bytes in WASM memory`);
    const ptr = this.exports.alloc(size > 0 ? size : 1) >>> 0;
    this.refresh();
    return ptr;
  }

  free(ptr: number): void {
    if (ptr !== 0) this.exports.free(ptr);
  }

  /** Makes the single-key scratch buffer at least `bytes` long. */
  ensureScratch(bytes: number): void {
    if (bytes <= this.scratchCap) return;
    let cap = this.scratchCap || 256;
    while (cap < bytes) cap *= 2;
    this.free(this.scratchPtr);
    this.scratchPtr = this.alloc(cap);
    this.scratchCap = cap;
  }

  /**
   * Writes a key into the scratch buffer and returns its byte length. ASCII strings are
   * copied by a char-code loop (cheapest here); others fall back to `encodeInto`.
   * Allocates nothing unless the key is larger than any seen before.
   */
  writeKey(key: Key): number {
    if (typeof key === 'string') {
      const n = key.length;
      if (n * 3 > this.scratchCap) this.ensureScratch(n * 3);
      const u8 = this.u8;
      const p = this.scratchPtr;
      for (let i = 0; i < n; i++) {
        const c = charCodeAt.call(key, i);
        if (c > 0x7f) return this.encodeSlow(key);
        u8[p + i] = c;
      }
      return n;
    }
    if (key instanceof Uint8Array) {
      const n = key.length;
      if (n > this.scratchCap) this.ensureScratch(n);
      this.u8.set(key, this.scratchPtr);
      return n;
    }
    throw keyTypeError(key);
  }

  private encodeSlow(key: string): number {
    return encoder.encodeInto(key, this.u8.subarray(this.scratchPtr, this.scratchPtr + this.scratchCap)).written;
  }

  /**
   * Packs many keys into the batch buffers: bytes at `data`, offsets[i]..offsets[i+1] per
   * key, room for one u32 result per key at `out`. Returns the buffer addresses.
   */
  packKeys(keys: ArrayLike<Key>): { data: number; offsets: number; out: number } {
    const count = keys.length;
    if (count > this.batchCount) {
      this.free(this.batchOffsets);
      this.free(this.batchOut);
      const cap = Math.max(count, 1024);
      this.batchOffsets = this.alloc((cap + 1) * 4);
      this.batchOut = this.alloc(cap * 4);
      this.batchCount = cap;
    }
    if (this.batchDataCap === 0) this.growBatchData(Math.max(count * 16, 4096), 0);
    let u8 = this.u8;
    let u32 = this.u32;
    let data = this.batchData;
    let cap = this.batchDataCap;
    const offIdx = this.batchOffsets >>> 2;
    let at = 0;
    u32[offIdx] = 0;
    for (let k = 0; k < count; k++) {
      const key = keys[k];
      if (typeof key === 'string') {
        const n = key.length;
        if (at + n * 3 > cap) {
          this.growBatchData(at + n * 3, at);
          u8 = this.u8;
          u32 = this.u32;
          data = this.batchData;
          cap = this.batchDataCap;
        }
        let p = data + at;
        let i = 0;
        for (; i < n; i++) {
          const c = charCodeAt.call(key, i);
          if (c > 0x7f) break;
          u8[p++] = c;
        }
        if (i < n) p = data + at + encoder.encodeInto(key, u8.subarray(data + at, data + cap)).written;
        at = p - data;
      } else if (key instanceof Uint8Array) {
        const n = key.length;
        if (at + n > cap) {
          this.growBatchData(at + n, at);
          u8 = this.u8;
          u32 = this.u32;
          data = this.batchData;
          cap = this.batchDataCap;
        }
        u8.set(key, data + at);
        at += n;
      } else {
        throw keyTypeError(key, `keys[${k}]`);
      }
      u32[offIdx + k + 1] = at;
    }
    return { data, offsets: this.batchOffsets, out: this.batchOut };
  }

  /**
   * Maps `count` u32 owner slots at `outPtr` (a batch's results) to names; NO_OWNER and
   * any slot past `names` become undefined.
   */
  namesAt(outPtr: number, count: number, names: readonly string[]): (string | undefined)[] {
    const u32 = this.u32;
    const base = outPtr >>> 2;
    const result = new Array<string | undefined>(count);
    for (let i = 0; i < count; i++) result[i] = names[u32[base + i] as number];
    return result;
  }

  /** Copies `count` u32 results at `outPtr` into `out` (from {@link checkIndicesOut}). */
  indicesAt(outPtr: number, count: number, out: Uint32Array): Uint32Array {
    const u32 = this.u32;
    const base = outPtr >>> 2;
    for (let i = 0; i < count; i++) out[i] = u32[base + i] as number;
    return out;
  }

  private growBatchData(need: number, keep: number): void {
    let cap = Math.max(this.batchDataCap, 4096);
    while (cap < need) cap *= 2;
    const next = this.alloc(cap);
    if (keep > 0) this.u8.copyWithin(next, this.batchData, this.batchData + keep);
    this.free(this.batchData);
    this.batchData = next;
    this.batchDataCap = cap;
  }
}

/**
 * The array a `getManyIndices(keys, out?)` call fills: `out` when it is a Uint32Array of at
 * least `count`, else a new one.
 * @throws {InvalidOptionError} when `out` is given and too short or not a Uint32Array.
 */
export function checkIndicesOut(count: number, out: Uint32Array | undefined): Uint32Array {
  if (out === undefined) return new Uint32Array(count);
  if (!(out instanceof Uint32Array) || out.length < count) {
    throw new InvalidOptionError('out', out, `must be a Uint32Array of length >= ${count}`);
  }
  return out;
}

function keyTypeError(key: unknown, name = 'key'): TypeError {
  return new TypeError(`${name} must be a string, Buffer or Uint8Array, got ${key === null ? 'null' : typeof key}`);
}

let loaded: WasmCore | undefined;

/**
 * V8 11.3 (Node 20) miscompiles optimised functions that inline a JS->Wasm call once they
 * see a key of a new type: a small-integer key passed to `ring.get` after string and Buffer
 * keys crashed the process with SIGSEGV (test/wasm/jit.test.ts reproduces it; plain JS with
 * the same shape does too). Turning that one inlining off before any ringway function is
 * optimised removes the crash; an A/B of 1M get(string) calls showed no difference beyond noise. The flag is
 * process-wide, so this is done once, when the module is first needed, and can be skipped
 * with RINGWAY_WASM_INLINING=1 on a Node whose V8 is known to be fixed.
 */
function avoidJsToWasmInliningBug(): void {
  if (process.env.RINGWAY_WASM_INLINING === '1') return;
  setFlagsFromString('--no-turbo-inline-js-wasm-calls');
}

/** The process-wide module, compiled and instantiated on first use. */
export function wasmCore(): WasmCore {
  if (loaded === undefined) {
    avoidJsToWasmInliningBug();
    const module = new WebAssembly.Module(WASM_BYTES);
    const instance = new WebAssembly.Instance(module, {});
    loaded = new WasmCore(instance.exports as unknown as RingwayWasmExports);
  }
  return loaded;
}
