#!/usr/bin/env node
/**
 * `ringway`, the command line: `ringway gateway --config gateway.yaml` runs the gateway,
 * `ringway check --config gateway.yaml` validates a configuration, `ringway --help` lists
 * every command and flag (generated from the same table the parser reads, so they agree).
 */
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { Redis } from 'ioredis';
import { type RedisStore, redisStore } from '../src/store/redis/RedisStore.js';
import type { Store } from '../src/store/Store.js';
import { checkToken } from './admin/token.js';
import { ConfigError } from './config/ConfigError.js';
import { loadGatewayConfig } from './config/loadConfig.js';
import { createGateway, type Gateway } from './gateway.js';
import { LOG_LEVELS, type LogLevel } from './log.js';

/** A command of the CLI. */
export interface CommandSpec {
  readonly name: string;
  readonly summary: string;
}

/** A flag of the CLI. */
export interface FlagSpec {
  readonly name: string;
  readonly short?: string;
  readonly value?: string;
  readonly summary: string;
  /** Commands that take it ('*' for all). */
  readonly commands: readonly string[];
}

/** Every command. */
export const COMMANDS: readonly CommandSpec[] = [
  { name: 'gateway', summary: 'Run the API gateway with a configuration file' },
  { name: 'check', summary: 'Validate a configuration file (errors name the field and line) and exit' },
  { name: 'help', summary: 'Show this help' },
  { name: 'version', summary: 'Print the version' },
];

/** Every flag. */
export const FLAGS: readonly FlagSpec[] = [
  {
    name: 'config',
    short: 'c',
    value: 'file',
    summary: 'Gateway configuration, YAML or JSON (required)',
    commands: ['gateway', 'check'],
  },
  {
    name: 'redis',
    value: 'url',
    summary: 'Share state through Redis at <url> (redis://host:port/db); also REDIS_URL. Default: in-memory store',
    commands: ['gateway'],
  },
  {
    name: 'port',
    short: 'p',
    value: 'n',
    summary: 'Proxy port, overriding listen.port (default 8080)',
    commands: ['gateway'],
  },
  {
    name: 'host',
    value: 'addr',
    summary: 'Proxy address, overriding listen.host (default 0.0.0.0)',
    commands: ['gateway'],
  },
  {
    name: 'admin-port',
    value: 'n',
    summary: 'Admin API port (default 9080; 0: a free one). A port in use stops the start',
    commands: ['gateway'],
  },
  {
    name: 'admin-host',
    value: 'addr',
    summary: 'Admin API address (default 127.0.0.1: this machine only)',
    commands: ['gateway'],
  },
  {
    name: 'admin-token',
    value: 'token',
    summary:
      'Bearer token of the admin API, 16+ characters; also RINGWAY_ADMIN_TOKEN. Default: a random one, printed once at start',
    commands: ['gateway'],
  },
  {
    name: 'log-level',
    value: 'level',
    summary: 'fatal, error, warn, info, debug, trace or silent (default info)',
    commands: ['gateway'],
  },
  { name: 'help', short: 'h', summary: 'Show this help', commands: ['*'] },
  { name: 'version', short: 'v', summary: 'Print the version', commands: ['*'] },
];

/** The help text. */
export function helpText(): string {
  const lines = [
    'ringway: consistent hashing, load balancing, locks, registry, config and an API gateway.',
    '',
    'Usage: ringway <command> [flags]',
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(10)}${c.summary}`),
    '',
    'Flags:',
  ];
  for (const f of FLAGS) {
    const left = `${f.short === undefined ? '    ' : `-${f.short}, `}--${f.name}${f.value === undefined ? '' : ` <${f.value}>`}`;
    const where = f.commands.includes('*') ? '' : ` [${f.commands.join(', ')}]`;
    lines.push(`  ${left.padEnd(26)}${f.summary}${where}`);
  }
  lines.push(
    '',
    'Examples:',
    '  ringway gateway --config gateway.yaml',
    '  ringway gateway --config gateway.yaml --redis redis://127.0.0.1:6379 --port 8081',
    '  RINGWAY_ADMIN_TOKEN=$(openssl rand -hex 24) ringway gateway --config gateway.yaml --admin-port 9081',
    '  ringway check --config gateway.yaml',
    '',
    'Signals: SIGTERM or SIGINT drain in-flight requests (proxy.drainTimeoutMs), then exit; a second one exits at once.',
  );
  return `${lines.join('\n')}\n`;
}

/** The package version, from the package.json above this file (src or dist layout). */
export function version(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    const file = join(dir, 'package.json');
    if (existsSync(file)) {
      const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'ringway') return pkg.version ?? '0.0.0';
    }
    dir = dirname(dir);
  }
  return '0.0.0';
}

/** A usage error: printed with a hint, exit code 2. */
class UsageError extends Error {}

interface Parsed {
  command: string;
  values: Record<string, string | boolean | undefined>;
}

function parse(argv: readonly string[]): Parsed {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = {};
  for (const f of FLAGS) {
    options[f.name] = {
      type: f.value === undefined ? 'boolean' : 'string',
      ...(f.short === undefined ? {} : { short: f.short }),
    };
  }
  let result: ReturnType<typeof parseArgs>;
  try {
    result = parseArgs({ args: [...argv], options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const values = result.values as Record<string, string | boolean | undefined>;
  const [command, ...rest] = result.positionals;
  if (rest.length > 0) throw new UsageError(`unexpected argument '${rest[0]}'`);
  if (values.help === true || command === 'help') return { command: 'help', values };
  if (values.version === true || command === 'version') return { command: 'version', values };
  if (command === undefined) return { command: 'help', values };
  if (!COMMANDS.some((c) => c.name === command)) throw new UsageError(`unknown command '${command}'`);
  for (const f of FLAGS) {
    if (values[f.name] !== undefined && !f.commands.includes('*') && !f.commands.includes(command)) {
      throw new UsageError(`--${f.name} does not apply to '${command}'`);
    }
  }
  return { command, values };
}

function portOf(value: string | boolean | undefined, flag = 'port'): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (typeof value !== 'string' || !/^\d+$/.test(value) || n > 65_535) {
    throw new UsageError(`--${flag} must be an integer in [0, 65535], got '${String(value)}'`);
  }
  return n;
}

/**
 * The db number of a `redis://host:port/db` URL (0 without a path).
 * @throws {UsageError} when the path is not a db number.
 */
function redisDbOf(url: string): number {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UsageError('must be a URL such as redis://127.0.0.1:6379/0');
  }
  const path = parsed.pathname;
  if (path === '' || path === '/') return 0;
  const m = /^\/(\d{1,5})$/.exec(path);
  if (m === null) throw new UsageError(`the path of the URL must be a db number (redis://host:port/0), got '${path}'`);
  return Number(m[1]);
}

/** Time the Redis of `--redis` has to answer PING and SELECT before the start is given up. */
const REDIS_CHECK_TIMEOUT_MS = 5_000;

/**
 * Checks that Redis answers and that the URL's db can be selected (ioredis only logs a failed
 * SELECT and goes on in db 0).
 * @throws {Error} saying what failed.
 */
async function checkRedis(store: RedisStore, db: number, timeoutMs: number): Promise<void> {
  const client = store.client as Redis;
  let lastError: Error | undefined;
  const onError = (err: Error): void => {
    lastError = err;
  };
  client.on('error', onError);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    await Promise.race([client.ping(), timeout]).catch((err: Error) => {
      throw new Error(`Redis does not answer: ${lastError?.message ?? err.message}`);
    });
    await Promise.race([client.select(db), timeout]).catch((err: Error) => {
      throw new Error(`cannot select db ${db}: ${err.message}`);
    });
  } finally {
    clearTimeout(timer);
    client.off('error', onError);
  }
}

/** Output streams and the environment, injectable for tests. */
export interface CliIo {
  out: (text: string) => void;
  err: (text: string) => void;
  env: NodeJS.ProcessEnv;
  /** Registers a signal handler (process.on by default). */
  onSignal: (signal: 'SIGTERM' | 'SIGINT', handler: () => void) => void;
}

const defaultIo: CliIo = {
  out: (t) => process.stdout.write(t),
  err: (t) => process.stderr.write(t),
  env: process.env,
  onSignal: (signal, handler) => process.on(signal, handler),
};

/**
 * Runs the CLI with `argv` (without `node` and the script). Resolves with the exit code for
 * commands that end, and with the running gateway for `gateway` (it exits on a signal).
 */
export async function main(argv: readonly string[], io: CliIo = defaultIo): Promise<number | Gateway> {
  let parsed: Parsed;
  try {
    parsed = parse(argv);
  } catch (err) {
    io.err(`ringway: ${(err as Error).message}\nRun 'ringway --help' for the commands and flags.\n`);
    return 2;
  }
  const { command, values } = parsed;
  if (command === 'help') {
    io.out(helpText());
    return 0;
  }
  if (command === 'version') {
    io.out(`${version()}\n`);
    return 0;
  }
  const configPath = values.config;
  if (typeof configPath !== 'string') {
    io.err(`ringway ${command}: --config <file> is required\n`);
    return 2;
  }
  let config: Awaited<ReturnType<typeof loadGatewayConfig>>;
  try {
    config = await loadGatewayConfig(configPath);
  } catch (err) {
    if (err instanceof ConfigError) {
      io.err(`${err.message}\n`);
      return 1;
    }
    throw err;
  }
  if (command === 'check') {
    io.out(`${configPath}: ${config.routes.length} routes, ${config.services.size} services: OK\n`);
    return 0;
  }

  let port: number | undefined;
  let adminPort: number | undefined;
  // An empty RINGWAY_ADMIN_TOKEN counts as unset (as an empty REDIS_URL does).
  const envToken = io.env.RINGWAY_ADMIN_TOKEN === '' ? undefined : io.env.RINGWAY_ADMIN_TOKEN;
  const adminToken = typeof values['admin-token'] === 'string' ? values['admin-token'] : envToken;
  try {
    port = portOf(values.port);
    adminPort = portOf(values['admin-port'], 'admin-port');
    if (adminToken !== undefined)
      checkToken(values['admin-token'] === undefined ? 'RINGWAY_ADMIN_TOKEN' : '--admin-token', adminToken);
    for (const flag of ['host', 'admin-host'] as const) {
      // An empty address would make Node listen on every interface (the admin API too).
      if (values[flag] === '') throw new UsageError(`--${flag} must not be empty`);
    }
    const level = values['log-level'];
    if (level !== undefined && (typeof level !== 'string' || !(LOG_LEVELS as readonly string[]).includes(level))) {
      throw new UsageError(`--log-level must be one of ${LOG_LEVELS.join(', ')}, got '${String(level)}'`);
    }
  } catch (err) {
    io.err(`ringway: ${(err as Error).message}\n`);
    return 2;
  }
  const redisUrl = typeof values.redis === 'string' ? values.redis : io.env.REDIS_URL;
  let store: RedisStore | undefined;
  let db = 0;
  if (redisUrl !== undefined && redisUrl !== '') {
    try {
      db = redisDbOf(redisUrl);
      store = redisStore(redisUrl);
    } catch (err) {
      io.err(`ringway: --redis: ${(err as Error).message}\n`);
      return 2;
    }
    try {
      await checkRedis(store, db, REDIS_CHECK_TIMEOUT_MS);
    } catch (err) {
      io.err(`ringway: --redis: ${(err as Error).message}\n`);
      await store.close().catch(() => {});
      return 1;
    }
  }
  const level = (values['log-level'] as LogLevel | undefined) ?? 'info';
  let gateway: Gateway;
  try {
    gateway = await createGateway({
      config,
      ...(store === undefined ? {} : { store: store as Store }),
      ...(port === undefined ? {} : { port }),
      ...(typeof values.host === 'string' ? { host: values.host } : {}),
      logLevel: level,
      admin: {
        ...(adminPort === undefined ? {} : { port: adminPort }),
        ...(typeof values['admin-host'] === 'string' ? { host: values['admin-host'] } : {}),
        ...(adminToken === undefined ? {} : { token: adminToken }),
      },
    });
  } catch (err) {
    // createGateway closed what it started; the store is ours (its connections would keep
    // the process alive).
    io.err(`ringway: ${(err as Error).message}\n`);
    await store?.close().catch(() => {});
    return 1;
  }
  const log = gateway.log;
  // Signals are handled from before the first port opens: a SIGTERM that arrives while the
  // gateway is still starting cancels the start (no further port opens, and the ones open
  // close) and drains the proxy, rather than killing the process.
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) {
      log.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stopping = true;
    log.info({ signal, inFlight: gateway.inFlight }, 'shutting down: draining in-flight requests');
    gateway
      .close()
      .then(() => store?.close())
      .then(
        () => {
          log.info(undefined, 'stopped');
          process.exit(0);
        },
        (err: unknown) => {
          log.error({ err }, 'shutdown failed');
          process.exit(1);
        },
      );
  };
  io.onSignal('SIGTERM', () => stop('SIGTERM'));
  io.onSignal('SIGINT', () => stop('SIGINT'));
  let address: Awaited<ReturnType<Gateway['listen']>>;
  try {
    address = await gateway.listen();
  } catch (err) {
    // A signal cancelled the start: stop() is shutting down and exits.
    if (stopping) return 0;
    const e = err as NodeJS.ErrnoException & { address?: string; port?: number };
    if (e.code === 'EADDRINUSE') {
      io.err(
        `ringway: ${e.address ?? 'the address'}:${e.port ?? '?'} is in use; choose other ports with --port and --admin-port (0: a free one)\n`,
      );
    } else {
      // Whatever the log level: a start that fails says why.
      io.err(`ringway: cannot listen: ${e.message}\n`);
    }
    log.error({ err }, 'cannot listen');
    await gateway.close();
    await store?.close();
    return 1;
  }
  const admin = gateway.admin;
  if (admin?.generatedToken === true && admin.listening) {
    // Printed this once only; pass --admin-token or RINGWAY_ADMIN_TOKEN to choose it.
    io.out(`ringway: admin API token (generated for this run): ${admin.token}\n`);
  }
  // With demo upstreams, say what to try.
  const live = gateway.routes;
  const demoRoute = config.demo === undefined ? undefined : live.routes.find((r) => r.service === config.demo?.service);
  const host = address.address.includes(':') ? `[${address.address}]` : address.address;
  log.info(
    {
      routes: live.routes.length,
      routesFrom: live.origin.source === 'config' ? `${live.origin.key} v${live.origin.version}` : live.origin.source,
      services: [...live.services.keys()],
      store: store?.kind ?? 'memory',
      ...(demoRoute === undefined ? {} : { try: `curl http://${host}:${address.port}${demoRoute.prefix}` }),
    },
    'ringway gateway ready',
  );
  return gateway;
}

/** Whether this file is the program (also through npm's `node_modules/.bin` symlink). */
function invokedDirectly(): boolean {
  const script = process.argv[1];
  if (script === undefined) return false;
  try {
    return realpathSync(script) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (invokedDirectly()) {
  main(process.argv.slice(2)).then(
    (result) => {
      if (typeof result === 'number') process.exitCode = result;
    },
    (err: unknown) => {
      process.stderr.write(`ringway: ${(err as Error).stack ?? String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
