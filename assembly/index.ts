// The WebAssembly module's exports. src/wasm/ is the only TypeScript that loads it.

export { xxh32, xxh64 } from './xxhash';
export { jumpHash, jumpHashBytes } from './jump';
export { maglevBuild, maglevLookup, maglevLookupBatch } from './maglev';
export { md5, md5Word } from './md5';
export {
  ringBuildTable,
  ringFindIndex,
  ringHash,
  ringIndexOf,
  ringInsertPoints,
  ringKetamaPositions,
  ringLookup,
  ringLookupBatch,
  ringMergePoints,
  ringNextTie,
  ringPointPositions,
  ringRemoveOwner,
  ringSortPoints,
  ringTableInsert,
} from './ring';

/** Allocates `size` bytes of unmanaged memory (may grow memory). */
export function alloc(size: usize): usize {
  return heap.alloc(size);
}

/** Frees memory from alloc. */
export function free(ptr: usize): void {
  heap.free(ptr);
}
