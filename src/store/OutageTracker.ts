/**
 * Degraded-mode bookkeeping shared by the store's clients (ServiceRegistry, ConfigCenter):
 * which of a client's sources (a watch, a registration, one-off calls) cannot reach the
 * store right now, since when, and the last error. The client is degraded while any
 * source fails, and recovers when the last failing source succeeds again.
 */

/** A change of degraded state, as the client reports it to its listeners. */
export type OutageChange = { type: 'degraded'; source: string; error: unknown } | { type: 'recovered' };

export class OutageTracker {
  readonly #failures = new Map<string, unknown>();
  readonly #changed: (change: OutageChange) => void;
  #since: number | undefined;
  #lastError: unknown;

  /** @param changed called when the client becomes degraded or recovers. */
  constructor(changed: (change: OutageChange) => void) {
    this.#changed = changed;
  }

  /** True while some source fails. */
  get degraded(): boolean {
    return this.#failures.size > 0;
  }

  /** When the current outage began (ms since the epoch), or undefined when not degraded. */
  get since(): number | undefined {
    return this.#since;
  }

  /** The latest error while degraded, else undefined. */
  get lastError(): unknown {
    return this.degraded ? this.#lastError : undefined;
  }

  /** Records the outcome of a source's latest store call: an error, or undefined for success. */
  report(source: string, error: unknown): void {
    if (error === undefined) {
      if (!this.#failures.delete(source) || this.#failures.size > 0) return;
      this.#since = undefined;
      this.#changed({ type: 'recovered' });
      return;
    }
    const was = this.#failures.size > 0;
    this.#failures.set(source, error);
    this.#lastError = error;
    if (was) return;
    this.#since = Date.now();
    this.#changed({ type: 'degraded', source, error });
  }
}
