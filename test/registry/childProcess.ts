/**
 * Child processes for the multi-process tests: a TypeScript file run with `node --import tsx`,
 * talking in lines (stdout from the child, stdin to it). Every child is killed by its own PID
 * when the test ends, and each wait is bounded.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** A running child. */
export interface Child {
  readonly process: ChildProcess;
  readonly pid: number;
  /** Every stdout line so far. */
  readonly lines: string[];
  /** Resolves with the first stdout line matching `test` (already seen or coming), or rejects after `ms`. */
  waitFor(test: (line: string) => boolean, ms?: number): Promise<string>;
  /** Writes one line to the child's stdin. */
  send(line: string): void;
  /** Sends `signal` to the child (by PID). */
  kill(signal?: NodeJS.Signals): void;
  /** Resolves with the exit code (or signal) once the child exited. */
  readonly exited: Promise<number | string>;
}

const children = new Set<Child>();

/** Starts `file` (relative to this folder's parent, e.g. 'config/fixtures/casWriter.ts') with `env`. */
export function startChild(file: string, env: Record<string, string>): Child {
  const path = fileURLToPath(new URL(`../${file}`, import.meta.url));
  const proc = spawn(process.execPath, ['--import', 'tsx', path], {
    env: { ...process.env, ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const waiters = new Set<{ test: (line: string) => boolean; resolve: (line: string) => void }>();
  let buffer = '';
  let stderr = '';
  proc.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    buffer += chunk;
    for (let cut = buffer.indexOf('\n'); cut >= 0; cut = buffer.indexOf('\n')) {
      const line = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 1);
      lines.push(line);
      for (const w of waiters) {
        if (w.test(line)) {
          waiters.delete(w);
          w.resolve(line);
        }
      }
    }
  });
  proc.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  const exited = new Promise<number | string>((resolve) => {
    proc.on('exit', (code, signal) => resolve(code ?? signal ?? 'unknown'));
  });
  const child: Child = {
    process: proc,
    pid: proc.pid ?? 0,
    lines,
    waitFor(test, ms = 30_000) {
      const seen = lines.find(test);
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const entry: { test: (line: string) => boolean; resolve: (line: string) => void } = { test, resolve };
        const timer = setTimeout(() => {
          waiters.delete(entry);
          reject(
            new Error(
              `child ${file} (pid ${proc.pid}) printed no matching line in ${ms} ms; stderr: ${stderr.slice(-2_000)}`,
            ),
          );
        }, ms);
        entry.resolve = (line: string) => {
          clearTimeout(timer);
          resolve(line);
        };
        waiters.add(entry);
        void exited.then((code) => {
          if (!waiters.has(entry)) return;
          waiters.delete(entry);
          clearTimeout(timer);
          reject(new Error(`child ${file} exited (${code}) first; stderr: ${stderr.slice(-2_000)}`));
        });
      });
    },
    send(line) {
      proc.stdin?.write(`${line}\n`);
    },
    kill(signal = 'SIGTERM') {
      if (proc.pid !== undefined && proc.exitCode === null && proc.signalCode === null) process.kill(proc.pid, signal);
    },
    exited,
  };
  children.add(child);
  void exited.then(() => children.delete(child));
  return child;
}

/** Kills every child still running (by PID) and waits for them; for afterAll/afterEach. */
export async function killChildren(): Promise<void> {
  const running = [...children];
  for (const c of running) c.kill('SIGKILL');
  await Promise.all(running.map((c) => c.exited));
}

/** Resolves with the next line on this process' stdin (for fixtures). */
export function nextStdinLine(): Promise<string> {
  return new Promise((resolve) => {
    let buffer = '';
    const onData = (chunk: Buffer | string) => {
      buffer += String(chunk);
      const cut = buffer.indexOf('\n');
      if (cut < 0) return;
      process.stdin.off('data', onData);
      process.stdin.pause();
      resolve(buffer.slice(0, cut));
    };
    process.stdin.on('data', onData);
    process.stdin.resume();
  });
}
