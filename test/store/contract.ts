/**
 * The store contract: every backend (memory, Redis standalone, Sentinel, Cluster) must pass
 * these same tests. Each backend's test file calls `run(name, makeStore)`.
 *
 * Tests never assert how long something took; where expiry matters they wait well past a
 * short ttl and check the outcome.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StoreUnavailableError } from '../../src/errors.js';
import type { AcquireRequest } from '../../src/store/LockStorage.js';
import type { Store } from '../../src/store/Store.js';
import { rateLimitCases } from './rateLimitContract.js';

/** Makes a fresh store (its own key prefix on a shared server). */
export type MakeStore = () => Promise<Store>;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let counter = 0;
/** A resource name no other test uses. */
const fresh = (what: string) => `${what}:${++counter}:${Math.random().toString(36).slice(2, 8)}`;

function req(resource: string, holder: string, extra: Partial<AcquireRequest> = {}): AcquireRequest {
  return { resource, holder, ttlMs: 10_000, fair: false, queueTtlMs: 10_000, ...extra };
}

/** Waits until `check()` is true, polling; fails after `ms`. */
async function eventually(check: () => boolean, ms = 3_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(5);
  }
}

/** Runs the store contract against the backend `makeStore` creates. */
export function run(name: string, makeStore: MakeStore): void {
  describe(`store contract: ${name}`, () => {
    let store: Store;
    beforeAll(async () => {
      store = await makeStore();
    });
    afterAll(async () => {
      await store.close();
    });

    describe('shared pieces', () => {
      it('time() is the store clock in ms since the epoch', async () => {
        const t = await store.time();
        expect(Number.isInteger(t)).toBe(true);
        // Same machine: the store clock and ours agree to well within a minute.
        expect(Math.abs(t - Date.now())).toBeLessThan(60_000);
      });

      it('changes: a subscriber receives what is published, until it unsubscribes', async () => {
        const channel = fresh('chan');
        const got: string[] = [];
        const other: string[] = [];
        const off = await store.changes.subscribe(channel, (m) => got.push(m));
        const offOther = await store.changes.subscribe(`${channel}-other`, (m) => other.push(m));
        await store.changes.publish(channel, 'one');
        await store.changes.publish(channel, 'two');
        await eventually(() => got.length === 2);
        expect(got).toEqual(['one', 'two']);
        expect(other).toEqual([]);
        await off();
        await off(); // twice is harmless
        await store.changes.publish(channel, 'three');
        await store.changes.publish(`${channel}-other`, 'x');
        await eventually(() => other.length === 1);
        expect(got).toEqual(['one', 'two']);
        await offOther();
      });

      it('changes: two subscribers of one channel both receive', async () => {
        const channel = fresh('chan');
        const a: string[] = [];
        const b: string[] = [];
        const offA = await store.changes.subscribe(channel, (m) => a.push(m));
        const offB = await store.changes.subscribe(channel, (m) => b.push(m));
        await store.changes.publish(channel, 'hello');
        await eventually(() => a.length === 1 && b.length === 1);
        await offA();
        await store.changes.publish(channel, 'again');
        await eventually(() => b.length === 2);
        expect(a).toEqual(['hello']);
        await offB();
      });
    });

    describe('locks', () => {
      it('grants a free resource with a positive token and refuses a second holder', async () => {
        const r = fresh('lock');
        const a = await store.locks.acquire(req(r, 'a', { ttlMs: 5_000 }));
        expect(a.acquired).toBe(true);
        if (!a.acquired) return;
        expect(Number.isSafeInteger(a.token) && a.token > 0).toBe(true);
        const b = await store.locks.acquire(req(r, 'b'));
        expect(b.acquired).toBe(false);
        if (b.acquired) return;
        expect(b.retryAfterMs).toBeGreaterThan(0);
        expect(b.retryAfterMs).toBeLessThanOrEqual(5_000);
        const state = await store.locks.inspect(r);
        expect(state.holder).toBe('a');
        expect(state.token).toBe(a.token);
        expect(state.ttlMs).toBeGreaterThan(0);
      });

      it('an acquire by the current holder id reports its grant and what is left of it', async () => {
        const r = fresh('lock');
        const first = await store.locks.acquire(req(r, 'a', { ttlMs: 5_000 }));
        const again = await store.locks.acquire(req(r, 'a', { ttlMs: 60_000 }));
        if (!first.acquired || !again.acquired) throw new Error('not acquired');
        expect(again.token).toBe(first.token); // the same grant, not a new one
        expect(again.remainingMs).toBeGreaterThan(0);
        expect(again.remainingMs).toBeLessThanOrEqual(5_000); // its lease is not renewed
        expect((await store.locks.acquire(req(r, 'b'))).acquired).toBe(false);
      });

      it('extend and release act only for the holder; releasing twice is harmless', async () => {
        const r = fresh('lock');
        await store.locks.acquire(req(r, 'a'));
        expect(await store.locks.extend(r, 'b', 10_000)).toBe(false);
        expect(await store.locks.release(r, 'b')).toBe(false);
        expect((await store.locks.inspect(r)).holder).toBe('a');
        expect(await store.locks.extend(r, 'a', 20_000)).toBe(true);
        expect((await store.locks.inspect(r)).ttlMs).toBeGreaterThan(10_000);
        expect(await store.locks.release(r, 'a')).toBe(true);
        expect(await store.locks.release(r, 'a')).toBe(false);
        expect(await store.locks.extend(r, 'a', 10_000)).toBe(false);
        const state = await store.locks.inspect(r);
        expect(state).toEqual({ holder: undefined, token: 0, ttlMs: 0, queue: [] });
      });

      it('a lease ends after its ttl: another holder gets it, the old one cannot extend or release', async () => {
        const r = fresh('lock');
        const a = await store.locks.acquire(req(r, 'a', { ttlMs: 40 }));
        await sleep(150);
        expect(await store.locks.extend(r, 'a', 10_000)).toBe(false);
        const b = await store.locks.acquire(req(r, 'b'));
        expect(b.acquired).toBe(true);
        expect(await store.locks.release(r, 'a')).toBe(false);
        expect((await store.locks.inspect(r)).holder).toBe('b');
        if (a.acquired && b.acquired) expect(b.token).toBeGreaterThan(a.token);
      });

      it('extend pushes the end of the lease out', async () => {
        const r = fresh('lock');
        // Generous margins: a loaded machine may oversleep; 4 x 200 ms outlasts one 600 ms lease.
        await store.locks.acquire(req(r, 'a', { ttlMs: 600 }));
        for (let i = 0; i < 4; i++) {
          await sleep(200);
          expect(await store.locks.extend(r, 'a', 600)).toBe(true);
        }
        expect((await store.locks.acquire(req(r, 'b'))).acquired).toBe(false);
      });

      it('tokens strictly increase per resource, over releases and expiries', async () => {
        const r = fresh('lock');
        const other = fresh('lock');
        let last = 0;
        for (let i = 0; i < 30; i++) {
          const got = await store.locks.acquire(req(r, `h${i}`, { ttlMs: i % 5 === 0 ? 1 : 10_000 }));
          expect(got.acquired).toBe(true);
          if (!got.acquired) return;
          expect(got.token).toBeGreaterThan(last);
          last = got.token;
          if (i % 5 === 0) await sleep(5);
          else await store.locks.release(r, `h${i}`);
          // Another resource's grants do not disturb this one's order.
          const o = await store.locks.acquire(req(other, `o${i}`));
          if (o.acquired) await store.locks.release(other, `o${i}`);
        }
      });

      it('raiseToken lifts the holder token and every later token above it', async () => {
        const r = fresh('lock');
        const a = await store.locks.acquire(req(r, 'a'));
        if (!a.acquired) throw new Error('not acquired');
        const high = a.token + 5_000_000;
        expect(await store.locks.raiseToken(r, 'b', high)).toBe(false);
        expect(await store.locks.raiseToken(r, 'a', high)).toBe(true);
        expect((await store.locks.inspect(r)).token).toBe(high);
        expect(await store.locks.raiseToken(r, 'a', a.token)).toBe(true); // never lowers
        expect((await store.locks.inspect(r)).token).toBe(high);
        await store.locks.release(r, 'a');
        const b = await store.locks.acquire(req(r, 'b'));
        if (!b.acquired) throw new Error('not acquired');
        expect(b.token).toBe(high + 1);
      });

      it('resource names with braces, # and non-ASCII characters stay distinct', async () => {
        const names = ['a{b}c', '{x}', '#abc', 'ключ:7', 'a}b{', `${'n'.repeat(900)}{`, 'plain'];
        for (const n of names) expect((await store.locks.acquire(req(n + counter, 'h'))).acquired).toBe(true);
        for (const n of names) {
          const state = await store.locks.inspect(n + counter);
          expect(state.holder).toBe('h');
          expect(await store.locks.release(n + counter, 'h')).toBe(true);
        }
      });

      it('onReleased names the head of the fair queue when the resource is released', async () => {
        const r = fresh('lock');
        const quiet = fresh('lock');
        const seen: string[] = [];
        const subscription = store.locks.onReleased((resource, next) => seen.push(`${resource} -> ${next}`));
        await subscription.ready;
        await store.locks.acquire(req(quiet, 'a'));
        expect((await store.locks.acquire(req(quiet, 'plain'))).acquired).toBe(false);
        await store.locks.release(quiet, 'a'); // only plain waiters: they poll, no announcement
        await store.locks.acquire(req(r, 'a'));
        expect((await store.locks.acquire(req(r, 'b', { fair: true }))).acquired).toBe(false);
        expect((await store.locks.acquire(req(r, 'c', { fair: true }))).acquired).toBe(false);
        await store.locks.release(r, 'a');
        await eventually(() => seen.includes(`${r} -> b`));
        expect(seen.filter((x) => x.startsWith(quiet))).toEqual([]);
        subscription.close();
        subscription.close(); // twice is harmless
      });

      it("onReleased with an owner hears only hand-overs to that owner's holder ids", async () => {
        const r = fresh('lock');
        const mine: string[] = [];
        const all: string[] = [];
        const own = store.locks.onReleased((resource, holder) => mine.push(`${resource} -> ${holder}`), 'own');
        const every = store.locks.onReleased((resource, holder) => all.push(`${resource} -> ${holder}`));
        await Promise.all([own.ready, every.ready]);
        await store.locks.acquire(req(r, 'a'));
        for (const w of ['other.1', 'own.2', 'owner.3']) {
          expect((await store.locks.acquire(req(r, w, { fair: true }))).acquired).toBe(false);
        }
        await store.locks.release(r, 'a');
        await store.locks.release(r, 'other.1');
        await store.locks.release(r, 'own.2');
        await eventually(() => all.length === 3);
        expect(all).toEqual([`${r} -> other.1`, `${r} -> own.2`, `${r} -> owner.3`]);
        await eventually(() => mine.length === 1);
        await sleep(20);
        expect(mine).toEqual([`${r} -> own.2`]);
        own.close();
        every.close();
        for (const bad of ['', 'a.b', 'a b', 7]) {
          expect(() => store.locks.onReleased(() => {}, bad as string)).toThrow(
            expect.objectContaining({ code: 'ERR_INVALID_OPTION', field: 'owner' }),
          );
        }
      });

      describe('fair queue', () => {
        it('hands over in arrival order; a waiter out of turn and plain acquirers wait', async () => {
          const r = fresh('fair');
          await store.locks.acquire(req(r, 'a'));
          for (const w of ['b', 'c', 'd']) {
            expect((await store.locks.acquire(req(r, w, { fair: true, ttlMs: 7_000 }))).acquired).toBe(false);
          }
          expect((await store.locks.inspect(r)).queue).toEqual(['b', 'c', 'd']);
          // Polling again keeps the place, it does not queue twice.
          const again = await store.locks.acquire(req(r, 'c', { fair: true, ttlMs: 7_000 }));
          expect(again).toEqual({ acquired: false, retryAfterMs: expect.any(Number), position: 1 });
          expect((await store.locks.inspect(r)).queue).toEqual(['b', 'c', 'd']);
          // The release hands the resource to b, with the ttl b asked for, and a new token.
          await store.locks.release(r, 'a');
          const afterA = await store.locks.inspect(r);
          expect(afterA.holder).toBe('b');
          expect(afterA.ttlMs).toBeGreaterThan(6_000);
          expect(afterA.ttlMs).toBeLessThanOrEqual(7_000);
          expect(afterA.queue).toEqual(['c', 'd']);
          const early = await store.locks.acquire(req(r, 'c', { fair: true, ttlMs: 7_000 }));
          expect(early).toMatchObject({ acquired: false, position: 0 });
          expect((await store.locks.acquire(req(r, 'plain'))).acquired).toBe(false);
          const b = await store.locks.acquire(req(r, 'b', { fair: true, ttlMs: 7_000 }));
          expect(b).toMatchObject({ acquired: true, token: afterA.token });
          await store.locks.release(r, 'b');
          expect((await store.locks.inspect(r)).holder).toBe('c');
          await store.locks.release(r, 'c');
          expect((await store.locks.inspect(r)).holder).toBe('d');
          await store.locks.release(r, 'd');
          expect(await store.locks.inspect(r)).toEqual({ holder: undefined, token: 0, ttlMs: 0, queue: [] });
          expect((await store.locks.acquire(req(r, 'plain'))).acquired).toBe(true);
        });

        it('a lease that ends unreleased goes to the head at its next poll; its release hands over to the next', async () => {
          const r = fresh('fair');
          await store.locks.acquire(req(r, 'a', { ttlMs: 40 }));
          await store.locks.acquire(req(r, 'b', { fair: true }));
          await store.locks.acquire(req(r, 'c', { fair: true }));
          await sleep(120); // a's lease ends; nobody is told
          expect((await store.locks.acquire(req(r, 'plain'))).acquired).toBe(false); // b and c are ahead
          expect((await store.locks.acquire(req(r, 'b', { fair: true }))).acquired).toBe(true);
          expect(await store.locks.release(r, 'b')).toBe(true);
          expect(await store.locks.inspect(r)).toMatchObject({ holder: 'c', queue: [] });
          expect(await store.locks.release(r, 'c')).toBe(true);
          // Queue gone: plain grants and releases again, and a later queue is served.
          expect((await store.locks.acquire(req(r, 'plain'))).acquired).toBe(true);
          expect((await store.locks.acquire(req(r, 'd', { fair: true }))).acquired).toBe(false);
          expect(await store.locks.release(r, 'plain')).toBe(true);
          expect((await store.locks.inspect(r)).holder).toBe('d');
        });

        it('a waiter that stops polling loses its place after queueTtlMs and is skipped', async () => {
          const r = fresh('fair');
          await store.locks.acquire(req(r, 'a'));
          await store.locks.acquire(req(r, 'dead', { fair: true, queueTtlMs: 40 }));
          await store.locks.acquire(req(r, 'live', { fair: true, queueTtlMs: 10_000 }));
          await sleep(150);
          expect((await store.locks.inspect(r)).queue).toEqual(['live']);
          await store.locks.release(r, 'a');
          expect((await store.locks.inspect(r)).holder).toBe('live');
        });

        it("a waiter's place lasts its own queueTtlMs, whatever another waiter asks for", async () => {
          // Found in review: each poll on Redis used to set the whole queue's expiry to the
          // poller's queueTtlMs, so a waiter with a short one cut everyone's places short.
          const r = fresh('fair');
          await store.locks.acquire(req(r, 'h'));
          await store.locks.acquire(req(r, 'long', { fair: true, queueTtlMs: 3_000 }));
          await store.locks.acquire(req(r, 'short', { fair: true, queueTtlMs: 100 })); // then stops polling
          await sleep(400);
          expect((await store.locks.inspect(r)).queue).toEqual(['long']);
          await store.locks.release(r, 'h');
          expect((await store.locks.inspect(r)).holder).toBe('long');
        });

        it('inspect lists only waiters whose places are live, wherever they stand in the queue', async () => {
          const r = fresh('fair');
          await store.locks.acquire(req(r, 'h'));
          await store.locks.acquire(req(r, 'live', { fair: true, queueTtlMs: 3_000 }));
          await store.locks.acquire(req(r, 'gone', { fair: true, queueTtlMs: 100 }));
          await sleep(300);
          expect((await store.locks.inspect(r)).queue).toEqual(['live']);
        });

        it('leaveQueue gives the place up; a resource handed over meanwhile goes to the next', async () => {
          const r = fresh('fair');
          const seen: string[] = [];
          const subscription = store.locks.onReleased((resource, holder, token) =>
            seen.push(`${resource} ${holder} ${token}`),
          );
          await subscription.ready;
          await store.locks.acquire(req(r, 'a'));
          await store.locks.acquire(req(r, 'b', { fair: true }));
          await store.locks.acquire(req(r, 'c', { fair: true }));
          await store.locks.acquire(req(r, 'd', { fair: true }));
          await store.locks.leaveQueue(r, 'c'); // gives up its place: the queue closes up
          expect((await store.locks.inspect(r)).queue).toEqual(['b', 'd']);
          await store.locks.release(r, 'a');
          const toB = await store.locks.inspect(r);
          await eventually(() => seen.includes(`${r} b ${toB.token}`));
          // b gives up just as the resource reaches it: it goes on to d.
          await store.locks.leaveQueue(r, 'b');
          await store.locks.leaveQueue(r, 'b'); // twice is harmless
          await store.locks.leaveQueue(r, 'nobody');
          const toD = await store.locks.inspect(r);
          expect(toD.holder).toBe('d');
          expect(toD.token).toBeGreaterThan(toB.token);
          await eventually(() => seen.includes(`${r} d ${toD.token}`));
          expect(toD.queue).toEqual([]);
          subscription.close();
        });
      });

      it('model check: at most one holder, FIFO hand-over, tokens increase (fast-check, no expiry)', async () => {
        type Op = { kind: 'acquire' | 'extend' | 'release' | 'leave' | 'raise'; who: number; fair: boolean };
        const op = fc.record({
          kind: fc.constantFrom<Op['kind']>('acquire', 'extend', 'release', 'leave', 'raise'),
          who: fc.integer({ min: 0, max: 3 }),
          fair: fc.boolean(),
        });
        await fc.assert(
          fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 25 }), async (ops) => {
            const r = fresh('model');
            let holder: number | undefined;
            let token = 0;
            let queue: number[] = [];
            let lastToken = 0;
            // The store hands a freed resource to the head of the queue.
            const handOver = async () => {
              const next = queue.shift();
              if (next === undefined) return;
              holder = next;
              const state = await store.locks.inspect(r);
              expect(state.token).toBeGreaterThan(lastToken);
              lastToken = token = state.token;
            };
            for (const { kind, who, fair } of ops) {
              const id = `w${who}`;
              if (kind === 'acquire') {
                const got = await store.locks.acquire(req(r, id, { fair }));
                if (holder === who) {
                  expect(got).toMatchObject({ acquired: true, token });
                } else if (holder === undefined && (queue.length === 0 || queue[0] === who)) {
                  expect(got.acquired).toBe(true);
                  if (!got.acquired) return;
                  expect(got.token).toBeGreaterThan(lastToken);
                  lastToken = token = got.token;
                  holder = who;
                  if (queue[0] === who) queue.shift();
                } else {
                  expect(got.acquired).toBe(false);
                  if (fair && !queue.includes(who)) queue.push(who);
                }
              } else if (kind === 'extend') {
                expect(await store.locks.extend(r, id, 10_000)).toBe(holder === who);
              } else if (kind === 'raise') {
                // Raised by a few, or (fair: true) asked to lower: it never lowers.
                const to = fair ? token - 1 : token + 3;
                expect(await store.locks.raiseToken(r, id, to)).toBe(holder === who);
                if (holder === who) lastToken = token = Math.max(token, to);
                if (holder !== undefined) expect((await store.locks.inspect(r)).token).toBe(token);
              } else if (kind === 'release') {
                // `fair` as release's hint (Redis: which script first): it never changes the outcome.
                expect(await store.locks.release(r, id, fair)).toBe(holder === who);
                if (holder === who) {
                  holder = undefined;
                  await handOver();
                }
              } else {
                await store.locks.leaveQueue(r, id);
                queue = queue.filter((w) => w !== who);
                if (holder === who) holder = undefined;
                if (holder === undefined) await handOver();
              }
              const state = await store.locks.inspect(r);
              expect(state.holder).toBe(holder === undefined ? undefined : `w${holder}`);
              expect(state.queue).toEqual(queue.map((w) => `w${w}`));
            }
          }),
          { numRuns: 25 },
        );
      });
    });

    rateLimitCases(() => store);

    it('close(): closed is true, calls fail with StoreUnavailableError, closing twice is harmless', async () => {
      const own = await makeStore();
      expect(own.closed).toBe(false);
      await own.close();
      await own.close();
      expect(own.closed).toBe(true);
      await expect(own.locks.acquire(req(fresh('x'), 'a'))).rejects.toBeInstanceOf(StoreUnavailableError);
      await expect(own.time()).rejects.toMatchObject({ code: 'ERR_STORE_UNAVAILABLE' });
      await expect(own.changes.publish('c', 'm')).rejects.toMatchObject({ code: 'ERR_STORE_UNAVAILABLE' });
      await expect(own.rateLimits.take('k', { capacity: 1, refillPerSec: 1 })).rejects.toBeInstanceOf(
        StoreUnavailableError,
      );
    });
  });
}
