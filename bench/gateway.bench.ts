/**
 * Gateway throughput, side by side, in one run:
 *
 *     npm run bench:gateway        (or: npx tsx bench/gateway.bench.ts [--seconds 4] [--rounds 5])
 *
 * `--pair <peer>` measures only ringway and that peer (e.g. `--pair nginx`, or `--pair 'ringway
 * (baseline)'` with `--baseline`), alternating A B B A for `--rounds` pairs, and reports the
 * median of the per-pair ratios: on a host whose speed drifts, the steadiest A/B this bench has
 * (a full run puts the two rounds apart among other peers).
 *
 * `--baseline <dir>` adds a peer `ringway (baseline)` run from another build of ringway (a
 * directory holding `dist/` and `node_modules/`, e.g. a worktree of main after `npm run build`),
 * to measure a change against the code before it in the same run. `--upstream-connections <n>`
 * caps the keep-alive connections ringway and the bare proxy open to the upstream (default 128,
 * ringway's default; the other peers keep their own). `--redis <url>` runs both ringway peers on
 * the Redis store instead of the memory store; `--node-args '<options>'` starts the `ringway`
 * peer (not the baseline) with these node options, e.g. `--node-args '-r ioredis'`.
 *
 * One small upstream (node:http, keep-alive) and, in front of it, each peer in its own process:
 * - direct: wrk straight to the upstream (the ceiling);
 * - ringway: `ringway gateway` with p2c, outlier detection and metrics on (the defaults);
 * - reply-from: Fastify 5 + @fastify/reply-from, a catch-all route;
 * - fast-gateway: fast-gateway 5 with one route;
 * - nginx: one worker, keep-alive to the upstream (only when Debian's nginx is installed);
 * - nginx (headers): the same nginx set up to do the header work ringway does on every request
 *   (X-Forwarded-For/-Proto/-Host and X-Request-Id to the upstream, the request id back to the
 *   client): what nginx costs doing the same job. Not a target; the target is plain nginx;
 * - bare undici: node:http + undici `Pool.dispatch` with nothing else, the floor for a Node
 *   proxy (no routing, request ids, retries, balancing or metrics), to show what the features cost.
 *
 * The load generator (wrk, else autocannon) is pinned to core 0 and every server to core 1
 * (taskset), so that the peers share the same budget; rounds are interleaved (each round runs
 * every peer once, in a rotating order, reversed every other round) and the medians are
 * reported with their range over rounds. Ringway's ratios to the other peers are taken round
 * by round (peers of one round run under about the same load) and reported as the median and
 * range of those. Besides
 * req/s and p50/p99 latency, it reads the CPU time the proxy process used from
 * /proc/<pid>/stat and reports microseconds of CPU per request, the steadiest figure on a
 * shared machine (though it too grows when the machine is busy: a starved proxy handles fewer
 * requests per event-loop turn).
 *
 * A peer whose tool or package is missing is skipped and listed as such.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { machine, writeResults } from './harness.js';
import { isFresh } from './ringway.js';

/** Config and pid files of the peers; removed when the bench exits. */
const benchTmp = mkdtempSync(join(tmpdir(), 'ringway-bench-'));
process.on('exit', () => rmSync(benchTmp, { recursive: true, force: true }));
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '4' },
    rounds: { type: 'string', default: '5' },
    connections: { type: 'string', default: '50' },
    'upstream-connections': { type: 'string', default: '128' },
    only: { type: 'string' },
    pair: { type: 'string' },
    baseline: { type: 'string' },
    redis: { type: 'string' },
    'node-args': { type: 'string' },
  },
});
/** `--only ringway,nginx`: run just these peers (and direct). */
const ONLY = args.only === undefined ? undefined : new Set(args.only.split(','));
/** `--pair nginx`: ringway and that peer only, alternating, no direct runs between them. */
const PAIR = args.pair;
const SECONDS = Number(args.seconds);
const ROUNDS = Number(args.rounds);
const CONNECTIONS = Number(args.connections);
/** Keep-alive connections to the upstream of ringway and of the bare proxy (ringway's default: 128). */
const UPSTREAM_CONNECTIONS = Number(args['upstream-connections']);
/** `--node-args '-r ioredis'`: node options for the `ringway` peer only (not the baseline). */
const NODE_ARGS = args['node-args'] === undefined ? [] : args['node-args'].split(' ').filter((a) => a !== '');
const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

const UPSTREAM_PORT = 19_001;
const PORTS = {
  ringway: 19_010,
  'reply-from': 19_011,
  'fast-gateway': 19_012,
  nginx: 19_013,
  'bare undici': 19_014,
  'ringway (baseline)': 19_015,
  'nginx (headers)': 19_016,
} as const;
const PATH = '/api/hello';

function have(tool: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;
}
const HAVE_TASKSET = have('taskset');
const LOADGEN: 'wrk' | 'autocannon' = have('wrk') ? 'wrk' : 'autocannon';

/** Runs `cmd` pinned to `core` when taskset exists. */
function pinned(core: number, cmd: string, cmdArgs: string[], opts: Parameters<typeof spawn>[2] = {}): ChildProcess {
  const [c, a] = HAVE_TASKSET ? ['taskset', ['-c', String(core), cmd, ...cmdArgs]] : [cmd, cmdArgs];
  return spawn(c as string, a as string[], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'], ...opts });
}

function portBusy(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

function waitForPort(port: number, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const attempt = (): void => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve();
      });
      s.once('error', () => {
        s.destroy();
        if (Date.now() > end) reject(new Error(`nothing listens on ${port}`));
        else setTimeout(attempt, 100);
      });
    };
    attempt();
  });
}

/** utime + stime of a process and its reaped children, in ticks. */
function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // Fields 14 and 15 of stat (utime, stime) are at 11 and 12 after the command.
  return Number(fields[11]) + Number(fields[12]);
}

const UPSTREAM_CODE = `
const http = require('node:http');
const body = Buffer.from(JSON.stringify({ hello: 'world', from: 'upstream' }));
http.createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
  res.end(body);
}).listen(${UPSTREAM_PORT}, '127.0.0.1');
`;

const REPLY_FROM_CODE = `
import Fastify from 'fastify';
import replyFrom from '@fastify/reply-from';
const app = Fastify({ logger: false });
await app.register(replyFrom, { base: 'http://127.0.0.1:${UPSTREAM_PORT}' });
app.all('/*', (request, reply) => reply.from(request.url));
await app.listen({ port: ${PORTS['reply-from']}, host: '127.0.0.1' });
`;

const FAST_GATEWAY_CODE = `
import gateway from 'fast-gateway';
const server = gateway({ routes: [{ prefix: '/api', prefixRewrite: '/api', target: 'http://127.0.0.1:${UPSTREAM_PORT}' }] });
await server.start(${PORTS['fast-gateway']}, '127.0.0.1');
`;

// The floor for a Node proxy: node:http in front, undici's Pool.dispatch behind, hop-by-hop
// headers dropped, nothing else (no routing, ids, retries, balancing or metrics).
const BARE_CODE = `
import http from 'node:http';
import { Pool } from 'undici';
const pool = new Pool('http://127.0.0.1:${UPSTREAM_PORT}', { connections: ${UPSTREAM_CONNECTIONS}, pipelining: 1 });
const HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'proxy-connection', 'host']);
http.createServer((req, res) => {
  const raw = req.rawHeaders, headers = [];
  for (let i = 0; i < raw.length; i += 2) if (!HOP.has(raw[i].toLowerCase())) headers.push(raw[i], raw[i + 1]);
  headers.push('x-forwarded-for', req.socket.remoteAddress);
  pool.dispatch({ path: req.url, method: req.method, headers, body: null }, {
    onConnect() {},
    onHeaders(status, rh, resume) {
      const out = [];
      for (let i = 0; i < rh.length; i += 2) {
        const k = rh[i].toString('latin1');
        if (!HOP.has(k.toLowerCase())) out.push(k, rh[i + 1].toString('latin1'));
      }
      res.writeHead(status, out);
      this.resume = resume;
      return true;
    },
    onData(chunk) { if (res.write(chunk)) return true; res.once('drain', this.resume); return false; },
    onComplete() { res.end(); },
    onError() { if (!res.headersSent) res.writeHead(502); res.end(); },
  });
}).listen(${PORTS['bare undici']}, '127.0.0.1');
`;

interface Peer {
  name: string;
  port: number;
  /** Starts the peer; resolves with the process to measure, or a reason to skip it. */
  start(): Promise<{ proc: ChildProcess; pids: () => number[] } | string>;
}

function nodePeer(name: keyof typeof PORTS, code: string, moduleName: string): Peer {
  return {
    name,
    port: PORTS[name],
    async start() {
      if (!existsSync(join(ROOT, 'node_modules', moduleName))) return `${moduleName} is not installed`;
      const proc = pinned(1, process.execPath, ['--input-type=module', '-e', code]);
      return { proc, pids: () => [proc.pid as number] };
    },
  };
}

/** `ringway gateway` from this checkout, or from the build in `baselineDir` (`ringway (baseline)`). */
function ringwayPeer(baselineDir?: string): Peer {
  const name = baselineDir === undefined ? 'ringway' : 'ringway (baseline)';
  const port = PORTS[name];
  return {
    name,
    port,
    async start() {
      const dir = mkdtempSync(join(benchTmp, 'ringway-'));
      const config = join(dir, 'gateway.yaml');
      writeFileSync(
        config,
        [
          `listen: { host: 127.0.0.1, port: ${port} }`,
          'routes:',
          '  - match: { prefix: /api }',
          '    service: upstream',
          '    strategy: p2c',
          'services:',
          `  upstream: { static: [http://127.0.0.1:${UPSTREAM_PORT}], outlierDetection: { consecutiveFailures: 5 }, connections: ${UPSTREAM_CONNECTIONS} }`,
          '',
        ].join('\n'),
      );
      let cli: string[];
      if (baselineDir !== undefined) {
        const built = join(baselineDir, 'dist', 'server', 'cli.js');
        if (!existsSync(built)) return `no ${built} (run npm run build there)`;
        cli = [built];
      } else {
        // The gateway is built from server/ and src/: the build must be newer than both.
        cli = isFresh('dist/server/cli.js', ['server', 'src'])
          ? [join(ROOT, 'dist', 'server', 'cli.js')]
          : ['--import', 'tsx', join(ROOT, 'server', 'cli.ts')];
        ringwayBuild = cli.length === 1 ? 'dist (built)' : 'sources under tsx';
      }
      // Each gateway's admin API on a port of its own (the default 9080 is shared).
      const proc = pinned(1, process.execPath, [
        ...(baselineDir === undefined ? NODE_ARGS : []),
        ...cli,
        'gateway',
        '--config',
        config,
        ...(args.redis === undefined ? [] : ['--redis', args.redis]),
        '--log-level',
        'warn',
        '--admin-port',
        String(port + 100),
      ]);
      return { proc, pids: () => [proc.pid as number] };
    },
  };
}

let ringwayBuild = '';

/**
 * nginx with one worker. `headers`: also the header work ringway does on every request (see
 * the file's comment), with the variables nginx documents for it.
 */
function nginxPeer(headers = false): Peer {
  const name = headers ? 'nginx (headers)' : 'nginx';
  const port = PORTS[name];
  const extra = headers
    ? `
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Forwarded-Host $http_host;
      proxy_set_header X-Request-Id $request_id;
      add_header X-Request-Id $request_id always;`
    : '';
  return {
    name,
    port,
    async start() {
      const bin = ['nginx', '/usr/sbin/nginx'].find((b) => have(b) || existsSync(b));
      if (bin === undefined) return 'nginx is not installed (apt-get install nginx-light)';
      const dir = mkdtempSync(join(benchTmp, 'nginx-'));
      const pidFile = join(dir, 'nginx.pid');
      writeFileSync(
        join(dir, 'nginx.conf'),
        `worker_processes 1;
daemon off;
pid ${pidFile};
error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  upstream up { server 127.0.0.1:${UPSTREAM_PORT}; keepalive 64; }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://up;
      proxy_http_version 1.1;
      proxy_set_header Connection "";${extra}
    }
  }
}
`,
      );
      const proc = pinned(1, bin, ['-p', dir, '-c', join(dir, 'nginx.conf')]);
      // The master forks one worker: measure both.
      const pids = (): number[] => {
        const children = spawnSync('pgrep', ['-P', String(proc.pid)], { encoding: 'utf8' })
          .stdout.split('\n')
          .filter((s) => s !== '')
          .map(Number);
        return [proc.pid as number, ...children];
      };
      return { proc, pids };
    },
  };
}

interface Sample {
  rps: number;
  p50Ms: number;
  p99Ms: number;
  cpuUsPerReq: number | undefined;
  errors: number;
}

function parseWrkLatency(text: string, pct: string): number {
  const m = new RegExp(`^\\s+${pct}%\\s+([\\d.]+)(us|ms|s)`, 'm').exec(text);
  if (m === null) return Number.NaN;
  const v = Number(m[1]);
  return m[2] === 'us' ? v / 1000 : m[2] === 's' ? v * 1000 : v;
}

/** One load run against `port`; CPU measured on `pids` (empty: not measured). */
function load(port: number, pids: () => number[], seconds: number): Sample {
  const url = `http://127.0.0.1:${port}${PATH}`;
  const before = pids().map(cpuTicks);
  let requests: number;
  let rps: number;
  let p50: number;
  let p99: number;
  let errors = 0;
  if (LOADGEN === 'wrk') {
    const cmd = ['wrk', '-t1', `-c${CONNECTIONS}`, `-d${seconds}s`, '--latency', url];
    const run = spawnSync(
      HAVE_TASKSET ? 'taskset' : (cmd[0] as string),
      HAVE_TASKSET ? ['-c', '0', ...cmd] : cmd.slice(1),
      {
        encoding: 'utf8',
      },
    );
    const out = run.stdout;
    requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? 0);
    rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? 0);
    p50 = parseWrkLatency(out, '50');
    p99 = parseWrkLatency(out, '99');
    errors = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
    const socketErrors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
    if (socketErrors !== null) errors += socketErrors.slice(1).reduce((a, b) => a + Number(b), 0);
  } else {
    const cmd = [
      process.execPath,
      join(ROOT, 'node_modules', 'autocannon', 'autocannon.js'),
      '-j',
      '-c',
      String(CONNECTIONS),
      '-d',
      String(seconds),
      url,
    ];
    const run = spawnSync(
      HAVE_TASKSET ? 'taskset' : (cmd[0] as string),
      HAVE_TASKSET ? ['-c', '0', ...cmd] : cmd.slice(1),
      {
        encoding: 'utf8',
      },
    );
    const r = JSON.parse(run.stdout) as {
      requests: { total: number; average: number };
      latency: { p50: number; p99: number };
      non2xx: number;
      errors: number;
    };
    requests = r.requests.total;
    rps = r.requests.average;
    p50 = r.latency.p50;
    p99 = r.latency.p99;
    errors = r.non2xx + r.errors;
  }
  const after = pids().map(cpuTicks);
  if (process.env.BENCH_DEBUG === '1') console.log('pids', pids(), 'ticks', before, after);
  const ticks = after.reduce((a, b) => a + b, 0) - before.reduce((a, b) => a + b, 0);
  const cpuUsPerReq = before.length === 0 || requests === 0 ? undefined : (ticks * 1e6) / CLK_TCK / requests;
  return { rps, p50Ms: p50, p99Ms: p99, cpuUsPerReq, errors };
}

const round1 = (v: number): number => Math.round(v * 10) / 10;
const round2 = (v: number): number => Math.round(v * 100) / 100;

function median(values: number[]): number {
  const s = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

async function main(): Promise<void> {
  const loadavgBefore = loadavg();
  console.log(
    `load average before: ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')} (other work on the machine skews every peer)`,
  );
  console.log(
    `gateway bench: ${LOADGEN}, ${CONNECTIONS} connections, ${ROUNDS} rounds x ${SECONDS} s per peer, ` +
      `${HAVE_TASKSET ? 'load on core 0, servers on core 1' : 'no taskset: unpinned'}`,
  );
  for (const port of [UPSTREAM_PORT, ...Object.values(PORTS), ...Object.values(PORTS).map((p) => p + 100)]) {
    if (await portBusy(port)) throw new Error(`port ${port} is in use (a bench left running?): free it first`);
  }
  const upstream = pinned(1, process.execPath, ['-e', UPSTREAM_CODE]);
  const running: { proc: ChildProcess; pids: () => number[] }[] = [
    { proc: upstream, pids: () => [upstream.pid as number] },
  ];
  const stopAll = (): void => {
    // Every process of every peer, nginx's worker too: the master first (else it forks a new
    // worker for the one that died), then the children listed before.
    for (const r of running) {
      for (const pid of r.pids()) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
  };
  process.on('exit', stopAll);
  await waitForPort(UPSTREAM_PORT);

  const peers: Peer[] = [
    ringwayPeer(),
    nodePeer('reply-from', REPLY_FROM_CODE, '@fastify/reply-from'),
    nodePeer('fast-gateway', FAST_GATEWAY_CODE, 'fast-gateway'),
    nginxPeer(),
    nginxPeer(true),
    nodePeer('bare undici', BARE_CODE, 'undici'),
    ...(args.baseline === undefined ? [] : [ringwayPeer(args.baseline)]),
  ];
  const live: { name: string; port: number; pids: () => number[] }[] = [
    { name: 'direct', port: UPSTREAM_PORT, pids: () => [upstream.pid as number] },
  ];
  const skipped: Record<string, string> = {};
  for (const peer of peers) {
    if (PAIR !== undefined && peer.name !== 'ringway' && peer.name !== PAIR) continue;
    // --only never drops the baseline that --baseline asked for.
    if (ONLY !== undefined && !ONLY.has(peer.name) && peer.name !== 'ringway (baseline)') continue;
    const started = await peer.start();
    if (typeof started === 'string') {
      skipped[peer.name] = started;
      console.log(`skip ${peer.name}: ${started}`);
      continue;
    }
    running.push(started);
    let stderr = '';
    started.proc.stderr?.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    try {
      await waitForPort(peer.port);
      const check = await fetch(`http://127.0.0.1:${peer.port}${PATH}`);
      if (check.status !== 200) throw new Error(`answers ${check.status}`);
      await check.arrayBuffer();
    } catch (err) {
      skipped[peer.name] = `did not start: ${(err as Error).message} ${stderr.slice(0, 300)}`;
      console.log(`skip ${peer.name}: ${skipped[peer.name]}`);
      continue;
    }
    live.push({ name: peer.name, port: peer.port, pids: started.pids });
  }

  if (PAIR !== undefined && (live.length !== 3 || !live.some((p) => p.name === PAIR))) {
    throw new Error(
      `--pair ${PAIR}: that peer did not start (peers: ringway, reply-from, fast-gateway, nginx, bare undici, ringway (baseline))`,
    );
  }
  // In pair mode only the two alternate (A B, then B A): direct is not measured.
  const measured = PAIR === undefined ? live : live.filter((p) => p.name !== 'direct');

  // Warm-up: every peer once, JIT and connection pools settle.
  for (const p of live) load(p.port, () => [], 2);

  const samples = new Map<string, Sample[]>(measured.map((p) => [p.name, []]));
  for (let r = 0; r < ROUNDS; r++) {
    // Rotated each round, and reversed every other round: which peer runs right after which
    // (after direct's burst, say) changes too, so no peer always follows the same one.
    const order = measured.map((_, i) => measured[(i + r) % measured.length] as (typeof measured)[number]);
    if (r % 2 === 1 && PAIR === undefined) order.reverse();
    for (const p of order) {
      const s = load(p.port, p.pids, SECONDS);
      (samples.get(p.name) as Sample[]).push(s);
      console.log(
        `round ${r + 1} ${p.name.padEnd(13)} ${s.rps.toFixed(0).padStart(7)} req/s  p50 ${s.p50Ms.toFixed(2)} ms  ` +
          `p99 ${s.p99Ms.toFixed(2)} ms  cpu ${s.cpuUsPerReq?.toFixed(1) ?? '-'} us/req${s.errors > 0 ? `  errors ${s.errors}` : ''}`,
      );
    }
  }
  stopAll();

  const results = measured.map((p) => {
    const ss = samples.get(p.name) as Sample[];
    const cpu = ss.map((s) => s.cpuUsPerReq ?? Number.NaN).filter((v) => Number.isFinite(v));
    return {
      name: p.name,
      rps: median(ss.map((s) => s.rps)),
      p50Ms: median(ss.map((s) => s.p50Ms)),
      p99Ms: median(ss.map((s) => s.p99Ms)),
      cpuUsPerReq: median(cpu),
      cpuRange: cpu.length === 0 ? [] : [round1(Math.min(...cpu)), round1(Math.max(...cpu))],
      errors: ss.reduce((a, s) => a + s.errors, 0),
      rounds: ss.map((s) => Number(s.rps.toFixed(0))),
    };
  });
  const by = new Map(results.map((r) => [r.name, r]));
  const direct = by.get('direct');
  const ringway = by.get('ringway');
  const range = (v: readonly number[]): string =>
    v.length === 0 ? '' : ` (${Math.min(...v).toFixed(0)}-${Math.max(...v).toFixed(0)})`;
  const lines = [
    '| peer | req/s (range over rounds) | vs direct | p50 ms | p99 ms | CPU us/req, proxy process (range) |',
    '|---|---:|---:|---:|---:|---:|',
    ...results.map(
      (r) =>
        `| ${r.name} | ${r.rps.toFixed(0)}${range(r.rounds)} | ${direct === undefined ? '-' : `${(r.rps / direct.rps).toFixed(2)}x`} | ` +
        `${r.p50Ms.toFixed(2)} | ${r.p99Ms.toFixed(2)} | ` +
        `${Number.isFinite(r.cpuUsPerReq) ? r.cpuUsPerReq.toFixed(1) : '-'}${range(r.cpuRange)}${r.name === 'direct' ? ' (upstream)' : ''} |`,
    ),
  ];
  /**
   * Ratios of ringway to a peer are taken round by round (the two ran minutes apart at most,
   * under the same load), then the median and the range over rounds are reported: on a
   * shared machine the load changes between rounds far more than between peers of a round.
   */
  const perRound = (peer: string, pick: (s: Sample) => number): { median: number; min: number; max: number } => {
    const mine = samples.get('ringway') as Sample[];
    const theirs = samples.get(peer) as Sample[];
    const ratios = mine.map((s, i) => pick(s) / pick(theirs[i] as Sample)).filter((v) => Number.isFinite(v));
    return { median: median(ratios), min: Math.min(...ratios), max: Math.max(...ratios) };
  };
  const targets: Record<string, { ratio: number; range: number[]; target: number; met: boolean }> = {};
  const notes: string[] = [];
  if (ringway !== undefined) {
    for (const [peer, target] of [
      ['reply-from', 1.3],
      ['fast-gateway', 1.6],
      ['nginx', 0.5],
    ] as const) {
      if (!by.has(peer)) continue;
      const r = perRound(peer, (s) => s.rps);
      targets[`vs ${peer}`] = {
        ratio: round2(r.median),
        range: [round2(r.min), round2(r.max)],
        target,
        met: r.median >= target,
      };
    }
    // Not targets, for reading the others: the floor, and the code before a change.
    for (const peer of new Set([
      'bare undici',
      'nginx (headers)',
      'ringway (baseline)',
      ...(PAIR === undefined ? [] : [PAIR]),
    ])) {
      if (peer === 'nginx' || peer === 'reply-from' || peer === 'fast-gateway') {
        if (PAIR === peer) {
          const cpu = perRound(peer, (s) => s.cpuUsPerReq ?? Number.NaN);
          notes.push(
            `ringway vs ${peer}: ${cpu.median.toFixed(2)}x CPU us/req (${cpu.min.toFixed(2)}-${cpu.max.toFixed(2)})`,
          );
        }
        continue;
      }
      if (!by.has(peer)) continue;
      const rps = perRound(peer, (s) => s.rps);
      const cpu = perRound(peer, (s) => s.cpuUsPerReq ?? Number.NaN);
      notes.push(
        `ringway vs ${peer}: ${rps.median.toFixed(2)}x req/s (${rps.min.toFixed(2)}-${rps.max.toFixed(2)}), ` +
          `${cpu.median.toFixed(2)}x CPU us/req (${cpu.min.toFixed(2)}-${cpu.max.toFixed(2)})`,
      );
    }
    targets['CPU us/req'] = {
      ratio: round1(ringway.cpuUsPerReq),
      range: ringway.cpuRange,
      target: 70,
      met: ringway.cpuUsPerReq <= 70,
    };
  }
  console.log(`\n${lines.join('\n')}\n`);
  console.log(`ringway ran from ${ringwayBuild}`);
  for (const [k, v] of Object.entries(targets)) {
    const x = k.startsWith('vs') ? 'x' : '';
    console.log(
      `ringway ${k}: ${v.ratio}${x} (rounds ${v.range.join('-')}${x}; target ${x === 'x' ? '>=' : '<='} ${v.target}) ${v.met ? 'met' : 'NOT met'}`,
    );
  }
  for (const note of notes) console.log(note);
  for (const [k, v] of Object.entries(skipped)) console.log(`skipped ${k}: ${v}`);
  // A pair run does not replace the full run's results.
  writeResults(PAIR === undefined ? 'gateway' : 'gateway-pair', {
    machine: {
      ...machine(),
      loadgen: LOADGEN,
      connections: CONNECTIONS,
      upstreamConnections: UPSTREAM_CONNECTIONS,
      seconds: SECONDS,
      rounds: ROUNDS,
      pair: PAIR ?? null,
      pinned: HAVE_TASKSET,
      ringway: ringwayBuild,
      loadavgBefore,
      loadavg: loadavg(),
    },
    results,
    targets,
    notes,
    skipped,
    table: lines.join('\n'),
  });
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
