/**
 * JSON Schemas of config keys defined over HTTP (`PUT /v1/config-schemas/<key>`), held for
 * every gateway on the same store. `ConfigCenter.define` keeps a schema in one process only,
 * so a schema defined through one gateway's admin API is written to the store, in the
 * reserved config namespace {@link SCHEMA_NAMESPACE} (key `<namespace>/<key>`, versioned
 * like any config key, so `If-Match` works on schemas too), and each admin API follows that
 * namespace with a watch and defines (or undefines) the schemas on its own config center.
 *
 * The window: a gateway learns of a new schema when its watch does (the store's change
 * message, or at the latest its next poll, `pollIntervalMs`). Writes through the admin API
 * do not wait for it: before each value write (`PUT /v1/config/<key>`, rollback) the admin
 * reads the key's schema from the store, so an HTTP write is checked against the schema the
 * store holds at that moment. What can still pass is a write racing a schema change (the two
 * are separate store operations), and an in-process `config.set` on another gateway within
 * the watch's delay.
 */
import { ConfigCenter, type ConfigWatch, type ConfigWriteOptions } from '../../src/config/ConfigCenter.js';
import { checkKey } from '../../src/config/ConfigOptions.js';
import type { ConfigChange } from '../../src/config/ConfigWatcher.js';
import type { JsonValue } from '../../src/config/jsonValue.js';
import { SchemaRegistry } from '../../src/config/SchemaRegistry.js';
import { NotFoundError } from '../../src/errors.js';
import type { Store } from '../../src/store/Store.js';

/** The config namespace where schemas defined over HTTP live (reserved: do not use it for values). */
export const SCHEMA_NAMESPACE = 'ringway.schemas';

/** Largest schema accepted, in bytes of its JSON text. */
export const MAX_SCHEMA_BYTES = 65_536;

/** Versions of each schema the store keeps. */
const SCHEMA_HISTORY = 10;

/** A schema as the store holds it. */
export interface StoredSchema {
  readonly schema: JsonValue;
  readonly version: number;
  readonly updatedAt: number;
}

/** Schemas defined over HTTP, shared through the store; see the module comment. */
export class ConfigSchemas {
  readonly #config: ConfigCenter;
  /** The schemas' own center, on the same store, in {@link SCHEMA_NAMESPACE}. */
  readonly #schemas: ConfigCenter;
  /**
   * The HTTP-defined schemas alone, compiled once more: a schema is tried here before it is
   * stored, so one that does not compile, or that takes another key's `$id`, is refused (400)
   * rather than stored and then refused by every gateway.
   */
  readonly #mirror = new SchemaRegistry();
  /** `<namespace>/<key>` -> the version applied here and its schema (undefined: none). */
  readonly #applied = new Map<string, { version: number; schema: JsonValue | undefined }>();
  readonly #watch: ConfigWatch;
  readonly #onError: (error: unknown, namespace: string, key: string) => void;

  /**
   * @param config the center whose keys the schemas constrain
   * @param store the store `config` is on
   * @param onError told when a stored schema cannot be defined here (it compiled where it
   *   was written; here it may clash with an `$id` an in-process `define` took)
   */
  constructor(config: ConfigCenter, store: Store, onError: (error: unknown, namespace: string, key: string) => void) {
    this.#config = config;
    this.#onError = onError;
    this.#schemas = new ConfigCenter({
      store,
      namespace: SCHEMA_NAMESPACE,
      maxKeyLength: Math.min(4_096, 65 + config.options.maxKeyLength),
      maxValueBytes: MAX_SCHEMA_BYTES,
      historyLimit: SCHEMA_HISTORY,
      pollIntervalMs: config.options.pollIntervalMs,
    });
    this.#watch = this.#schemas.watch('', (change) => this.#onChange(change));
  }

  /** Resolves once the schemas in the store were read and defined (or the watch closed). */
  get ready(): Promise<void> {
    return this.#watch.ready;
  }

  /**
   * The schema of `key` in the store, or undefined.
   * @throws {NotFoundError} for a namespace the config center does not have.
   * @throws {StoreUnavailableError} when the store cannot be reached (and the schema was never read).
   */
  async get(namespace: string, key: string): Promise<StoredSchema | undefined> {
    const entry = await this.#schemas.get(this.#slot(namespace, key));
    return entry === undefined
      ? undefined
      : { schema: entry.value, version: entry.version, updatedAt: entry.updatedAt };
  }

  /**
   * Checks `schema` (it must compile), stores it as the next version of the key's schema
   * (compare-and-set with `expectedVersion`), and defines it here at once.
   * @throws {InvalidOptionError} (`schema`) when it is not a valid JSON Schema.
   * @throws {ValidationError} when it is over {@link MAX_SCHEMA_BYTES}.
   * @throws {VersionConflictError} when `expectedVersion` is not the schema's live version.
   */
  async put(
    namespace: string,
    key: string,
    schema: JsonValue,
    cas: ConfigWriteOptions,
  ): Promise<{ version: number; updatedAt: number }> {
    const slot = this.#slot(namespace, key);
    this.#mirror.define(namespace, key, schema);
    // Defined on the center before it is stored: a schema this gateway cannot enforce (its
    // `$id` taken by an in-process define) is refused, not stored and shown as in force.
    try {
      this.#config.define(key, schema as object | boolean, { namespace });
    } catch (err) {
      this.#restore(namespace, key);
      throw err;
    }
    let written: { version: number; updatedAt: number };
    try {
      written = await this.#schemas.set(slot, schema, { expectedVersion: cas.expectedVersion });
    } catch (err) {
      this.#restore(namespace, key);
      throw err;
    }
    this.#apply(namespace, key, written.version, schema);
    return written;
  }

  /**
   * Deletes the key's schema (compare-and-set with `expectedVersion`); resolves whether there was one.
   * @throws {VersionConflictError} when `expectedVersion` is not the schema's live version.
   */
  async delete(namespace: string, key: string, cas: ConfigWriteOptions): Promise<boolean> {
    const removed = await this.#schemas.delete(this.#slot(namespace, key), { expectedVersion: cas.expectedVersion });
    await this.refresh(namespace, key);
    return removed;
  }

  /**
   * Reads the key's schema from the store and defines (or undefines) it here when the store
   * has a newer version than this gateway applied: called before each value write, so that
   * the write is checked against the schema the store holds, whatever this gateway's watch
   * has seen yet.
   * @throws {StoreUnavailableError} when the store cannot be reached.
   */
  async refresh(namespace: string, key: string): Promise<void> {
    const slot = this.#slot(namespace, key);
    const [newest] = await this.#schemas.history(slot, { limit: 1 });
    if (newest === undefined) return;
    // Older than what the watch delivered: the watch's (ordered) word stands.
    if (newest.version <= (this.#applied.get(slot)?.version ?? 0)) return;
    this.#apply(namespace, key, newest.version, newest.deleted ? undefined : newest.value);
  }

  /** Stops following the store (the schemas defined stay defined). */
  async close(): Promise<void> {
    this.#watch.close();
    await this.#schemas.close();
  }

  /** `<namespace>/<key>`, after checking both as the config center would. */
  #slot(namespace: string, key: string): string {
    if (!this.#config.options.namespaces.includes(namespace)) {
      throw new NotFoundError(`config namespace ${JSON.stringify(namespace)} is not one of this gateway's namespaces`);
    }
    checkKey('key', key, this.#config.options.maxKeyLength);
    return `${namespace}/${key}`;
  }

  #onChange(change: ConfigChange): void {
    const cut = change.key.indexOf('/');
    if (cut <= 0) return;
    const namespace = change.key.slice(0, cut);
    const key = change.key.slice(cut + 1);
    // Schemas of namespaces this gateway does not serve are not its business.
    if (!this.#config.options.namespaces.includes(namespace)) return;
    this.#apply(namespace, key, change.version, change.type === 'delete' ? undefined : change.value);
  }

  #apply(namespace: string, key: string, version: number, schema: JsonValue | undefined): void {
    this.#applied.set(`${namespace}/${key}`, { version, schema });
    try {
      if (schema === undefined) {
        this.#mirror.undefine(namespace, key);
        this.#config.undefine(key, { namespace });
      } else {
        this.#mirror.define(namespace, key, schema);
        this.#config.define(key, schema as object | boolean, { namespace });
      }
    } catch (err) {
      this.#onError(err, namespace, key);
    }
  }

  /** Puts the mirror and the center back to the schema last applied from the store. */
  #restore(namespace: string, key: string): void {
    const applied = this.#applied.get(`${namespace}/${key}`);
    try {
      if (applied?.schema === undefined) this.#mirror.undefine(namespace, key);
      else this.#mirror.define(namespace, key, applied.schema);
    } catch {
      // It compiled before; nothing better to do than leave the mirror as it is.
    }
    // Only a schema this API applied is put back on the center: an in-process define
    // (nothing applied from the store) is left as it is.
    if (applied === undefined) return;
    try {
      if (applied.schema === undefined) this.#config.undefine(key, { namespace });
      else this.#config.define(key, applied.schema as object | boolean, { namespace });
    } catch {
      // It was defined before; leave the center as it is.
    }
  }
}
