/**
 * The Redis store's {@link RegistryStorage}: each method is one Lua script from
 * `registryScripts.ts` on the service's slot (plus, beside register/renew and in the same
 * round trip, a touch of the service catalog on its own slot).
 */
import { entityKey } from '../keys.js';
import {
  parseRegistryEntry,
  type RegistryLimits,
  type RegistryLogEntry,
  type RegistryPosition,
  type RegistryStorage,
  type RegistrySync,
  type RegistryWrite,
  type RegistryWriteResult,
  type RenewStatus,
  registryChannel,
  type StoredInstance,
} from '../RegistryStorage.js';
import type { ScriptDefinition } from './lockScripts.js';
import type { RedisChangeFeed } from './RedisChangeFeed.js';
import type { RedisContext } from './RedisContext.js';
import {
  CATALOG_LIST_SCRIPT,
  CATALOG_TOUCH_SCRIPT,
  DEREGISTER_SCRIPT,
  REGISTER_SCRIPT,
  RENEW_SCRIPT,
  SYNC_SCRIPT,
} from './registryScripts.js';

/** The registry scripts, by the command name they get on the client. */
export const REGISTRY_SCRIPTS: Readonly<Record<string, ScriptDefinition>> = Object.freeze({
  ringwayRegistryRegister: REGISTER_SCRIPT,
  ringwayRegistryRenew: RENEW_SCRIPT,
  ringwayRegistryDeregister: DEREGISTER_SCRIPT,
  ringwayRegistrySync: SYNC_SCRIPT,
  ringwayRegistryCatalogTouch: CATALOG_TOUCH_SCRIPT,
  ringwayRegistryCatalogList: CATALOG_LIST_SCRIPT,
});

const PARTS = ['inst', 'epoch', 'exp', 'gone', 'idx', 'log'] as const;

/** Service instances, indexes and change logs in Redis. */
export class RedisRegistryStorage implements RegistryStorage {
  readonly #ctx: RedisContext;
  readonly #feed: RedisChangeFeed;
  readonly #catalog: string;

  constructor(ctx: RedisContext, feed: RedisChangeFeed) {
    this.#ctx = ctx;
    this.#feed = feed;
    this.#catalog = entityKey(ctx.prefix, 'registry-catalog', 'all');
  }

  async register(write: RegistryWrite): Promise<RegistryWriteResult> {
    const [reply] = await Promise.all([
      this.#ctx.run(
        'ringwayRegistryRegister',
        ...this.#keys(write.service),
        write.id,
        write.record,
        write.ttlMs,
        write.logLimit,
        write.tombstoneMs,
        this.#ctx.channel(registryChannel(write.service)),
      ),
      this.#touch(write.service, write.ttlMs),
    ]);
    const [epoch, index, expiresAt] = reply as [string, number, string];
    return { status: 'registered', epoch: Number(epoch), index: Number(index), expiresAt: Number(expiresAt) };
  }

  async renew(write: RegistryWrite & { readonly epoch: number }): Promise<RegistryWriteResult> {
    const [reply] = await Promise.all([
      this.#ctx.run(
        'ringwayRegistryRenew',
        ...this.#keys(write.service),
        write.id,
        String(write.epoch),
        write.record,
        write.ttlMs,
        write.logLimit,
        write.tombstoneMs,
        this.#ctx.channel(registryChannel(write.service)),
      ),
      this.#touch(write.service, write.ttlMs),
    ]);
    const [status, epoch, index, expiresAt] = reply as [RenewStatus, string, number, string];
    return { status, epoch: Number(epoch), index: Number(index), expiresAt: Number(expiresAt) };
  }

  async deregister(service: string, id: string, epoch: number, limits: RegistryLimits): Promise<boolean> {
    const reply = await this.#ctx.run(
      'ringwayRegistryDeregister',
      ...this.#keys(service),
      id,
      String(epoch),
      limits.logLimit,
      this.#ctx.channel(registryChannel(service)),
    );
    return reply === 1;
  }

  async sync(service: string, from: RegistryPosition | undefined, limits: RegistryLimits): Promise<RegistrySync> {
    const reply = (await this.#ctx.run(
      'ringwayRegistrySync',
      ...this.#keys(service),
      from?.gen ?? '',
      from?.index ?? -1,
      limits.logLimit,
      limits.tombstoneMs,
      this.#ctx.channel(registryChannel(service)),
    )) as [string, string, number, string[]?];
    const [kind, gen, rawIndex, items = []] = reply;
    const index = Number(rawIndex);
    if (kind === 'current') return { kind, gen, index };
    if (kind === 'changes') {
      const changes: RegistryLogEntry[] = [];
      for (let i = items.length - 1; i >= 0; i--) {
        const entry = parseRegistryEntry(items[i] as string);
        if (entry === undefined) throw new Error(`registry: unreadable change entry for service ${service}`);
        changes.push(entry);
      }
      return { kind, gen, index, changes };
    }
    const instances: StoredInstance[] = [];
    for (let i = 0; i + 3 < items.length; i += 4) {
      instances.push({
        id: items[i] as string,
        record: items[i + 1] as string,
        epoch: Number(items[i + 2]),
        expiresAt: Number(items[i + 3]),
      });
    }
    return { kind: 'snapshot', gen, index, instances };
  }

  async services(): Promise<string[]> {
    const [now, candidates] = (await this.#ctx.run('ringwayRegistryCatalogList', this.#catalog)) as [string, string[]];
    // A candidate announced a lease beyond now; keep those with a live instance still (one
    // ZCOUNT each, sent together: one round trip on a standalone server).
    const live = await Promise.all(
      candidates.map((service) =>
        this.#ctx.bounded(() =>
          this.#ctx.client.zcount(entityKey(this.#ctx.prefix, 'registry', service, 'exp'), `(${now}`, '+inf'),
        ),
      ),
    );
    return candidates.filter((_, i) => Number(live[i]) > 0).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  }

  onChange(service: string, listener: (entry: RegistryLogEntry) => void): () => void {
    return this.#feed.on(registryChannel(service), (message) => {
      const entry = parseRegistryEntry(message);
      if (entry !== undefined) listener(entry);
    });
  }

  #keys(service: string): string[] {
    return PARTS.map((part) => entityKey(this.#ctx.prefix, 'registry', service, part));
  }

  /**
   * Announces the service in the catalog. Advisory: a failed touch does not fail the write
   * it accompanies (the next heartbeat touches again).
   */
  #touch(service: string, ttlMs: number): Promise<unknown> {
    return this.#ctx.run('ringwayRegistryCatalogTouch', this.#catalog, service, ttlMs).catch(() => undefined);
  }
}
