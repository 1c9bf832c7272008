/**
 * Redis helpers shared by every test that needs a Redis.
 *
 * - `redisUrl()`: the shared server, `REDIS_URL` or redis://127.0.0.1:6379.
 * - `requireRedis()`: whether it answers. When it does not, tests skip with a loud message,
 *   unless `REQUIRE_REDIS=1` (CI), in which case the test file fails.
 * - `testPrefix(name)`: a key prefix unique to one test file and run, so that test files
 *   running in parallel on the shared server never touch each other's keys;
 *   `deletePrefix(url, prefix)` removes them afterwards.
 * - `startRedisServer()` / `startRedisCluster()` / `startSentinel()`: self-started servers on
 *   free ports that keep nothing on disk, stopped by PID (never by name).
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { type AddressInfo, connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster, Redis } from 'ioredis';
import { type RedisStore, type RedisStoreOptions, redisStore } from '../../src/store/redis/RedisStore.js';

/** The shared test Redis: `REDIS_URL`, or redis://127.0.0.1:6379. */
export function redisUrl(): string {
  return process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
}

/** Resolves true when a Redis answers PING at `url` within `timeoutMs`. */
export async function pingRedis(url: string, timeoutMs = 1_000): Promise<boolean> {
  const client = new Redis(url, {
    lazyConnect: true,
    connectTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    enableOfflineQueue: false,
  });
  client.on('error', () => {});
  try {
    await client.connect();
    return (await client.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}

/**
 * Whether the shared Redis answers. Use with `describe.skipIf(!available)`.
 * When it does not: prints a loud warning and returns false, or throws when
 * `REQUIRE_REDIS=1` so that CI cannot pass without Redis.
 */
export async function requireRedis(what = 'Redis tests'): Promise<boolean> {
  const url = redisUrl();
  if (await pingRedis(url)) return true;
  const message = `no Redis answers at ${url} (set REDIS_URL or start redis-server)`;
  if (process.env.REQUIRE_REDIS === '1') throw new Error(`REQUIRE_REDIS=1 but ${message}`);
  const bar = '!'.repeat(78);
  console.warn(`\n${bar}\n!! SKIPPING ${what}: ${message}\n!! Set REQUIRE_REDIS=1 to make this a failure.\n${bar}\n`);
  return false;
}

/** Whether `redis-server` can be started on this machine (for self-started servers). */
export function haveRedisServerBinary(): boolean {
  return spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;
}

/** A key prefix unique to this test file and run, e.g. `test:store-redis:4711:9f3a1c:`. */
export function testPrefix(name: string): string {
  return `test:${name}:${process.pid}:${randomBytes(3).toString('hex')}:`;
}

/** Deletes every key under `prefix` (SCAN + UNLINK), e.g. in afterAll. */
export async function deletePrefix(url: string, prefix: string): Promise<void> {
  const client = new Redis(url, { maxRetriesPerRequest: 1 });
  client.on('error', () => {});
  try {
    let cursor = '0';
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
      cursor = next;
      if (keys.length > 0) await client.unlink(...keys);
    } while (cursor !== '0');
  } finally {
    client.disconnect();
  }
}

/** A free TCP port on 127.0.0.1 (and, for cluster nodes, its bus port + 10000). */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const server = createServer();
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        const address = server.address();
        const p = typeof address === 'object' && address !== null ? address.port : 0;
        server.close(() => resolve(p));
      });
    });
    if (port > 0 && port + 10_000 < 65_536) return port;
  }
}

/** A redis-server this test started. */
export interface RedisServer {
  readonly url: string;
  readonly port: number;
  /** PID of the running server (changes on restart). */
  readonly pid: number;
  /** Kills the server (SIGKILL: nothing is saved, as in a crash) and waits until it is gone. */
  stop(): Promise<void>;
  /** Starts it again on the same port, empty (it keeps nothing on disk). */
  start(): Promise<void>;
  /** stop() then start(). */
  restart(): Promise<void>;
}

/** Options of {@link startRedisServer}. */
export interface StartRedisOptions {
  /** Port to use. @default a free one */
  port?: number;
  /** Extra redis-server arguments, e.g. ['--cluster-enabled', 'yes']. @default [] */
  args?: string[];
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Whether `pid` runs (a zombie waiting for its parent to reap it counts as gone). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true;
  }
}

/** A fresh temporary directory; the caller removes it. */
export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/**
 * Starts `redis-server --port P --save "" --appendonly no --daemonize yes --pidfile F` in a
 * temporary directory and waits until it answers PING.
 */
export async function startRedisServer(options: StartRedisOptions = {}): Promise<RedisServer> {
  const port = options.port ?? (await freePort());
  const dir = tempDir(`ringway-redis-${port}-`);
  const pidfile = join(dir, 'redis.pid');
  const url = `redis://127.0.0.1:${port}`;
  let pid = 0;

  const start = async () => {
    // stop() removes the directory (it holds only the pid file and the log): recreate it.
    mkdirSync(dir, { recursive: true });
    rmSync(pidfile, { force: true });
    const run = spawnSync(
      'redis-server',
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        '--daemonize',
        'yes',
        '--pidfile',
        pidfile,
        '--dir',
        dir,
        '--logfile',
        join(dir, 'redis.log'),
        ...(options.args ?? []),
      ],
      { encoding: 'utf8' },
    );
    if (run.status !== 0) throw new Error(`redis-server failed to start on ${port}: ${run.stderr}${run.stdout}`);
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      try {
        pid = Number(readFileSync(pidfile, 'utf8').trim());
      } catch {
        pid = 0;
      }
      if (pid > 0 && (await pingRedis(url, 300))) return;
      await sleep(20);
    }
    throw new Error(`redis-server on ${port} did not answer within 10 s`);
  };

  const stop = async () => {
    if (pid !== 0 && alive(pid)) {
      process.kill(pid, 'SIGKILL');
      const deadline = Date.now() + 5_000;
      while (alive(pid) && Date.now() < deadline) await sleep(10);
    }
    pid = 0;
    rmSync(dir, { recursive: true, force: true });
  };

  await start();
  return {
    url,
    port,
    get pid() {
      return pid;
    },
    stop,
    start,
    async restart() {
      await stop();
      await start();
    },
  };
}

/** A Redis Cluster of self-started masters (and replicas, when asked for). */
export interface RedisCluster {
  /** Every node; which are masters and which replicas: `CLUSTER NODES`. */
  readonly nodes: readonly RedisServer[];
  /** `{ host, port }` of every node, for `new Cluster(...)`. */
  readonly startupNodes: readonly { host: string; port: number }[];
  stop(): Promise<void>;
}

/** Options of {@link startRedisCluster}. */
export interface StartClusterOptions {
  /** Replicas per master (`--cluster-replicas`). @default 0 */
  replicas?: number;
  /** `cluster-node-timeout`: how long a node may be silent before it counts as failing. @default 2000 */
  nodeTimeoutMs?: number;
}

/**
 * Starts `masters` x (1 + `replicas`) cluster-enabled servers and joins them with
 * `redis-cli --cluster create ... --cluster-replicas R --cluster-yes`; waits until every node
 * reports `cluster_state:ok` and every replica's link to its master is up. Throws (after
 * stopping what it started) when that takes over `timeoutMs`.
 */
export async function startRedisCluster(
  masters = 3,
  timeoutMs = 20_000,
  options: StartClusterOptions = {},
): Promise<RedisCluster> {
  const replicas = options.replicas ?? 0;
  const nodes: RedisServer[] = [];
  const stopAll = async () => {
    for (const node of nodes) await node.stop();
  };
  try {
    for (let i = 0; i < masters * (1 + replicas); i++) {
      const port = await freePort();
      nodes.push(
        await startRedisServer({
          port,
          args: [
            '--cluster-enabled',
            'yes',
            '--cluster-config-file',
            `nodes-${port}.conf`,
            '--cluster-node-timeout',
            String(options.nodeTimeoutMs ?? 2000),
          ],
        }),
      );
    }
    const create = spawnSync(
      'redis-cli',
      [
        '--cluster',
        'create',
        ...nodes.map((n) => `127.0.0.1:${n.port}`),
        '--cluster-replicas',
        String(replicas),
        '--cluster-yes',
      ],
      { encoding: 'utf8', timeout: timeoutMs },
    );
    if (create.status !== 0) throw new Error(`redis-cli --cluster create failed: ${create.stderr}${create.stdout}`);
    const deadline = Date.now() + timeoutMs;
    for (const node of nodes) {
      const client = new Redis(node.url, { maxRetriesPerRequest: 1 });
      client.on('error', () => {});
      try {
        for (;;) {
          const info = String(await client.call('CLUSTER', 'INFO'));
          const replication = await client.info('replication');
          // A replica counts once it has synced: one whose link is still down could not be promoted.
          const synced = !replication.includes('role:slave') || replication.includes('master_link_status:up');
          if (info.includes('cluster_state:ok') && synced) break;
          if (Date.now() > deadline) throw new Error(`cluster node ${node.port} not ok within ${timeoutMs} ms`);
          await sleep(50);
        }
      } finally {
        client.disconnect();
      }
    }
    return { nodes, startupNodes: nodes.map((n) => ({ host: '127.0.0.1', port: n.port })), stop: stopAll };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

/** A Sentinel this test started. */
export interface RedisSentinel {
  readonly port: number;
  readonly pid: number;
  /** Kills it (SIGKILL) and waits until it is gone; removes its directory. */
  stop(): Promise<void>;
}

/** Options of {@link startSentinel}. */
export interface StartSentinelOptions {
  /** The monitored master's name. @default 'mymaster' */
  name?: string;
  /** Sentinels that must agree the master is down. @default 1 */
  quorum?: number;
  /** `down-after-milliseconds`: silence before the master counts as down. @default 30000 (Redis') */
  downAfterMs?: number;
  /** `failover-timeout`. @default 180000 (Redis') */
  failoverTimeoutMs?: number;
}

/**
 * Starts `redis-server <conf> --sentinel` monitoring the master on `masterPort` and waits
 * until it answers PING.
 */
export async function startSentinel(masterPort: number, options: StartSentinelOptions = {}): Promise<RedisSentinel> {
  const port = await freePort();
  const dir = tempDir(`ringway-sentinel-${port}-`);
  const conf = join(dir, 'sentinel.conf');
  const pidfile = join(dir, 'sentinel.pid');
  const name = options.name ?? 'mymaster';
  writeFileSync(
    conf,
    [
      `port ${port}`,
      'bind 127.0.0.1',
      `dir ${dir}`,
      `pidfile ${pidfile}`,
      'daemonize yes',
      `logfile ${join(dir, 'sentinel.log')}`,
      `sentinel monitor ${name} 127.0.0.1 ${masterPort} ${options.quorum ?? 1}`,
      ...(options.downAfterMs === undefined ? [] : [`sentinel down-after-milliseconds ${name} ${options.downAfterMs}`]),
      ...(options.failoverTimeoutMs === undefined
        ? []
        : [`sentinel failover-timeout ${name} ${options.failoverTimeoutMs}`]),
      '',
    ].join('\n'),
  );
  const started = spawnSync('redis-server', [conf, '--sentinel'], { encoding: 'utf8' });
  if (started.status !== 0) throw new Error(`sentinel failed to start on ${port}: ${started.stderr}${started.stdout}`);
  let pid = 0;
  const deadline = Date.now() + 10_000;
  while (pid === 0 || !(await pingRedis(`redis://127.0.0.1:${port}`, 300))) {
    if (Date.now() > deadline) throw new Error(`sentinel on ${port} did not answer within 10 s`);
    try {
      pid = Number(readFileSync(pidfile, 'utf8').trim());
    } catch {
      pid = 0;
    }
    await sleep(20);
  }
  return {
    port,
    get pid() {
      return pid;
    },
    async stop() {
      if (pid !== 0 && alive(pid)) {
        process.kill(pid, 'SIGKILL');
        const gone = Date.now() + 5_000;
        while (alive(pid) && Date.now() < gone) await sleep(10);
      }
      pid = 0;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A `redisStore` over a new Cluster client for `cluster`'s nodes; closing the store also
 * disconnects that client (the store leaves clients it was given open).
 */
export async function clusterStore(
  cluster: Promise<RedisCluster>,
  prefix: string,
  options: Omit<RedisStoreOptions, 'prefix'> = {},
): Promise<RedisStore> {
  const { startupNodes } = await cluster;
  const client = new Cluster([...startupNodes], { redisOptions: { maxRetriesPerRequest: 1 } });
  client.on('error', () => {});
  const store = redisStore(client, { ...options, prefix });
  const close = store.close.bind(store);
  return Object.assign(store, {
    close: async () => {
      await close();
      client.disconnect();
    },
  });
}

/**
 * A loopback TCP proxy to a Redis server that, once armed with a marker, cuts the connection
 * instead of passing on the next reply holding that marker: the command ran, its answer is
 * lost (as when a master dies right after running a command, or the network drops). The
 * server stays up. Close it to drop every connection through it.
 */
export async function replyCutter(target: {
  host: string;
  port: number;
}): Promise<{ url: string; port: number; arm(marker: string): void; close(): Promise<void> }> {
  let marker: string | undefined;
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(target.port, target.host);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => {});
      s.on('close', () => sockets.delete(s));
    }
    client.on('data', (d) => upstream.write(d));
    upstream.on('data', (d: Buffer) => {
      if (marker !== undefined && d.includes(marker)) {
        marker = undefined;
        client.destroy();
        upstream.destroy();
        return;
      }
      client.write(d);
    });
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    arm: (m) => {
      marker = m;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
