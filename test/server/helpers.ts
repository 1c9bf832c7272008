/**
 * Real servers on loopback for the gateway tests: upstreams that record what they receive,
 * a gateway started from a configuration object, and raw-socket requests for inputs a
 * well-behaved client would never send.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import {
  type Agent,
  createServer,
  request as httpRequest,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { type AddressInfo, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach } from 'vitest';
import { resolveGatewayConfig } from '../../server/config/GatewayConfig.js';
import { createGateway, type Gateway, type GatewayOptions } from '../../server/gateway.js';

/** What an upstream received. */
export interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  rawHeaders: string[];
  bodyBytes: number;
}

/** A loopback upstream. */
export interface Upstream {
  readonly port: number;
  readonly url: string;
  readonly server: Server;
  readonly seen: Seen[];
  close(): Promise<void>;
}

export type UpstreamHandler = (req: IncomingMessage, res: ServerResponse, seen: Seen) => void;

/** The default handler: 200 with a JSON echo of what was received, after reading the body. */
export function echo(name: string): UpstreamHandler {
  return (req, res, seen) => {
    req.on('data', (c: Buffer) => {
      seen.bodyBytes += c.length;
    });
    req.on('end', () => {
      const body = JSON.stringify({
        name,
        method: req.method,
        url: req.url,
        headers: req.headers,
        bodyBytes: seen.bodyBytes,
      });
      res.writeHead(200, { 'content-type': 'application/json', 'x-upstream': name });
      res.end(body);
    });
  };
}

/** Starts an upstream on 127.0.0.1 (port 0: a free one). */
export async function startUpstream(handler: UpstreamHandler, port = 0): Promise<Upstream> {
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    const s: Seen = {
      method: req.method ?? '',
      url: req.url ?? '',
      headers: req.headers,
      rawHeaders: req.rawHeaders,
      bodyBytes: 0,
    };
    seen.push(s);
    handler(req, res, s);
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const actual = (server.address() as AddressInfo).port;
  return {
    port: actual,
    url: `http://127.0.0.1:${actual}`,
    server,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** A gateway listening on a free loopback port. */
export interface TestGateway {
  readonly gateway: Gateway;
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

/**
 * A route table whose one service is behind a port nothing listens on (1): for tests of the
 * admin API and of start-up, where no request is proxied.
 */
export const NO_UPSTREAM = {
  routes: [{ match: { prefix: '/' }, service: 'a' }],
  services: { a: { static: ['http://127.0.0.1:1'] } },
} as const;

/** Creates a gateway from a configuration value, on a free loopback port, without listening. */
export function createTestGateway(config: unknown, options: Partial<GatewayOptions> = {}): Promise<Gateway> {
  return createGateway({
    config: resolveGatewayConfig(config),
    port: 0,
    host: '127.0.0.1',
    logLevel: false,
    ...options,
  });
}

/** Starts a gateway from a configuration value. */
export async function startGateway(config: unknown, options: Partial<GatewayOptions> = {}): Promise<TestGateway> {
  const gateway = await createTestGateway(config, options);
  const { port } = await gateway.listen();
  return { gateway, port, url: `http://127.0.0.1:${port}`, close: () => gateway.close() };
}

/** Sends raw bytes and resolves with everything the server sent back until it closed (or `ms` passed). */
export function rawRequest(port: number, data: string | Buffer, ms = 3_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => socket.destroy(), ms);
    socket.on('data', (c) => chunks.push(c));
    socket.on('error', (err) => {
      clearTimeout(timer);
      if (chunks.length > 0) resolve(Buffer.concat(chunks).toString('latin1'));
      else reject(err);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString('latin1'));
    });
    socket.write(data);
  });
}

/** The status code of a raw HTTP response. */
export function statusOf(response: string): number {
  return Number(/^HTTP\/1\.1 (\d{3})/.exec(response)?.[1] ?? 0);
}

/** A port nothing listens on (bound, then released). */
export async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

/** Resolves with the connect error code, or 'connected'. */
export function tryConnect(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? String(err)));
  });
}

/** Waits until `check` holds, polling; throws after `ms`. */
export async function until(check: () => boolean | Promise<boolean>, ms = 10_000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A response read whole. */
export interface Reply {
  status: number;
  headers: IncomingMessage['headers'];
  body: string;
}

/** A request through node:http (which, unlike fetch, sends any header it is given). */
export function send(
  port: number,
  path: string,
  options: {
    method?: string;
    headers?: Record<string, string | string[]>;
    body?: string | Buffer;
    /** Keep-alive through this agent; by default a connection of its own. */
    agent?: Agent;
  } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port,
        path,
        method: options.method ?? 'GET',
        headers: options.headers ?? {},
        agent: options.agent ?? false,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          body += c;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

/** A gateway in a child process, started through the CLI (`server/cli.ts` under tsx). */
export interface GatewayProcess {
  readonly proc: ChildProcess;
  readonly pid: number;
  readonly port: number;
  readonly url: string;
  /** Everything the process wrote so far. */
  output(): string;
  /** Resolves with the exit code once the process exited. */
  readonly exited: Promise<number | null>;
}

const CLI = fileURLToPath(new URL('../../server/cli.ts', import.meta.url));

/**
 * Runs the CLI with `args` in a child process and waits for the gateway to listen. A `gateway`
 * command without `--admin-port` gets `--admin-port 0` (a free port): the default, 9080, may
 * be taken, and a taken admin port stops the start.
 */
export async function spawnGateway(args: string[], env: NodeJS.ProcessEnv = {}): Promise<GatewayProcess> {
  const adminPort = args[0] === 'gateway' && !args.includes('--admin-port') ? ['--admin-port', '0'] : [];
  const proc = spawn(process.execPath, ['--import', 'tsx', CLI, ...args, ...adminPort], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout?.on('data', (c: Buffer) => {
    out += c.toString();
  });
  proc.stderr?.on('data', (c: Buffer) => {
    out += c.toString();
  });
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  let port = 0;
  await until(
    () => {
      const m = /listening at http:\/\/127\.0\.0\.1:(\d+)/.exec(out);
      if (m !== null) port = Number(m[1]);
      if (proc.exitCode !== null) throw new Error(`gateway exited (${proc.exitCode}): ${out}`);
      // "ready" comes after every port (the admin API's too) is open and signals are handled.
      return port !== 0 && out.includes('ringway gateway ready');
    },
    30_000,
    'the gateway process to listen',
  );
  return { proc, pid: proc.pid as number, port, url: `http://127.0.0.1:${port}`, output: () => out, exited };
}

/** Resident memory of a process, in bytes (Linux). */
export function rssOf(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return kb * 1024;
}

const configDirs: string[] = [];
// Removed after the test file that wrote them (the gateway processes read them at start).
afterAll(() => {
  for (const dir of configDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** Writes a configuration to a temporary file and returns its path. */
export function configFile(config: unknown): string {
  const dir = mkdtempSync(join(tmpdir(), 'ringway-gw-'));
  configDirs.push(dir);
  const file = join(dir, 'gateway.json');
  writeFileSync(file, JSON.stringify(config));
  return file;
}

/**
 * Starts upstreams and gateways for the tests of one file and closes them after each test
 * (in reverse order of start, gateways last: a gateway's drain then never waits on a live
 * upstream that a test left hanging).
 */
export function closedAfterEach(): {
  upstream(handler: UpstreamHandler): Promise<Upstream>;
  gateway(config: unknown, options?: Partial<GatewayOptions>): Promise<TestGateway>;
  /** Runs `cleanup` after the test, before what was started earlier. */
  later(cleanup: () => Promise<void>): void;
} {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    while (cleanups.length > 0) await (cleanups.pop() as () => Promise<void>)();
  });
  return {
    upstream: async (handler) => {
      const u = await startUpstream(handler);
      cleanups.push(() => u.close());
      return u;
    },
    gateway: async (config, options = {}) => {
      const g = await startGateway(config, options);
      cleanups.unshift(() => g.close());
      return g;
    },
    later: (cleanup) => {
      cleanups.push(cleanup);
    },
  };
}
