/**
 * A client's request body as the proxy streams it upstream: read chunk by chunk with
 * backpressure (never gathered whole), counted against the route's body limit, and kept for
 * a retry while it fits in the replay buffer (Envoy keeps a request buffer for retries the
 * same way, `per_request_buffer_limit_bytes`). Each try gets its own iterable; a retry
 * replays the kept chunks, then goes on reading from the client. Only the newest try reads
 * from the client: a dropped try that asks for more is refused, so no chunk can go to a try
 * that no longer counts, and a try that finds itself behind by more than the one chunk read
 * last (the replay buffer having been outgrown) fails instead of sending a body with a hole.
 *
 * The client's stream is read through `iterator({ destroyOnReturn: false })`, so an upstream
 * try that fails and drops its iterable never destroys the client's connection.
 */
import type { IncomingMessage } from 'node:http';

/** Thrown into the upstream request when the body passes the limit. */
export class BodyTooLargeError extends Error {
  constructor(limit: number) {
    super(`request body larger than ${limit} bytes`);
    this.name = 'BodyTooLargeError';
  }
}

/** A request body shared by the tries of one request. */
export class RequestBody {
  readonly #source: AsyncIterator<Buffer>;
  readonly #limit: number;
  readonly #replayLimit: number;
  /** Chunks kept for replay, or undefined once the body outgrew the replay buffer. */
  #kept: Buffer[] | undefined = [];
  #bytes = 0;
  #pending: Promise<IteratorResult<Buffer>> | undefined;
  #ended = false;
  /** Chunks read from the client, and the last of them. */
  #count = 0;
  #last: Buffer | undefined = undefined;
  /** Id of the newest try's stream: the only one that may read from the client. */
  #live = 0;
  /** Whether any byte was handed to an upstream try. */
  started = false;
  /** Whether the body passed the limit. */
  tooLarge = false;

  /** Called before the first read (sends `100 Continue` to a client that waits for it). */
  #invite: (() => void) | undefined;

  constructor(req: IncomingMessage, limit: number, replayLimit: number, invite?: () => void) {
    this.#source = req.iterator({ destroyOnReturn: false })[Symbol.asyncIterator]();
    this.#invite = invite;
    this.#limit = limit;
    this.#replayLimit = replayLimit;
    if (replayLimit === 0) this.#kept = undefined;
  }

  /** Whether a new try can send the body from its start. */
  get replayable(): boolean {
    return !this.started || this.#kept !== undefined;
  }

  /** Bytes read from the client so far. */
  get bytesRead(): number {
    return this.#bytes;
  }

  /** Whether the client has sent the whole body. */
  get complete(): boolean {
    return this.#ended;
  }

  /** One read from the client, shared if a dropped try left one pending. */
  #pull(): Promise<IteratorResult<Buffer>> {
    if (this.#invite !== undefined) {
      const invite = this.#invite;
      this.#invite = undefined;
      invite();
    }
    this.#pending ??= this.#source.next().then((r) => {
      this.#pending = undefined;
      if (r.done === true) {
        this.#ended = true;
        return r;
      }
      const chunk = r.value;
      this.#count++;
      this.#last = chunk;
      this.#bytes += chunk.byteLength;
      if (this.#bytes > this.#limit) {
        this.tooLarge = true;
        throw new BodyTooLargeError(this.#limit);
      }
      if (this.#kept !== undefined) {
        if (this.#bytes <= this.#replayLimit) this.#kept.push(chunk);
        else this.#kept = undefined;
      }
      return r;
    });
    return this.#pending;
  }

  /** The body for one try: the kept chunks, then the rest as it arrives. */
  stream(): AsyncGenerator<Buffer, void, undefined> {
    return this.#iterate(++this.#live);
  }

  async *#iterate(id: number): AsyncGenerator<Buffer, void, undefined> {
    // This try's own view of the kept chunks: the buffer may be dropped by a later read.
    const kept = this.#kept;
    let sent = 0;
    for (;;) {
      if (kept !== undefined && sent < kept.length) {
        this.started = true;
        yield kept[sent++] as Buffer;
        continue;
      }
      if (sent < this.#count) {
        // Behind what was read: only the last chunk read is still here.
        if (sent !== this.#count - 1) throw new Error('the request body is no longer replayable');
        this.started = true;
        sent++;
        yield this.#last as Buffer;
        continue;
      }
      if (this.#ended) return;
      if (id !== this.#live) throw new Error('a newer try took over the request body');
      const r = await this.#pull();
      if (r.done === true) return;
    }
  }
}
