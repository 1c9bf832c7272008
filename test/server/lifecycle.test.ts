// What an operator meets around the gateway's life, on real processes: `node
// dist/server/cli.js gateway ...` (the built CLI: run `npm run build` first), redis-server
// processes of the test's own, HTTP upstreams on 127.0.0.1. Start-up faults (ports taken, a
// Redis away, silent or dying just after the start-up check, configuration files missing,
// unreadable or invalid) end with a line on stderr that names the cause, a non-zero exit code
// and no hang; shutdowns (requests in flight, a stream longer than the drain limit, a second
// signal, Redis killed or paused, a signal during the start) end within a bound tied to the
// configured limits. Bounds are generous "not a hang" limits, not timings.
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ServiceRegistry } from '../../src/registry/ServiceRegistry.js';
import { redisStore } from '../../src/store/redis/RedisStore.js';
import { haveRedisServerBinary, type RedisServer, startRedisServer } from '../helpers/redis.js';
import { closedPort, configFile, send, startUpstream, tryConnect, type Upstream, until } from './helpers.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CLI_JS = join(ROOT, 'dist/server/cli.js');
const TOKEN = 'lifecycle-token-0123456789abcdef';

beforeAll(() => {
  expect(existsSync(CLI_JS), `${CLI_JS} is missing: run npm run build first`).toBe(true);
});

/** A CLI process of this file. */
interface Cli {
  readonly proc: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves once the process exited: its code, the signal that ended it, and when. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
  /** Waits until stdout or stderr matches `re` (throws after `ms`, or when the process exits first). */
  waitFor(re: RegExp, ms?: number): Promise<RegExpExecArray>;
  /** Sends `signal`; returns when (Date.now()). */
  signal(signal: NodeJS.Signals): number;
}

/**
 * What one test started: processes (killed by their own PID if still running) and servers,
 * closed when the test ends, latest first. Per test, so that tests can run concurrently.
 */
class Scope {
  readonly #cleanups: (() => Promise<void> | void)[] = [];

  add(cleanup: () => Promise<void> | void): void {
    this.#cleanups.push(cleanup);
  }

  async close(): Promise<void> {
    while (this.#cleanups.length > 0) await (this.#cleanups.pop() as () => Promise<void> | void)();
  }
}

/** A scope closed when the test ends (`onTestFinished` of the test's context). */
function scope(onTestFinished: (fn: () => Promise<void>) => void): Scope {
  const s = new Scope();
  onTestFinished(() => s.close());
  return s;
}

/** Runs the built CLI with `args` (no REDIS_URL or RINGWAY_ADMIN_TOKEN from the environment). */
function cli(s: Scope, args: string[], options: { uid?: number } = {}): Cli {
  const proc = spawn(process.execPath, [CLI_JS, ...args], {
    env: { ...process.env, REDIS_URL: '', RINGWAY_ADMIN_TOKEN: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(options.uid === undefined ? {} : { uid: options.uid, gid: options.uid }),
  });
  s.add(() => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
  });
  let out = '';
  let err = '';
  proc.stdout?.on('data', (c: Buffer) => {
    out += c.toString();
  });
  proc.stderr?.on('data', (c: Buffer) => {
    err += c.toString();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) =>
    proc.once('exit', (code, signal) => resolve({ code, signal, at: Date.now() })),
  );
  return {
    proc,
    stdout: () => out,
    stderr: () => err,
    exited,
    async waitFor(re, ms = 20_000) {
      let m: RegExpExecArray | null = null;
      await until(
        () => {
          m = re.exec(out + err);
          if (m === null && (proc.exitCode !== null || proc.signalCode !== null)) {
            throw new Error(`exited (${proc.exitCode ?? proc.signalCode}) before ${re}: ${out}${err}`);
          }
          return m !== null;
        },
        ms,
        `${re} in: ${out}${err}`,
      );
      return m as unknown as RegExpExecArray;
    },
    signal(signal) {
      proc.kill(signal);
      return Date.now();
    },
  };
}

/**
 * Waits up to `ms` for `p` to exit and returns how it ended. A process still running then is
 * killed, and the test fails with `output()` (by default what it printed).
 */
async function exited(
  p: Cli,
  ms: number,
  output: () => string = () => p.stdout() + p.stderr(),
): Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }> {
  let timer: NodeJS.Timeout | undefined;
  const result = await Promise.race([
    p.exited,
    new Promise<'hang'>((resolve) => {
      timer = setTimeout(() => resolve('hang'), ms);
    }),
  ]);
  clearTimeout(timer);
  if (result === 'hang') {
    p.proc.kill('SIGKILL');
    expect.fail(`no exit within ${ms} ms: ${output()}`);
  }
  return result;
}

/** Starts the CLI and waits for its "ready" line; returns it with its proxy and admin ports. */
async function startedGateway(s: Scope, args: string[]): Promise<{ gw: Cli; port: number; admin: number }> {
  const gw = cli(s, ['gateway', ...args, '--admin-port', '0', '--admin-token', TOKEN]);
  await gw.waitFor(/ringway gateway ready/);
  const port = Number((await gw.waitFor(/"msg":"listening at http:\/\/127\.0\.0\.1:(\d+)"/))[1]);
  const admin = Number((await gw.waitFor(/admin API listening at http:\/\/127\.0\.0\.1:(\d+)/))[1]);
  return { gw, port, admin };
}

/** A TCP port held by this process until the test ends. */
async function portInUse(s: Scope): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  s.add(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return (server.address() as { port: number }).port;
}

/** An upstream of the test, closed after it. */
async function upstream(s: Scope, handler: Parameters<typeof startUpstream>[0]): Promise<Upstream> {
  const u = await startUpstream(handler);
  s.add(() => u.close());
  return u;
}

/** A redis-server of the test, stopped (SIGKILL, by PID) after it. */
async function redisServer(s: Scope): Promise<RedisServer> {
  const redis = await startRedisServer();
  s.add(() => redis.stop());
  return redis;
}

const tempDirs: string[] = [];
afterAll(() => {
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A new temporary directory (removed after the file), that anyone may enter. */
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'ringway-lifecycle-'));
  tempDirs.push(dir);
  chmodSync(dir, 0o755);
  return dir;
}

/** Writes `text` to `name` in a new temporary directory; returns the path. */
function textFile(name: string, text: string): string {
  const file = join(tempDir(), name);
  writeFileSync(file, text);
  return file;
}

/** A configuration whose one route goes to `upstreamUrl` (by default a port nothing listens on). */
function config(extra: Record<string, unknown> = {}, upstreamUrl = 'http://127.0.0.1:1'): string {
  return configFile({
    listen: { host: '127.0.0.1', port: 0 },
    routes: [{ match: { prefix: '/' }, service: 'a' }],
    services: { a: { static: [upstreamUrl] } },
    ...extra,
  });
}

/** Stack frames (`    at f (file:1:2)`): never what an operator should get as the message. */
const STACK = /^\s+at /m;

describe('start-up faults: stderr names the cause, exit 1, no hang', () => {
  it('the proxy port in use: names the address and the flags, exit 1', async ({ onTestFinished }) => {
    const s = scope(onTestFinished);
    const busy = await portInUse(s);
    const p = cli(s, ['gateway', '-c', config(), '--port', String(busy), '--admin-port', '0']);
    const r = await exited(p, 15_000, () => p.stderr());
    expect(r).toMatchObject({ code: 1 });
    expect(p.stderr()).toBe(
      `ringway: 127.0.0.1:${busy} is in use; choose other ports with --port and --admin-port (0: a free one)\n`,
    );
  });

  it('the admin port in use: same, the proxy port closes again, exit 1', async ({ onTestFinished }) => {
    const s = scope(onTestFinished);
    const busy = await portInUse(s);
    const port = await closedPort();
    const p = cli(s, ['gateway', '-c', config(), '--port', String(port), '--admin-port', String(busy)]);
    const r = await exited(p, 15_000, () => p.stderr());
    expect(r).toMatchObject({ code: 1 });
    expect(p.stderr()).toBe(
      `ringway: 127.0.0.1:${busy} is in use; choose other ports with --port and --admin-port (0: a free one)\n`,
    );
    // The proxy port had opened (the admin API starts after it): it is closed again.
    expect(p.stdout()).toContain(`listening at http://127.0.0.1:${port}`);
    expect(await tryConnect(port)).toBe('ECONNREFUSED');
  });

  it('a configuration file missing, unreadable, a directory, bad YAML or a bad field: named with its line, exit 1', async ({
    onTestFinished,
  }) => {
    const s = scope(onTestFinished);
    const ok = 'listen: { host: 127.0.0.1, port: 0 }\nroutes:\n  - match: { prefix: / }\n    service: a\n';
    const unreadable = textFile('unreadable.yaml', ok);
    chmodSync(unreadable, 0o000);
    const missing = join(tmpdir(), `ringway-lifecycle-missing-${process.pid}.yaml`);
    const directory = tempDir();
    const badYaml = textFile('bad.yaml', `${ok}  oops: [\n`);
    const badField = textFile('field.yaml', ok.replace('prefix: /', 'prefix: api'));
    const asRoot = process.getuid?.() === 0;
    const cases: [string, string, RegExp, { uid?: number }][] = [
      [missing, 'missing', /: cannot be read: does not exist$/m, {}],
      // root reads a mode-000 file: it runs as nobody then.
      [unreadable, 'unreadable', /: cannot be read: EACCES: permission denied/m, asRoot ? { uid: 65534 } : {}],
      [directory, 'a directory', /: cannot be read: EISDIR/m, {}],
      [badYaml, 'bad YAML', /bad\.yaml:5:\d+: /m, {}],
      [badField, 'a bad field', /field\.yaml:3:\d+: routes\[0\]\.match\.prefix must be a path starting with '\/'/m, {}],
    ];
    const runs = cases.map(([file, what, re, opts]) => {
      const p = cli(s, ['gateway', '-c', file, '--port', '0', '--admin-port', '0'], opts);
      return exited(p, 15_000, () => `${what}: ${p.stderr()}`).then((r) => ({ p, r, file, what, re }));
    });
    for (const { p, r, file, what, re } of await Promise.all(runs)) {
      expect(r, what).toMatchObject({ code: 1 });
      expect(p.stderr(), what).toMatch(new RegExp(`^invalid gateway configuration in ${file}:\n`));
      expect(p.stderr(), what).toMatch(re);
      expect(p.stderr(), what).not.toMatch(STACK);
      expect(p.stdout(), what).not.toContain('listening');
    }
  });
});

/**
 * A TCP proxy in front of `redis` that lets the CLI's start-up check through (its PING and
 * SELECT, on the first connection) and then, as the answer to SELECT has gone back:
 * 'dies': cuts every connection, refuses new ones, and kills the redis-server;
 * 'hangs': forwards nothing more either way and leaves new connections unanswered (a Redis
 * paused or partitioned away).
 */
async function redisFailingAfterCheck(
  s: Scope,
  redis: RedisServer,
  mode: 'dies' | 'hangs',
): Promise<{ url: string; cut: Promise<void> }> {
  const sockets = new Set<Socket>();
  let cutDone!: () => void;
  const cut = new Promise<void>((resolve) => {
    cutDone = resolve;
  });
  let isCut = false;
  let first = true;
  const doCut = (): void => {
    isCut = true;
    if (mode === 'dies') {
      server.close();
      for (const socket of sockets) socket.destroy();
      void redis.stop().then(cutDone);
    } else {
      cutDone();
    }
  };
  const server: Server = createServer((client) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => {});
    if (isCut) return; // 'hangs': accepted, never answered
    const upstream = connect(redis.port, '127.0.0.1');
    sockets.add(upstream);
    upstream.on('close', () => sockets.delete(upstream));
    upstream.on('error', () => {});
    const watch = first;
    first = false;
    let selectSent = false;
    client.on('data', (c: Buffer) => {
      if (isCut) return;
      upstream.write(c);
      if (watch && /select/i.test(c.toString('latin1'))) selectSent = true;
    });
    upstream.on('data', (c: Buffer) => {
      if (isCut) return;
      client.write(c);
      if (selectSent) doCut();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  s.add(() => {
    server.close();
    for (const socket of sockets) socket.destroy();
  });
  return { url: `redis://127.0.0.1:${(server.address() as { port: number }).port}`, cut };
}

// Concurrent: most of their time is spent waiting on 5 s start-up limits.
describe.skipIf(!haveRedisServerBinary())('start-up with --redis', { concurrent: true }, () => {
  it('nothing listens at the --redis address: exit 1 naming it', async ({ onTestFinished }) => {
    const s = scope(onTestFinished);
    const port = await closedPort();
    const p = cli(s, [
      'gateway',
      '-c',
      config(),
      '--redis',
      `redis://127.0.0.1:${port}`,
      '--port',
      '0',
      '--admin-port',
      '0',
    ]);
    const r = await exited(p, 20_000, () => p.stderr());
    expect(r).toMatchObject({ code: 1 });
    expect(p.stderr()).toBe(`ringway: --redis: Redis does not answer: connect ECONNREFUSED 127.0.0.1:${port}\n`);
  });

  it('a Redis that does not answer (paused): the 5 s check fails, exit 1, and the exit does not hang on the store', async ({
    onTestFinished,
  }) => {
    const s = scope(onTestFinished);
    const redis = await redisServer(s);
    process.kill(redis.pid, 'SIGSTOP');
    const p = cli(s, ['gateway', '-c', config(), '--redis', redis.url, '--port', '0', '--admin-port', '0']);
    // 5 s of check, then the store's close: bounded.
    const r = await exited(p, 20_000, () => p.stdout() + p.stderr());
    expect(r).toMatchObject({ code: 1 });
    expect(p.stderr()).toBe('ringway: --redis: Redis does not answer: no answer within 5000 ms\n');
  }, 30_000);

  it('a signal during the Redis check ends the process at once (no port opens)', async ({ onTestFinished }) => {
    const s = scope(onTestFinished);
    const redis = await redisServer(s);
    process.kill(redis.pid, 'SIGSTOP');
    const port = await closedPort();
    const p = cli(s, ['gateway', '-c', config(), '--redis', redis.url, '--port', String(port), '--admin-port', '0']);
    await new Promise((r) => setTimeout(r, 1_500));
    const at = p.signal('SIGTERM');
    const r = await exited(p, 10_000, () => p.stdout() + p.stderr());
    expect(r.at - at).toBeLessThan(5_000);
    // Before the gateway exists nothing is to be drained: Node's default action ends it.
    expect(r.code === 0 || r.signal === 'SIGTERM', JSON.stringify(r)).toBe(true);
    expect(p.stdout()).not.toContain('listening');
    expect(await tryConnect(port)).toBe('ECONNREFUSED');
  });

  it('Redis dies just after the start-up check: the gateway starts on the file within ~10 s and says so', async ({
    onTestFinished,
  }) => {
    const s = scope(onTestFinished);
    const up = await upstream(s, (_req, res) => res.end('up'));
    const redis = await redisServer(s);
    const { url, cut } = await redisFailingAfterCheck(s, redis, 'dies');
    const gw = cli(s, [
      'gateway',
      '-c',
      configFile({
        listen: { host: '127.0.0.1', port: 0 },
        routes: [
          { match: { prefix: '/reg' }, service: 'reg' },
          { match: { prefix: '/' }, service: 'a' },
        ],
        services: { a: { static: [up.url] } },
      }),
      '--redis',
      url,
      '--admin-port',
      '0',
      '--admin-token',
      TOKEN,
    ]);
    await cut;
    // Live routes (5 s) and the registry's first answer (5 s) are waited for, then given up.
    await gw.waitFor(/live routes not read yet \(store unreachable\): starting with the file/, 15_000);
    await gw.waitFor(/ringway gateway ready/, 15_000);
    const port = Number((await gw.waitFor(/"msg":"listening at http:\/\/127\.0\.0\.1:(\d+)"/))[1]);
    const admin = Number((await gw.waitFor(/admin API listening at http:\/\/127\.0\.0\.1:(\d+)/))[1]);
    expect((await send(port, '/x')).status).toBe(200);
    expect((await send(port, '/reg')).status).toBe(503);
    expect((await send(admin, '/healthz')).status).toBe(200);
    // Nothing answers and nothing was ever read from the registry: not ready.
    const ready = await send(admin, '/readyz');
    expect(ready.status, ready.body).toBe(503);
    const at = gw.signal('SIGTERM');
    const r = await exited(gw, 10_000, () => gw.stdout());
    expect(r.code).toBe(0);
    expect(r.at - at).toBeLessThan(10_000);
  }, 45_000);

  it('a signal while the start waits for a Redis that stopped answering cancels it: no port opens, exit 0 within a bound', async ({
    onTestFinished,
  }) => {
    const s = scope(onTestFinished);
    const redis = await redisServer(s);
    const { url, cut } = await redisFailingAfterCheck(s, redis, 'hangs');
    const port = await closedPort();
    const gw = cli(s, [
      'gateway',
      '-c',
      configFile({
        listen: { host: '127.0.0.1' },
        routes: [
          { match: { prefix: '/reg' }, service: 'reg' },
          { match: { prefix: '/' }, service: 'a' },
        ],
        services: { a: { static: ['http://127.0.0.1:1'] } },
      }),
      '--redis',
      url,
      '--port',
      String(port),
      '--admin-port',
      '0',
    ]);
    await cut;
    // After 5 s without live routes; the registry's first answer is waited for next.
    await gw.waitFor(/live routes not read yet/, 15_000);
    const at = gw.signal('SIGTERM');
    const r = await exited(gw, 15_000, () => gw.stdout() + gw.stderr());
    expect(r.code, gw.stdout()).toBe(0);
    expect(r.at - at).toBeLessThan(10_000);
    expect(gw.stdout()).not.toContain('listening at');
    expect(gw.stdout()).toContain('"msg":"stopped"');
    expect(await tryConnect(port)).toBe('ECONNREFUSED');
  }, 45_000);
});

describe('shutdown', () => {
  it('SIGTERM with requests in flight: they finish, new connections are refused, an open connection is answered with Connection: close, exit 0', async ({
    onTestFinished,
  }) => {
    const s = scope(onTestFinished);
    const slow = await upstream(s, (req, res) => {
      if (req.url === '/fast') res.end('fast');
      else setTimeout(() => res.end('finished'), 1_000);
    });
    const { gw, port } = await startedGateway(s, ['-c', config({ proxy: { drainTimeoutMs: 5_000 } }, slow.url)]);
    const inFlight = [send(port, '/slow/1'), send(port, '/slow/2'), send(port, '/slow/3')];
    // A client with a request head half sent when the signal comes.
    const half = connect(port, '127.0.0.1');
    let halfAnswer = '';
    half.on('data', (c: Buffer) => {
      halfAnswer += c.toString('latin1');
    });
    const halfClosed = new Promise<void>((resolve) => half.on('close', () => resolve()));
    half.on('error', () => {});
    half.write('GET /fast HTTP/1.1\r\nHost: x\r\n');
    await until(() => slow.seen.length === 3, 10_000, 'the upstream to have the three requests');
    const at = gw.signal('SIGTERM');
    await gw.waitFor(/shutting down: draining in-flight requests/);
    expect(gw.stdout()).toMatch(/"inFlight":3/);
    expect(await tryConnect(port)).toBe('ECONNREFUSED');
    half.write('\r\n');
    for (const r of await Promise.all(inFlight)) expect(r).toMatchObject({ status: 200, body: 'finished' });
    await halfClosed;
    expect(halfAnswer).toMatch(/^HTTP\/1\.1 200 /);
    expect(halfAnswer).toMatch(/\r\nconnection: close\r\n/i);
    expect(halfAnswer).toMatch(/\r\n\r\nfast$/);
    const r = await exited(gw, 10_000, () => gw.stdout());
    expect(r.code).toBe(0);
    expect(r.at - at).toBeLessThan(10_000);
    expect(gw.stdout()).toContain('"msg":"stopped"');
  });

  it('an idle keep-alive connection is closed at SIGTERM (not kept for the drain)', async ({ onTestFinished }) => {
    const s = scope(onTestFinished);
    const up = await upstream(s, (req, res) => {
      if (req.url === '/fast') res.end('fast');
      else setTimeout(() => res.end('finished'), 1_000);
    });
    const { gw, port } = await startedGateway(s, ['-c', config({ proxy: { drainTimeoutMs: 5_000 } }, up.url)]);
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    s.add(() => agent.destroy());
    expect((await send(port, '/fast', { agent })).status).toBe(200);
    const idle = Object.values(agent.freeSockets)[0]?.[0] as Socket;
    expect(idle).toBeDefined();
    const idleClosed = new Promise<void>((resolve) => idle.once('close', () => resolve()));
    const slow = send(port, '/slow');
    await until(() => up.seen.length === 2, 10_000, 'the slow request upstream');
    gw.signal('SIGTERM');
    await idleClosed;
    expect((await slow).status).toBe(200);
    const r = await exited(gw, 10_000);
    expect(r).toMatchObject({ code: 0 });
  });

  it('a response streaming longer than drainTimeoutMs is cut at the limit and the process exits 0', async ({
    onTestFinished,
  }) => {
    const s = scope(onTestFinished);
    const up = await upstream(s, (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      const timer = setInterval(() => res.write('tick\n'), 50);
      res.on('close', () => clearInterval(timer));
    });
    const { gw, port } = await startedGateway(s, [
      '-c',
      config(
        { proxy: { drainTimeoutMs: 1_000 }, routes: [{ match: { prefix: '/' }, service: 'a', timeoutMs: 60_000 }] },
        up.url,
      ),
    ]);
    let bytes = 0;
    let complete = false;
    const stream = new Promise<void>((resolve) => {
      const req = request({ host: '127.0.0.1', port, path: '/stream', agent: false }, (res) => {
        res.on('data', (c: Buffer) => {
          bytes += c.length;
        });
        res.on('end', () => {
          complete = res.complete;
        });
        res.on('close', () => resolve());
        res.on('error', () => {});
      });
      req.on('error', () => resolve());
      req.end();
    });
    await until(() => bytes > 0, 10_000, 'the stream to start');
    const at = gw.signal('SIGTERM');
    const r = await exited(gw, 10_000, () => gw.stdout());
    expect(r.code).toBe(0);
    // The drain limit (1 s) plus closing: far from a hang.
    expect(r.at - at).toBeLessThan(10_000);
    await stream;
    expect(complete).toBe(false);
  });

  it('a second SIGTERM or SIGINT during the drain exits at once (exit 1)', async ({ onTestFinished }) => {
    const s = scope(onTestFinished);
    const runs = (['SIGTERM', 'SIGINT'] as const).map(async (second) => {
      const hold = await upstream(s, () => {}); // never answers
      const { gw, port } = await startedGateway(s, ['-c', config({ proxy: { drainTimeoutMs: 60_000 } }, hold.url)]);
      const pending = send(port, '/held').catch(() => undefined);
      await until(() => hold.seen.length > 0, 10_000, 'the request upstream');
      gw.signal('SIGTERM');
      await gw.waitFor(/shutting down: draining in-flight requests/);
      const at = gw.signal(second);
      const r = await exited(gw, 10_000, () => `${second}: ${gw.stdout()}`);
      await pending;
      return { gw, r, at, second };
    });
    for (const { gw, r, at, second } of await Promise.all(runs)) {
      expect(r.code, second).toBe(1);
      expect(r.at - at, second).toBeLessThan(5_000);
      expect(gw.stdout(), second).toMatch(new RegExp(`"signal":"${second}","msg":"second signal: exiting now"`));
    }
  });
});

describe.skipIf(!haveRedisServerBinary())('shutdown with Redis away', { concurrent: true }, () => {
  // Demo upstreams on free ports (basePort 0): ports picked in advance could be taken by a
  // parallel test before the gateway binds them.
  const demoConfig = (upstreamUrl: string): string =>
    configFile({
      listen: { host: '127.0.0.1', port: 0 },
      proxy: { drainTimeoutMs: 1_000 },
      routes: [
        { match: { prefix: '/demo' }, service: 'demo' },
        { match: { prefix: '/limited' }, service: 'a', rateLimit: { rps: 100, burst: 100 } },
        { match: { prefix: '/' }, service: 'a' },
      ],
      services: { a: { static: [upstreamUrl] } },
      demo: { service: 'demo', instances: 2, basePort: 0 },
    });

  it('Redis killed while running: the proxy keeps serving (rate limits let through), SIGTERM exits 0 promptly', async ({
    onTestFinished,
  }) => {
    const s = scope(onTestFinished);
    const up = await upstream(s, (_req, res) => res.end('up'));
    const redis = await redisServer(s);
    const { gw, port, admin } = await startedGateway(s, ['-c', demoConfig(up.url), '--redis', redis.url]);
    // The gateway registered its demo instances.
    const before = await send(admin, '/v1/services/demo', { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(JSON.parse(before.body).instances).toHaveLength(2);
    await redis.stop();
    expect((await send(port, '/x')).status).toBe(200);
    expect((await send(port, '/limited')).status).toBe(200);
    expect((await send(admin, '/healthz')).status).toBe(200);
    const at = gw.signal('SIGTERM');
    const r = await exited(gw, 15_000, () => gw.stdout());
    expect(r.code, gw.stdout()).toBe(0);
    expect(r.at - at).toBeLessThan(10_000);
  }, 30_000);

  it('Redis paused (answers nothing) at SIGTERM: deregistration and the store close are bounded, exit 0', async ({
    onTestFinished,
  }) => {
    const s = scope(onTestFinished);
    const up = await upstream(s, (_req, res) => res.end('up'));
    const redis = await redisServer(s);
    const { gw, admin } = await startedGateway(s, ['-c', demoConfig(up.url), '--redis', redis.url]);
    const before = await send(admin, '/v1/services/demo', { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(JSON.parse(before.body).instances).toHaveLength(2);
    process.kill(redis.pid, 'SIGSTOP');
    s.add(() => {
      process.kill(redis.pid, 'SIGCONT');
    });
    const at = gw.signal('SIGTERM');
    // Drain (nothing in flight), deregistration (2 s command timeout), the store close (bounded).
    const r = await exited(gw, 15_000, () => gw.stdout());
    expect(r.code, gw.stdout()).toBe(0);
    expect(r.at - at).toBeLessThan(12_000);
    // The demo instances it registered are gone once Redis answers again: the deregistrations
    // it sent run then, and otherwise their 15 s lease ends.
    process.kill(redis.pid, 'SIGCONT');
    const store = redisStore(redis.url);
    const registry = new ServiceRegistry({ store });
    s.add(async () => {
      await registry.close();
      await store.close();
    });
    await until(async () => (await registry.instances('demo')).length === 0, 20_000, 'the demo instances to go');
  }, 45_000);
});
