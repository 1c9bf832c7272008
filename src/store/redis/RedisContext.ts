/**
 * What the parts of a Redis store share: the ioredis client (standalone, Sentinel or
 * Cluster), the key prefix, and `run`/`bounded`, which send one command, bound its time and
 * turn connection failures into {@link StoreUnavailableError} instead of letting callers hang
 * while ioredis reconnects.
 */
import { createHash } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';
import { RingwayError, StoreUnavailableError } from '../../errors.js';
import type { ScriptDefinition } from './lockScripts.js';

/** A client the Redis store can use. */
export type RedisClient = Redis | Cluster;

type ScriptCall = (...args: (string | number)[]) => Promise<unknown>;

/** Reply errors that mean "the server cannot serve now", not "the command is wrong". */
const UNAVAILABLE_REPLIES = /^(LOADING|CLUSTERDOWN|TRYAGAIN|MASTERDOWN|READONLY|NOREPLICAS|BUSY|MOVED|ASK)\b/;

/**
 * Maps a failure of a command to what the store's callers see: replies that mean the server
 * is unavailable, and every connection-level failure (closed, refused, timed out, offline
 * queue disabled, retries exhausted), become StoreUnavailableError; other reply errors (a
 * bug in a script, a key of the wrong type) pass through.
 */
export function toStoreError(err: unknown): Error {
  if (err instanceof RingwayError) return err;
  const error = err instanceof Error ? err : new Error(String(err));
  if (error.name === 'ReplyError' && !UNAVAILABLE_REPLIES.test(error.message)) return error;
  return new StoreUnavailableError(`redis: ${error.message}`, { cause: error });
}

/**
 * Rejects with StoreUnavailableError when `command` has no reply within `ms`, and maps its
 * failure with {@link toStoreError}.
 */
export function timeBound<T>(command: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new StoreUnavailableError(`redis: no reply within ${ms} ms (commandTimeoutMs)`));
    }, ms);
    command.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(toStoreError(err));
      },
    );
  });
}

/** A script sent with EVALSHA by {@link RedisContext.evalMapped}: its definition and SHA-1. */
export interface LoadedScript extends ScriptDefinition {
  readonly sha: string;
}

/** Adds the SHA-1 to a script definition. */
export function loadedScript(script: ScriptDefinition): LoadedScript {
  return { ...script, sha: createHash('sha1').update(script.lua).digest('hex') };
}

/** A command in flight, in {@link Deadlines}' list. */
class InFlight {
  prev: InFlight | undefined = undefined;
  next: InFlight | undefined = undefined;
  /** Rejected by the timer: a late reply is dropped, and nothing more is sent for it. */
  expired = false;
  constructor(
    readonly deadline: number,
    readonly reject: (err: Error) => void,
  ) {}
}

/**
 * Bounds the time of every command of one store with a single timer instead of one per
 * command (a timer costs a few µs to set and clear; a lock round trip is two commands).
 * Every command gets the same time, so the commands in flight, kept in the order they were
 * sent, are also in the order of their deadlines: the timer is armed for the first one and,
 * when it fires, rejects those past their deadline and re-arms for the next. A command that
 * completes leaves the list in O(1) without touching the timer.
 */
class Deadlines {
  readonly #ms: number;
  #first: InFlight | undefined;
  #last: InFlight | undefined;
  #timer: NodeJS.Timeout | undefined;

  constructor(ms: number) {
    this.#ms = ms;
  }

  /**
   * Settles like `command` (failures mapped with {@link toStoreError}), or rejects with
   * StoreUnavailableError when it has no reply within the time.
   */
  bound<T>(command: Promise<T>): Promise<T>;
  /** The same, resolving with `map(reply)` (one promise fewer than a `.then(map)`). */
  bound<R, T>(command: Promise<R>, map: (reply: R) => T): Promise<T>;
  /**
   * The same, resolving with `map(reply)`; when `command` fails with NOSCRIPT, `resend()`
   * takes its place (within the same time bound).
   *
   * Once the time is up, a late reply is dropped: neither `map` nor `resend` runs, so a call
   * that already failed sends no follow-up (a lock granted by it would outlive the failure).
   */
  bound<R, T>(command: Promise<R>, map: (reply: R) => T, resend: () => Promise<R>): Promise<T>;
  bound<R, T>(command: Promise<R>, map?: (reply: R) => T, resend?: () => Promise<R>): Promise<T | R> {
    return new Promise<T | R>((resolve, reject) => {
      const entry = new InFlight(performance.now() + this.#ms, reject);
      const last = this.#last;
      if (last === undefined) this.#first = entry;
      else {
        last.next = entry;
        entry.prev = last;
      }
      this.#last = entry;
      // Unref'd: a command in flight has a connection (or ioredis' reconnect timer) keeping
      // the process alive; an idle store must not.
      if (this.#timer === undefined) this.#timer = setTimeout(this.#expire, this.#ms).unref();
      let onError: (err: unknown) => void;
      const onValue = (value: R) => {
        if (entry.expired) return;
        this.#remove(entry);
        if (map === undefined) resolve(value);
        else {
          try {
            resolve(map(value));
          } catch (err) {
            reject(err);
          }
        }
      };
      onError = (err: unknown) => {
        if (entry.expired) return;
        if (resend !== undefined && err instanceof Error && err.message.startsWith('NOSCRIPT')) {
          const again = resend;
          resend = undefined;
          again().then(onValue, onError);
          return;
        }
        this.#remove(entry);
        reject(toStoreError(err));
      };
      command.then(onValue, onError);
    });
  }

  #remove(entry: InFlight): void {
    const { prev, next } = entry;
    if (prev === undefined) {
      if (this.#first !== entry) return; // already rejected by the timer
      this.#first = next;
    } else prev.next = next;
    if (next === undefined) this.#last = prev;
    else next.prev = prev;
    entry.prev = undefined;
    entry.next = undefined;
  }

  /**
   * Rejects every command in flight with `error` (their connection closed: no reply can come;
   * a late one from elsewhere is dropped, as after a timeout).
   */
  failAll(error: StoreUnavailableError): void {
    let entry = this.#first;
    while (entry !== undefined) {
      this.#remove(entry);
      entry.expired = true;
      entry.reject(error);
      entry = this.#first;
    }
  }

  readonly #expire = (): void => {
    this.#timer = undefined;
    const now = performance.now();
    let entry = this.#first;
    while (entry !== undefined && entry.deadline <= now) {
      this.#remove(entry);
      entry.expired = true;
      entry.reject(new StoreUnavailableError(`redis: no reply within ${this.#ms} ms (commandTimeoutMs)`));
      entry = this.#first;
    }
    if (entry !== undefined) {
      this.#timer = setTimeout(this.#expire, Math.max(1, Math.ceil(entry.deadline - now))).unref();
    }
  };
}

/** Shared state of one Redis store, handed to each of its parts. */
export class RedisContext {
  readonly client: RedisClient;
  readonly prefix: string;
  readonly commandTimeoutMs: number;
  /** True when the client enforces `commandTimeout` itself, so `bounded` needs no timer. */
  readonly #clientTimesOut: boolean;
  readonly #deadlines: Deadlines;
  #everReady = false;
  #closed = false;

  constructor(client: RedisClient, prefix: string, commandTimeoutMs: number) {
    this.client = client;
    this.prefix = prefix;
    this.commandTimeoutMs = commandTimeoutMs;
    const timeout = (client.options as { commandTimeout?: unknown }).commandTimeout;
    this.#clientTimesOut = typeof timeout === 'number' && timeout > 0 && timeout <= commandTimeoutMs;
    this.#deadlines = new Deadlines(commandTimeoutMs);
    this.#everReady = client.status === 'ready';
    if (!this.#everReady) client.once('ready', () => (this.#everReady = true));
    client.on('close', this.#onClose);
  }

  /**
   * The connection closed: the commands sent on it get no reply. ioredis (without resend)
   * forgets them and, when it reconnects at once (a failover, a network blip), never
   * rejects them, so they would wait out commandTimeoutMs. Fail them now. Before the first
   * 'ready' they sit in ioredis' offline queue and are still to be sent: the timer bounds
   * those.
   */
  readonly #onClose = (): void => {
    if (!this.#everReady) return;
    this.#deadlines.failAll(
      new StoreUnavailableError('redis: the connection closed before the reply; the command may or may not have run'),
    );
  };

  /** The channel name under this store's prefix. */
  channel(name: string): string {
    return this.prefix + name;
  }

  /** Registers scripts on a client (idempotent: ioredis keeps one definition per name). */
  static defineScripts(client: RedisClient, scripts: Readonly<Record<string, ScriptDefinition>>): void {
    for (const [name, script] of Object.entries(scripts)) {
      const definition: { lua: string; numberOfKeys: number; readOnly?: boolean } = {
        lua: script.lua,
        numberOfKeys: script.numberOfKeys,
      };
      if (script.readOnly === true) definition.readOnly = true;
      client.defineCommand(name, definition);
    }
  }

  /**
   * Runs a script registered with {@link RedisContext.defineScripts}: keys first, then
   * arguments. One round trip.
   * @throws {StoreUnavailableError} when Redis cannot be reached in `commandTimeoutMs`.
   */
  run(script: string, ...keysAndArgs: (string | number)[]): Promise<unknown> {
    const call = (this.client as unknown as Record<string, ScriptCall>)[script];
    if (call === undefined) return Promise.reject(new Error(`script ${script} is not defined on this client`));
    return this.bounded(() => call.apply(this.client, keysAndArgs));
  }

  /**
   * Sends `script` with EVALSHA (EVAL when the server does not know it: after a restart or
   * SCRIPT FLUSH), keys first, then arguments, and resolves with `map(reply)`. One round
   * trip. The lock's hot path: it skips ioredis' script wrapper and a promise per command.
   * @throws {StoreUnavailableError} when Redis cannot be reached in `commandTimeoutMs`.
   */
  evalMapped<T>(map: (reply: unknown) => T, script: LoadedScript, ...keysAndArgs: (string | number)[]): Promise<T> {
    const fail = this.#failFast();
    if (fail !== undefined) return Promise.reject(fail);
    const client = this.client;
    const resend = () => client.eval(script.lua, script.numberOfKeys, ...keysAndArgs);
    const command = client.evalsha(script.sha, script.numberOfKeys, ...keysAndArgs);
    if (this.#clientTimesOut) {
      return command
        .catch((err: unknown) => {
          if (err instanceof Error && err.message.startsWith('NOSCRIPT')) return resend();
          throw err;
        })
        .then(map, (err: unknown) => {
          throw toStoreError(err);
        });
    }
    return this.#deadlines.bound(command, map, resend);
  }

  /**
   * Bounds a command's time and maps its failure with {@link toStoreError}.
   * @throws {StoreUnavailableError}
   */
  bounded<T>(send: () => Promise<T>): Promise<T> {
    const fail = this.#failFast();
    // Refused before it is sent: a closed store or a connection down sends nothing.
    if (fail !== undefined) return Promise.reject(fail);
    const command = send();
    if (this.#clientTimesOut) {
      return command.then(undefined, (err: unknown) => {
        throw toStoreError(err);
      });
    }
    return this.#deadlines.bound(command);
  }

  /** Marks the context closed: later commands fail at once. */
  close(): void {
    this.#closed = true;
    this.client.off('close', this.#onClose);
  }

  /**
   * Once the client has been ready, a client that is reconnecting fails a command at once
   * instead of queueing it: a queued lock command would otherwise run whenever the
   * connection returns, long after its caller gave up.
   */
  #failFast(): StoreUnavailableError | undefined {
    if (this.#closed) return new StoreUnavailableError('the store is closed');
    const status = this.client.status;
    if (status === 'ready') return undefined;
    if (status === 'end' || status === 'close' || status === 'disconnecting') {
      return new StoreUnavailableError(`redis: the connection is down (status '${status}')`);
    }
    if (this.#everReady) {
      return new StoreUnavailableError(`redis: the connection is down (status '${status}'), reconnecting`);
    }
    return undefined;
  }
}
