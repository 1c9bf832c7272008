/**
 * Shared bench plumbing: interleaved rounds of tinybench runs (every task once per round,
 * in a rotating order, so drift on a shared machine hits every task alike), medians over
 * rounds, a markdown table, and bench/results/<name>.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { Bench } from 'tinybench';

export interface BenchTask {
  name: string;
  /** The work of one sample. */
  fn: () => unknown;
  /** Units of work per call (keys, requests...), to report time per unit. */
  units: number;
}

export interface TaskResult {
  name: string;
  /** Median over rounds of the per-round median time per unit, in nanoseconds. */
  nsPerUnit: number;
  /** Units per second at that median. */
  perSecond: number;
  /** Per-round medians (ns per unit), for the spread. */
  rounds: number[];
}

export interface InterleaveOptions {
  /** Rounds; each runs every task. @default 7 */
  rounds?: number;
  /** Samples per task per round. @default 5 */
  iterations?: number;
}

function median(values: number[]): number {
  const s = values.slice().sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

/** Runs the tasks in interleaved rounds and returns medians. */
export async function interleave(tasks: BenchTask[], options: InterleaveOptions = {}): Promise<TaskResult[]> {
  const rounds = options.rounds ?? 7;
  const iterations = options.iterations ?? 5;
  const samples = new Map<string, number[]>(tasks.map((t) => [t.name, []]));
  for (let r = 0; r < rounds; r++) {
    const bench = new Bench({ iterations, time: 0, warmup: true, warmupIterations: 2, warmupTime: 0 });
    const order = tasks.map((_, i) => tasks[(i + r) % tasks.length] as BenchTask);
    for (const t of order) bench.add(t.name, t.fn);
    await bench.run();
    for (const task of bench.tasks) {
      const result = task.result;
      if (result.state !== 'completed') throw new Error(`bench task ${task.name} ${result.state}`);
      const t = tasks.find((x) => x.name === task.name) as BenchTask;
      (samples.get(t.name) as number[]).push((result.latency.p50 * 1e6) / t.units);
    }
  }
  return tasks.map((t) => {
    const rs = samples.get(t.name) as number[];
    const ns = median(rs);
    return { name: t.name, nsPerUnit: ns, perSecond: 1e9 / ns, rounds: rs.map((x) => Number(x.toFixed(2))) };
  });
}

/** A markdown table of results with a ratio column against `baseline`. */
export function table(results: TaskResult[], baseline: string, unit = 'key'): string {
  const base = results.find((r) => r.name === baseline);
  const lines = [`| implementation | ns/${unit} | ${unit}s/s | vs ${baseline} |`, '|---|---:|---:|---:|'];
  for (const r of results) {
    const ratio = base ? (base.nsPerUnit / r.nsPerUnit).toFixed(2) : '';
    lines.push(`| ${r.name} | ${r.nsPerUnit.toFixed(1)} | ${fmt(r.perSecond)} | ${ratio}x |`);
  }
  return lines.join('\n');
}

function fmt(n: number): string {
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}k`;
  return n.toFixed(0);
}

/** The machine, for the results file. */
export function machine(): Record<string, unknown> {
  return { node: process.version, cpu: cpus()[0]?.model, cores: cpus().length, date: new Date().toISOString() };
}

/** Writes bench/results/<name>.json. */
export function writeResults(name: string, data: unknown): void {
  const dir = new URL('./results/', import.meta.url);
  mkdirSync(dir, { recursive: true });
  writeFileSync(new URL(`${name}.json`, dir), `${JSON.stringify(data, null, 2)}\n`);
}
