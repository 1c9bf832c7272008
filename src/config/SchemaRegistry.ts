/**
 * JSON Schemas for config keys (`ConfigCenter.define`), compiled once with Ajv (JSON Schema
 * draft-07 and 2019-09 keywords as Ajv 8 supports them). A value that fails is refused with a
 * {@link ValidationError} whose `path` is the JSON pointer of the offending field (for a
 * missing required property or a property that is not allowed, the property itself).
 * `format` keywords are not checked (no format plugin is bundled).
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { InvalidOptionError, ValidationError } from '../errors.js';
import { jsonPointer } from './jsonValue.js';

/** Schemas by namespace and key. */
export class SchemaRegistry {
  readonly #ajv = new Ajv({ allErrors: false, strict: true, validateFormats: false });
  readonly #validators = new Map<string, ValidateFunction>();

  /**
   * Compiles `schema` for `key` of `namespace`, replacing an earlier one (the earlier one
   * stays when the new one does not compile).
   * @throws {InvalidOptionError} (`schema`) when it is not a valid JSON Schema.
   */
  define(namespace: string, key: string, schema: unknown): void {
    if (typeof schema !== 'boolean' && (typeof schema !== 'object' || schema === null || Array.isArray(schema))) {
      throw new InvalidOptionError('schema', schema, 'must be a JSON Schema (an object or a boolean)');
    }
    const old = this.#validators.get(slot(namespace, key));
    // Ajv keeps every schema it compiled (by object and by `$id`): the one replaced leaves it
    // first, so that redefining a key cannot leak memory nor collide with its own `$id`; a
    // schema that fails to compile leaves Ajv's tables as they were.
    const ajv = this.#ajv;
    const before = { schemas: { ...ajv.schemas }, refs: { ...ajv.refs } };
    this.#forget(old);
    let validate: ValidateFunction;
    try {
      validate = ajv.compile(schema as object);
    } catch (err) {
      this.#forget({ schema } as ValidateFunction);
      restore(ajv.schemas, before.schemas);
      restore(ajv.refs, before.refs);
      throw new InvalidOptionError('schema', schema, `must be a valid JSON Schema (${(err as Error).message})`);
    }
    this.#validators.set(slot(namespace, key), validate);
  }

  /** Removes the schema of `key`; resolves whether there was one. */
  undefine(namespace: string, key: string): boolean {
    const old = this.#validators.get(slot(namespace, key));
    this.#forget(old);
    return this.#validators.delete(slot(namespace, key));
  }

  /** Whether `key` has a schema. */
  has(namespace: string, key: string): boolean {
    return this.#validators.has(slot(namespace, key));
  }

  /**
   * Checks `value` against the schema of `key`, if any.
   * @throws {ValidationError} pointing at the offending field.
   */
  check(namespace: string, key: string, value: unknown): void {
    const validate = this.#validators.get(slot(namespace, key));
    if (validate === undefined || validate(value)) return;
    const error = validate.errors?.[0];
    const { pointer, message } = describe(error);
    throw new ValidationError(
      `config ${namespace}/${key}${pointer === '' ? '' : ` at ${pointer}`}: ${message}`,
      pointer,
    );
  }

  /** Takes a compiled schema out of Ajv's cache and `$id` table. */
  #forget(validate: ValidateFunction | undefined): void {
    const schema: unknown = validate?.schema;
    if (typeof schema === 'object' && schema !== null) this.#ajv.removeSchema(schema as object);
  }
}

/** Sets `table` back to `saved` (Ajv's `$id` tables after a failed compile). */
function restore<T>(table: Record<string, T | undefined>, saved: Record<string, T | undefined>): void {
  for (const id of Object.keys(table)) if (!(id in saved)) delete table[id];
  Object.assign(table, saved);
}

function slot(namespace: string, key: string): string {
  return `${namespace}\u0000${key}`;
}

/** The field an Ajv error is about, and what is wrong with it. */
function describe(error: ErrorObject | undefined): { pointer: string; message: string } {
  if (error === undefined) return { pointer: '', message: 'does not match its schema' };
  const params = error.params as Record<string, unknown>;
  if (error.keyword === 'required' && typeof params.missingProperty === 'string') {
    return { pointer: `${error.instancePath}${jsonPointer([params.missingProperty])}`, message: 'is required' };
  }
  if (error.keyword === 'additionalProperties' && typeof params.additionalProperty === 'string') {
    return {
      pointer: `${error.instancePath}${jsonPointer([params.additionalProperty])}`,
      message: 'is not allowed (additionalProperties)',
    };
  }
  return { pointer: error.instancePath, message: error.message ?? `fails ${error.keyword}` };
}
