/**
 * Http1Pool under overload: thousands of requests waiting for two connections are started in
 * the order they were dispatched (the wait queue compacts itself past 1024 taken entries) and
 * each gets its own answer.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect, it } from 'vitest';
import { Http1Pool } from '../../../server/proxy/Http1Pool.js';

it('3000 requests queued behind 2 connections start in dispatch order and each gets its answer', async () => {
  const server = createServer((req, res) => res.end(req.url));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const pool = new Http1Pool(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, {
    connections: 2,
    connectTimeoutMs: 2_000,
  });
  try {
    const started: number[] = [];
    const answers = await Promise.all(
      Array.from(
        { length: 3_000 },
        (_, i) =>
          new Promise<string>((resolve, reject) => {
            const chunks: Buffer[] = [];
            pool.dispatch(
              { path: `/${i}`, method: 'GET', headers: [], body: null },
              {
                onConnect: () => started.push(i),
                onHeaders: () => true,
                onData: (chunk) => {
                  chunks.push(chunk);
                  return true;
                },
                onComplete: () => resolve(Buffer.concat(chunks).toString()),
                onError: reject,
              },
            );
          }),
      ),
    );
    expect(answers).toEqual(Array.from({ length: 3_000 }, (_, i) => `/${i}`));
    expect(started).toEqual(Array.from({ length: 3_000 }, (_, i) => i));
    expect(pool.connected).toBeLessThanOrEqual(2);
  } finally {
    await pool.close();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
}, 20_000);
