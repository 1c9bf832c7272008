/**
 * The single-flight catch-up loop shared by the store's followers (the registry's
 * `ServiceView`, the config center's `ConfigWatcher`): one sync at a time, a request during a
 * sync runs one more after it, a snapshot on demand (`resync`), and the change notifications
 * that arrive while a sync runs held back and replayed, in order, after it. What a sync reads and
 * how a result or a change is applied stays with the follower (see `CatchUpTarget`).
 */

/** What a follower plugs into its catch-up loop. */
export interface CatchUpTarget<Result, Change> {
  /** Reads the store: a snapshot when `snapshot` is true, else what changed since the follower's position. */
  read(snapshot: boolean): Promise<Result>;
  /** The read failed: the loop stops until the next `sync()`. */
  failed(error: unknown): void;
  /** The read succeeded (and the loop was not closed meanwhile): apply it. */
  succeeded(result: Result): void;
  /**
   * A change notification, given while no sync runs or, for those that arrived during one,
   * right after its result was applied: apply it, ignore it (already applied), or call `sync()`.
   */
  changed(change: Change): void;
}

/** One follower's catch-up loop. */
export class CatchUpSync<Result, Change> {
  readonly #target: CatchUpTarget<Result, Change>;
  /**
   * True from the moment `sync()` starts a run until the run's loop makes its last `#again`
   * check, cleared in that same synchronous step: a `sync()` or `offer()` either finds the
   * run busy (and the loop still sees its request) or finds it done, never a run that has
   * decided to stop but still counts as running.
   */
  #busy = false;
  /** The current (or last) run: what a `sync()` made while busy returns. */
  #running: Promise<void> = Promise.resolve();
  #again = false;
  #snapshot = false;
  /** Notifications that arrived while a sync ran, replayed after it. */
  #pending: Change[] = [];
  #closed = false;

  constructor(target: CatchUpTarget<Result, Change>) {
    this.#target = target;
  }

  /** True after `close()`. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Syncs now (one sync at a time; a request during a sync runs one more after it).
   * Resolves when done; failures go to `target.failed`, never thrown.
   */
  sync(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    if (this.#busy) {
      this.#again = true;
      return this.#running;
    }
    this.#busy = true;
    // The run's promise exists before the loop starts: a sync() from inside the first read
    // (which the loop calls synchronously) gets this run too.
    let settle!: { resolve: () => void; reject: (error: unknown) => void };
    this.#running = new Promise<void>((resolve, reject) => {
      settle = { resolve, reject };
    });
    this.#loop().then(settle.resolve, settle.reject);
    return this.#running;
  }

  /** Makes the next sync read a snapshot rather than trust the position (the store restarted). */
  resync(): Promise<void> {
    this.#snapshot = true;
    return this.sync();
  }

  /** A change notification: held back while a sync runs, else given to `target.changed`. */
  offer(change: Change): void {
    if (this.#closed) return;
    if (this.#busy) {
      this.#pending.push(change);
      return;
    }
    try {
      this.#target.changed(change);
    } catch (err) {
      // As in the loop: told to the follower, never thrown into the notifier.
      this.#target.failed(err);
    }
  }

  /** Stops: no new sync starts, a running one's result is dropped, notifications are ignored. */
  close(): void {
    this.#closed = true;
  }

  async #loop(): Promise<void> {
    try {
      do {
        this.#again = false;
        const snapshot = this.#snapshot;
        let result: Result;
        try {
          result = await this.#target.read(snapshot);
        } catch (err) {
          this.#target.failed(err);
          return;
        }
        if (this.#closed) return;
        if (snapshot) this.#snapshot = false;
        try {
          this.#target.succeeded(result);
          // Replay what arrived during the read, in order, straight to the target (offer() would
          // hold it back again, as the loop still runs). A gap among them asks for one more sync.
          while (this.#pending.length > 0 && !this.#closed) {
            const pending = this.#pending;
            this.#pending = [];
            for (const change of pending) {
              if (this.#closed) break;
              this.#target.changed(change);
            }
          }
        } catch (err) {
          // A follower that cannot apply what it read (e.g. a corrupt stored value) is told, as
          // for a failed read; sync() never rejects (callers `void` it). The next sync re-reads.
          this.#pending = [];
          this.#target.failed(err);
          return;
        }
      } while (this.#again && !this.#closed);
    } finally {
      // In the same synchronous step as the last check of `#again` (or the return after a
      // failure or close()), not one await later: a sync() or offer() from then on starts a
      // run or is given at once, never lands in a run that already decided to stop.
      this.#busy = false;
    }
  }
}
