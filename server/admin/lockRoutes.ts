/**
 * Locks over HTTP, so that a service in any language can share the locks (and fencing
 * tokens) of ringway's `LockManager`:
 *
 * - `POST /v1/locks/:name` `{ ttlMs, waitMs?, fair? }` acquires, waiting up to `waitMs`
 *   (at most 10 minutes; 0, the default, makes one attempt), and answers the lease:
 *   `{ name, token, ttlMs, remainingMs, expiresAt }`. A lock still taken when the wait ends
 *   answers 409 `ERR_LOCK_TIMEOUT`.
 * - `PUT /v1/locks/:name/:token` `{ ttlMs }` extends the lease of that token to `ttlMs` from
 *   now; 409 `ERR_LOCK_NOT_HELD` when the token no longer holds the lock.
 * - `DELETE /v1/locks/:name/:token` releases: `{ released: true }`, or `{ released: false }`
 *   when the token no longer held it (releasing twice is harmless, as `Lock.release()`).
 * - `GET /v1/locks/:name` inspects: the holder's token, what is left of its lease and the
 *   length of the fair queue; 404 when nobody holds the lock.
 *
 * The lock name is one path segment, percent-encoded (`encodeURIComponent`: `/` as `%2F`).
 * Nothing extends a lease but the client: it extends well before `remainingMs` runs out and
 * stops trusting the lock (and its writes carrying the token) when it does.
 *
 * Each acquire is one acquisition of a `LockManager` on the gateway's store, with a holder id
 * unique to it (72 random bits of the manager, then a sequence number) that is never granted
 * a second token. Extend and release find that holder id by the token (`inspect`) and act on
 * it alone, so they are race-free across gateways: if the lease changed hands between the two
 * steps, the store refuses the second. The `(name, token)` pair is the handle: any admin
 * client that knows it may extend or release that lease.
 *
 * A client that disconnects while waiting stops the wait (a fair waiter leaves the queue); a
 * grant that lands after it left is released at once. Waits still running when the admin API
 * closes end with 503.
 */
import { setMaxListeners } from 'node:events';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import {
  InvalidOptionError,
  LockTimeoutError,
  NotFoundError,
  StoreUnavailableError,
  ValidationError,
} from '../../src/errors.js';
import type { Lock } from '../../src/lock/Lock.js';
import { LockManager } from '../../src/lock/LockManager.js';
import { MAX_LOCK_NAME_LENGTH } from '../../src/lock/options.js';
import type { LockBackend } from '../../src/store/Store.js';
import type { GatewayMetrics, LockOp, OpResult } from '../metrics/GatewayMetrics.js';
import { requestSignal } from './blocking.js';
import { fail } from './fail.js';
import {
  ACQUIRE_BODY,
  EXTEND_BODY,
  LEASE_REPLY,
  LOCK_PARAMS,
  LOCK_STATE_REPLY,
  LOCK_TOKEN_PARAMS,
  NO_QUERY,
  RELEASE_REPLY,
} from './schemas.js';

interface NameParams {
  name: string;
}
interface TokenParams extends NameParams {
  token: string;
}
interface AcquireBody {
  ttlMs: number;
  waitMs?: number;
  fair?: boolean;
}
interface ExtendBody {
  ttlMs: number;
}

/** A lease as acquire and extend answer it. */
interface LeaseReply {
  name: string;
  token: number;
  ttlMs: number;
  remainingMs: number;
  expiresAt: number;
}

const now = () => performance.now();

/** The metric result of an operation that threw (or that Fastify refused before the handler). */
export function resultOf(err: unknown): OpResult {
  if (err instanceof StoreUnavailableError) return 'unavailable';
  if (err instanceof LockTimeoutError) return 'timeout';
  if (err instanceof InvalidOptionError || err instanceof ValidationError) return 'invalid';
  if (err instanceof NotFoundError) return 'not_found';
  // Schema failures, malformed or oversized bodies: Fastify's 4xx errors.
  const status = (err as { statusCode?: unknown }).statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) return 'invalid';
  return 'error';
}

/** Why a wait was stopped by the admin API closing. */
class ClosingError extends Error {}

/** The lock endpoints of the admin API; see the module comment. */
export class LockRoutes {
  /** The manager every HTTP acquisition goes through. */
  readonly manager: LockManager;
  readonly #metrics: GatewayMetrics | undefined;
  /**
   * Locks acquired here and not released here, by holder id, so that a release through this
   * gateway also forgets its `Lock`. A lock released elsewhere (or never) is forgotten when
   * its first lease's validity runs out (the `Lock` then counts itself lost).
   */
  readonly #held = new Map<string, Lock>();
  /** Aborts the waits running now, at close. */
  /** Aborted on close; every waiting request listens to it (no listener limit: many may wait). */
  readonly #closing = (() => {
    const c = new AbortController();
    setMaxListeners(0, c.signal);
    return c;
  })();
  /** Acquires running now (awaited at close, so a late grant is released before the store closes). */
  readonly #pending = new Set<Promise<unknown>>();
  #waiting = 0;
  #closed = false;

  constructor(store: LockBackend, metrics: GatewayMetrics | undefined) {
    this.manager = new LockManager({ store });
    this.#metrics = metrics;
    metrics?.trackLockWaits(() => this.#waiting);
  }

  /** Adds the endpoints to the admin app. */
  register(app: FastifyInstance): void {
    app.post<{ Params: NameParams; Body: AcquireBody }>(
      '/v1/locks/:name',
      {
        schema: {
          summary: 'Acquire a lock',
          params: LOCK_PARAMS,
          querystring: NO_QUERY,
          body: ACQUIRE_BODY,
          response: { 200: LEASE_REPLY },
        },
        onError: this.#onError('acquire'),
      },
      (request, reply) => {
        const work = this.#acquire(request.params.name, request.body, reply);
        this.#pending.add(work);
        return work.finally(() => this.#pending.delete(work));
      },
    );

    app.put<{ Params: TokenParams; Body: ExtendBody }>(
      '/v1/locks/:name/:token',
      {
        schema: {
          summary: 'Extend the lease of a token',
          params: LOCK_TOKEN_PARAMS,
          querystring: NO_QUERY,
          body: EXTEND_BODY,
          response: { 200: LEASE_REPLY },
        },
        onError: this.#onError('extend'),
      },
      (request, reply) => this.#extend(request.params, request.body.ttlMs, reply),
    );

    app.delete<{ Params: TokenParams }>(
      '/v1/locks/:name/:token',
      {
        schema: {
          summary: 'Release the lock held by a token',
          params: LOCK_TOKEN_PARAMS,
          querystring: NO_QUERY,
          response: { 200: RELEASE_REPLY },
        },
        onError: this.#onError('release'),
      },
      (request, reply) => this.#release(request.params, reply),
    );

    app.get<{ Params: NameParams }>(
      '/v1/locks/:name',
      {
        schema: {
          summary: 'Inspect a lock',
          params: LOCK_PARAMS,
          querystring: NO_QUERY,
          response: { 200: LOCK_STATE_REPLY },
        },
        onError: this.#onError('inspect'),
      },
      (request, reply) => this.#inspect(request.params.name, reply),
    );
  }

  /**
   * Ends the waits running now (they answer 503), waits for them to settle (a grant that
   * lands meanwhile is released), then stops the manager. Calling it twice is harmless.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#closing.abort(new ClosingError('the admin API is closing'));
    await Promise.allSettled([...this.#pending]);
    this.manager.close();
  }

  async #acquire(rawName: string, body: AcquireBody, reply: FastifyReply): Promise<FastifyReply | LeaseReply> {
    const name = this.#name(rawName, reply);
    if (name === undefined) return this.#count('acquire', 'invalid', reply);
    const { ttlMs, waitMs = 0, fair = false } = body;
    // The wait stops when the client leaves (its response closes before it was sent) or the
    // admin API closes.
    const stop = requestSignal(reply, this.#closing.signal);
    let lock: Lock;
    this.#waiting++;
    try {
      lock = await this.manager.acquire(name, { ttlMs, waitMs, fair, signal: stop.signal });
    } catch (err) {
      if (stop.signal.aborted) {
        this.#count('acquire', 'aborted', reply);
        return fail(reply, 'ERR_UNAVAILABLE', `lock ${name} not acquired: ${(stop.signal.reason as Error).message}`);
      }
      if (!(err instanceof LockTimeoutError)) throw err;
      this.#count('acquire', 'timeout', reply);
      return fail(reply, 'ERR_LOCK_TIMEOUT', err.message);
    } finally {
      this.#waiting--;
      stop.done();
    }
    if (stop.signal.aborted || reply.raw.destroyed) {
      // Granted after the client left (or while the admin API closes): nobody will use it.
      await lock.release().catch(() => false);
      this.#count('acquire', 'aborted', reply);
      return fail(reply, 'ERR_UNAVAILABLE', `lock ${name} was granted after the request ended, and released`);
    }
    const holder = lock.holder;
    this.#held.set(holder, lock);
    // Lost here means: its first lease's validity ran out (nothing here extends the Lock
    // object; the client extends the lease in the store) or the store restarted without it.
    lock.signal.addEventListener('abort', () => this.#forget(holder, lock), { once: true });
    this.#count('acquire', 'ok', reply);
    return this.#lease(name, lock.token, ttlMs, lock.remainingMs);
  }

  async #extend(params: TokenParams, ttlMs: number, reply: FastifyReply): Promise<FastifyReply | LeaseReply> {
    const target = this.#target(params, reply);
    if (target === undefined) return this.#count('extend', 'invalid', reply);
    const { name, token } = target;
    const state = await this.manager.inspect(name);
    if (state.holder === undefined || state.token !== token) return this.#notHeld('extend', reply, target, state.token);
    const sentAt = now();
    const extended = await this.manager.backend.locks.extend(name, state.holder, ttlMs);
    if (!extended) return this.#notHeld('extend', reply, target, undefined);
    this.#count('extend', 'ok', reply);
    return this.#lease(name, token, ttlMs, this.#validityMs(ttlMs) - (now() - sentAt));
  }

  async #release(params: TokenParams, reply: FastifyReply): Promise<FastifyReply | Record<string, unknown>> {
    const target = this.#target(params, reply);
    if (target === undefined) return this.#count('release', 'invalid', reply);
    const { name, token } = target;
    const state = await this.manager.inspect(name);
    let released = false;
    if (state.holder !== undefined && state.token === token) {
      const local = this.#held.get(state.holder);
      if (local === undefined) released = await this.manager.backend.locks.release(name, state.holder);
      else {
        this.#held.delete(state.holder);
        released = await local.release();
      }
    }
    this.#count('release', released ? 'ok' : 'not_held', reply).header('cache-control', 'no-store');
    return { name, token, released };
  }

  async #inspect(rawName: string, reply: FastifyReply): Promise<FastifyReply | Record<string, unknown>> {
    const name = this.#name(rawName, reply);
    if (name === undefined) return this.#count('inspect', 'invalid', reply);
    const state = await this.manager.inspect(name);
    if (state.holder === undefined) {
      this.#count('inspect', 'not_found', reply);
      return fail(reply, 'ERR_NOT_FOUND', `lock ${name} is not held`);
    }
    this.#count('inspect', 'ok', reply).header('cache-control', 'no-store');
    return {
      name,
      token: state.token,
      remainingMs: state.ttlMs,
      expiresAt: Date.now() + state.ttlMs,
      waiting: state.queue.length,
    };
  }

  /**
   * The route's onError hook: counts the operations that ended with an error (schema
   * failures included); the handlers count the answers they send themselves.
   */
  #onError(op: LockOp): (request: FastifyRequest, reply: FastifyReply, err: Error) => Promise<void> {
    return async (_request, _reply, err) => {
      this.#metrics?.lockOps.labels(op, resultOf(err)).inc();
    };
  }

  #count(op: LockOp, result: OpResult, reply: FastifyReply): FastifyReply {
    this.#metrics?.lockOps.labels(op, result).inc();
    return reply;
  }

  /** The lease answer, with `remainingMs` as of now. */
  #lease(name: string, token: number, ttlMs: number, remainingMs: number): LeaseReply {
    const left = Math.max(0, Math.floor(remainingMs));
    return { name, token, ttlMs, remainingMs: left, expiresAt: Date.now() + left };
  }

  /** Trusted part of a lease of `ttlMs`, as the manager counts it: ttl less the drift allowance. */
  #validityMs(ttlMs: number): number {
    return ttlMs - Math.ceil(ttlMs * this.manager.options.driftFactor) - 2;
  }

  #notHeld(
    op: LockOp,
    reply: FastifyReply,
    { name, token }: { name: string; token: number },
    current: number | undefined,
  ): FastifyReply {
    const why =
      current === undefined
        ? 'its lease ended meanwhile'
        : current === 0
          ? 'it is free (the lease ended or was released)'
          : `it is held with token ${current}`;
    this.#count(op, 'not_held', reply);
    return fail(reply, 'ERR_LOCK_NOT_HELD', `lock ${name} is not held by token ${token}: ${why}`);
  }

  /** The name, or undefined once a 400 was sent (the schema counts code points; the store, UTF-16 units). */
  #name(name: string, reply: FastifyReply): string | undefined {
    if (name.length <= MAX_LOCK_NAME_LENGTH) return name;
    fail(reply, 'ERR_INVALID', `params.name must be at most ${MAX_LOCK_NAME_LENGTH} UTF-16 code units`, 'params.name');
    return undefined;
  }

  /** The name and token of a path, or undefined once a 400 was sent. */
  #target(params: TokenParams, reply: FastifyReply): { name: string; token: number } | undefined {
    const name = this.#name(params.name, reply);
    if (name === undefined) return undefined;
    const token = Number(params.token);
    if (!Number.isSafeInteger(token)) {
      fail(reply, 'ERR_INVALID', `params.token must be at most ${Number.MAX_SAFE_INTEGER}`, 'params.token');
      return undefined;
    }
    return { name, token };
  }

  #forget(holder: string, lock: Lock): void {
    if (this.#held.get(holder) === lock) this.#held.delete(holder);
  }
}
