/**
 * The Redis store's {@link ConfigStorage}: writes and syncs are Lua scripts from
 * `configScripts.ts`; `get` and `history` are single reads. One round trip each, on the
 * namespace's Cluster slot.
 */
import {
  type ConfigPosition,
  type ConfigStorage,
  type ConfigSync,
  type ConfigWrite,
  type ConfigWriteResult,
  configChannel,
  decodeStoredVersion,
  parseConfigChange,
  parseConfigLogEntry,
  type StoredConfigChange,
  type StoredConfigEntry,
} from '../ConfigStorage.js';
import { entityKey } from '../keys.js';
import { SYNC_SCRIPT, WRITE_SCRIPT } from './configScripts.js';
import type { ScriptDefinition } from './lockScripts.js';
import type { RedisChangeFeed } from './RedisChangeFeed.js';
import type { RedisContext } from './RedisContext.js';

/** The config scripts, by the command name they get on the client. */
export const CONFIG_SCRIPTS: Readonly<Record<string, ScriptDefinition>> = Object.freeze({
  ringwayConfigWrite: WRITE_SCRIPT,
  ringwayConfigSync: SYNC_SCRIPT,
});

/** Namespaced, versioned config keys in Redis. */
export class RedisConfigStorage implements ConfigStorage {
  readonly #ctx: RedisContext;
  readonly #feed: RedisChangeFeed;

  constructor(ctx: RedisContext, feed: RedisChangeFeed) {
    this.#ctx = ctx;
    this.#feed = feed;
  }

  async get(namespace: string, key: string): Promise<StoredConfigEntry | undefined> {
    const text = await this.#ctx.bounded(() => this.#ctx.client.hget(this.#key(namespace, 'cur'), key));
    if (text === null) return undefined;
    const entry = decodeStoredVersion(key, text);
    return entry.deleted ? undefined : entry;
  }

  async write(write: ConfigWrite): Promise<ConfigWriteResult> {
    const { namespace, key } = write;
    const reply = (await this.#ctx.run(
      'ringwayConfigWrite',
      this.#key(namespace, 'cur'),
      this.#key(namespace, 'rev'),
      this.#key(namespace, 'log'),
      this.#key(namespace, `h:${key}`),
      key,
      write.value ?? 'null',
      write.expectedVersion ?? -1,
      write.historyLimit,
      write.logLimit,
      this.#ctx.channel(configChannel(namespace)),
      write.value === undefined ? '1' : '0',
    )) as [string, ...(number | string)[]];
    if (reply[0] === 'conflict') return { status: 'conflict', actual: Number(reply[1]) };
    if (reply[0] === 'absent') return { status: 'absent' };
    return { status: 'written', version: Number(reply[1]), updatedAt: Number(reply[2]), rev: Number(reply[3]) };
  }

  async history(namespace: string, key: string, limit: number): Promise<StoredConfigEntry[]> {
    const texts = await this.#ctx.bounded(() =>
      this.#ctx.client.lrange(this.#key(namespace, `h:${key}`), 0, limit - 1),
    );
    return texts.map((text) => decodeStoredVersion(key, text));
  }

  async sync(namespace: string, prefix: string, from: ConfigPosition | undefined): Promise<ConfigSync> {
    const reply = (await this.#ctx.run(
      'ringwayConfigSync',
      this.#key(namespace, 'cur'),
      this.#key(namespace, 'rev'),
      this.#key(namespace, 'log'),
      from?.gen ?? '',
      from?.rev ?? -1,
      prefix,
      this.#key(namespace, 'h:'),
    )) as [string, string, number, string[]?];
    const [kind, gen, rawRev, items = []] = reply;
    const rev = Number(rawRev);
    if (kind === 'current') return { kind, gen, rev };
    if (kind === 'changes') {
      const changes: StoredConfigChange[] = [];
      for (let i = 0; i + 1 < items.length; i += 2) {
        const entry = parseConfigLogEntry(items[i] as string);
        if (entry === undefined) throw new Error(`config: unreadable change entry in namespace ${namespace}`);
        changes.push({ ...entry, value: decodeStoredVersion(entry.key, items[i + 1] as string).value });
      }
      return { kind, gen, rev, changes };
    }
    const entries: StoredConfigEntry[] = [];
    for (let i = 0; i + 1 < items.length; i += 2) {
      entries.push(decodeStoredVersion(items[i] as string, items[i + 1] as string));
    }
    entries.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    return { kind: 'snapshot', gen, rev, entries };
  }

  onChange(namespace: string, listener: (change: StoredConfigChange) => void): () => void {
    return this.#feed.on(configChannel(namespace), (message) => {
      const change = parseConfigChange(message);
      if (change !== undefined) listener(change);
    });
  }

  #key(namespace: string, part: string): string {
    return entityKey(this.#ctx.prefix, 'config', namespace, part);
  }
}
