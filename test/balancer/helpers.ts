/**
 * Test helpers for the balancer: a seeded PRNG, a hand-moved clock, and loopback servers.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import net from 'node:net';
import type { EndpointInput } from '../../src/balancer/Endpoint.js';

/** mulberry32: a small seeded PRNG in [0, 1), so random strategies replay exactly. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A clock moved by hand. */
export interface FakeClock {
  now: () => number;
  advance(ms: number): void;
  set(ms: number): void;
}

export function fakeClock(start = 1_000): FakeClock {
  let t = start;
  return {
    now: () => t,
    advance: (ms) => {
      t += ms;
    },
    set: (ms) => {
      t = ms;
    },
  };
}

/** Endpoints e0..e(n-1) with the given weights (default 1). */
export function endpoints(n: number, weights?: readonly number[]): EndpointInput[] {
  return Array.from({ length: n }, (_, i) => ({
    id: `e${i}`,
    address: `http://127.0.0.1:${10_000 + i}`,
    weight: weights?.[i] ?? 1,
  }));
}

/** Counts of each id in a list. */
export function tally(ids: readonly string[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const id of ids) m.set(id, (m.get(id) ?? 0) + 1);
  return m;
}

/** An HTTP server on 127.0.0.1 whose behaviour can be switched while it runs. */
export interface TestServer {
  readonly port: number;
  readonly address: string;
  /** Status to answer with, or 'hang' to never answer. */
  mode: number | 'hang';
  /** Requests seen, by path. */
  readonly paths: string[];
  close(): Promise<void>;
}

export async function httpServer(mode: number | 'hang' = 200): Promise<TestServer> {
  const paths: string[] = [];
  const sockets = new Set<net.Socket>();
  const state = { mode };
  const server = http.createServer((req, res) => {
    paths.push(req.url ?? '');
    if (state.mode === 'hang') return;
    res.writeHead(state.mode, { 'content-type': 'text/plain' });
    res.end('ok');
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    address: `http://127.0.0.1:${port}`,
    get mode() {
      return state.mode;
    },
    set mode(m) {
      state.mode = m;
    },
    paths,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A port on 127.0.0.1 with nothing listening (bound, then released). */
export async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Resolves when `cond()` holds, polling every 5 ms; rejects after `ms`. */
export async function until(cond: () => boolean, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}
