// Edge cases of the request path found in review (2026-11-30), each first shown failing:
// request bodies across retries, what a dropped answer leaves behind, slow uploads and the
// upstream's record, shutdown with requests between the rate limiter and the upstream, and
// an ambiguous Host.
import { request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import { closedAfterEach, echo, rawRequest, startGateway, statusOf, until } from './helpers.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const { upstream, gateway } = closedAfterEach();

/** Answers 503 at once and keeps reading the body and trickling bytes of its answer. */
function busyTrickling(req: IncomingMessage, res: ServerResponse): void {
  req.resume();
  res.writeHead(503, { 'content-type': 'text/plain' });
  res.write('busy');
  const timer = setInterval(() => {
    if (res.destroyed) clearInterval(timer);
    else res.write('.');
  }, 50);
  res.on('close', () => clearInterval(timer));
}

/** Sends a PUT whose body is `first`, then (after `gap()`) `rest`; resolves with the answer. */
function putInTwo(
  port: number,
  first: Buffer,
  gap: () => Promise<void>,
  rest: Buffer[],
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path: '/up', method: 'PUT', agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        body += c;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.write(first);
    void gap().then(async () => {
      for (const part of rest) if (!req.write(part)) await new Promise((r) => req.once('drain', r));
      req.end();
    });
  });
}

describe('request bodies across retries', () => {
  it('a retry gets every byte of the body, or fails: never a body with bytes missing', async () => {
    // The first instance answers 503 while the body is still coming and keeps reading it; the
    // retry goes to the second. The replay buffer (16 bytes) holds only the first chunk, so
    // the retry can only be served if no later byte was taken by the dropped try.
    const busy = await upstream(busyTrickling);
    // Reads nothing for 500 ms: the retry's writes back up while the dropped try could read on.
    const good = await upstream((req, res, seen) => {
      req.pause();
      setTimeout(() => {
        echo('good')(req, res, seen);
        req.resume(); // explicitly paused: a 'data' listener alone does not restart it
      }, 500);
    });
    const g = await gateway({
      routes: [
        {
          match: { prefix: '/' },
          service: 's',
          strategy: 'round-robin',
          bodyLimit: 64 * 1024 * 1024,
          retries: { attempts: 1, on: ['503'], replayBufferBytes: 16 },
        },
      ],
      services: { s: { static: [busy.url, good.url] } },
    });
    const chunk = Buffer.alloc(64 * 1024, 97);
    const rest = Array.from({ length: 128 }, () => chunk);
    const total = 4 + rest.length * chunk.length;
    const reply = await putInTwo(
      g.port,
      Buffer.from('aaaa'),
      () => until(() => good.seen.length === 1, 5_000, 'the retry to reach the second instance'),
      rest,
    );
    if (reply.status === 200) expect(JSON.parse(reply.body).bodyBytes).toBe(total);
    else expect(reply.status).toBe(502);
    const seen = good.seen[0];
    if (seen !== undefined && reply.status === 200) expect(seen.bodyBytes).toBe(total);
  });

  it('a retried 503 whose body never ends does not hold up close()', async () => {
    const busy = await upstream(busyTrickling);
    const good = await upstream(echo('good'));
    const g = await startGateway({
      proxy: { drainTimeoutMs: 500 },
      routes: [
        { match: { prefix: '/' }, service: 's', strategy: 'round-robin', retries: { attempts: 1, on: ['503'] } },
      ],
      services: { s: { static: [busy.url, good.url] } },
    });
    try {
      expect((await fetch(`${g.url}/x`)).status).toBe(200);
      const closed = g.close().then(() => 'closed');
      expect(await Promise.race([closed, sleep(3_000).then(() => 'still open')])).toBe('closed');
    } finally {
      await g.close();
    }
  });
});

describe('slow uploads', () => {
  it('a client too slow with its body gets 408, and the instance is not blamed', async () => {
    const up = await upstream(echo('up'));
    const g = await gateway({
      routes: [
        {
          match: { prefix: '/' },
          service: 's',
          timeoutMs: 300,
          retries: { attempts: 0 },
        },
      ],
      services: { s: { static: [up.url], outlierDetection: { consecutiveFailures: 2, maxEjectionPercent: 100 } } },
    });
    const slowPut = () =>
      putInTwo(
        g.port,
        Buffer.from('a'),
        async () => {
          await sleep(800);
        },
        [Buffer.from('b')],
      ).catch(() => ({ status: 0, body: '' }));
    const answers = await Promise.all([slowPut(), slowPut()]);
    expect(answers.map((a) => a.status)).toEqual([408, 408]);
    expect(JSON.parse(answers[0]?.body ?? '{}').error.code).toBe('ERR_REQUEST_TIMEOUT');
    // The instance did nothing wrong: it still serves.
    expect((await fetch(`${g.url}/x`)).status).toBe(200);
  });
});

describe('shutdown', () => {
  it('a request waiting on the rate limiter when close() begins is still answered', async () => {
    const up = await upstream(echo('up'));
    const g = await startGateway(
      {
        routes: [{ match: { prefix: '/' }, service: 's', rateLimit: { rps: 100, burst: 100 } }],
        services: { s: { static: [up.url] } },
      },
      {
        rateLimiter: {
          take: () => new Promise<number>((resolve) => setTimeout(() => resolve(0), 300)),
          close: () => {},
        },
      },
    );
    const answer = fetch(`${g.url}/x`).then((r) => r.status);
    await sleep(50);
    const closed = g.close();
    expect(await answer).toBe(200);
    await closed;
  });

  it('an answer whose head is written during the drain says Connection: close', async () => {
    const up = await upstream((req, res, seen) => {
      setTimeout(() => echo('slow')(req, res, seen), 300);
    });
    const g = await startGateway({
      routes: [{ match: { prefix: '/' }, service: 's' }],
      services: { s: { static: [up.url] } },
    });
    const socket = connect(g.port, '127.0.0.1');
    let received = '';
    socket.on('data', (d: Buffer) => {
      received += d.toString('latin1');
    });
    socket.on('error', () => {});
    await new Promise((resolve) => socket.once('connect', resolve));
    socket.write('GET /slow HTTP/1.1\r\nHost: a\r\n\r\n');
    await sleep(100);
    const closed = g.close();
    await until(() => received.includes('\r\n\r\n'), 5_000, 'the answer');
    const head = received.slice(0, received.indexOf('\r\n\r\n')).toLowerCase();
    expect(head).toContain('connection: close');
    socket.destroy();
    await closed;
  });
});

describe('ambiguous requests', () => {
  it('two Host headers: 400, not forwarded', async () => {
    const up = await upstream(echo('up'));
    const g = await gateway({
      routes: [{ match: { prefix: '/' }, service: 's' }],
      services: { s: { static: [up.url] } },
    });
    const response = await rawRequest(
      g.port,
      'GET / HTTP/1.1\r\nHost: public.example\r\nHost: internal.example\r\nConnection: close\r\n\r\n',
    );
    expect(statusOf(response)).toBe(400);
    expect(up.seen).toHaveLength(0);
  });
});

describe('Expect: 100-continue', () => {
  it('a request refused before its body (413, 404) gets no 100 Continue; an accepted one gets it, then its answer', async () => {
    const up = await upstream(echo('up'));
    const g = await gateway({
      routes: [{ match: { prefix: '/api' }, service: 's', bodyLimit: 1024 }],
      services: { s: { static: [up.url] } },
    });
    const ask = (target: string, length: number): Promise<string> =>
      new Promise((resolve) => {
        const socket = connect(g.port, '127.0.0.1');
        let received = '';
        let sent = false;
        socket.on('data', (d: Buffer) => {
          received += d.toString('latin1');
          // Send the body only when invited, as a client that waits for 100 Continue does.
          if (!sent && received.startsWith('HTTP/1.1 100')) {
            sent = true;
            socket.write('x'.repeat(length));
          }
        });
        socket.on('error', () => {});
        socket.on('close', () => resolve(received));
        socket.write(
          `POST ${target} HTTP/1.1\r\nHost: a\r\nContent-Length: ${length}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n`,
        );
        setTimeout(() => socket.destroy(), 3_000);
      });
    const tooLarge = await ask('/api/x', 5_000);
    expect(tooLarge.startsWith('HTTP/1.1 413')).toBe(true);
    const noRoute = await ask('/nowhere', 10);
    expect(noRoute.startsWith('HTTP/1.1 404')).toBe(true);
    const accepted = await ask('/api/x', 10);
    expect(accepted.startsWith('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200')).toBe(true);
    expect(up.seen.at(-1)?.bodyBytes).toBe(10);
  });
});

describe('metrics', () => {
  it('an upstream status from 600 to 999 is counted like any other (found in review)', async () => {
    const odd = await upstream((_req, res) => {
      res.writeHead(799);
      res.end('x');
    });
    const g = await gateway({
      routes: [{ name: 'r', match: { prefix: '/' }, service: 's' }],
      services: { s: { static: [odd.url] } },
    });
    expect((await fetch(`${g.url}/x`)).status).toBe(799);
    const text = await (g.gateway.metrics as NonNullable<typeof g.gateway.metrics>).registry.metrics();
    expect(text).toMatch(/^ringway_gateway_requests_total\{route="r",status="799",upstream="[^"]+"\} 1$/m);
  });
});
