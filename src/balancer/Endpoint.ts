/**
 * The endpoints a balancer spreads requests over: what callers give (`EndpointInput`), the
 * frozen shape the balancer hands back (`Endpoint`), and the check that turns one into the
 * other, naming the field and the value of anything out of range.
 */
import { InvalidOptionError } from '../errors.js';
import { checkName, checkNumber, checkObject } from '../validate.js';

/** An upstream as given to `createBalancer` or `update`. */
export interface EndpointInput {
  /** Unique within the balancer; the key that `update` matches on to keep state. */
  readonly id: string;
  /** Where to send requests, e.g. `http://127.0.0.1:3001` or `10.0.0.7:6379`. */
  readonly address: string;
  /** Relative share of traffic, > 0. @default 1 */
  readonly weight?: number;
  /** Locality (zone, rack, region): carried for the caller, not used to balance. */
  readonly zone?: string;
  /** Anything the caller wants to find on the endpoint again (tags, version...). */
  readonly meta?: Readonly<Record<string, unknown>>;
}

/** An endpoint as the balancer holds it: every field present, frozen. */
export interface Endpoint {
  readonly id: string;
  readonly address: string;
  readonly weight: number;
  readonly zone: string | undefined;
  readonly meta: Readonly<Record<string, unknown>>;
}

/** Largest weight an endpoint may have. */
export const MAX_ENDPOINT_WEIGHT = 1_000_000;
/** Longest endpoint id, in UTF-16 code units (the ring's limit on node ids). */
export const MAX_ENDPOINT_ID_LENGTH = 1024;
/** Longest endpoint address, in UTF-16 code units. */
export const MAX_ENDPOINT_ADDRESS_LENGTH = 2048;

const EMPTY_META: Readonly<Record<string, unknown>> = Object.freeze({});

/**
 * Checks one endpoint and returns its frozen, complete form.
 * @throws {InvalidOptionError} naming `${field}.id`, `.address`, `.weight`, `.zone` or `.meta`.
 */
export function resolveEndpoint(field: string, input: unknown): Endpoint {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new InvalidOptionError(field, input, 'must be an object { id, address, weight?, zone?, meta? }');
  }
  const { id, address, weight, zone, meta } = input as Record<string, unknown>;
  const metaObject = checkObject(`${field}.meta`, meta);
  return Object.freeze({
    id: checkName(`${field}.id`, id, MAX_ENDPOINT_ID_LENGTH),
    address: checkName(`${field}.address`, address, MAX_ENDPOINT_ADDRESS_LENGTH),
    weight: checkNumber(`${field}.weight`, weight ?? 1, 0, MAX_ENDPOINT_WEIGHT, true),
    zone: zone === undefined ? undefined : checkName(`${field}.zone`, zone),
    meta: meta === undefined ? EMPTY_META : Object.freeze({ ...metaObject }),
  });
}

/**
 * Checks a list of endpoints: each one, and that no id repeats.
 * @throws {InvalidOptionError} naming e.g. `endpoints[2].weight` or `endpoints[3].id` (a duplicate).
 */
export function resolveEndpoints(field: string, input: unknown): readonly Endpoint[] {
  if (!Array.isArray(input)) throw new InvalidOptionError(field, input, 'must be an array of endpoints');
  const seen = new Set<string>();
  const out: Endpoint[] = [];
  for (let i = 0; i < input.length; i++) {
    const endpoint = resolveEndpoint(`${field}[${i}]`, input[i]);
    if (seen.has(endpoint.id)) throw new InvalidOptionError(`${field}[${i}].id`, endpoint.id, 'must be unique');
    seen.add(endpoint.id);
    out.push(endpoint);
  }
  return Object.freeze(out);
}
