/**
 * A live registration: heartbeats every ttl / 3 by itself (Eureka's renewals, Consul's TTL
 * check) until `deregister()`. A heartbeat that finds the registration gone (it expired
 * during a long pause, or the store restarted empty) writes it again; one that finds a newer
 * registration of the same id stops for good (`superseded`): an old process resumed after a
 * pause never overwrites its successor.
 */
import { NotFoundError } from '../errors.js';
import type { RegistryLimits, RegistryStorage, RenewStatus } from '../store/RegistryStorage.js';
import {
  encodeRecord,
  patchRegistration,
  type Registered,
  type RegistrationPatch,
  type ServiceInstance,
} from './ServiceInstance.js';

/** Where a registration stands. */
export type RegistrationState =
  /** Heartbeating. */
  | 'active'
  /** A newer registration of the same id took over; heartbeats stopped. */
  | 'superseded'
  /** `deregister()` was called (or the registry closed). */
  | 'deregistered';

/** What a registration needs from its registry. */
export interface RegistrationHost {
  readonly storage: RegistryStorage;
  readonly limits: RegistryLimits;
  /** A store call of this registration failed (`error`) or succeeded (undefined). */
  report(source: string, error: unknown): void;
  /** A heartbeat had an outcome other than a plain renewal. */
  outcome(registration: Registration, status: RenewStatus): void;
  /** The registration wrote the service at `index` (undefined: unknown): local views catch up to it. */
  wrote(service: string, index: number | undefined): Promise<void>;
  /** The registration ended (deregistered or superseded). */
  ended(registration: Registration): void;
}

/** A registration returned by `ServiceRegistry.register`. */
export class Registration {
  readonly #host: RegistrationHost;
  #registered: Registered;
  #record: string;
  #epoch: number;
  #state: RegistrationState = 'active';
  #timer: NodeJS.Timeout | undefined;
  #inFlight: Promise<RenewStatus> | undefined;
  #lastHeartbeatAt = 0;
  #expiresAt: number;
  #lastError: unknown;

  /** @internal Use `ServiceRegistry.register`. */
  constructor(host: RegistrationHost, registered: Registered, epoch: number, expiresAt: number) {
    this.#host = host;
    this.#registered = registered;
    this.#record = encodeRecord(registered);
    this.#epoch = epoch;
    this.#expiresAt = expiresAt;
    this.#lastHeartbeatAt = Date.now();
    this.#schedule(this.interval);
  }

  /** Service name. */
  get service(): string {
    return this.#registered.service;
  }

  /** Instance id. */
  get id(): string {
    return this.#registered.id;
  }

  /** Epoch the store gave this registration: a later registration of the same id has a larger one. */
  get epoch(): number {
    return this.#epoch;
  }

  /** `active`, `superseded` or `deregistered`. */
  get state(): RegistrationState {
    return this.#state;
  }

  /** Lease length in ms. */
  get ttlMs(): number {
    return this.#registered.ttlMs;
  }

  /** Time between heartbeats: ttlMs / 3. */
  get interval(): number {
    return Math.max(1, Math.floor(this.#registered.ttlMs / 3));
  }

  /** Store time (ms) at which the lease ends unless renewed, as of the last heartbeat. */
  get expiresAt(): number {
    return this.#expiresAt;
  }

  /** Local time of the last successful heartbeat. */
  get lastHeartbeatAt(): number {
    return this.#lastHeartbeatAt;
  }

  /** The last heartbeat failure, cleared by the next success. */
  get lastError(): unknown {
    return this.#lastError;
  }

  /** The instance as registered now (`lastSeen` is the last heartbeat's store time). */
  get instance(): ServiceInstance {
    const r = this.#registered;
    return Object.freeze({
      service: r.service,
      id: r.id,
      address: r.address,
      weight: r.weight,
      tags: r.tags,
      meta: r.meta,
      zone: r.zone,
      healthy: r.healthy,
      lastSeen: this.#expiresAt - r.ttlMs,
      ttlMs: r.ttlMs,
      epoch: this.#epoch,
    });
  }

  /**
   * Heartbeats now (the timer does this every ttl / 3). Resolves with the outcome;
   * `superseded` once a newer registration of the id took over.
   * @throws {StoreUnavailableError} when the store cannot be reached (the timer keeps trying).
   * @throws {NotFoundError} after `deregister()`.
   */
  heartbeat(): Promise<RenewStatus> {
    if (this.#state === 'superseded') return Promise.resolve('superseded');
    if (this.#state === 'deregistered') return Promise.reject(this.#ended());
    if (this.#inFlight !== undefined) return this.#inFlight;
    const attempt = this.#renew().finally(() => {
      this.#inFlight = undefined;
    });
    this.#inFlight = attempt;
    return attempt;
  }

  /**
   * Changes what the registration says (address, weight, tags, meta, zone, healthy) and
   * writes it at once; watchers see an `update`.
   * @throws {InvalidOptionError} for a bad field, naming it.
   * @throws {StoreUnavailableError} when the store cannot be reached (the new record is kept
   *   and written by the next heartbeat).
   * @throws {NotFoundError} once superseded or deregistered.
   */
  async update(patch: RegistrationPatch): Promise<void> {
    if (this.#state !== 'active') throw this.#ended();
    this.#registered = patchRegistration(this.#registered, patch);
    this.#record = encodeRecord(this.#registered);
    if (this.#inFlight !== undefined) await this.#inFlight.catch(() => undefined);
    await this.heartbeat();
  }

  /**
   * Marks the instance healthy or not (e.g. false while draining): `update({ healthy })`.
   * @throws {StoreUnavailableError}
   */
  setHealthy(healthy: boolean): Promise<void> {
    return this.update({ healthy });
  }

  /**
   * Stops heartbeating and removes the registration from the store (only this registration:
   * never a newer one of the same id). Calling it twice is harmless.
   * Resolves true when the store removed it.
   * @throws {StoreUnavailableError} when the store cannot be reached: heartbeats have stopped
   *   anyway, so the registration expires after its ttl.
   */
  async deregister(): Promise<boolean> {
    if (this.#state !== 'active') return false;
    this.#stop('deregistered');
    if (this.#inFlight !== undefined) await this.#inFlight.catch(() => undefined);
    const removed = await this.#host.storage.deregister(this.service, this.id, this.#epoch, this.#host.limits);
    if (removed) await this.#host.wrote(this.service, undefined);
    return removed;
  }

  /** @internal Stops heartbeats without touching the store (the registry closes). */
  stop(): void {
    if (this.#state === 'active') this.#stop('deregistered');
  }

  #ended(): NotFoundError {
    return new NotFoundError(`registration ${this.service}/${this.id} (epoch ${this.#epoch}) is ${this.#state}`);
  }

  #stop(state: RegistrationState): void {
    this.#state = state;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#host.ended(this);
  }

  /** Next heartbeat `delay` ms from now (the timer does not keep the process alive). */
  #schedule(delay: number): void {
    if (this.#state !== 'active') return;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      const started = Date.now();
      this.heartbeat().then(
        () => this.#schedule(Math.max(0, started + this.interval - Date.now())),
        () => this.#schedule(Math.max(0, started + this.interval - Date.now())),
      );
    }, delay).unref();
  }

  async #renew(): Promise<RenewStatus> {
    const source = `registration:${this.service}/${this.id}`;
    let result: Awaited<ReturnType<RegistryStorage['renew']>>;
    try {
      result = await this.#host.storage.renew({
        service: this.service,
        id: this.id,
        record: this.#record,
        ttlMs: this.#registered.ttlMs,
        epoch: this.#epoch,
        ...this.#host.limits,
      });
    } catch (err) {
      this.#lastError = err;
      this.#host.report(source, err);
      throw err;
    }
    this.#lastError = undefined;
    this.#host.report(source, undefined);
    const status = result.status as RenewStatus;
    if (status === 'superseded') {
      if (this.#state === 'active') this.#stop('superseded');
      this.#host.outcome(this, status);
      return status;
    }
    this.#lastHeartbeatAt = Date.now();
    this.#expiresAt = result.expiresAt;
    if (status !== 'renewed') {
      this.#host.outcome(this, status);
      await this.#host.wrote(this.service, result.index);
    }
    return status;
  }
}
