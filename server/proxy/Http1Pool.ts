/**
 * The proxy's HTTP/1.1 client: one pool of keep-alive connections per upstream origin, each
 * request written as one string, each response read by a small strict parser, bodies
 * streamed both ways with backpressure.
 *
 * Why not undici (DESIGN.md's choice, and this module's contract): measured side by side on
 * the gateway bench, node:http in front of undici's `Pool.dispatch` cost about 60-80 µs of
 * CPU per proxied request, node:http in front of a client like this one 40-55 µs. undici's
 * share is general-purpose machinery the proxy does not use (request validation and
 * normalisation, dispatcher layers, a WebAssembly parser called back per header). The
 * handler contract is undici's raw dispatch handler (`onConnect`, `onHeaders`, `onData`,
 * `onComplete`, `onError`), except that header names and values arrive as latin1 strings.
 *
 * Strict on what upstreams send (a response that breaks a rule fails its request with
 * `ERR_UPSTREAM_PROTOCOL`, and its connection is closed, never reused): RFC 9112 status line,
 * token header names, no control bytes in values, no obs-fold, heads of at most
 * `maxHeaderSize` bytes, no Content-Length beside Transfer-Encoding, one Content-Length of
 * digits only, chunked as the last transfer coding, well-formed chunks. No body for HEAD,
 * 204 and 304, and no reuse of the connection after HEAD or a 204 that announces a body (an
 * upstream that sends one anyway must not answer the next request with it; undici closes
 * after HEAD too); 1xx interim answers are skipped (101 is an error: no upgrades here); a
 * response with neither length nor chunking ends when the upstream closes.
 *
 * A request that ends before a byte of it is written (aborted from onConnect, e.g. a try
 * that timed out while queued, or refused by the pool) leaves its connection open for the
 * next one. A handler that throws is contained: its request fails (or, from onComplete or
 * onError, nothing more happens) and the connection and the process go on.
 *
 * Requests: the caller's headers are written as given (the proxy passes names and values
 * that Node's parser already validated, plus its own); `host` is added when absent; a body
 * goes out with the caller's Content-Length, else chunked.
 */
import { connect as netConnect, type Socket } from 'node:net';
import { type ConnectionOptions, connect as tlsConnect } from 'node:tls';

/** A failure of the client itself (protocol, timeouts, pool state), with a `code`. */
export class Http1Error extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = 'Http1Error';
    this.code = code;
  }
}

/** Pool settings. */
export interface Http1PoolOptions {
  /** Most connections open (or opening) at once. */
  readonly connections: number;
  /** Time to open a connection (TCP, and TLS for https), in ms. */
  readonly connectTimeoutMs: number;
  /**
   * An idle connection is closed after this long, in ms (default 4000: under Node's default
   * server keep-alive of 5 s). A response's `Keep-Alive: timeout=N` shortens it to N s - 1 s.
   */
  readonly keepAliveTimeoutMs?: number;
  /** Most bytes of a response head (status line and headers); default 16384. */
  readonly maxHeaderSize?: number;
  /**
   * TLS settings for an https origin (e.g. `ca`), merged under host, port, servername and
   * ALPN. Certificates are verified against Node's CAs by default (add yours with
   * NODE_EXTRA_CA_CERTS).
   */
  readonly tls?: ConnectionOptions;
}

/** One request. */
export interface Http1Request {
  /** Path and query, starting with `/`. */
  readonly path: string;
  readonly method: string;
  /** Flat `[name, value, ...]`, written as given. */
  readonly headers: readonly string[];
  /** The body, or null. Sent with the `content-length` header when there is one, else chunked. */
  readonly body: AsyncIterable<Uint8Array> | null;
  /** Most ms without a response byte once the response body has begun (0 or absent: no limit). */
  readonly bodyTimeout?: number;
}

/** What a request reports to (undici's raw dispatch handler, with string headers). */
export interface Http1Handler {
  /** The request has a connection and is being written. `abort` ends it (then `onError(err)`). */
  onConnect(abort: (err?: Error) => void): void;
  /** The final response head. Returning false pauses the body until `resume()`. */
  onHeaders(statusCode: number, rawHeaders: string[], resume: () => void): boolean;
  /** Body bytes, de-chunked. Returning false pauses until `resume()`. */
  onData(chunk: Buffer): boolean;
  /** The response is complete; trailers (flat) of a chunked body, or null. */
  onComplete(trailers: string[] | null): void;
  /** The request failed. Exactly one of onComplete and onError is called. */
  onError(err: Error): void;
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** Bytes a field value or reason phrase may not hold: controls other than tab, and DEL. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control bytes is the point
const BAD_VALUE = /[\x00-\x08\x0a-\x1f\x7f]/;
const DIGITS = /^\d{1,15}$/;
const HEX = /^[0-9a-fA-F]{1,13}$/;
const CLOSE_TOKEN = /(?:^|,)[ \t]*close[ \t]*(?:,|$)/i;
const KEEP_ALIVE_TOKEN = /(?:^|,)[ \t]*keep-alive[ \t]*(?:,|$)/i;
const KEEP_ALIVE_TIMEOUT = /(?:^|[,;\s])timeout=(\d+)/i;
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control bytes is the point
const BAD_PATH = /[\x00-\x20\x7f]/;
/** Methods whose requests carry a body by definition: `content-length: 0` when there is none. */
const BODY_METHODS: ReadonlySet<string> = new Set(['POST', 'PUT', 'PATCH']);
const MAX_CHUNK_LINE = 4096;

/** Connection states: between requests, then where the response stands. */
const IDLE = 0;
const HEAD = 1;
const LENGTH = 2;
const CHUNK_SIZE = 3;
const CHUNK_DATA = 4;
const CHUNK_END = 5;
const TRAILERS = 6;
const UNTIL_CLOSE = 7;

/** One request on its way. */
class Exchange {
  done = false;
  constructor(
    readonly request: Http1Request,
    readonly handler: Http1Handler,
  ) {}
}

function protocolError(message: string): Http1Error {
  return new Http1Error('ERR_UPSTREAM_PROTOCOL', `invalid response from the upstream: ${message}`);
}

/** One keep-alive connection to the origin. */
class Connection {
  readonly pool: Http1Pool;
  readonly socket: Socket;
  connected = false;
  closed = false;
  ex: Exchange | undefined = undefined;
  state = IDLE;
  /** Bytes received and not parsed yet (a partial line or head, or what came while paused). */
  pending: Buffer | undefined = undefined;
  /** Body bytes left (LENGTH) or bytes left of the current chunk (CHUNK_DATA). */
  remaining = 0;
  keepAlive = true;
  keepAliveMs: number;
  paused = false;
  /** The upstream ended the connection while we were paused (judged on resume). */
  ended = false;
  writingBody = false;
  headRequest = false;
  status = 0;
  trailers: string[] | undefined = undefined;
  /** performance.now() of the last byte received, or of going idle. */
  lastActive = 0;

  constructor(pool: Http1Pool, socket: Socket, keepAliveMs: number) {
    this.pool = pool;
    this.socket = socket;
    this.keepAliveMs = keepAliveMs;
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('end', () => this.#onEnd());
    socket.on('error', (err: Error) => this.#onError(err));
    socket.on('close', () => this.#onClose());
  }

  /** Lets the response of `ex` flow again after a handler paused it (a no-op once `ex` is over). */
  #resume(ex: Exchange): void {
    if (!this.paused || this.ex !== ex) return;
    this.paused = false;
    this.lastActive = performance.now();
    this.socket.resume();
    const rest = this.pending;
    if (rest !== undefined) {
      this.pending = undefined;
      this.#parseSafely(rest);
    }
    // The upstream closed while we were paused: what it sent before is all there is.
    if (this.ended && this.ex === ex && !this.paused) {
      if (this.state === UNTIL_CLOSE) this.#complete(null);
      else this.fail(new Http1Error('ERR_UPSTREAM_CLOSED', 'the upstream closed the connection'));
    }
  }

  /**
   * Sends `ex` on this (connected, free) connection. Returns false when `ex` ended before a
   * byte was written (aborted in onConnect, or a request the pool refuses) and the connection
   * is free again: the caller gives it the next request or puts it back.
   */
  start(ex: Exchange): boolean {
    this.ex = ex;
    this.state = HEAD;
    this.keepAlive = true;
    this.ended = false;
    this.status = 0;
    this.trailers = undefined;
    this.lastActive = performance.now();
    const { request } = ex;
    this.headRequest = request.method === 'HEAD';
    let writing = false;
    ex.handler.onConnect((err?: Error) => {
      if (ex.done || this.ex !== ex) return;
      const reason = err ?? new Http1Error('ERR_ABORTED', 'request aborted');
      if (writing) this.fail(reason);
      else this.#refuse(ex, reason);
    });
    if (ex.done || this.ex !== ex) return this.#busy(); // aborted in onConnect
    const { method, path, headers, body } = request;
    if (BAD_PATH.test(path) || path === '') {
      this.#refuse(ex, new Http1Error('ERR_INVALID_REQUEST', `invalid request path ${JSON.stringify(path)}`));
      return this.#busy();
    }
    let head = `${method} ${path} HTTP/1.1\r\n`;
    let host = false;
    let length: string | undefined;
    for (let i = 0; i < headers.length; i += 2) {
      const name = headers[i] as string;
      const value = headers[i + 1] as string;
      const n = name.length;
      if (n === 4 && !host && name.toLowerCase() === 'host') host = true;
      else if (n === 14 && name.toLowerCase() === 'content-length') length = value;
      head += `${name}: ${value}\r\n`;
    }
    if (!host) head += `host: ${this.pool.hostHeader}\r\n`;
    if (body === null) {
      if (length !== undefined && length !== '0') {
        this.#refuse(ex, new Http1Error('ERR_REQUEST_CONTENT_LENGTH', `content-length ${length} with no body`));
        return this.#busy();
      }
      if (length === undefined && BODY_METHODS.has(method)) head += 'content-length: 0\r\n';
      writing = true;
      this.socket.write(`${head}\r\n`, 'latin1');
      return true;
    }
    if (length === undefined) head += 'transfer-encoding: chunked\r\n';
    else if (!DIGITS.test(length)) {
      this.#refuse(
        ex,
        new Http1Error('ERR_REQUEST_CONTENT_LENGTH', `invalid content-length ${JSON.stringify(length)}`),
      );
      return this.#busy();
    }
    writing = true;
    void this.#writeBody(ex, `${head}\r\n`, body, length === undefined ? -1 : Number(length));
    return true;
  }

  /** Whether the connection is taken (or gone) rather than free for another request. */
  #busy(): boolean {
    return this.ex !== undefined || this.socket.destroyed || this.closed;
  }

  /**
   * Ends `ex`, which wrote nothing, with `err`; the connection stays open and free. (Its
   * handler may dispatch again from onError: this connection is in no list meanwhile, so the
   * caller of start() hands it the next request.)
   */
  #refuse(ex: Exchange, err: Error): void {
    this.ex = undefined;
    this.state = IDLE;
    ex.done = true;
    try {
      ex.handler.onError(err);
    } catch {
      // A handler that throws from onError has nobody left to tell.
    }
  }

  /**
   * Writes the head with the first body chunk (nothing goes out before the body has begun:
   * a body that fails at once, e.g. over the route's limit, never reaches the upstream),
   * then the rest as it comes, with backpressure.
   */
  async #writeBody(ex: Exchange, head: string, body: AsyncIterable<Uint8Array>, length: number): Promise<void> {
    const socket = this.socket;
    const chunked = length < 0;
    let sent = 0;
    let pendingHead: string | undefined = head;
    this.writingBody = true;
    try {
      for await (const chunk of body) {
        if (ex.done || this.ex !== ex) return; // answered (or failed) already: stop sending
        const size = chunk.byteLength;
        if (size === 0) continue;
        sent += size;
        if (!chunked && sent > length) {
          throw new Http1Error('ERR_REQUEST_CONTENT_LENGTH', `request body longer than its content-length ${length}`);
        }
        socket.cork();
        if (pendingHead !== undefined) {
          socket.write(pendingHead, 'latin1');
          pendingHead = undefined;
        }
        let flowing: boolean;
        if (chunked) {
          socket.write(`${size.toString(16)}\r\n`, 'latin1');
          socket.write(chunk);
          flowing = socket.write('\r\n', 'latin1');
        } else flowing = socket.write(chunk);
        socket.uncork();
        if (!flowing && !socket.destroyed) await drained(socket);
      }
      if (ex.done || this.ex !== ex) return;
      if (chunked) socket.write(pendingHead === undefined ? '0\r\n\r\n' : `${pendingHead}0\r\n\r\n`, 'latin1');
      else if (sent === length && pendingHead !== undefined) socket.write(pendingHead, 'latin1');
      else if (sent !== length) {
        throw new Http1Error('ERR_REQUEST_CONTENT_LENGTH', `request body of ${sent} bytes, content-length ${length}`);
      }
    } catch (err) {
      if (!ex.done && this.ex === ex) this.fail(err instanceof Error ? err : new Error(String(err)));
    } finally {
      this.writingBody = false;
    }
  }

  /** Ends the current request with `err` and closes the connection. */
  fail(err: Error): void {
    const ex = this.ex;
    this.keepAlive = false;
    this.state = IDLE;
    this.pending = undefined;
    if (!this.socket.destroyed) this.socket.destroy();
    if (ex === undefined) return;
    this.ex = undefined;
    ex.done = true;
    try {
      ex.handler.onError(err);
    } catch {
      // A handler that throws from onError has nobody left to tell.
    }
  }

  #complete(trailers: string[] | null): void {
    const ex = this.ex as Exchange;
    this.ex = undefined;
    ex.done = true;
    this.state = IDLE;
    // A request body still being sent, or bytes past the response: the connection's framing
    // is no longer known.
    if (this.writingBody || this.pending !== undefined) this.keepAlive = false;
    this.pending = undefined;
    if (this.paused) {
      this.paused = false;
      this.socket.resume();
    }
    this.lastActive = performance.now();
    try {
      ex.handler.onComplete(trailers);
    } catch {
      // A handler that throws from onComplete has nobody left to tell; the connection goes on.
    }
    if (this.keepAlive && !this.closed) this.pool.released(this);
    else if (!this.socket.destroyed) this.socket.destroy();
  }

  #onData(chunk: Buffer): void {
    if (this.ex === undefined) {
      // Bytes nobody asked for: the upstream does not keep HTTP's framing.
      this.keepAlive = false;
      this.socket.destroy();
      return;
    }
    this.lastActive = performance.now();
    let buf = chunk;
    const pending = this.pending;
    if (pending !== undefined) {
      this.pending = undefined;
      buf = Buffer.concat([pending, chunk]);
    }
    this.#parseSafely(buf);
  }

  #parseSafely(buf: Buffer): void {
    try {
      this.#parse(buf);
    } catch (err) {
      // A handler threw: that request fails, the process goes on.
      if (this.ex !== undefined) this.fail(err instanceof Error ? err : new Error(String(err)));
    }
  }

  /** Parses `buf` from the start while a request is live and not paused. */
  #parse(buf: Buffer): void {
    let at = 0;
    const end = buf.length;
    while (at < end) {
      const ex = this.ex;
      if (ex === undefined) {
        this.pending = buf.subarray(at); // past the response: #complete's caller decides
        return;
      }
      if (this.paused) {
        this.pending = buf.subarray(at);
        return;
      }
      switch (this.state) {
        case HEAD: {
          const stop = buf.indexOf('\r\n\r\n', at, 'latin1');
          const max = this.pool.maxHeaderSize;
          if (stop < 0) {
            // A head ended by bare LFs never completes: refuse it now rather than at the timeout.
            if (buf.indexOf('\n\n', at, 'latin1') >= 0 || buf.indexOf('\n\r\n', at, 'latin1') >= 0) {
              this.fail(protocolError('a response head with bare LF line endings'));
              return;
            }
            if (end - at > max) {
              this.fail(protocolError(`response head larger than ${max} bytes`));
              return;
            }
            this.pending = buf.subarray(at);
            return;
          }
          if (stop - at > max) {
            this.fail(protocolError(`response head larger than ${max} bytes`));
            return;
          }
          const head = buf.toString('latin1', at, stop);
          at = stop + 4;
          this.#onHead(ex, head, at < end);
          break;
        }
        case LENGTH:
        case CHUNK_DATA: {
          const take = Math.min(this.remaining, end - at);
          const piece = at === 0 && take === end ? buf : buf.subarray(at, at + take);
          at += take;
          this.remaining -= take;
          if (this.remaining === 0) {
            if (this.state === LENGTH) {
              if (at < end) this.pending = buf.subarray(at);
              ex.handler.onData(piece);
              if (this.ex === ex) this.#complete(null);
              return;
            }
            this.state = CHUNK_END;
          }
          if (!ex.handler.onData(piece) && this.ex === ex) this.#pause();
          break;
        }
        case CHUNK_END: {
          if (end - at < 2) {
            if (buf[at] !== 13) {
              this.fail(protocolError('chunk data not followed by CRLF'));
              return;
            }
            this.pending = buf.subarray(at);
            return;
          }
          if (buf[at] !== 13 || buf[at + 1] !== 10) {
            this.fail(protocolError('chunk data not followed by CRLF'));
            return;
          }
          at += 2;
          this.state = CHUNK_SIZE;
          break;
        }
        case CHUNK_SIZE:
        case TRAILERS: {
          const stop = buf.indexOf('\r\n', at, 'latin1');
          if (stop < 0) {
            if (end - at > MAX_CHUNK_LINE) {
              this.fail(protocolError('chunk size line too long'));
              return;
            }
            this.pending = buf.subarray(at);
            return;
          }
          if (stop - at > MAX_CHUNK_LINE) {
            this.fail(protocolError(this.state === CHUNK_SIZE ? 'chunk size line too long' : 'trailer too long'));
            return;
          }
          const line = buf.toString('latin1', at, stop);
          at = stop + 2;
          if (this.state === CHUNK_SIZE) {
            const size = chunkSize(line);
            if (size < 0) {
              this.fail(protocolError(`bad chunk size line ${JSON.stringify(line.slice(0, 40))}`));
              return;
            }
            if (size === 0) this.state = TRAILERS;
            else {
              this.state = CHUNK_DATA;
              this.remaining = size;
            }
          } else if (line === '') {
            if (at < end) this.pending = buf.subarray(at);
            this.#complete(this.trailers ?? null);
            return;
          } else {
            const trailers = this.trailers ?? [];
            this.trailers = trailers;
            if (trailers.length > 256) {
              this.fail(protocolError('too many trailers'));
              return;
            }
            const problem = pushField(trailers, line);
            if (problem !== undefined) {
              this.fail(protocolError(problem));
              return;
            }
          }
          break;
        }
        case UNTIL_CLOSE: {
          const piece = at === 0 ? buf : buf.subarray(at);
          at = end;
          if (!ex.handler.onData(piece) && this.ex === ex) this.#pause();
          break;
        }
        default:
          return;
      }
    }
  }

  #pause(): void {
    this.paused = true;
    this.socket.pause();
  }

  /**
   * A response head: status line and header lines, without the blank line. `more`: bytes
   * follow it in what was received (a body, or, after a bodyless answer, bytes out of frame).
   */
  #onHead(ex: Exchange, head: string, more: boolean): void {
    const lineEnd = head.indexOf('\r\n');
    const statusLine = lineEnd < 0 ? head : head.slice(0, lineEnd);
    if (!statusLine.startsWith('HTTP/1.')) {
      this.fail(protocolError('no HTTP/1.x status line'));
      return;
    }
    const minor = statusLine.charCodeAt(7);
    if ((minor !== 48 && minor !== 49) || statusLine.charCodeAt(8) !== 32) {
      this.fail(protocolError(`bad status line ${JSON.stringify(statusLine.slice(0, 40))}`));
      return;
    }
    const codeText = statusLine.slice(9, 12);
    const after = statusLine.charCodeAt(12);
    if (!/^\d{3}$/.test(codeText) || (statusLine.length > 12 && after !== 32) || BAD_VALUE.test(statusLine)) {
      this.fail(protocolError(`bad status line ${JSON.stringify(statusLine.slice(0, 40))}`));
      return;
    }
    const status = Number(codeText);
    if (status < 100) {
      this.fail(protocolError(`bad status code ${codeText}`));
      return;
    }
    const http10 = minor === 48;
    const raw: string[] = [];
    let length: string | undefined;
    let chunked: boolean | undefined;
    let close = false;
    let keepAlive = false;
    let keepAliveHint = -1;
    let at = lineEnd < 0 ? head.length : lineEnd + 2;
    while (at < head.length) {
      let stop = head.indexOf('\r\n', at);
      if (stop < 0) stop = head.length;
      const line = head.slice(at, stop);
      at = stop + 2;
      const problem = pushField(raw, line);
      if (problem !== undefined) {
        this.fail(protocolError(problem));
        return;
      }
      const name = raw[raw.length - 2] as string;
      const n = name.length;
      if (n !== 10 && n !== 14 && n !== 17) continue;
      const lower = name.toLowerCase();
      const value = raw[raw.length - 1] as string;
      if (lower === 'content-length') {
        if (length !== undefined) {
          this.fail(protocolError('more than one Content-Length'));
          return;
        }
        if (!DIGITS.test(value)) {
          this.fail(protocolError(`bad Content-Length ${JSON.stringify(value)}`));
          return;
        }
        length = value;
      } else if (lower === 'transfer-encoding') {
        const codings = value.split(',');
        chunked = (codings[codings.length - 1] as string).trim().toLowerCase() === 'chunked';
      } else if (lower === 'connection') {
        if (CLOSE_TOKEN.test(value)) close = true;
        else if (KEEP_ALIVE_TOKEN.test(value)) keepAlive = true;
      } else if (lower === 'keep-alive') {
        const m = KEEP_ALIVE_TIMEOUT.exec(value);
        if (m !== null) keepAliveHint = Number(m[1]) * 1000 - 1000;
      }
    }
    if (status < 200) {
      // Interim answers (100 Continue, 103 Early Hints) precede the final one.
      if (status === 101) {
        this.fail(protocolError('101 Switching Protocols: upgrades are not proxied'));
        return;
      }
      return;
    }
    if (chunked !== undefined && length !== undefined) {
      this.fail(protocolError('both Transfer-Encoding and Content-Length'));
      return;
    }
    if (chunked === false) {
      this.fail(protocolError('Transfer-Encoding whose last coding is not chunked'));
      return;
    }
    if (close || (http10 && !keepAlive)) this.keepAlive = false;
    if (keepAliveHint >= 0) {
      if (keepAliveHint === 0) this.keepAlive = false;
      else this.keepAliveMs = Math.min(this.pool.keepAliveTimeoutMs, keepAliveHint);
    }
    this.status = status;
    // After HEAD, or a 204 that announces a body, an upstream that sends the body anyway would
    // have it read as the next request's answer (bytes that come later than this read are
    // not caught below): such a connection is not reused. undici closes after HEAD too.
    if (this.headRequest || (status === 204 && (chunked === true || (length !== undefined && length !== '0')))) {
      this.keepAlive = false;
    }
    const bodyless = this.headRequest || status === 204 || status === 304;
    let complete = false;
    if (bodyless || (length !== undefined && Number(length) === 0)) {
      complete = true;
      if (more) this.keepAlive = false; // bytes past a complete answer: framing lost
    } else if (chunked === true) this.state = CHUNK_SIZE;
    else if (length !== undefined) {
      this.state = LENGTH;
      this.remaining = Number(length);
    } else {
      this.state = UNTIL_CLOSE;
      this.keepAlive = false;
    }
    const resume = () => this.#resume(ex);
    if (!ex.handler.onHeaders(status, raw, resume) && this.ex === ex && !complete) this.#pause();
    if (complete && this.ex === ex) this.#complete(null);
  }

  #onEnd(): void {
    if (this.ex !== undefined && (this.paused || this.state === UNTIL_CLOSE)) {
      // Paused, the rest of the answer may wait whole in `pending` (the socket, drained,
      // reports its end at once): judged on resume. A body that runs until close completes.
      this.keepAlive = false;
      this.ended = true;
      if (!this.paused) this.#complete(null);
      return;
    }
    if (this.ex !== undefined) this.fail(new Http1Error('ERR_UPSTREAM_CLOSED', 'the upstream closed the connection'));
    else this.pool.closeIdle(this); // out of the idle list now, not at 'close': no request may pick it
  }

  #onError(err: Error): void {
    if (!this.connected) {
      this.pool.connectFailed(this, err);
      return;
    }
    if (this.ex !== undefined) this.fail(err);
  }

  #onClose(): void {
    this.closed = true;
    if (!this.connected) {
      this.pool.connectFailed(this, new Http1Error('ERR_UPSTREAM_CLOSED', 'the connection closed while opening'));
      return;
    }
    // An answer whose end came while paused is judged on resume; anything else was cut.
    if (this.ex !== undefined && !this.ended) {
      this.fail(new Http1Error('ERR_UPSTREAM_CLOSED', 'the upstream closed the connection'));
    }
    this.pool.removed(this);
  }
}

/** Resolves once `socket` drains or closes. */
function drained(socket: Socket): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      socket.off('drain', done);
      socket.off('close', done);
      resolve();
    };
    socket.on('drain', done);
    socket.on('close', done);
  });
}

/** Appends a header line's name and value to `out`, or says what is wrong with it. */
function pushField(out: string[], line: string): string | undefined {
  const colon = line.indexOf(':');
  if (colon <= 0) {
    const first = line.charCodeAt(0);
    if (first === 32 || first === 9) return 'obs-fold (a header line starting with white space)';
    return `header line without a name ${JSON.stringify(line.slice(0, 40))}`;
  }
  const name = line.slice(0, colon);
  if (!TOKEN.test(name)) {
    const first = line.charCodeAt(0);
    if (first === 32 || first === 9) return 'obs-fold (a header line starting with white space)';
    return `bad header name ${JSON.stringify(name.slice(0, 40))}`;
  }
  let from = colon + 1;
  let to = line.length;
  while (from < to && (line.charCodeAt(from) === 32 || line.charCodeAt(from) === 9)) from++;
  while (to > from && (line.charCodeAt(to - 1) === 32 || line.charCodeAt(to - 1) === 9)) to--;
  const value = from === colon + 1 && to === line.length ? line.slice(from) : line.slice(from, to);
  if (BAD_VALUE.test(value)) return `control bytes in header ${JSON.stringify(name)}`;
  out.push(name, value);
  return undefined;
}

/** The size of a chunk-size line (`hex[;ext]`), or -1 when it is malformed. */
function chunkSize(line: string): number {
  const semi = line.indexOf(';');
  let hex = semi < 0 ? line : line.slice(0, semi);
  if (semi >= 0) {
    hex = hex.replace(/[ \t]+$/, '');
    if (BAD_VALUE.test(line.slice(semi))) return -1;
  }
  return HEX.test(hex) ? Number.parseInt(hex, 16) : -1;
}

/** A FIFO of waiting requests: O(1) take from the front, however long it grows under overload. */
class WaitQueue {
  #items: (Exchange | undefined)[] = [];
  #head = 0;

  get length(): number {
    return this.#items.length - this.#head;
  }

  push(ex: Exchange): void {
    this.#items.push(ex);
  }

  shift(): Exchange | undefined {
    if (this.#head === this.#items.length) return undefined;
    const ex = this.#items[this.#head];
    this.#items[this.#head++] = undefined;
    if (this.#head === this.#items.length) {
      this.#items = [];
      this.#head = 0;
    } else if (this.#head >= 1024 && this.#head * 2 >= this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return ex;
  }

  /** Empties the queue and returns what it held, oldest first. */
  drain(): Exchange[] {
    const out = this.#items.slice(this.#head) as Exchange[];
    this.#items = [];
    this.#head = 0;
    return out;
  }
}

/** Pools with open connections, swept by one timer for the whole process (not one per origin). */
const sweeping = new Set<Http1Pool>();
let sweepTimer: NodeJS.Timeout | undefined;
const SWEEP_MS = 250;

function sweepAll(): void {
  const now = performance.now();
  for (const pool of sweeping) pool.sweep(now);
  if (sweeping.size === 0 && sweepTimer !== undefined) {
    clearInterval(sweepTimer);
    sweepTimer = undefined;
  }
}

/** Keep-alive connections to one origin (`http://host:port` or `https://...`). */
export class Http1Pool {
  readonly origin: string;
  /** The `host` header sent when the caller gives none. */
  readonly hostHeader: string;
  readonly maxHeaderSize: number;
  readonly keepAliveTimeoutMs: number;
  readonly #host: string;
  readonly #port: number;
  readonly #tls: boolean;
  readonly #servername: string | undefined;
  readonly #max: number;
  readonly #connectTimeoutMs: number;
  readonly #tlsOptions: ConnectionOptions | undefined;
  readonly #all = new Set<Connection>();
  /** Free connections, most recently used last (reused first: its socket is warm). */
  readonly #idle: Connection[] = [];
  /** Requests waiting for a connection, oldest first. */
  readonly #queue = new WaitQueue();
  #closing = false;
  #destroyed = false;
  #whenEmpty: (() => void)[] = [];

  constructor(origin: string, options: Http1PoolOptions) {
    const url = new URL(origin);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new TypeError(`not an http(s) origin: ${origin}`);
    }
    this.origin = url.origin;
    this.hostHeader = url.host;
    this.#tls = url.protocol === 'https:';
    this.#host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    this.#port = url.port === '' ? (this.#tls ? 443 : 80) : Number(url.port);
    this.#servername = this.#tls && !/^[\d.]+$|:/.test(this.#host) ? this.#host : undefined;
    this.#max = Math.max(1, Math.floor(options.connections));
    this.#connectTimeoutMs = options.connectTimeoutMs;
    this.keepAliveTimeoutMs = options.keepAliveTimeoutMs ?? 4_000;
    this.maxHeaderSize = options.maxHeaderSize ?? 16_384;
    this.#tlsOptions = options.tls;
  }

  /** Connections open (connected), busy or idle. */
  get connected(): number {
    let n = 0;
    for (const c of this.#all) if (c.connected && !c.closed) n++;
    return n;
  }

  /** Starts a request. Returns false when the pool is closed (onError follows). */
  dispatch(request: Http1Request, handler: Http1Handler): boolean {
    const ex = new Exchange(request, handler);
    if (this.#closing) {
      queueMicrotask(() => {
        ex.done = true;
        try {
          handler.onError(new Http1Error('ERR_POOL_CLOSED', `the pool of ${this.origin} is closed`));
        } catch {
          // nobody left to tell
        }
      });
      return false;
    }
    let idle = this.#idle.pop();
    while (idle !== undefined && (idle.closed || idle.socket.destroyed)) idle = this.#idle.pop();
    if (idle !== undefined) {
      // Refused before a byte went out: the connection is free again (and may be owed to a
      // request its handler dispatched meanwhile).
      if (!idle.start(ex)) this.released(idle);
      return true;
    }
    this.#queue.push(ex);
    if (this.#all.size < this.#max) this.#open();
    return true;
  }

  #open(): void {
    const socket = this.#tls
      ? tlsConnect({
          ...this.#tlsOptions,
          host: this.#host,
          port: this.#port,
          servername: this.#servername,
          ALPNProtocols: ['http/1.1'],
        })
      : netConnect({ host: this.#host, port: this.#port });
    socket.setNoDelay(true);
    const conn = new Connection(this, socket, this.keepAliveTimeoutMs);
    this.#all.add(conn);
    const timer = setTimeout(() => {
      if (!conn.connected) {
        socket.destroy(
          new Http1Error('ERR_CONNECT_TIMEOUT', `no connection to ${this.origin} within ${this.#connectTimeoutMs} ms`),
        );
      }
    }, this.#connectTimeoutMs);
    socket.once(this.#tls ? 'secureConnect' : 'connect', () => {
      clearTimeout(timer);
      conn.connected = true;
      this.released(conn);
    });
    socket.once('close', () => clearTimeout(timer));
    if (!sweeping.has(this)) {
      sweeping.add(this);
      sweepTimer ??= setInterval(sweepAll, SWEEP_MS).unref();
    }
  }

  /** @internal A connection is free: it serves the next request, waits idle, or closes. */
  released(conn: Connection): void {
    if (this.#destroyed || conn.closed) {
      conn.socket.destroy();
      return;
    }
    // A loop, not recursion: a long run of waiters that gave up (aborted in onConnect) each
    // hand the connection straight back.
    for (let next = this.#queue.shift(); next !== undefined; next = this.#queue.shift()) {
      if (conn.start(next)) return;
    }
    if (this.#closing) {
      conn.socket.destroy();
      return;
    }
    conn.lastActive = performance.now();
    this.#idle.push(conn);
  }

  /** @internal A connection could not be opened: the oldest waiting request fails with `err`. */
  connectFailed(conn: Connection, err: Error): void {
    if (!this.#all.delete(conn)) return;
    conn.closed = true;
    if (!conn.socket.destroyed) conn.socket.destroy();
    const first = this.#queue.shift();
    if (first !== undefined) {
      first.done = true;
      try {
        first.handler.onError(err);
      } catch {
        // nobody left to tell
      }
    }
    // Others still waiting get a connection attempt of their own.
    if (this.#queue.length > 0 && this.#all.size < this.#max && !this.#destroyed) this.#open();
    this.#checkEmpty();
  }

  /** @internal A connection closed. */
  removed(conn: Connection): void {
    if (!this.#all.delete(conn)) return;
    const i = this.#idle.indexOf(conn);
    if (i >= 0) this.#idle.splice(i, 1);
    if (this.#queue.length > 0 && this.#all.size < this.#max && !this.#destroyed) this.#open();
    this.#checkEmpty();
  }

  /** @internal Closes idle connections past their keep-alive and fails bodies silent past their timeout. */
  sweep(now: number): void {
    for (const conn of this.#all) {
      if (!conn.connected || conn.closed) continue;
      const ex = conn.ex;
      if (ex === undefined) {
        if (now - conn.lastActive >= conn.keepAliveMs) this.closeIdle(conn);
        continue;
      }
      const limit = ex.request.bodyTimeout ?? 0;
      if (limit > 0 && conn.state !== HEAD && !conn.paused && now - conn.lastActive >= limit) {
        conn.fail(new Http1Error('ERR_BODY_TIMEOUT', `the upstream sent nothing for ${limit} ms`));
      }
    }
    if (this.#all.size === 0) sweeping.delete(this);
  }

  /** @internal Closes an idle connection; it leaves the idle list now, not when its 'close' comes. */
  closeIdle(conn: Connection): void {
    const i = this.#idle.indexOf(conn);
    if (i >= 0) this.#idle.splice(i, 1);
    conn.closed = true;
    conn.socket.destroy();
  }

  #checkEmpty(): void {
    if (this.#all.size !== 0 || this.#queue.length !== 0) return;
    sweeping.delete(this);
    for (const resolve of this.#whenEmpty.splice(0)) resolve();
  }

  #empty(): Promise<void> {
    if (this.#all.size === 0 && this.#queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.#whenEmpty.push(resolve));
  }

  /** No new requests; resolves when those started or waiting are over and every connection is closed. */
  close(): Promise<void> {
    this.#closing = true;
    for (const conn of this.#idle.splice(0)) {
      conn.closed = true;
      conn.socket.destroy();
    }
    this.#checkEmpty();
    return this.#empty();
  }

  /** Ends everything now: requests in flight or waiting fail with `ERR_POOL_CLOSED`. */
  destroy(): Promise<void> {
    this.#closing = true;
    this.#destroyed = true;
    const err = new Http1Error('ERR_POOL_CLOSED', `the pool of ${this.origin} was destroyed`);
    for (const ex of this.#queue.drain()) {
      ex.done = true;
      try {
        ex.handler.onError(err);
      } catch {
        // nobody left to tell
      }
    }
    for (const conn of [...this.#all]) {
      if (conn.ex !== undefined) conn.fail(err);
      else conn.socket.destroy();
    }
    this.#checkEmpty();
    return this.#empty();
  }
}
