import { Worker } from 'node:worker_threads';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createBalancer } from '../../../src/balancer/createBalancer.js';
import { EndpointState } from '../../../src/balancer/EndpointState.js';
import { MAX_SCHEDULE, WeightedRoundRobinStrategy } from '../../../src/balancer/strategies/WeightedRoundRobin.js';
import { endpoints, tally } from '../helpers.js';

/** nginx's smooth weighted round robin, transcribed plainly: O(n) per pick. */
function nginx(weights: readonly number[], picks: number): number[] {
  const current = weights.map(() => 0);
  const total = weights.reduce((a, b) => a + b, 0);
  const out: number[] = [];
  for (let p = 0; p < picks; p++) {
    let best = -1;
    for (let i = 0; i < weights.length; i++) {
      current[i] = (current[i] as number) + (weights[i] as number);
      if (best === -1 || (current[i] as number) > (current[best] as number)) best = i;
    }
    current[best] = (current[best] as number) - total;
    out.push(best);
  }
  return out;
}

function states(weights: readonly number[]): EndpointState[] {
  return weights.map(
    (weight, i) => new EndpointState({ id: `e${i}`, address: `a${i}`, weight, zone: undefined, meta: {} }),
  );
}

/**
 * For each list of weights, the ids of `n` acquire + release on a weighted-round-robin balancer,
 * computed in a worker thread: a pick that loops forever is a synchronous loop no test timeout
 * can interrupt, so the worker is terminated after `deadlineMs` and the promise rejects instead.
 */
async function sequencesInWorker(weightSets: readonly number[][], n: number, deadlineMs: number): Promise<string[][]> {
  const worker = new Worker(
    `const { parentPort, workerData } = require('node:worker_threads');
import(workerData.tsx).then(({ tsImport }) => tsImport(workerData.module, workerData.parent)).then(({ createBalancer }) => {
  parentPort.postMessage(workerData.weightSets.map((weights) => {
    const lb = createBalancer({
      strategy: 'weighted-round-robin',
      endpoints: weights.map((weight, i) => ({ id: 'e' + i, address: 'x:' + (i + 1), weight })),
    });
    const seq = [];
    for (let i = 0; i < workerData.n; i++) {
      const lease = lb.acquire();
      seq.push(lease === undefined ? '-' : lease.endpoint.id);
      lease?.release();
    }
    return seq;
  }));
});`,
    {
      eval: true,
      workerData: {
        tsx: import.meta.resolve('tsx/esm/api'),
        module: new URL('../../../src/balancer/createBalancer.ts', import.meta.url).href,
        parent: import.meta.url,
        weightSets,
        n,
      },
    },
  );
  let timer: NodeJS.Timeout | undefined;
  try {
    return await new Promise<string[][]>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
      timer = setTimeout(() => reject(new Error(`no answer in ${deadlineMs} ms: acquire() hangs`)), deadlineMs);
    });
  } finally {
    clearTimeout(timer);
    await worker.terminate();
  }
}

function picks(strategy: WeightedRoundRobinStrategy, list: EndpointState[], n: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(list.indexOf(strategy.pick(undefined, undefined) as EndpointState));
  return out;
}

describe('weighted-round-robin (smooth, as nginx)', () => {
  it('weights a=5, b=1, c=1 give a a b a c a a, over and over', () => {
    const lb = createBalancer({
      strategy: 'weighted-round-robin',
      endpoints: [
        { id: 'a', address: 'x:1', weight: 5 },
        { id: 'b', address: 'x:2', weight: 1 },
        { id: 'c', address: 'x:3', weight: 1 },
      ],
    });
    const seq: string[] = [];
    for (let i = 0; i < 21; i++) {
      const lease = lb.acquire();
      seq.push(lease?.endpoint.id ?? '-');
      lease?.release({ ok: true });
    }
    expect(seq.join(' ')).toBe('a a b a c a a a a b a c a a a a b a c a a');
  });

  it('gives exactly the sequence of nginx’s O(n) loop, for any integer weights', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 20 }), { minLength: 1, maxLength: 40 }),
        fc.integer({ min: 1, max: 600 }),
        (weights, n) => {
          const s = new WeightedRoundRobinStrategy();
          const list = states(weights);
          s.setEndpoints(list);
          expect(picks(s, list, n)).toEqual(nginx(weights, n));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('matches nginx with large and unequal weights too', () => {
    const weights = Array.from({ length: 300 }, (_, i) => ((i * 7919) % 1000) + 1);
    const s = new WeightedRoundRobinStrategy();
    const list = states(weights);
    s.setEndpoints(list);
    expect(picks(s, list, 20_000)).toEqual(nginx(weights, 20_000));
  });

  it('replays the recorded period exactly, over many periods', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 6 }), { minLength: 1, maxLength: 8 }), (weights) => {
        const s = new WeightedRoundRobinStrategy();
        const list = states(weights);
        s.setEndpoints(list);
        const n = weights.reduce((a, b) => a + b, 0) * 5 + 3;
        expect(picks(s, list, n)).toEqual(nginx(weights, n));
      }),
    );
  });

  it('matches nginx when the period is too long to record, across rebases of time', () => {
    const weights = [MAX_SCHEDULE, 1, 2, 7];
    const s = new WeightedRoundRobinStrategy(7);
    const list = states(weights);
    s.setEndpoints(list);
    expect(picks(s, list, 5_000)).toEqual(nginx(weights, 5_000));
  });

  it('never hangs on weights a rounding error apart, and still takes smooth turns', async () => {
    // Weights equal but for the last bit: the step at which one line overtakes the other is
    // past 2^53, where a step counter no longer moves, and acquire() used to loop forever.
    const weightSets = [
      [0.3, 0.1 + 0.2],
      [1, 1.0000000000000002],
      [1 / 3, 1 - 2 / 3],
    ];
    for (const seq of await sequencesInWorker(weightSets, 1_000, 8_000)) {
      const counts = tally(seq);
      expect(counts.get('e0')).toBe(500);
      expect(counts.get('e1')).toBe(500);
      // Smooth: never more than two turns in a row for either (rounding may pair two).
      expect(seq.join(' ')).not.toMatch(/(e\d) \1 \1/);
    }
  }, 10_000);

  it('splits traffic in proportion to fractional weights', () => {
    const weights = [0.5, 1.5, 3];
    const s = new WeightedRoundRobinStrategy();
    const list = states(weights);
    s.setEndpoints(list);
    const counts = tally(picks(s, list, 5_000).map(String));
    expect(counts.get('0')).toBe(500);
    expect(counts.get('1')).toBe(1_500);
    expect(counts.get('2')).toBe(3_000);
  });

  it('restarts the schedule when the rotation changes', () => {
    const s = new WeightedRoundRobinStrategy();
    const list = states([5, 1, 1]);
    s.setEndpoints(list);
    picks(s, list, 3);
    s.setEndpoints(list.slice(0, 2));
    expect(picks(s, list, 6)).toEqual(nginx([5, 1], 6));
    s.setEndpoints([]);
    expect(s.pick(undefined, undefined)).toBeUndefined();
  });

  it('a skipped endpoint forfeits its turn; all skipped gives undefined', () => {
    const s = new WeightedRoundRobinStrategy();
    const list = states([5, 1, 1]);
    s.setEndpoints(list);
    const notA = (e: EndpointState) => e.id === 'e0';
    const got = [];
    for (let i = 0; i < 7; i++) got.push(s.pick(undefined, notA)?.id);
    expect(got.every((id) => id !== 'e0')).toBe(true);
    expect(tally(got as string[]).get('e1')).toBeGreaterThan(0);
    expect(tally(got as string[]).get('e2')).toBeGreaterThan(0);
    expect(s.pick(undefined, () => true)).toBeUndefined();
  });

  it('balances 1000 endpoints exactly over one period', () => {
    const lb = createBalancer({ strategy: 'weighted-round-robin', endpoints: endpoints(1000, [3, 2]) });
    const seen: string[] = [];
    for (let i = 0; i < 1003; i++) {
      const lease = lb.acquire();
      seen.push(lease?.endpoint.id as string);
      lease?.release({ ok: true });
    }
    const counts = tally(seen);
    expect(counts.get('e0')).toBe(3);
    expect(counts.get('e1')).toBe(2);
    expect(counts.get('e999')).toBe(1);
  });
});
