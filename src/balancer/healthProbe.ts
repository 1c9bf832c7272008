/**
 * One active health probe: an HTTP GET or a TCP connect to an endpoint's address, bounded
 * by a timeout. Probes never keep the process alive: their sockets and timers are unref'd.
 */
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';

/** Where a probe goes, parsed from an endpoint's address. */
export interface ProbeTarget {
  readonly protocol: string;
  readonly hostname: string;
  readonly port: number;
}

/** How a probe goes. */
export interface ProbeSpec {
  readonly type: 'http' | 'tcp';
  readonly path: string;
  /** Inclusive [low, high] ranges of healthy statuses. */
  readonly expectedStatuses: readonly (readonly [number, number])[];
  readonly timeoutMs: number;
}

/** Called once per probe: `reason` says what went wrong ('' when ok). */
export type ProbeCallback = (ok: boolean, reason: string) => void;

const DEFAULT_PORTS: Readonly<Record<string, number>> = { 'http:': 80, 'https:': 443, 'ws:': 80, 'wss:': 443 };

/**
 * Parses `http://host:port/...`, `https://...`, any `scheme://host:port`, or a bare
 * `host:port` (`[::1]:8080` for IPv6). Returns undefined when no host and port come out.
 */
export function parseProbeTarget(address: string): ProbeTarget | undefined {
  let url: URL;
  try {
    url = new URL(address.includes('://') ? address : `tcp://${address}`);
  } catch {
    return undefined;
  }
  const port = url.port === '' ? DEFAULT_PORTS[url.protocol] : Number(url.port);
  const hostname = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  if (port === undefined || hostname === '') return undefined;
  return { protocol: url.protocol, hostname, port };
}

/**
 * Starts one probe and returns a function that cancels it (the callback is then never
 * called). The callback runs once, asynchronously.
 */
export function runProbe(target: ProbeTarget, spec: ProbeSpec, done: ProbeCallback): () => void {
  return spec.type === 'tcp' ? probeTcp(target, spec, done) : probeHttp(target, spec, done);
}

function probeHttp(target: ProbeTarget, spec: ProbeSpec, done: ProbeCallback): () => void {
  let finished = false;
  const client = target.protocol === 'https:' ? https : http;
  const req = client.request({
    host: target.hostname,
    port: target.port,
    path: spec.path,
    method: 'GET',
    // A fresh connection per probe, closed after it: no pooled socket to outlive close(),
    // and no keep-alive race with a server that drops idle connections.
    agent: false,
    headers: { 'user-agent': 'ringway-health-check', connection: 'close', accept: '*/*' },
  });
  const finish = (ok: boolean, reason: string): void => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    req.destroy();
    done(ok, reason);
  };
  const timer = setTimeout(() => finish(false, `timeout after ${spec.timeoutMs} ms`), spec.timeoutMs);
  timer.unref();
  req.on('socket', (socket) => socket.unref());
  req.on('response', (res) => {
    const status = res.statusCode ?? 0;
    res.resume();
    const ok = spec.expectedStatuses.some(([low, high]) => status >= low && status <= high);
    finish(ok, ok ? '' : `HTTP ${status}`);
  });
  req.on('error', (err: NodeJS.ErrnoException) => finish(false, err.code ?? err.message));
  req.end();
  return () => {
    finished = true;
    clearTimeout(timer);
    req.destroy();
  };
}

function probeTcp(target: ProbeTarget, spec: ProbeSpec, done: ProbeCallback): () => void {
  let finished = false;
  const socket = net.connect({ host: target.hostname, port: target.port });
  socket.unref();
  const finish = (ok: boolean, reason: string): void => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    socket.destroy();
    done(ok, reason);
  };
  const timer = setTimeout(() => finish(false, `timeout after ${spec.timeoutMs} ms`), spec.timeoutMs);
  timer.unref();
  socket.on('connect', () => finish(true, ''));
  socket.on('error', (err: NodeJS.ErrnoException) => finish(false, err.code ?? err.message));
  return () => {
    finished = true;
    clearTimeout(timer);
    socket.destroy();
  };
}
