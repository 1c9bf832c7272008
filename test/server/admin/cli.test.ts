// The CLI serves the admin API next to the proxy: the token comes from --admin-token,
// RINGWAY_ADMIN_TOKEN or is generated and printed once; bad admin flags exit 2; a taken admin
// port (the default one too) stops the start.
import { createServer, type Server } from 'node:net';
import { describe, expect, it } from 'vitest';
import { main } from '../../../server/cli.js';
import { configFile, type GatewayProcess, send, spawnGateway, until } from '../helpers.js';

const config = configFile({
  listen: { host: '127.0.0.1' },
  routes: [{ match: { prefix: '/' }, service: 'a' }],
  services: { a: { static: ['http://127.0.0.1:1'] } },
});

async function adminPortOf(gw: GatewayProcess): Promise<number> {
  let port = 0;
  await until(
    () => {
      const m = /admin API listening at http:\/\/127\.0\.0\.1:(\d+)/.exec(gw.output());
      if (m !== null) port = Number(m[1]);
      return port !== 0;
    },
    10_000,
    'the admin API to listen',
  );
  return port;
}

async function stop(gw: GatewayProcess): Promise<void> {
  gw.proc.kill('SIGTERM');
  await gw.exited;
}

describe('CLI admin API', () => {
  it('generates a token, prints it once, and the admin API takes it', async () => {
    const gw = await spawnGateway(['gateway', '-c', config, '--port', '0', '--admin-port', '0'], {
      RINGWAY_ADMIN_TOKEN: '',
    });
    try {
      const port = await adminPortOf(gw);
      const lines = gw.output().match(/admin API token \(generated for this run\): (\S+)/g) ?? [];
      expect(lines).toHaveLength(1);
      const token = /: (\S+)$/.exec(lines[0] as string)?.[1] as string;
      expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect((await send(port, '/v1/services')).status).toBe(401);
      const r = await send(port, '/v1/services', { headers: { authorization: `Bearer ${token}` } });
      expect(r.status).toBe(200);
      expect(JSON.parse(r.body)).toEqual({ services: [] });
      // The proxy port does not serve it.
      expect((await send(gw.port, '/v1/services', { headers: { authorization: `Bearer ${token}` } })).status).toBe(502);
    } finally {
      await stop(gw);
    }
  });

  it('takes the token from --admin-token or RINGWAY_ADMIN_TOKEN and does not print it', async () => {
    const fromEnv = 'env-token-0123456789abcdef';
    const fromFlag = 'flag-token-0123456789abcdef';
    const gw = await spawnGateway(
      ['gateway', '-c', config, '--port', '0', '--admin-port', '0', '--admin-token', fromFlag],
      { RINGWAY_ADMIN_TOKEN: fromEnv },
    );
    try {
      const port = await adminPortOf(gw);
      expect(gw.output()).not.toContain(fromFlag);
      expect(gw.output()).not.toContain('admin API token');
      expect((await send(port, '/healthz')).status).toBe(200);
      expect((await send(port, '/v1/services', { headers: { authorization: `Bearer ${fromEnv}` } })).status).toBe(401);
      expect((await send(port, '/v1/services', { headers: { authorization: `Bearer ${fromFlag}` } })).status).toBe(200);
    } finally {
      await stop(gw);
    }
  });

  it('refuses a short token and a bad admin port (exit 2), without echoing the token', async () => {
    for (const [argv, env, says] of [
      [['--admin-token', 'short-secret'], {}, '--admin-token'],
      [[], { RINGWAY_ADMIN_TOKEN: 'short-secret' }, 'RINGWAY_ADMIN_TOKEN'],
      [['--admin-port', '70000'], {}, '--admin-port'],
      [['--admin-port', 'x'], {}, '--admin-port'],
    ] as const) {
      const err: string[] = [];
      const code = await main(['gateway', '-c', config, ...argv], {
        out: () => {},
        err: (t) => err.push(t),
        env: { ...env },
        onSignal: () => {},
      });
      expect(code, argv.join(' ')).toBe(2);
      expect(err.join('')).toContain(says);
      expect(err.join('')).not.toContain('short-secret');
    }
  });
});

/** Listens on 127.0.0.1:`port`; resolves undefined when something else has it already. */
function occupy(port: number): Promise<Server | undefined> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', (err: NodeJS.ErrnoException) =>
      err.code === 'EADDRINUSE' ? resolve(undefined) : reject(err),
    );
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}

describe('CLI admin port', () => {
  it('a taken admin port, given or the default 9080, stops the start (exit 1) with a message naming the flag', async () => {
    const taken = await occupy(0);
    if (taken === undefined) throw new Error('no free port');
    const port = (taken.address() as { port: number }).port;
    // 9080 is taken here either by this test or by something else: the start must fail either way.
    const defaultPort = await occupy(9080);
    try {
      for (const argv of [['--admin-port', String(port)], []]) {
        const err: string[] = [];
        const code = await main(['gateway', '-c', config, '--port', '0', '--log-level', 'silent', ...argv], {
          out: () => {},
          err: (t) => err.push(t),
          env: {},
          onSignal: () => {},
        });
        expect(code, argv.join(' ')).toBe(1);
        expect(err.join('')).toContain(`127.0.0.1:${argv.length === 0 ? 9080 : port} is in use`);
        expect(err.join('')).toContain('--admin-port');
      }
    } finally {
      taken.close();
      defaultPort?.close();
    }
  });
});
