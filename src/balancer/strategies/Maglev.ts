/**
 * `maglev`: a {@link MaglevTable} (Eisenbud et al., NSDI 2016; Envoy's `MAGLEV`) over the
 * endpoints in rotation, keyed by `ctx.key`: one hash and one table read per pick, whatever
 * the number of endpoints, and when the set changes only about 1/n of the keys move. The
 * table is rebuilt (about a millisecond for 65537 entries) when the rotation changes.
 *
 * When the key's endpoint must be passed over (a retry avoiding it, a busy half-open
 * breaker), the next acceptable endpoint after it in id order takes the request: the same
 * fallback for the same key in every process. Without a key the pick is uniformly random.
 */
import { InvalidOptionError } from '../../errors.js';
import { MAX_MAGLEV_SIZE, MaglevTable } from '../../ring/MaglevTable.js';
import { checkInt, checkObject } from '../../validate.js';
import { NO_OWNER } from '../../wasm/index.js';
import type { Endpoint } from '../Endpoint.js';
import type { EndpointState } from '../EndpointState.js';
import { pickRandom } from './Random.js';
import { checkKey, type PickContext, type Skip, type Strategy, scanFrom } from './Strategy.js';

/** Options of the maglev strategy. */
export interface MaglevStrategyOptions {
  /** Entries of the lookup table: a prime, more than 100 x endpoints for a 1% spread. @default 65537 */
  tableSize?: number;
}

/** Resolved, frozen maglev options. */
export interface ResolvedMaglevStrategyOptions {
  readonly tableSize: number;
}

/** Defaults of {@link MaglevStrategyOptions}. */
export const DEFAULT_MAGLEV_STRATEGY_OPTIONS: ResolvedMaglevStrategyOptions = Object.freeze({ tableSize: 65537 });

/**
 * Merges defaults into `partial`, checks every field and freezes the result.
 * @throws {InvalidOptionError} naming the field (prefixed with `field`) and the value.
 */
export function resolveMaglevStrategyOptions(
  partial: MaglevStrategyOptions = {},
  field = 'maglev',
): ResolvedMaglevStrategyOptions {
  const o = checkObject(field, partial) as MaglevStrategyOptions;
  const tableSize = checkInt(
    `${field}.tableSize`,
    o.tableSize ?? DEFAULT_MAGLEV_STRATEGY_OPTIONS.tableSize,
    2,
    MAX_MAGLEV_SIZE,
  );
  if (!isPrime(tableSize))
    throw new InvalidOptionError(`${field}.tableSize`, tableSize, 'must be a prime (e.g. 65537)');
  return Object.freeze({ tableSize });
}

/**
 * Checks that the endpoints fit in the table: no more of them than entries.
 * @throws {InvalidOptionError} naming `field`.
 */
export function checkMaglevEndpoints(
  field: string,
  endpoints: readonly Endpoint[],
  options: ResolvedMaglevStrategyOptions,
): void {
  if (endpoints.length > options.tableSize) {
    throw new InvalidOptionError(
      field,
      endpoints,
      `must have at most maglev.tableSize (${options.tableSize}) endpoints`,
    );
  }
}

function isPrime(n: number): boolean {
  if (n < 2) return false;
  if (n % 2 === 0) return n === 2;
  for (let d = 3; d * d <= n; d += 2) if (n % d === 0) return false;
  return true;
}

export class MaglevStrategy implements Strategy {
  readonly name = 'maglev';
  readonly usesLatency = false;
  readonly usesLoad = false;
  private readonly options: ResolvedMaglevStrategyOptions;
  private table: MaglevTable;
  /** The endpoints in the table's slot order (ids sorted). */
  private bySlot: EndpointState[] = [];
  private endpoints: readonly EndpointState[] = [];
  private readonly random: () => number;

  constructor(options: ResolvedMaglevStrategyOptions, random: () => number) {
    this.options = options;
    this.random = random;
    this.table = new MaglevTable([], { size: options.tableSize });
  }

  setEndpoints(endpoints: readonly EndpointState[]): void {
    this.endpoints = endpoints;
    const table = this.table;
    const same = table.nodes.length === endpoints.length && endpoints.every((s) => table.weightOf(s.id) === s.weight);
    if (!same) {
      this.table = new MaglevTable(
        endpoints.map((s) => ({ id: s.id, weight: s.weight })),
        { size: this.options.tableSize },
      );
    }
    const slotOf = new Map(this.table.nodes.map((id, slot) => [id, slot]));
    this.bySlot = new Array<EndpointState>(endpoints.length);
    for (const s of endpoints) this.bySlot[slotOf.get(s.id) as number] = s;
  }

  pick(ctx: PickContext | undefined, skip: Skip | undefined): EndpointState | undefined {
    const key = ctx?.key;
    if (key === undefined) return pickRandom(this.endpoints, this.random, skip);
    checkKey(key);
    const slot = this.table.getIndex(key);
    if (slot === NO_OWNER) return undefined;
    const s = this.bySlot[slot] as EndpointState;
    if (skip === undefined || !skip(s)) return s;
    return scanFrom(this.bySlot, slot + 1 === this.bySlot.length ? 0 : slot + 1, skip);
  }

  loadChanged(): void {}
  observe(): void {}
}
