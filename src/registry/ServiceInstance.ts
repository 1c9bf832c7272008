/**
 * What a registration says about an instance, how it is checked, and how it travels through
 * the store: as one JSON record (fixed field order, so that a heartbeat can tell "same
 * record" by comparing text).
 */
import { InvalidOptionError } from '../errors.js';
import { checkName, checkNumber, checkObject } from '../validate.js';
import { MAX_TTL_MS, MIN_TTL_MS } from './RegistryOptions.js';

/** Limits on the parts of a registration. */
export const REGISTRATION_LIMITS = Object.freeze({
  /** Longest service name or instance id, in characters. */
  maxNameLength: 256,
  /** Longest address, in characters. */
  maxAddressLength: 2_048,
  /** Most tags; longest tag. */
  maxTags: 64,
  maxTagLength: 128,
  /** Most meta entries; longest meta key; longest meta value. */
  maxMetaEntries: 64,
  maxMetaKeyLength: 128,
  maxMetaValueLength: 1_024,
  /** Largest weight. */
  maxWeight: 1_000_000,
});

/** What `register()` takes. */
export interface RegistrationInput {
  /** Service name, e.g. `users`. */
  service: string;
  /** Instance id, unique within the service, e.g. `users-1`. */
  id: string;
  /** Where the instance listens, e.g. `http://127.0.0.1:3001`. */
  address: string;
  /** Relative share of traffic, for weighted balancing. @default 1 */
  weight?: number;
  /** Free-form labels; `instances(service, { tags })` filters on them. @default [] */
  tags?: readonly string[];
  /** String key/value metadata. @default {} */
  meta?: Readonly<Record<string, string>>;
  /** Availability zone; `instances(service, { zone })` filters on it. @default undefined */
  zone?: string;
  /** Whether the instance takes traffic now (an instance draining sets false). @default true */
  healthy?: boolean;
  /** Lease of this registration. @default the registry's ttlMs */
  ttlMs?: number;
}

/** The parts of a registration its owner may change later (`Registration.update`). */
export type RegistrationPatch = Partial<
  Pick<RegistrationInput, 'address' | 'weight' | 'tags' | 'meta' | 'zone' | 'healthy'>
>;

/** An instance as the registry reports it: what was registered, plus `healthy` and `lastSeen`. */
export interface ServiceInstance {
  readonly service: string;
  readonly id: string;
  readonly address: string;
  readonly weight: number;
  readonly tags: readonly string[];
  readonly meta: Readonly<Record<string, string>>;
  readonly zone: string | undefined;
  /** Marked healthy by its owner (and, being listed, its lease has not ended). */
  readonly healthy: boolean;
  /** Store time (ms since the epoch) of the last heartbeat or change this client knows of. */
  readonly lastSeen: number;
  /** Lease of the registration, in ms. */
  readonly ttlMs: number;
  /** Epoch of the registration: a later registration of the same id has a larger one. */
  readonly epoch: number;
}

/** A checked registration, in record order. */
export interface Registered {
  readonly service: string;
  readonly id: string;
  readonly address: string;
  readonly weight: number;
  readonly tags: readonly string[];
  readonly meta: Readonly<Record<string, string>>;
  readonly zone: string | undefined;
  readonly healthy: boolean;
  readonly ttlMs: number;
}

/** Lone UTF-16 surrogates and control characters: not allowed in names. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
const BAD_CHARS = /[\u0000-\u001f\u007f]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/**
 * A service name or instance id: a string of 1 to 256 characters without control characters
 * or lone surrogates.
 * @throws {TypeError} when `value` is not a string and `positional` is set (an argument, not a field).
 * @throws {InvalidOptionError} naming `field` otherwise.
 */
export function checkRegistryName(field: string, value: unknown, positional = false): string {
  if (positional && typeof value !== 'string') throw new TypeError(`${field} must be a string, got ${typeof value}`);
  checkName(field, value, REGISTRATION_LIMITS.maxNameLength);
  if (BAD_CHARS.test(value as string)) {
    throw new InvalidOptionError(field, value, 'must not contain control characters or lone surrogates');
  }
  return value as string;
}

function checkTags(field: string, value: unknown): readonly string[] {
  if (!Array.isArray(value) || value.length > REGISTRATION_LIMITS.maxTags) {
    throw new InvalidOptionError(field, value, `must be an array of at most ${REGISTRATION_LIMITS.maxTags} strings`);
  }
  for (const [i, tag] of value.entries()) checkName(`${field}[${i}]`, tag, REGISTRATION_LIMITS.maxTagLength);
  return Object.freeze([...(value as string[])]);
}

function checkMeta(field: string, value: unknown): Readonly<Record<string, string>> {
  const meta = checkObject(field, value);
  const entries = Object.entries(meta);
  if (entries.length > REGISTRATION_LIMITS.maxMetaEntries) {
    throw new InvalidOptionError(field, value, `must have at most ${REGISTRATION_LIMITS.maxMetaEntries} entries`);
  }
  for (const [k, v] of entries) {
    checkName(`${field} key`, k, REGISTRATION_LIMITS.maxMetaKeyLength);
    if (typeof v !== 'string' || v.length > REGISTRATION_LIMITS.maxMetaValueLength) {
      throw new InvalidOptionError(
        `${field}.${k}`,
        v,
        `must be a string of at most ${REGISTRATION_LIMITS.maxMetaValueLength} characters`,
      );
    }
  }
  // Own data properties for every key, `__proto__` included (an assignment would call the
  // prototype setter and drop it); encodeRecord's JSON.stringify and decodeInstance's spread
  // keep them as such.
  return Object.freeze(Object.fromEntries(entries) as Record<string, string>);
}

/**
 * Checks the parts of a registration that may change (all present in `input`, or taken from `base`).
 * @throws {InvalidOptionError} naming the field.
 */
function checkMutable(
  input: RegistrationPatch,
  base: Registered | undefined,
): Omit<Registered, 'service' | 'id' | 'ttlMs'> {
  const address = input.address ?? base?.address;
  return {
    address: checkName('address', address, REGISTRATION_LIMITS.maxAddressLength),
    weight: checkNumber('weight', input.weight ?? base?.weight ?? 1, 0, REGISTRATION_LIMITS.maxWeight),
    tags: input.tags === undefined ? (base?.tags ?? Object.freeze([])) : checkTags('tags', input.tags),
    meta: input.meta === undefined ? (base?.meta ?? Object.freeze({})) : checkMeta('meta', input.meta),
    zone:
      'zone' in input
        ? input.zone === undefined
          ? undefined
          : checkName('zone', input.zone, REGISTRATION_LIMITS.maxTagLength)
        : base?.zone,
    healthy: checkBoolean('healthy', input.healthy ?? base?.healthy ?? true),
  };
}

function checkBoolean(field: string, value: unknown): boolean {
  if (typeof value !== 'boolean') throw new InvalidOptionError(field, value, 'must be a boolean');
  return value;
}

/**
 * Checks a registration and applies defaults.
 * @throws {InvalidOptionError} naming the field and the bad value.
 */
export function checkRegistration(input: RegistrationInput, defaultTtlMs: number): Registered {
  const obj = checkObject('registration', input) as Partial<RegistrationInput>;
  return Object.freeze({
    service: checkRegistryName('service', obj.service),
    id: checkRegistryName('id', obj.id),
    ...checkMutable(obj, undefined),
    ttlMs: obj.ttlMs === undefined ? defaultTtlMs : checkTtl(obj.ttlMs),
  });
}

/**
 * Applies a patch to a checked registration.
 * @throws {InvalidOptionError} naming the field.
 */
export function patchRegistration(base: Registered, patch: RegistrationPatch): Registered {
  const obj = checkObject('patch', patch) as RegistrationPatch;
  for (const key of Object.keys(obj)) {
    if (!['address', 'weight', 'tags', 'meta', 'zone', 'healthy'].includes(key)) {
      throw new InvalidOptionError(
        `patch.${key}`,
        (obj as Record<string, unknown>)[key],
        'cannot be changed by update()',
      );
    }
  }
  return Object.freeze({ service: base.service, id: base.id, ...checkMutable(obj, base), ttlMs: base.ttlMs });
}

function checkTtl(value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < MIN_TTL_MS || value > MAX_TTL_MS) {
    throw new InvalidOptionError('ttlMs', value, `must be an integer in [${MIN_TTL_MS}, ${MAX_TTL_MS}]`);
  }
  return value;
}

/** The record stored for a registration (fixed field order). */
export function encodeRecord(r: Registered): string {
  return JSON.stringify({
    service: r.service,
    id: r.id,
    address: r.address,
    weight: r.weight,
    tags: r.tags,
    meta: r.meta,
    zone: r.zone ?? null,
    healthy: r.healthy,
    ttlMs: r.ttlMs,
  });
}

/**
 * The instance a stored record describes; undefined when the record is not one (written by
 * something else).
 */
export function decodeInstance(record: string, epoch: number, lastSeen: number): ServiceInstance | undefined {
  let raw: unknown;
  try {
    raw = JSON.parse(record);
  } catch {
    return undefined;
  }
  if (typeof raw !== 'object' || raw === null) return undefined;
  const r = raw as Record<string, unknown>;
  if (
    typeof r.service !== 'string' ||
    typeof r.id !== 'string' ||
    typeof r.address !== 'string' ||
    typeof r.weight !== 'number' ||
    !Array.isArray(r.tags) ||
    typeof r.meta !== 'object' ||
    r.meta === null ||
    typeof r.healthy !== 'boolean' ||
    typeof r.ttlMs !== 'number'
  ) {
    return undefined;
  }
  return Object.freeze({
    service: r.service,
    id: r.id,
    address: r.address,
    weight: r.weight,
    tags: Object.freeze((r.tags as unknown[]).filter((t): t is string => typeof t === 'string')),
    meta: Object.freeze({ ...(r.meta as Record<string, string>) }),
    zone: typeof r.zone === 'string' ? r.zone : undefined,
    healthy: r.healthy,
    lastSeen,
    ttlMs: r.ttlMs,
    epoch,
  });
}
