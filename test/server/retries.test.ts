// Timeouts and retries against real upstreams on loopback: hanging upstreams, error statuses,
// resets before any response byte, non-idempotent methods, all instances down.
import type { ServerResponse } from 'node:http';
import { type AddressInfo, createServer as createNetServer, type Socket } from 'node:net';
import { describe, expect, it, vi } from 'vitest';
import { closedAfterEach, closedPort, echo, until } from './helpers.js';

const { upstream, gateway, later } = closedAfterEach();

/** Never answers (the response is ended at cleanup by closing the server). */
const hang = (_req: unknown, _res: ServerResponse): void => {};

describe('timeouts', () => {
  it('504 when the only upstream hangs, after the route timeout', async () => {
    const slow = await upstream(hang);
    const g = await gateway({
      routes: [{ match: { prefix: '/' }, service: 's', timeoutMs: 300, retries: { attempts: 0 } }],
      services: { s: { static: [slow.url] } },
    });
    const res = await fetch(`${g.url}/x`);
    expect(res.status).toBe(504);
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('ERR_UPSTREAM_TIMEOUT');
    expect(body.error.message).toContain('300 ms');
  });

  it('a first try waits in the shared deadline queue: no Node timer per request', async () => {
    // The default per-try timeout is the route's timeout, and the route's clock starts a few
    // microseconds before the first try does: such a try still belongs in the queue (its
    // deadline is the route's), not in a Node timer made and cleared per request.
    const u = await upstream(echo('a'));
    const g = await gateway({
      routes: [{ match: { prefix: '/' }, service: 's', timeoutMs: 300 }],
      services: { s: { static: [u.url] } },
    });
    const spy = vi.spyOn(globalThis, 'setTimeout');
    try {
      for (let i = 0; i < 20; i++) expect((await fetch(`${g.url}/x`)).status).toBe(200);
      const perTry = spy.mock.calls.filter(([fn]) => typeof fn === 'function' && fn.name === 'onTryTimeout');
      // Before: one per request. A try that starts over 1 ms after its request (the process
      // descheduled in between, on a busy machine) still takes a timer: a few may.
      expect(perTry.length).toBeLessThanOrEqual(3);
    } finally {
      spy.mockRestore();
    }
  });

  it('retries a timed-out GET on another instance when 504 is retried', async () => {
    const slow = await upstream(hang);
    const fast = await upstream(echo('fast'));
    const g = await gateway({
      routes: [
        {
          match: { prefix: '/' },
          service: 's',
          strategy: 'round-robin',
          timeoutMs: 5_000,
          retries: { attempts: 1, on: ['504'], perTryTimeoutMs: 200 },
        },
      ],
      services: { s: { static: [slow.url, fast.url], outlierDetection: false } },
    });
    for (let i = 0; i < 4; i++) {
      const res = await fetch(`${g.url}/x`);
      expect(res.status).toBe(200);
      expect(((await res.json()) as { name: string }).name).toBe('fast');
    }
    expect(slow.seen.length).toBeGreaterThanOrEqual(1);
  });

  it('does not retry a timed-out POST (not idempotent) unless the route opts in', async () => {
    const slow = await upstream(hang);
    const fast = await upstream(echo('fast'));
    const route = {
      match: { prefix: '/' },
      service: 's',
      strategy: 'round-robin',
      timeoutMs: 5_000,
      retries: { attempts: 1, on: ['504'], perTryTimeoutMs: 200 },
    };
    const g = await gateway({
      routes: [
        { ...route, name: 'strict', match: { prefix: '/strict' } },
        {
          ...route,
          name: 'lenient',
          match: { prefix: '/lenient' },
          retries: { ...route.retries, idempotentOnly: false },
        },
      ],
      services: { s: { static: [slow.url, fast.url], outlierDetection: false } },
    });
    // round-robin sends the first POST to `slow`, which hangs: 504, and `fast` never sees it.
    const strict = await fetch(`${g.url}/strict`, { method: 'POST', body: 'payload' });
    expect(strict.status).toBe(504);
    expect(fast.seen.filter((s) => s.method === 'POST').length).toBe(0);
    await fetch(`${g.url}/strict`, { method: 'POST', body: 'payload' }).then((r) => r.arrayBuffer()); // to fast
    // Opted in: the body is replayed to the other instance.
    const lenient = await fetch(`${g.url}/lenient`, { method: 'POST', body: 'payload' });
    expect(lenient.status).toBe(200);
    expect(((await lenient.json()) as { bodyBytes: number }).bodyBytes).toBe(7);
  });
});

describe('retries', () => {
  it('retries 503 answers on another instance and reports the last failure when all fail', async () => {
    const bad = await upstream((_req, res) => {
      res.writeHead(503, { 'content-type': 'text/plain' }).end('overloaded');
    });
    const good = await upstream(echo('good'));
    const g = await gateway({
      routes: [
        {
          match: { prefix: '/mixed' },
          service: 'mixed',
          strategy: 'round-robin',
          retries: { attempts: 2, on: ['503'] },
        },
        { match: { prefix: '/bad' }, service: 'bad', retries: { attempts: 2, on: [503] } },
      ],
      services: {
        mixed: { static: [bad.url, good.url], outlierDetection: false },
        bad: { static: [bad.url], outlierDetection: false },
      },
    });
    for (let i = 0; i < 4; i++) expect((await fetch(`${g.url}/mixed`)).status).toBe(200);
    const before = bad.seen.length;
    const res = await fetch(`${g.url}/bad`);
    // One instance, three tries (a retry goes to the same instance when there is no other).
    expect(bad.seen.length - before).toBe(3);
    expect(res.status).toBe(503);
    expect(await res.text()).toBe('overloaded');
  });

  it('retries a reset before any response byte, and a refused connection, for GET', async () => {
    const resetter = await upstream((req) => {
      req.socket.destroy();
    });
    const good = await upstream(echo('good'));
    const dead = `http://127.0.0.1:${await closedPort()}`;
    const g = await gateway({
      routes: [{ match: { prefix: '/' }, service: 's', strategy: 'round-robin', retries: { attempts: 2 } }],
      services: { s: { static: [resetter.url, dead, good.url], outlierDetection: false } },
    });
    for (let i = 0; i < 6; i++) {
      const res = await fetch(`${g.url}/x`);
      expect(res.status).toBe(200);
    }
    expect(resetter.seen.length).toBeGreaterThan(0);
  });

  it('does not retry a reset POST, but does retry a refused connection for any method', async () => {
    const resetter = await upstream((req) => {
      req.socket.destroy();
    });
    const good = await upstream(echo('good'));
    const dead = `http://127.0.0.1:${await closedPort()}`;
    const g = await gateway({
      routes: [
        { match: { prefix: '/reset' }, service: 'r', strategy: 'round-robin', retries: { attempts: 1 } },
        { match: { prefix: '/refused' }, service: 'f', strategy: 'round-robin', retries: { attempts: 1 } },
      ],
      services: {
        r: { static: [resetter.url, good.url], outlierDetection: false },
        f: { static: [dead, good.url], outlierDetection: false },
      },
    });
    const reset = await fetch(`${g.url}/reset`, { method: 'POST', body: 'x' });
    expect(reset.status).toBe(502);
    const refused = await fetch(`${g.url}/refused`, { method: 'POST', body: 'x' });
    expect(refused.status).toBe(200);
  });

  it('the retry budget caps retries: with budget 0 and no minimum, nothing is retried', async () => {
    // Resets, not refusals: a refused connection cost no upstream anything and is retried anyway.
    const resetter = await upstream((req) => {
      req.socket.destroy();
    });
    const good = await upstream(echo('good'));
    const g = await gateway({
      routes: [
        {
          match: { prefix: '/' },
          service: 's',
          strategy: 'round-robin',
          retries: { attempts: 2, budgetPercent: 0, minRetryConcurrency: 0 },
        },
      ],
      services: { s: { static: [resetter.url, good.url], outlierDetection: false } },
    });
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await fetch(`${g.url}/x`)).status);
    expect(statuses.sort()).toEqual([200, 200, 502, 502]);
  });

  it('a refused connection is retried even when the budget is spent', async () => {
    const dead = `http://127.0.0.1:${await closedPort()}`;
    const good = await upstream(echo('good'));
    const g = await gateway({
      routes: [
        {
          match: { prefix: '/' },
          service: 's',
          strategy: 'round-robin',
          retries: { attempts: 1, budgetPercent: 0, minRetryConcurrency: 0 },
        },
      ],
      services: { s: { static: [dead, good.url], outlierDetection: false } },
    });
    for (let i = 0; i < 4; i++) expect((await fetch(`${g.url}/x`)).status).toBe(200);
  });
});

describe('all instances down', () => {
  it('503 at once once health checks have marked every instance down', async () => {
    const a = await upstream(echo('a'));
    const b = await upstream(echo('b'));
    const g = await gateway({
      routes: [{ match: { prefix: '/' }, service: 's', timeoutMs: 600_000 }],
      services: {
        s: {
          static: [a.url, b.url],
          healthCheck: { path: '/healthz', intervalMs: 50, timeoutMs: 200, unhealthyThreshold: 1, jitterPercent: 0 },
        },
      },
    });
    expect((await fetch(`${g.url}/x`)).status).toBe(200);
    await a.close();
    await b.close();
    let res: Response;
    const deadline = Date.now() + 10_000;
    do {
      res = await fetch(`${g.url}/x`);
      await res.arrayBuffer();
    } while (res.status !== 503 && Date.now() < deadline);
    expect(res.status).toBe(503);
    const again = await fetch(`${g.url}/x`);
    expect(again.status).toBe(503);
    expect(((await again.json()) as { error: { code: string } }).error.code).toBe('ERR_NO_ENDPOINT');
  });
});

describe('client gone', () => {
  it('a client that disconnects while waiting cancels the upstream request and frees its slot', async () => {
    let upstreamClosed = 0;
    const slow = await upstream((req) => {
      req.socket.on('close', () => {
        upstreamClosed++;
      });
    });
    const g = await gateway({
      routes: [{ match: { prefix: '/' }, service: 's', timeoutMs: 60_000 }],
      services: { s: { static: [slow.url] } },
    });
    const ac = new AbortController();
    const pending = fetch(`${g.url}/wait`, { signal: ac.signal }).catch((err: Error) => err.name);
    await until(() => slow.seen.length === 1, 5_000, 'the upstream to get the request');
    expect(g.gateway.inFlight).toBe(1);
    ac.abort();
    expect(await pending).toBe('AbortError');
    await until(() => g.gateway.inFlight === 0 && upstreamClosed === 1, 5_000, 'the try to be cancelled');
    const balancer = g.gateway.upstreams.balancers('s').get('round-robin');
    expect(balancer?.status().inFlight).toBe(0);
    // Counted as nginx does: 499, the client closed the request before the answer.
    const text = await (g.gateway.metrics as NonNullable<typeof g.gateway.metrics>).registry.metrics();
    expect(text).toMatch(/^ringway_gateway_requests_total\{route="0:\/",status="499",upstream="[^"]+"\} 1$/m);
  });
});

describe('malformed answers', () => {
  /** A raw upstream that answers every request with `answer` and keeps the connection open. */
  async function rawUpstream(answer: string): Promise<{ url: string; requests: () => number }> {
    let requests = 0;
    const server = createNetServer((socket) => {
      socket.on('data', (d: Buffer) => {
        if (d.includes('\r\n\r\n')) {
          requests++;
          socket.write(answer);
        }
      });
      socket.on('error', () => {});
    });
    const sockets = new Set<Socket>();
    server.on('connection', (s) => {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    later(
      () =>
        new Promise<void>((resolve) => {
          server.close(() => resolve());
          for (const s of sockets) s.destroy();
        }),
    );
    return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests: () => requests };
  }

  it('an answer that breaks HTTP/1.1 framing is a 502 naming the problem, retried elsewhere for GET', async () => {
    const smuggler = await rawUpstream(
      'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    );
    const good = await upstream(echo('good'));
    const g = await gateway({
      routes: [
        { match: { prefix: '/only' }, service: 'bad', retries: { attempts: 0 } },
        { match: { prefix: '/' }, service: 's', strategy: 'round-robin', retries: { attempts: 1 } },
      ],
      services: {
        bad: { static: [smuggler.url], outlierDetection: false },
        s: { static: [smuggler.url, good.url], outlierDetection: false },
      },
    });
    const res = await fetch(`${g.url}/only`);
    expect(res.status).toBe(502);
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('ERR_UPSTREAM_FAILURE');
    expect(body.error.message).toMatch(/invalid response from the upstream: both Transfer-Encoding and Content-Length/);
    // With another instance, GETs reach it: the malformed answer never does.
    for (let i = 0; i < 4; i++) {
      const ok = await fetch(`${g.url}/x`);
      expect(ok.status).toBe(200);
      expect(((await ok.json()) as { name: string }).name).toBe('good');
    }
    expect(smuggler.requests()).toBeGreaterThan(1);
  });
});
