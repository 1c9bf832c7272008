/**
 * What the parts of a memory store share: its clock, its change feed and its open/closed
 * state. Every part method runs synchronously between awaits, so each is atomic by
 * construction: no other call can interleave with it in this process.
 */
import { StoreUnavailableError } from '../../errors.js';
import type { MemoryChangeFeed } from './MemoryChangeFeed.js';

/** Shared state of one memory store, handed to each of its parts. */
export interface MemoryContext {
  /** The store clock in ms since the epoch (monotonic unless a test clock says otherwise). */
  now(): number;
  /** The change feed (also used by parts to notify watchers). */
  readonly feed: MemoryChangeFeed;
  /** Throws StoreUnavailableError once the store is closed. */
  assertOpen(): void;
}

/** The default clock: wall time that never steps back (the process' monotonic clock). */
export function monotonicNow(): number {
  return performance.timeOrigin + performance.now();
}

/** A StoreUnavailableError for calls on a closed store. */
export function closedError(): StoreUnavailableError {
  return new StoreUnavailableError('the store is closed');
}
