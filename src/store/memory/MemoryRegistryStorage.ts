/**
 * The memory store's {@link RegistryStorage}: the same semantics as the Redis scripts in
 * `../redis/registryScripts.ts`, step for step, on plain maps. Each method runs
 * synchronously inside its call, so it is atomic by construction.
 */
import {
  parseRegistryEntry,
  type RegistryChangeType,
  type RegistryLimits,
  type RegistryLogEntry,
  type RegistryPosition,
  type RegistryStorage,
  type RegistrySync,
  type RegistryWrite,
  type RegistryWriteResult,
  registryChannel,
  type StoredInstance,
  SWEEP_BATCH,
} from '../RegistryStorage.js';
import type { MemoryContext } from './MemoryContext.js';

interface Live {
  record: string;
  epoch: number;
  expiresAt: number;
}

interface Service {
  live: Map<string, Live>;
  /** Id -> epoch of a removed registration. */
  gone: Map<string, number>;
  /** Generation of the index ('' until the first change). */
  gen: string;
  index: number;
  /** Change log, newest first (JSON entries). */
  log: string[];
}

/** In-process service instances, indexes and change logs. */
export class MemoryRegistryStorage implements RegistryStorage {
  readonly #ctx: MemoryContext;
  readonly #services = new Map<string, Service>();

  constructor(ctx: MemoryContext) {
    this.#ctx = ctx;
  }

  async register(write: RegistryWrite): Promise<RegistryWriteResult> {
    this.#ctx.assertOpen();
    const now = this.#ctx.now();
    const s = this.#service(write.service);
    this.#sweep(write.service, s, now, write);
    const epoch = Math.max((s.live.get(write.id)?.epoch ?? 0) + 1, (s.gone.get(write.id) ?? 0) + 1, micros(now));
    const expiresAt = Math.floor(now) + write.ttlMs;
    this.#put(s, write.id, { record: write.record, epoch, expiresAt });
    const index = this.#bump(write.service, s, now, 'register', write.id, write.record, epoch, expiresAt, write);
    return { status: 'registered', epoch, index, expiresAt };
  }

  async renew(write: RegistryWrite & { readonly epoch: number }): Promise<RegistryWriteResult> {
    this.#ctx.assertOpen();
    const now = this.#ctx.now();
    const s = this.#service(write.service);
    this.#sweep(write.service, s, now, write);
    const current = s.live.get(write.id);
    const expiresAt = Math.floor(now) + write.ttlMs;
    if (current !== undefined) {
      if (current.epoch > write.epoch)
        return { status: 'superseded', epoch: current.epoch, index: s.index, expiresAt: 0 };
      if (current.epoch === write.epoch) {
        current.expiresAt = expiresAt;
        if (current.record === write.record)
          return { status: 'renewed', epoch: write.epoch, index: s.index, expiresAt };
        current.record = write.record;
        const index = this.#bump(
          write.service,
          s,
          now,
          'update',
          write.id,
          write.record,
          write.epoch,
          expiresAt,
          write,
        );
        return { status: 'updated', epoch: write.epoch, index, expiresAt };
      }
      // The stored registration is older than ours (ours came back first after a restart): replace it.
    } else {
      const tomb = s.gone.get(write.id);
      if (tomb !== undefined && tomb > write.epoch) {
        return { status: 'superseded', epoch: tomb, index: s.index, expiresAt: 0 };
      }
    }
    this.#put(s, write.id, { record: write.record, epoch: write.epoch, expiresAt });
    const index = this.#bump(write.service, s, now, 'register', write.id, write.record, write.epoch, expiresAt, write);
    return { status: 'reregistered', epoch: write.epoch, index, expiresAt };
  }

  async deregister(service: string, id: string, epoch: number, limits: RegistryLimits): Promise<boolean> {
    this.#ctx.assertOpen();
    const s = this.#services.get(service);
    const current = s?.live.get(id);
    if (s === undefined || current === undefined || current.epoch !== epoch) return false;
    this.#remove(s, id, epoch);
    this.#bump(service, s, this.#ctx.now(), 'deregister', id, current.record, epoch, 0, limits);
    return true;
  }

  async sync(service: string, from: RegistryPosition | undefined, limits: RegistryLimits): Promise<RegistrySync> {
    this.#ctx.assertOpen();
    const now = this.#ctx.now();
    const s = this.#services.get(service);
    if (s === undefined) return { kind: 'snapshot', gen: '', index: 0, instances: [] };
    this.#sweep(service, s, now, limits);
    const { gen, index } = s;
    if (from !== undefined && (from.gen === gen || (from.gen === '' && from.index === 0)) && from.index <= index) {
      if (from.index === index) return { kind: 'current', gen, index };
      const missed = index - from.index;
      if (missed <= s.log.length) {
        const changes = s.log
          .slice(0, missed)
          .reverse()
          .map((m) => parseRegistryEntry(m) as RegistryLogEntry);
        return { kind: 'changes', gen, index, changes };
      }
    }
    const instances: StoredInstance[] = [];
    for (const [id, live] of s.live) {
      if (live.expiresAt > now)
        instances.push({ id, record: live.record, epoch: live.epoch, expiresAt: live.expiresAt });
    }
    return { kind: 'snapshot', gen, index, instances };
  }

  async services(): Promise<string[]> {
    this.#ctx.assertOpen();
    const now = this.#ctx.now();
    const names: string[] = [];
    for (const [name, s] of this.#services) {
      for (const live of s.live.values()) {
        if (live.expiresAt > now) {
          names.push(name);
          break;
        }
      }
    }
    return names.sort(compareCodeUnits);
  }

  onChange(service: string, listener: (entry: RegistryLogEntry) => void): () => void {
    return this.#ctx.feed.on(registryChannel(service), (message) => {
      const entry = parseRegistryEntry(message);
      if (entry !== undefined) listener(entry);
    });
  }

  #service(name: string): Service {
    let s = this.#services.get(name);
    if (s === undefined) {
      s = { live: new Map(), gone: new Map(), gen: '', index: 0, log: [] };
      this.#services.set(name, s);
    }
    return s;
  }

  #put(s: Service, id: string, live: Live): void {
    s.live.set(id, live);
    s.gone.delete(id);
  }

  #remove(s: Service, id: string, epoch: number): void {
    s.live.delete(id);
    s.gone.set(id, epoch);
  }

  /** Expires instances whose lease ended and forgets old tombstones. */
  #sweep(service: string, s: Service, now: number, limits: RegistryLimits): void {
    let removed = 0;
    for (const [id, live] of s.live) {
      if (removed >= SWEEP_BATCH) break;
      if (live.expiresAt > now) continue;
      this.#remove(s, id, live.epoch);
      this.#bump(service, s, now, 'expire', id, live.record, live.epoch, 0, limits);
      removed++;
    }
    const oldest = micros(now) - limits.tombstoneMs * 1000;
    for (const [id, epoch] of s.gone) if (epoch < oldest) s.gone.delete(id);
  }

  /** Bumps the index, logs the change and publishes it (see RegistryStorage's module comment). */
  #bump(
    service: string,
    s: Service,
    now: number,
    type: RegistryChangeType,
    id: string,
    record: string,
    epoch: number,
    expiresAt: number,
    limits: RegistryLimits,
  ): number {
    if (s.gen === '') s.gen = String(micros(now));
    s.index += 1;
    const entry: RegistryLogEntry = {
      gen: s.gen,
      index: s.index,
      type,
      id,
      record,
      epoch,
      at: Math.floor(now),
      expiresAt,
    };
    const message = JSON.stringify(entry);
    s.log.unshift(message);
    if (s.log.length > limits.logLimit) s.log.length = limits.logLimit;
    this.#ctx.feed.emit(registryChannel(service), message);
    return s.index;
  }
}

/** Store time in whole microseconds. */
function micros(nowMs: number): number {
  return Math.floor(nowMs * 1000);
}

/** Orders names by UTF-16 code units, as both backends sort services(). */
function compareCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
