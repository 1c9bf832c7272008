/**
 * What loading ioredis costs every string in the process, and what ringway does about it.
 *
 *   npm run bench stringPrototype      (or: npx tsx bench/stringPrototype.bench.ts)
 *
 * ioredis' resp/verbatim-string.js declares `class VerbatimString extends String`. Once any
 * object has String.prototype as its prototype, V8 (Node 20) stops inlining String.prototype
 * methods called on string primitives: `s.charCodeAt(i)`, `s.indexOf(x)`, `s.startsWith(x)`
 * all get slower, in every module of the process, for the rest of its life. It cannot be
 * undone, so each state runs in its own child process:
 *
 * - `pristine`: nothing extends String (ringway alone: it loads ioredis only for a Redis store
 *   made from a URL);
 * - `extends String`: `Object.create(String.prototype)` first, the trigger alone;
 * - `ioredis`: `import 'ioredis'` first, as an app that uses it does;
 * - `ringway loads ioredis`: `redisStore(url)` first, which loads ioredis with a stand-in for
 *   its VerbatimString that does not extend String (src/store/redis/loadIoredis.ts).
 *
 * Tasks per child (interleaved rounds, bench/harness.ts): copying a 12-byte ASCII key into
 * a byte array with `key.charCodeAt(i)` (what ringway's WASM key path did), with a captured
 * `charCodeAt.call(key, i)` (what it does now), with `TextEncoder.encodeInto`; a Maglev
 * lookup through ringway (from dist/ when built); `indexOf` and `startsWith` for scale.
 * Five rounds of one child per state, back to back; medians, and
 * each state's ratio to the pristine child of its own round. Writes bench/results/stringPrototype.json.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { type BenchTask, interleave, machine, type TaskResult, writeResults } from './harness.js';
import { loadRingway } from './ringway.js';

const STATES = ['pristine', 'extends String', 'ioredis', 'ringway loads ioredis'] as const;
type State = (typeof STATES)[number];
const CHILDREN = 5;
const OPS = 100_000;

async function child(state: State): Promise<TaskResult[]> {
  if (state === 'ioredis') await import('ioredis');
  // ioredis' trigger alone: an object whose prototype is String.prototype.
  if (state === 'extends String') Object.create(String.prototype);
  const { ringway } = await loadRingway();
  if (state === 'ringway loads ioredis') {
    await ringway.redisStore('redis://127.0.0.1:1', { redisOptions: { lazyConnect: true } }).close();
  }
  const keys = Array.from({ length: 1024 }, (_, i) => `user:${((i * 2654435761) >>> 0).toString(36)}`);
  const u8 = new Uint8Array(256);
  const charCodeAt = String.prototype.charCodeAt;
  const encoder = new TextEncoder();
  const table = new ringway.MaglevTable(Array.from({ length: 16 }, (_, i) => `node-${i}`));
  // Each task its own loop (not one shared helper taking a callback), so each call site
  // sees one function and V8 can inline it as it would in real code.
  const tasks: BenchTask[] = [
    {
      name: 'copy key: key.charCodeAt(i)',
      units: OPS,
      fn: () => {
        let x = 0;
        for (let k = 0; k < OPS; k++) {
          const key = keys[k & 1023] as string;
          const n = key.length;
          for (let i = 0; i < n; i++) u8[i] = key.charCodeAt(i);
          x += n;
        }
        return x;
      },
    },
    {
      name: 'copy key: charCodeAt.call(key, i)',
      units: OPS,
      fn: () => {
        let x = 0;
        for (let k = 0; k < OPS; k++) {
          const key = keys[k & 1023] as string;
          const n = key.length;
          for (let i = 0; i < n; i++) u8[i] = charCodeAt.call(key, i);
          x += n;
        }
        return x;
      },
    },
    {
      name: 'copy key: encodeInto',
      units: OPS,
      fn: () => {
        let x = 0;
        for (let k = 0; k < OPS; k++) x += encoder.encodeInto(keys[k & 1023] as string, u8).written;
        return x;
      },
    },
    {
      name: 'MaglevTable.getIndex',
      units: OPS,
      fn: () => {
        let x = 0;
        for (let k = 0; k < OPS; k++) x += table.getIndex(keys[k & 1023] as string);
        return x;
      },
    },
    {
      name: "key.indexOf(':')",
      units: OPS,
      fn: () => {
        let x = 0;
        for (let k = 0; k < OPS; k++) x += (keys[k & 1023] as string).indexOf(':');
        return x;
      },
    },
    {
      name: "key.startsWith('user')",
      units: OPS,
      fn: () => {
        let x = 0;
        for (let k = 0; k < OPS; k++) x += (keys[k & 1023] as string).startsWith('user') ? 1 : 0;
        return x;
      },
    },
  ];
  return interleave(tasks, { rounds: 5, iterations: 5 });
}

const at = process.argv.indexOf('--child');
if (at !== -1) {
  const state = process.argv[at + 1] as State;
  process.stdout.write(JSON.stringify(await child(state)));
} else {
  const self = fileURLToPath(import.meta.url);
  const runs = new Map<State, TaskResult[][]>(STATES.map((s) => [s, []]));
  for (let c = 0; c < CHILDREN; c++) {
    for (const state of c % 2 === 0 ? STATES : [...STATES].reverse()) {
      const out = execFileSync(process.execPath, ['--import', 'tsx', self, '--child', state], { encoding: 'utf8' });
      (runs.get(state) as TaskResult[][]).push(JSON.parse(out) as TaskResult[]);
    }
  }
  // The host's speed drifts by up to 2x over a minute here, so each state is compared with
  // the pristine child of the same round (run back to back), and the ratios are medianed.
  const median = (xs: number[]) => xs.slice().sort((a, b) => a - b)[xs.length >> 1] as number;
  const names = (runs.get('pristine') as TaskResult[][])[0]?.map((r) => r.name) ?? [];
  const nsOf = (state: State, c: number, name: string) =>
    ((runs.get(state) as TaskResult[][])[c] as TaskResult[]).find((r) => r.name === name)?.nsPerUnit as number;
  const rounds = [...Array(CHILDREN).keys()];
  const others = STATES.filter((x) => x !== 'pristine');
  const rows = [
    `| task | ${STATES.map((x) => `ns, ${x}`).join(' | ')} | ${others.map((x) => `${x} / pristine`).join(' | ')} |`,
    `|---|${STATES.map(() => '---:').join('|')}|${others.map(() => '---:').join('|')}|`,
  ];
  const summary: Record<string, Record<string, number>> = {};
  for (const name of names) {
    const ns = STATES.map((state) => median(rounds.map((c) => nsOf(state, c, name))));
    const ratios = others.map((state) => median(rounds.map((c) => nsOf(state, c, name) / nsOf('pristine', c, name))));
    summary[name] = Object.fromEntries([
      ...STATES.map((state, i) => [`${state} ns`, ns[i] as number]),
      ...others.map((state, i) => [`${state} / pristine`, ratios[i] as number]),
    ]);
    rows.push(
      `| ${name} | ${ns.map((v) => v.toFixed(1)).join(' | ')} | ${ratios.map((v) => `${v.toFixed(2)}x`).join(' | ')} |`,
    );
  }
  console.log(`\nper call, medians of ${CHILDREN} child processes per state\n`);
  console.log(rows.join('\n'));
  writeResults('stringPrototype', {
    machine: machine(),
    children: CHILDREN,
    ops: OPS,
    summary,
    runs: Object.fromEntries(runs),
  });
}
