/**
 * The Redis store's {@link LockStorage}: each method is one Lua script from `lockScripts.ts`,
 * one round trip, on one Cluster slot.
 */
import { entityKey } from '../keys.js';
import {
  type AcquireOutcome,
  type AcquireRequest,
  checkOwner,
  LOCK_RELEASED_CHANNEL,
  type LockState,
  type LockStorage,
  ownerChannel,
  parseHandOver,
  type ReleaseSubscription,
} from '../LockStorage.js';
import {
  ACQUIRE_SCRIPT,
  EXTEND_SCRIPT,
  INSPECT_SCRIPT,
  LEAVE_QUEUE_SCRIPT,
  PLAIN_ACQUIRE_SCRIPT,
  PLAIN_RELEASE_SCRIPT,
  RAISE_TOKEN_SCRIPT,
  RELEASE_SCRIPT,
  type ScriptDefinition,
} from './lockScripts.js';
import type { RedisChangeFeed } from './RedisChangeFeed.js';
import { loadedScript, type RedisContext } from './RedisContext.js';

/** The lock scripts, by the command name they get on the client. */
export const LOCK_SCRIPTS: Readonly<Record<string, ScriptDefinition>> = Object.freeze({
  ringwayLockAcquire: ACQUIRE_SCRIPT,
  ringwayLockExtend: EXTEND_SCRIPT,
  ringwayLockRaiseToken: RAISE_TOKEN_SCRIPT,
  ringwayLockRelease: RELEASE_SCRIPT,
  ringwayLockLeaveQueue: LEAVE_QUEUE_SCRIPT,
  ringwayLockInspect: INSPECT_SCRIPT,
});

/** The scripts of the acquire/release path, sent by SHA-1 without ioredis' script wrapper. */
const ACQUIRE = loadedScript(ACQUIRE_SCRIPT);
const RELEASE = loadedScript(RELEASE_SCRIPT);
const PLAIN_ACQUIRE = loadedScript(PLAIN_ACQUIRE_SCRIPT);
const PLAIN_RELEASE = loadedScript(PLAIN_RELEASE_SCRIPT);

/** PLAIN_ACQUIRE's answer when the full ACQUIRE must decide. */
const FULL_PATH = 0;
/** PLAIN_RELEASE's answer when the lease is marked and the full RELEASE must hand it over. */
const MARKED = 2;

/** The script's refusal code: -1 (free, not our turn) or -1 - remaining lease. */
function retryAfter(code: number): number {
  return code === -1 ? 0 : Math.max(0, -1 - code);
}

/** The acquire script's reply: a token, a plain refusal code, or {fair refusal code, place}. */
function toOutcome(reply: unknown): AcquireOutcome {
  if (typeof reply === 'number') {
    if (reply > 0) return { acquired: true, token: reply };
    return { acquired: false, retryAfterMs: retryAfter(reply), position: -1 };
  }
  const [code, second] = reply as [number, number];
  // {token, remaining lease}: handed over to us earlier; {refusal code, place}: queued.
  if (code > 0) return { acquired: true, token: code, remainingMs: Math.max(0, second) };
  return { acquired: false, retryAfterMs: retryAfter(code), position: second };
}

function isOne(reply: unknown): boolean {
  return reply === 1;
}

/** The keys of one resource (see lockScripts.ts). */
interface ResourceKeys {
  readonly resource: string;
  readonly lease: string;
  readonly fence: string;
  readonly queue: string;
  readonly deadlines: string;
  readonly leases: string;
}

/** Lock leases, fencing tokens and fair queues in Redis. */
export class RedisLockStorage implements LockStorage {
  readonly #ctx: RedisContext;
  readonly #feed: RedisChangeFeed;
  readonly #fenceRetentionMs: number;
  readonly #channel: string;
  /** The keys of the resource used last: an acquire is mostly followed by its release. */
  #last: ResourceKeys | undefined;

  constructor(ctx: RedisContext, feed: RedisChangeFeed, fenceRetentionMs: number) {
    this.#ctx = ctx;
    this.#feed = feed;
    this.#fenceRetentionMs = fenceRetentionMs;
    this.#channel = ctx.channel(LOCK_RELEASED_CHANNEL);
  }

  acquire(request: AcquireRequest): Promise<AcquireOutcome> {
    if (request.fair) return this.#acquireFull(request);
    // Plain: the short script first (see lockScripts.ts); a queue may wait only when it says so.
    const keys = this.#keys(request.resource);
    // The map may answer with the full attempt's promise, which the result then follows: no
    // extra promise on the common path.
    return this.#ctx.evalMapped(
      (reply) => (reply === FULL_PATH ? this.#acquireFull(request) : toOutcome(reply)),
      PLAIN_ACQUIRE,
      keys.lease,
      keys.fence,
      request.holder,
      request.ttlMs,
      this.#fenceRetentionMs,
    ) as Promise<AcquireOutcome>;
  }

  #acquireFull(request: AcquireRequest): Promise<AcquireOutcome> {
    const keys = this.#keys(request.resource);
    return this.#ctx.evalMapped(
      toOutcome,
      ACQUIRE,
      keys.lease,
      keys.fence,
      keys.queue,
      keys.deadlines,
      keys.leases,
      request.holder,
      request.ttlMs,
      request.fair ? '1' : '0',
      request.queueTtlMs,
      this.#fenceRetentionMs,
    );
  }

  async extend(resource: string, holder: string, ttlMs: number): Promise<boolean> {
    const keys = this.#keys(resource);
    return (
      (await this.#ctx.run('ringwayLockExtend', keys.lease, keys.fence, holder, ttlMs, this.#fenceRetentionMs)) === 1
    );
  }

  async raiseToken(resource: string, holder: string, token: number): Promise<boolean> {
    const keys = this.#keys(resource);
    const reply = await this.#ctx.run(
      'ringwayLockRaiseToken',
      keys.lease,
      keys.fence,
      holder,
      token,
      this.#fenceRetentionMs,
    );
    return reply === 1;
  }

  release(resource: string, holder: string, fair = false): Promise<boolean> {
    if (fair) return this.#releaseFull(resource, holder);
    // A plain lock's lease is mostly unmarked: the short script, and the full one only when a
    // fair waiter queued behind it.
    return this.#ctx.evalMapped(
      (reply) => (reply === MARKED ? this.#releaseFull(resource, holder) : reply === 1),
      PLAIN_RELEASE,
      this.#keys(resource).lease,
      holder,
    ) as Promise<boolean>;
  }

  #releaseFull(resource: string, holder: string): Promise<boolean> {
    return this.#ctx.evalMapped(isOne, RELEASE, ...this.#handOverArgs(resource, holder));
  }

  /** Keys and arguments of the scripts that may hand the resource over: RELEASE and LEAVE_QUEUE. */
  #handOverArgs(resource: string, holder: string): (string | number)[] {
    const keys = this.#keys(resource);
    return [
      keys.lease,
      keys.fence,
      keys.queue,
      keys.deadlines,
      keys.leases,
      holder,
      this.#channel,
      resource,
      this.#fenceRetentionMs,
    ];
  }

  #keys(resource: string): ResourceKeys {
    const last = this.#last;
    if (last !== undefined && last.resource === resource) return last;
    const lease = entityKey(this.#ctx.prefix, 'lock', resource);
    const keys: ResourceKeys = {
      resource,
      lease,
      fence: `${lease}:fence`,
      queue: `${lease}:q`,
      deadlines: `${lease}:qt`,
      leases: `${lease}:qttl`,
    };
    this.#last = keys;
    return keys;
  }

  async leaveQueue(resource: string, holder: string): Promise<void> {
    await this.#ctx.run('ringwayLockLeaveQueue', ...this.#handOverArgs(resource, holder));
  }

  async inspect(resource: string): Promise<LockState> {
    const keys = this.#keys(resource);
    const reply = (await this.#ctx.run('ringwayLockInspect', keys.lease, keys.queue, keys.deadlines)) as [
      string,
      string,
      number,
      string[],
    ];
    const [holder, token, pttl, queue] = reply;
    if (holder === '') return { holder: undefined, token: 0, ttlMs: 0, queue };
    return { holder, token: Number(token), ttlMs: Math.max(0, pttl), queue };
  }

  onReleased(listener: (resource: string, holder: string, token: number) => void, owner?: string): ReleaseSubscription {
    const feed = this.#feed;
    const channel = owner === undefined ? LOCK_RELEASED_CHANNEL : ownerChannel(checkOwner(owner));
    const off = feed.on(channel, (message) => {
      const handOver = parseHandOver(message);
      if (handOver !== undefined) listener(handOver.resource, handOver.holder, handOver.token);
    });
    return {
      get ready() {
        return feed.ready(channel);
      },
      close: off,
    };
  }
}
