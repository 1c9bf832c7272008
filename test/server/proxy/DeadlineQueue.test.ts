import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DeadlineQueue, type Timed } from '../../../server/proxy/DeadlineQueue.js';

class Item implements Timed {
  slot = -1;
  fired = 0;
  onDeadline(): void {
    this.fired++;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('DeadlineQueue', () => {
  it('fires live items once, after their timeout, and never cancelled ones', async () => {
    const q = new DeadlineQueue<Item>();
    const items = Array.from({ length: 5 }, () => new Item());
    for (const it of items) q.add(it, 30);
    q.cancel(items[1] as Item, 30);
    q.cancel(items[3] as Item, 30);
    q.cancel(items[3] as Item, 30); // twice is harmless
    await sleep(5);
    expect(items.map((i) => i.fired)).toEqual([0, 0, 0, 0, 0]);
    await sleep(80);
    expect(items.map((i) => i.fired)).toEqual([1, 0, 1, 0, 1]);
    expect(q.size).toBe(0);
  });

  it('keeps separate queues per timeout value and re-arms for later items', async () => {
    const q = new DeadlineQueue<Item>();
    const short = new Item();
    const long = new Item();
    q.add(long, 120);
    q.add(short, 20);
    await sleep(70);
    expect([short.fired, long.fired]).toEqual([1, 0]);
    const later = new Item();
    q.add(later, 20);
    await sleep(120);
    expect([short.fired, long.fired, later.fired]).toEqual([1, 1, 1]);
  });

  it('takes an own deadline a little sooner than the timeout, behind a later one too', async () => {
    let now = 1_000;
    const q = new DeadlineQueue<Item>(() => now);
    const first = new Item();
    const own = new Item();
    q.add(first, 30);
    now += 0.4;
    q.add(own, 30, 1_029.7); // due before `first` (1030), queued after it
    const alone = new Item();
    q.add(alone, 50, now + 49.2);
    now += 20;
    await sleep(40);
    expect([first.fired, own.fired, alone.fired]).toEqual([0, 0, 0]);
    now = 1_030;
    await sleep(40);
    expect([first.fired, own.fired, alone.fired]).toEqual([1, 1, 0]);
    now = 1_049.6;
    await sleep(80);
    expect(alone.fired).toBe(1);
    expect(q.size).toBe(0);
  });

  it('matches a model under random adds and cancels, across compactions', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.boolean(), { minLength: 1, maxLength: 5000 }), async (cancelled) => {
        const q = new DeadlineQueue<Item>();
        const items = cancelled.map(() => new Item());
        items.forEach((it, i) => {
          q.add(it, 15);
          // cancel some earlier items as we go, so that compaction runs while adding
          const j = i - 3;
          if (j >= 0 && cancelled[j]) q.cancel(items[j] as Item, 15);
        });
        for (let j = Math.max(0, items.length - 3); j < items.length; j++)
          if (cancelled[j]) q.cancel(items[j] as Item, 15);
        expect(q.size).toBe(cancelled.filter((c) => !c).length);
        await sleep(40);
        expect(items.map((i) => i.fired)).toEqual(cancelled.map((c) => (c ? 0 : 1)));
      }),
      { numRuns: 15 },
    );
  });
});
