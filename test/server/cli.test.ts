// The CLI: help, version, check, a gateway process that drains in-flight requests on
// SIGTERM and exits 0, and a start-up cancelled by a signal that leaves no port open.
import { spawn } from 'node:child_process';
import { request } from 'node:http';
import { type AddressInfo, createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { COMMANDS, FLAGS, helpText, main, version } from '../../server/cli.js';
import type { Gateway } from '../../server/gateway.js';
import { haveRedisServerBinary, type RedisServer, startRedisServer } from '../helpers/redis.js';
import { configFile, createTestGateway, NO_UPSTREAM, spawnGateway, startUpstream, tryConnect } from './helpers.js';

function io() {
  const out: string[] = [];
  const err: string[] = [];
  return {
    out,
    err,
    io: { out: (t: string) => out.push(t), err: (t: string) => err.push(t), env: {}, onSignal: () => {} },
  };
}

describe('ringway CLI', () => {
  it('--help lists every command and every flag', async () => {
    const { out, io: cliIo } = io();
    expect(await main(['--help'], cliIo)).toBe(0);
    const text = out.join('');
    expect(text).toBe(helpText());
    for (const c of COMMANDS) expect(text).toMatch(new RegExp(`^  ${c.name} `, 'm'));
    for (const f of FLAGS) {
      expect(text).toContain(`--${f.name}`);
      if (f.short !== undefined) expect(text).toContain(`-${f.short}, --${f.name}`);
    }
    expect(await main([], cliIo)).toBe(0);
    expect(await main(['help'], cliIo)).toBe(0);
  });

  it('--version prints the package version', async () => {
    const { out, io: cliIo } = io();
    expect(await main(['--version'], cliIo)).toBe(0);
    expect(out.join('').trim()).toBe(version());
    expect(version()).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('check validates a file and names the line of each problem', async () => {
    const good = io();
    const file = configFile({ routes: [{ match: { prefix: '/' }, service: 'a' }] });
    expect(await main(['check', '--config', file], good.io)).toBe(0);
    expect(good.out.join('')).toContain('OK');
    const bad = io();
    const badFile = configFile({ routes: [{ match: { prefix: 'x' }, service: 'a', retries: { attempts: 99 } }] });
    expect(await main(['check', '-c', badFile], bad.io)).toBe(1);
    const text = bad.err.join('');
    expect(text).toContain(`${badFile}:1:`);
    expect(text).toContain('routes[0].match.prefix');
    expect(text).toContain('routes[0].retries.attempts must be <= 10');
  });

  it('refuses unknown commands and flags, missing --config, bad ports and levels (exit 2)', async () => {
    const file = configFile({});
    for (const argv of [
      ['bogus'],
      ['gateway', '--nope'],
      ['gateway'],
      ['check', '--port', '1', '-c', file],
      ['gateway', '-c', file, '--port', 'abc'],
      ['gateway', '-c', file, '--port', '70000'],
      ['gateway', '-c', file, '--log-level', 'loud'],
      ['gateway', '-c', file, '--redis', 'http://not-redis'],
    ]) {
      const { err, io: cliIo } = io();
      expect(await main(argv, cliIo), argv.join(' ')).toBe(2);
      expect(err.join('')).toMatch(/ringway/);
    }
  });

  it('a gateway process drains in-flight requests on SIGTERM, refuses new connections, and exits 0', async () => {
    const slow = await startUpstream((_req, res) => {
      setTimeout(() => res.end('finished'), 800);
    });
    const gw = await spawnGateway([
      'gateway',
      '--config',
      configFile({
        listen: { host: '127.0.0.1' },
        routes: [{ match: { prefix: '/' }, service: 's' }],
        services: { s: { static: [slow.url] } },
      }),
      '--port',
      '0',
    ]);
    const inFlight = new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: gw.port, path: '/slow', agent: false }, (res) => {
        let body = '';
        res.on('data', (c) => {
          body += c;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      req.end();
    });
    // Wait until the upstream has the request, then ask the gateway to stop.
    const started = Date.now();
    while (slow.seen.length === 0 && Date.now() - started < 10_000) await new Promise((r) => setTimeout(r, 10));
    gw.proc.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 100));
    await expect(fetch(`${gw.url}/new`)).rejects.toThrow();
    expect(await inFlight).toEqual({ status: 200, body: 'finished' });
    expect(await gw.exited).toBe(0);
    expect(gw.output()).toContain('draining');
    await slow.close();
  });
});

// The CLI's SIGTERM handler calls gateway.close(); when that happens while listen() is still
// starting, the start is cancelled: no port opens after it, and those already open close.
describe('a start cancelled by close() (a signal while the gateway starts)', () => {
  const cases: [string, (gw: Gateway, close: () => void) => void][] = [
    ['before listen()', (_gw, close) => close()],
    ['while the proxy port opens', (gw, close) => gw.app.server.once('listening', close)],
    ['while the admin API starts', (gw, close) => gw.admin?.app.server.once('listening', close)],
  ];
  for (const [when, arm] of cases) {
    it(`${when}: listen() rejects with an AbortError and no port stays open`, async () => {
      const gw = await createTestGateway(NO_UPSTREAM, { admin: { port: 0, host: '127.0.0.1' } });
      const ports: number[] = [];
      for (const server of [gw.app.server, gw.admin?.app.server]) {
        server?.once('listening', () => ports.push((server.address() as AddressInfo).port));
      }
      let closed: Promise<void> | undefined;
      arm(gw, () => {
        closed = gw.close();
      });
      await expect(gw.listen()).rejects.toMatchObject({ name: 'AbortError' });
      await closed;
      expect(closed).toBeDefined();
      expect(gw.app.server.listening).toBe(false);
      expect(gw.admin?.listening).toBe(false);
      for (const port of ports) expect(await tryConnect(port)).toBe('ECONNREFUSED');
    });
  }
});

const CLI = fileURLToPath(new URL('../../server/cli.ts', import.meta.url));

/** Runs the CLI in a child process to its exit (killed after `ms`: a hang is `code: null`). */
function runCli(args: string[], ms = 15_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const proc = spawn(process.execPath, ['--import', 'tsx', CLI, ...args], {
      env: { ...process.env, REDIS_URL: '', RINGWAY_ADMIN_TOKEN: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (c: Buffer) => {
      stdout += c.toString();
    });
    proc.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    let hung = false;
    const timer = setTimeout(() => {
      hung = true;
      proc.kill('SIGKILL');
    }, ms);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code: hung ? null : code, stdout, stderr });
    });
  });
}

/** A TCP port held open by this process until the test file ends. */
async function portInUse(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cliCleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return (server.address() as AddressInfo).port;
}

const cliCleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of cliCleanups.reverse()) await c();
});

describe('CLI flags and start-up failures', () => {
  it('an empty --host or --admin-host is a usage error (exit 2), not "all interfaces"', async () => {
    const file = configFile(NO_UPSTREAM);
    for (const argv of [
      ['gateway', '-c', file, '--host='],
      ['gateway', '-c', file, '--admin-host='],
      ['gateway', '-c', file, '--admin-host', ''],
    ]) {
      const { err, io: cliIo } = io();
      const result = await main([...argv, '--port', '0', '--admin-port', '0', '--log-level', 'silent'], cliIo);
      if (typeof result !== 'number') await result.close(); // started: the bug
      expect(result, argv.join(' ')).toBe(2);
      expect(err.join(''), argv.join(' ')).toMatch(/^ringway: --(admin-)?host must not be empty/);
    }
  });

  it('a --host it cannot listen on exits 1 with the reason on stderr, even with --log-level silent', async () => {
    const file = configFile(NO_UPSTREAM);
    const r = await runCli([
      'gateway',
      '-c',
      file,
      '--host=not..valid',
      '--port',
      '0',
      '--admin-port',
      '0',
      '--log-level',
      'silent',
    ]);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/^ringway: cannot listen: .*not\.\.valid/m);
  }, 30_000);

  it('a --redis URL whose path is not a db number is a usage error (exit 2)', async () => {
    const file = configFile(NO_UPSTREAM);
    for (const url of ['redis://127.0.0.1:1/notadb', 'redis://127.0.0.1:1/1x', 'redis://127.0.0.1:1/-1']) {
      const { err, io: cliIo } = io();
      const result = await main(
        ['gateway', '-c', file, '--redis', url, '--port', '0', '--admin-port', '0'],
        cliIo,
      ).catch((e: unknown) => e);
      if (typeof result === 'object' && result !== null && 'close' in result) await (result as Gateway).close();
      expect(result, url).toBe(2);
      expect(err.join(''), url).toMatch(/^ringway: --redis: .*db number/);
    }
  });

  describe.skipIf(!haveRedisServerBinary())('with a Redis of its own', () => {
    let redis: RedisServer;
    it('starts one', async () => {
      redis = await startRedisServer({ args: ['--databases', '16'] });
      cliCleanups.push(() => redis.stop());
    }, 20_000);

    it('a db the server does not have, or a server that does not answer, exits 1 with a message', async () => {
      const file = configFile(NO_UPSTREAM);
      const noDb = await runCli([
        'gateway',
        '-c',
        file,
        '--redis',
        `${redis.url}/99`,
        '--port',
        '0',
        '--admin-port',
        '0',
      ]);
      expect(noDb.code, noDb.stderr).toBe(1);
      expect(noDb.stderr).toMatch(/^ringway: --redis: .*(DB index|db 99)/m);
      const away = await runCli([
        'gateway',
        '-c',
        file,
        '--redis',
        `redis://127.0.0.1:${await closedTcpPort()}`,
        '--port',
        '0',
        '--admin-port',
        '0',
      ]);
      expect(away.code, away.stderr).toBe(1);
      expect(away.stderr).toMatch(/^ringway: --redis: /m);
    }, 60_000);

    it('a gateway that cannot be created exits 1 with the reason and closes the store (no hang)', async () => {
      const busy = await portInUse();
      const file = configFile({ ...NO_UPSTREAM, demo: { service: 'demo', instances: 1, basePort: busy } });
      const r = await runCli(['gateway', '-c', file, '--redis', redis.url, '--port', '0', '--admin-port', '0']);
      expect(r.code, `${r.stdout}${r.stderr}`).toBe(1);
      expect(r.stderr).toMatch(/^ringway: .*EADDRINUSE/m);
      expect(r.stderr).not.toMatch(/^\s+at /m);
    }, 30_000);
  });
});

/** A port nothing listens on. */
async function closedTcpPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
