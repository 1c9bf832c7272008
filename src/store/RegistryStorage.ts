/**
 * The registry part of a {@link Store}: service instances with TTL leases, a per-service
 * change index with a bounded change log, and tombstones that keep a stale process from
 * coming back over a newer registration. Each method is one atomic step in the store (one
 * Lua script on Redis). Arguments arrive validated by `ServiceRegistry`; `record` is the
 * instance as JSON, opaque to the store.
 *
 * Semantics every backend keeps (the registry contract suite checks them):
 * - Each registration gets an **epoch**, `max(last epoch of the id + 1, tombstone + 1, store
 *   time in microseconds)`: strictly greater than every earlier registration of the same id,
 *   and, through the clock term, still greater after the store forgot the id (a Redis restart
 *   without persistence), as long as the store clock does not step back (the same argument
 *   as the lock fencing tokens).
 * - A lease ends `ttlMs` after the last register or renew, by the store clock. Expired
 *   instances are removed by a **sweep** that `renew` and `sync` run first, so any participant
 *   (a heartbeating instance, a watching client) sweeps; nothing relies on Redis keyspace
 *   notifications. A sweep removes at most {@link SWEEP_BATCH} instances per call; reads
 *   never return an expired instance even before it is swept.
 * - `renew` with an epoch older than the id's current registration, or than the tombstone of
 *   a newer one that was removed, is refused (`superseded`): a process resumed after a pause
 *   cannot overwrite a newer registration of the same id (Consul and Eureka compare
 *   registration times the same way; etcd uses lease ids).
 * - Every change (register, update, deregister, expire) bumps the service's **index** by
 *   exactly one, as Consul's `ModifyIndex` does, and pushes one entry on the service's change
 *   log (newest first, at most `logLimit` entries), atomically. The index lives in a
 *   **generation** named after the store time when the index was created; a generation that
 *   changed (the store lost its data) means "resynchronise", never "continue".
 * - The same entry is published on the channel {@link registryChannel}`(service)`, best effort.
 *   `sync(service, from)` returns the entries after `from` when the log still holds them,
 *   otherwise a snapshot: watchers that missed messages catch up from their last index (as
 *   etcd watches resume from a revision, falling back to a full read once it is compacted).
 */

/** The most expired instances one sweep removes (bounds the time of one script). */
export const SWEEP_BATCH = 1_000;

/** The channel (under the store's prefix) on which a service's change entries are published. */
export function registryChannel(service: string): string {
  return `registry:${service}`;
}

/** What a registry change entry records. */
export type RegistryChangeType = 'register' | 'update' | 'deregister' | 'expire';

/** One entry of a service's change log (also the message published for it). */
export interface RegistryLogEntry {
  /** Generation of the service's index (see the module comment). */
  readonly gen: string;
  /** The index this change produced. */
  readonly index: number;
  /** What happened. */
  readonly type: RegistryChangeType;
  /** Instance id. */
  readonly id: string;
  /** The instance record (JSON) after a register/update, or as it was when removed. */
  readonly record: string;
  /** Epoch of the registration concerned. */
  readonly epoch: number;
  /** Store time of the change, ms since the epoch. */
  readonly at: number;
  /** When the lease ends (ms; 0 for removals). */
  readonly expiresAt: number;
}

/** A live instance as stored. */
export interface StoredInstance {
  readonly id: string;
  readonly record: string;
  readonly epoch: number;
  /** When the lease ends, store time in ms. */
  readonly expiresAt: number;
}

/** Where a reader stands in a service's history. */
export interface RegistryPosition {
  readonly gen: string;
  readonly index: number;
}

/** What {@link RegistryStorage.sync} returns. */
export type RegistrySync =
  /** Nothing changed since the position given. */
  | { readonly kind: 'current'; readonly gen: string; readonly index: number }
  /** The changes since the position given, oldest first (the empty position ('', 0) follows into the first generation). */
  | { readonly kind: 'changes'; readonly gen: string; readonly index: number; readonly changes: RegistryLogEntry[] }
  /** The whole live state (no position given, another generation, or the log no longer covers the gap). */
  | { readonly kind: 'snapshot'; readonly gen: string; readonly index: number; readonly instances: StoredInstance[] };

/** Bookkeeping limits passed with every write (the registry's options). */
export interface RegistryLimits {
  /** Entries kept in a service's change log. */
  readonly logLimit: number;
  /** How long (after its epoch) a removed registration's tombstone is kept. */
  readonly tombstoneMs: number;
}

/** A registration to write. */
export interface RegistryWrite extends RegistryLimits {
  readonly service: string;
  readonly id: string;
  /** The instance as JSON. */
  readonly record: string;
  /** Lease length. */
  readonly ttlMs: number;
}

/** Outcome of {@link RegistryStorage.renew}. */
export type RenewStatus =
  /** The lease was extended; nothing else changed. */
  | 'renewed'
  /** The lease was extended and the record changed (index bumped). */
  | 'updated'
  /** The registration had expired or was lost (store restart): it was written again. */
  | 'reregistered'
  /** A newer registration of the same id exists (or existed): nothing was written. */
  | 'superseded';

/** Result of {@link RegistryStorage.register} and {@link RegistryStorage.renew}. */
export interface RegistryWriteResult {
  readonly status: RenewStatus | 'registered';
  /** Epoch of the registration now in the store for this id (ours unless superseded). */
  readonly epoch: number;
  /** The service's index after the call. */
  readonly index: number;
  /** When our lease ends (0 when superseded). */
  readonly expiresAt: number;
}

/** The registry part of a store. */
export interface RegistryStorage {
  /**
   * Writes a new registration of `id` with a fresh epoch, replacing any older one.
   * @throws {StoreUnavailableError} when the store cannot be reached.
   */
  register(write: RegistryWrite): Promise<RegistryWriteResult>;
  /**
   * Heartbeat of the registration `epoch`: sweeps the service, then extends the lease (and
   * writes `record` when it changed), writes the registration again when it is gone and no
   * newer one exists, or refuses when a newer one exists (see {@link RenewStatus}).
   * @throws {StoreUnavailableError}
   */
  renew(write: RegistryWrite & { readonly epoch: number }): Promise<RegistryWriteResult>;
  /**
   * Removes registration `epoch` of `id`, leaving a tombstone. Resolves false (and changes
   * nothing) when that registration is not the current one.
   * @throws {StoreUnavailableError}
   */
  deregister(service: string, id: string, epoch: number, limits: RegistryLimits): Promise<boolean>;
  /**
   * Sweeps the service, then tells a reader at `from` what it missed (see {@link RegistrySync}).
   * @throws {StoreUnavailableError}
   */
  sync(service: string, from: RegistryPosition | undefined, limits: RegistryLimits): Promise<RegistrySync>;
  /**
   * Names of the services that have at least one live instance, sorted.
   * @throws {StoreUnavailableError}
   */
  services(): Promise<string[]>;
  /**
   * Calls `listener` with every change entry of `service` published from now on, in any
   * process (best effort: see the module comment). Returns the remover.
   */
  onChange(service: string, listener: (entry: RegistryLogEntry) => void): () => void;
}

/** Parses a change entry as both backends write it; undefined when it is not one. */
export function parseRegistryEntry(message: string): RegistryLogEntry | undefined {
  let raw: unknown;
  try {
    raw = JSON.parse(message);
  } catch {
    return undefined;
  }
  if (typeof raw !== 'object' || raw === null) return undefined;
  const e = raw as Record<string, unknown>;
  if (
    typeof e.gen !== 'string' ||
    typeof e.index !== 'number' ||
    typeof e.id !== 'string' ||
    typeof e.record !== 'string' ||
    typeof e.epoch !== 'number' ||
    typeof e.at !== 'number' ||
    typeof e.expiresAt !== 'number' ||
    (e.type !== 'register' && e.type !== 'update' && e.type !== 'deregister' && e.type !== 'expire')
  ) {
    return undefined;
  }
  return {
    gen: e.gen,
    index: e.index,
    type: e.type,
    id: e.id,
    record: e.record,
    epoch: e.epoch,
    at: e.at,
    expiresAt: e.expiresAt,
  };
}
