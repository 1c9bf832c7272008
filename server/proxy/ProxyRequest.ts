/**
 * One proxied request, from the first try to the last byte: pick an instance (the route's
 * balancer), stream the request to it over the origin's pool (Http1Pool), stream the answer back,
 * and, when a try fails in a way the route retries, try again on another instance.
 *
 * Tries go through the pool's `dispatch` with a handler of its own per try (raw handler
 * callbacks: no parsing of headers into objects, no web streams), so that a try the proxy
 * gave up on (timed out, retried, client gone) can be told apart from the live one and its
 * late callbacks ignored.
 *
 * What is retried, and when (`retries` of the route; the semantics are Envoy's):
 * - `connect-failure`: no connection could be opened. Nothing was sent, so every method is
 *   retried.
 * - `reset`: the connection died after the request was sent and before any response byte.
 * - `502`, `503`, `504`: the upstream answered with that status (its body is dropped); `504`
 *   also covers a try that timed out (`retries.perTryTimeoutMs`).
 * Apart from `connect-failure`, only idempotent methods are retried unless the route sets
 * `idempotentOnly: false`; a request body is retried only while it fits the replay buffer.
 * Every retry goes to an instance not tried yet when there is one, fits the route's retry
 * budget (except after a refused connection, which cost no upstream anything), and starts
 * only before the route's deadline (`timeoutMs`).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Balancer } from '../../src/balancer/Balancer.js';
import type { Lease } from '../../src/balancer/Lease.js';
import type { RetryBudget } from '../../src/balancer/RetryBudget.js';
import type { Key } from '../../src/wasm/index.js';
import { IDEMPOTENT_METHODS, type ResolvedProxyOptions, type ResolvedRoute } from '../config/GatewayConfig.js';
import { type GatewayErrorCode, sendError } from '../errors.js';
import type { FailureReason, GatewayMetrics, RouteStats } from '../metrics/GatewayMetrics.js';
import type { DeadlineQueue, Timed } from './DeadlineQueue.js';
import type { Http1Handler } from './Http1Pool.js';
import { forwardResponseHeaders } from './headers.js';
import type { RequestBody } from './RequestBody.js';
import type { PoolSettings, UpstreamPools } from './UpstreamPools.js';

/** A route with what it runs on: its balancer, retry budget and pool settings. */
export interface RouteRuntime {
  readonly route: ResolvedRoute;
  readonly balancer: Balancer;
  readonly budget: RetryBudget;
  readonly pool: PoolSettings;
  /** The route's request counters, when metrics are on. */
  readonly stats: RouteStats | undefined;
}

/** What every request of a gateway shares. */
export interface ProxyShared {
  readonly pools: UpstreamPools;
  readonly metrics: GatewayMetrics | undefined;
  readonly proxy: ResolvedProxyOptions;
  /** Per-try deadlines (one queue per timeout value, no Node timer per request). */
  readonly deadlines: DeadlineQueue<Try>;
  /** True once the gateway is shutting down: answers then close their connections. */
  draining: boolean;
  /** Called once per request when it is over, whatever the outcome. */
  finished(request: ProxyRequest): void;
  /** Logs a failed try or request (debug level). */
  debug(requestId: string, message: string, detail?: Record<string, unknown>): void;
}

/** Marks errors the proxy itself raised to abort a try. */
class TryAborted extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = 'TryAborted';
  }
}

const TIMED_OUT = new TryAborted('try timed out');
const ABANDONED = new TryAborted('try abandoned');

/** Try states. */
const CONNECTING = 0;
const SENT = 1;
const RESPONDING = 2;
const OVER = 3;

/** One try: a dispatch handler that reports to its request while it is the live try. */
export class Try implements Http1Handler, Timed {
  readonly request: ProxyRequest;
  readonly lease: Lease;
  readonly retry: boolean;
  readonly startedAt: number;
  abort: ((err?: Error) => void) | undefined = undefined;
  state = CONNECTING;
  /** Set once the request moved on (timeout, retry, client gone): late callbacks are ignored. */
  abandoned = false;
  /** Response status, once headers came. */
  status = 0;
  /** The response's Content-Length (-1: none), and body bytes relayed so far. */
  contentLength = -1;
  received = 0;
  /** Whether the client's response was ended with the last body chunk. */
  ended = false;
  latencyMs = 0;
  /** Slot in the deadline queue (-1: none). */
  slot = -1;
  /** The try's timeout when it sits in the deadline queue, else 0. */
  queuedMs = 0;
  /** A Node timer instead, for a retry whose timeout is cut short by the route's deadline. */
  timer: NodeJS.Timeout | undefined = undefined;
  resume: (() => void) | undefined = undefined;

  constructor(request: ProxyRequest, lease: Lease, retry: boolean, startedAt: number) {
    this.request = request;
    this.lease = lease;
    this.retry = retry;
    this.startedAt = startedAt;
  }

  onConnect(abort: (err?: Error) => void): void {
    if (this.abandoned) {
      abort(ABANDONED);
      return;
    }
    this.abort = abort;
    this.state = SENT;
  }

  onHeaders(statusCode: number, rawHeaders: string[], resume: () => void): boolean {
    if (this.abandoned) return true;
    return this.request.onHeaders(this, statusCode, rawHeaders, resume);
  }

  onData(chunk: Buffer): boolean {
    if (this.abandoned) return true;
    return this.request.onData(this, chunk);
  }

  onComplete(): void {
    if (this.abandoned) return;
    this.request.onComplete(this);
  }

  onError(err: Error): void {
    if (this.abandoned) return;
    this.request.onError(this, err);
  }

  onDeadline(): void {
    this.queuedMs = 0;
    this.request.onTimeout(this);
  }
}

function onTryTimeout(t: Try): void {
  t.request.onTimeout(t);
}

/**
 * Client disconnects are watched per connection, not per request: one 'close' listener on
 * each client socket (added with its first request) and the socket's requests in flight
 * beside it, usually one (a Set only when a client pipelines). A keep-alive connection then
 * costs one listener for all its requests instead of an add and an emit per request.
 */
const kActive = Symbol('ringway.activeRequests');
const kWatched = Symbol('ringway.watched');

type WatchedSocket = Socket & {
  [kActive]?: ProxyRequest | Set<ProxyRequest> | undefined;
  [kWatched]?: boolean;
};

function onClientSocketClose(this: WatchedSocket): void {
  const active = this[kActive];
  this[kActive] = undefined;
  if (active === undefined) return;
  if (active instanceof Set) for (const r of active) r.clientClosed();
  else active.clientClosed();
}

/** One request through the proxy. */
export class ProxyRequest {
  readonly shared: ProxyShared;
  readonly rt: RouteRuntime;
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly requestId: string;
  readonly method: string;
  /** Path and query to send, before the instance's base path. */
  readonly path: string;
  readonly headers: string[];
  readonly body: RequestBody | undefined;
  readonly key: Key | undefined;
  readonly startedAt: number;
  readonly deadline: number;
  /** Tries made so far. */
  tries = 0;
  /** Ids of the instances tried, to avoid them on a retry. */
  tried: string[] | undefined = undefined;
  current: Try | undefined = undefined;
  /** Status answered (or 499 when the client left first). */
  status = 0;
  upstream = '';
  done = false;
  lastFailure: { code: GatewayErrorCode; message: string } | undefined = undefined;

  constructor(
    shared: ProxyShared,
    rt: RouteRuntime,
    req: IncomingMessage,
    res: ServerResponse,
    requestId: string,
    path: string,
    headers: string[],
    body: RequestBody | undefined,
    key: Key | undefined,
    startedAt: number,
  ) {
    this.shared = shared;
    this.rt = rt;
    this.req = req;
    this.res = res;
    this.requestId = requestId;
    this.method = req.method as string;
    this.path = path;
    this.headers = headers;
    this.body = body;
    this.key = key;
    this.startedAt = startedAt;
    this.deadline = startedAt + rt.route.timeoutMs;
  }

  /** Starts the first try. */
  start(): void {
    const socket = this.req.socket as WatchedSocket;
    if (socket[kWatched] !== true) {
      socket[kWatched] = true;
      socket.once('close', onClientSocketClose);
    }
    const active = socket[kActive];
    if (active === undefined) socket[kActive] = this;
    else if (active instanceof Set) active.add(this);
    else socket[kActive] = new Set([active, this]);
    this.#try();
  }

  #try(): void {
    const rt = this.rt;
    const retry = this.tries > 0;
    const lease = retry
      ? rt.balancer.acquire({ key: this.key, avoid: this.tried, retry: true })
      : rt.balancer.acquire(this.key === undefined ? undefined : { key: this.key });
    if (lease === undefined) {
      // No instance at all: answered at once (a retry reports the failure that led to it).
      const failure = this.lastFailure;
      if (failure !== undefined) this.#fail(failure.code, failure.message);
      else this.#fail('ERR_NO_ENDPOINT', `no healthy instance of service '${rt.route.service}'`);
      return;
    }
    this.tries++;
    rt.budget.started(retry);
    const now = performance.now();
    const t = new Try(this, lease, retry, now);
    this.current = t;
    const endpoint = lease.endpoint;
    this.upstream = endpoint.id;
    const target = this.shared.pools.target(endpoint.address, rt.pool);
    const perTry = rt.route.retries.perTryTimeoutMs;
    const left = this.deadline - now;
    if (perTry <= left) {
      t.queuedMs = perTry;
      this.shared.deadlines.add(t, perTry);
    } else if (perTry - left < 1) {
      // The route's deadline comes first, but by less than a timer's precision (a first try
      // with the default per-try timeout, the route's): queued all the same, due at that deadline.
      t.queuedMs = perTry;
      this.shared.deadlines.add(t, perTry, this.deadline);
    } else {
      t.timer = setTimeout(onTryTimeout, Math.max(1, left), t);
    }
    target.pool.dispatch(
      {
        path: target.basePath === '' ? this.path : target.basePath + this.path,
        method: this.method,
        headers: this.headers,
        body: this.body === undefined ? null : this.body.stream(),
        bodyTimeout: rt.route.timeoutMs,
      },
      t,
    );
  }

  /** Ends a try: its lease, budget slot and timer. `ok` undefined: abandoned, no verdict on the instance. */
  #stopTimer(t: Try): void {
    if (t.queuedMs !== 0) {
      this.shared.deadlines.cancel(t, t.queuedMs);
      t.queuedMs = 0;
    } else if (t.timer !== undefined) {
      clearTimeout(t.timer);
      t.timer = undefined;
    }
  }

  #endTry(t: Try, ok: boolean | undefined): void {
    this.#stopTimer(t);
    if (t.state === OVER) return;
    t.state = OVER;
    this.rt.budget.finished(t.retry);
    if (ok === undefined) t.lease.release();
    else t.lease.release({ ok, latencyMs: t.latencyMs > 0 ? t.latencyMs : performance.now() - t.startedAt });
  }

  /**
   * Whether a failure of `reason` may be retried now. `refused`: the connection was refused,
   * so no upstream did any work for the try and its retry adds no load anywhere: it is not
   * counted against the retry budget (every other retry is).
   */
  #mayRetry(reason: 'connect-failure' | 'reset' | 'status' | 'timeout', status = 504, refused = false): boolean {
    const policy = this.rt.route.retries;
    if (this.tries > policy.attempts || this.done) return false;
    switch (reason) {
      case 'connect-failure':
        if (!policy.onConnectFailure) return false;
        break;
      case 'reset':
        if (!policy.onReset) return false;
        break;
      default:
        if (!policy.onStatus.has(status)) return false;
    }
    if (reason !== 'connect-failure' && policy.idempotentOnly && !IDEMPOTENT_METHODS.has(this.method)) return false;
    if (this.body !== undefined && !this.body.replayable) return false;
    if (performance.now() >= this.deadline) return false;
    return refused || this.rt.budget.canRetry();
  }

  #retry(t: Try, reason: FailureReason): void {
    if (this.tried === undefined) this.tried = [t.lease.endpoint.id];
    else this.tried.push(t.lease.endpoint.id);
    this.shared.metrics?.retries.labels(this.rt.route.name, reason).inc();
    this.shared.debug(this.requestId, 'retrying', { upstream: t.lease.endpoint.id, reason, try: this.tries });
    this.#try();
  }

  onHeaders(t: Try, status: number, raw: string[], resume: () => void): boolean {
    const now = performance.now();
    t.latencyMs = now - t.startedAt;
    this.#stopTimer(t);
    t.state = RESPONDING;
    t.status = status;
    if (this.rt.route.retries.onStatus.has(status) && this.#mayRetry('status', status)) {
      // Drop this answer and its exchange (a body that never ends must hold nothing up, and
      // the dropped try must stop sending the request body), then try elsewhere.
      t.abandoned = true;
      t.abort?.(ABANDONED);
      this.#endTry(t, false);
      this.shared.metrics?.upstreamFailures.labels(this.rt.route.name, t.lease.endpoint.id, 'status').inc();
      this.lastFailure = { code: 'ERR_UPSTREAM_FAILURE', message: `upstream answered ${status}` };
      this.#retry(t, 'status');
      return true;
    }
    const res = this.res;
    if (res.destroyed) return false;
    const proxy = this.shared.proxy;
    // Shutting down: this connection closes after the answer, and the answer says so.
    if (this.shared.draining) res.shouldKeepAlive = false;
    try {
      res.writeHead(status, forwardResponseHeaders(raw, proxy.requestIdHeader, this.requestId, proxy.via, t));
    } catch (err) {
      // A header Node refuses to send (invalid bytes from the upstream).
      t.abandoned = true;
      t.abort?.(ABANDONED);
      this.#endTry(t, false);
      this.#fail('ERR_UPSTREAM_FAILURE', `invalid response headers from the upstream: ${(err as Error).message}`);
      return false;
    }
    this.status = status;
    t.resume = resume;
    this.rt.stats?.observe(t.lease.endpoint.id, status, (now - this.startedAt) / 1000);
    return true;
  }

  onData(t: Try, chunk: Buffer): boolean {
    const res = this.res;
    if (t.state !== RESPONDING || res.destroyed) return true;
    t.received += chunk.length;
    if (t.received === t.contentLength) {
      // The last bytes of a sized body: one `end` writes them and finishes the response.
      t.ended = true;
      res.end(chunk);
      return true;
    }
    if (res.write(chunk)) return true;
    // Backpressure: the client reads slower than the upstream sends; the pool pauses the socket.
    res.once('drain', t.resume as () => void);
    return false;
  }

  onComplete(t: Try): void {
    this.#endTry(t, t.status < 500);
    if (!t.ended) this.res.end();
    this.#finish();
  }

  onError(t: Try, err: Error): void {
    const state = t.state;
    this.#endTry(t, this.res.destroyed ? undefined : false);
    if (this.done) return;
    if (state === RESPONDING) {
      // The answer had started: the client cannot be told, only cut off.
      this.shared.debug(this.requestId, 'upstream failed while responding', { error: err.message });
      this.res.destroy();
      this.#finish();
      return;
    }
    if (this.body?.tooLarge === true) {
      this.#fail('ERR_BODY_TOO_LARGE', `the request body is larger than ${this.rt.route.bodyLimit} bytes`, true);
      return;
    }
    const reason: 'connect-failure' | 'reset' = state === CONNECTING ? 'connect-failure' : 'reset';
    this.shared.metrics?.upstreamFailures.labels(this.rt.route.name, t.lease.endpoint.id, reason).inc();
    const code = (err as NodeJS.ErrnoException).code;
    // A malformed answer counts as a reset (nothing usable came back) but says what was wrong.
    const message =
      reason === 'connect-failure'
        ? `cannot connect to the upstream (${code ?? err.message})`
        : code === 'ERR_UPSTREAM_PROTOCOL'
          ? err.message
          : `the upstream closed the connection before answering (${code ?? err.message})`;
    this.lastFailure = { code: 'ERR_UPSTREAM_FAILURE', message };
    const refused = reason === 'connect-failure' && (err as NodeJS.ErrnoException).code === 'ECONNREFUSED';
    if (this.#mayRetry(reason, 504, refused)) {
      this.#retry(t, reason);
      return;
    }
    this.#fail('ERR_UPSTREAM_FAILURE', message);
  }

  onTimeout(t: Try): void {
    t.timer = undefined;
    if (t.abandoned || this.done) return;
    t.abandoned = true;
    t.abort?.(TIMED_OUT);
    const perTry = this.rt.route.retries.perTryTimeoutMs;
    const body = this.body;
    if (body !== undefined && !body.complete) {
      // The client had not sent its whole body: its slowness, not the upstream's. No verdict
      // on the instance (outlier detection must not eject it for a slow client), no retry.
      this.#endTry(t, undefined);
      this.#fail('ERR_REQUEST_TIMEOUT', `the request body did not arrive within ${perTry} ms`, true);
      return;
    }
    this.#endTry(t, false);
    this.shared.metrics?.upstreamFailures.labels(this.rt.route.name, t.lease.endpoint.id, 'timeout').inc();
    this.lastFailure = { code: 'ERR_UPSTREAM_TIMEOUT', message: `the upstream did not answer within ${perTry} ms` };
    if (this.#mayRetry('timeout')) {
      this.#retry(t, 'timeout');
      return;
    }
    const overall = performance.now() >= this.deadline;
    this.#fail(
      'ERR_UPSTREAM_TIMEOUT',
      overall
        ? `the upstream did not answer within the route's ${this.rt.route.timeoutMs} ms`
        : `the upstream did not answer within ${perTry} ms`,
    );
  }

  /** The client's connection closed: stop if the answer was not complete. */
  clientClosed(): void {
    if (this.done) return;
    // The client went away before its answer was complete: stop the live try, with no
    // verdict on the instance, and report 499 as nginx does.
    const t = this.current;
    if (t !== undefined && t.state !== OVER) {
      t.abandoned = true;
      t.abort?.(ABANDONED);
      this.#endTry(t, undefined);
    }
    if (this.status === 0) {
      // Counted, as nginx logs it: the client closed the request before the answer began.
      this.status = 499;
      this.rt.stats?.observe(this.upstream, 499, (performance.now() - this.startedAt) / 1000);
    }
    this.#finish();
  }

  /** Answers with an error (or cuts the connection if the answer had started). */
  #fail(code: GatewayErrorCode, message: string, close = false): void {
    if (this.done) return;
    const t = this.current;
    if (t !== undefined && t.state !== OVER) {
      t.abandoned = true;
      t.abort?.(ABANDONED);
      this.#endTry(t, undefined);
    }
    this.shared.debug(this.requestId, message, { code, route: this.rt.route.name });
    const tooLarge = code === 'ERR_BODY_TOO_LARGE';
    sendError(this.res, code, message, this.requestId, undefined, close || tooLarge || this.body !== undefined);
    this.status = this.res.statusCode;
    this.rt.stats?.observe(this.upstream, this.status, (performance.now() - this.startedAt) / 1000);
    this.#finish();
  }

  #finish(): void {
    if (this.done) return;
    this.done = true;
    const socket = this.req.socket as WatchedSocket | null;
    if (socket !== null) {
      const active = socket[kActive];
      if (active === this) socket[kActive] = undefined;
      else if (active instanceof Set) {
        active.delete(this);
        if (active.size === 0) socket[kActive] = undefined;
      }
    }
    this.shared.finished(this);
  }
}
