// Bodies stream through the gateway both ways without being gathered: a gateway process
// proxies a 256 MiB upload and a 256 MiB download while its resident memory stays flat.
// (Growth plateaus near 50 MiB on uploads whatever the size: that is garbage V8 collects only
// once external memory passes its 64 MiB soft limit, not buffering; a buffered body would
// add its whole size.)
import type { ServerResponse } from 'node:http';
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configFile, type GatewayProcess, rssOf, spawnGateway, startUpstream, type Upstream } from './helpers.js';

const SIZE = 256 * 1024 * 1024;
const CHUNK = Buffer.alloc(64 * 1024, 7);

let up: Upstream;
let gw: GatewayProcess;

/** Writes `size` bytes with backpressure. */
function pump(res: NodeJS.WritableStream, size: number, done: () => void): void {
  let left = size;
  const go = (): void => {
    while (left > 0) {
      const n = Math.min(left, CHUNK.length);
      left -= n;
      if (!res.write(n === CHUNK.length ? CHUNK : CHUNK.subarray(0, n))) {
        res.once('drain', go);
        return;
      }
    }
    done();
  };
  go();
}

beforeAll(async () => {
  up = await startUpstream((req, res: ServerResponse, seen) => {
    if (req.url === '/big') {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': SIZE });
      pump(res, SIZE, () => res.end());
      return;
    }
    req.on('data', (c: Buffer) => {
      seen.bodyBytes += c.length;
    });
    req.on('end', () => res.end(String(seen.bodyBytes)));
  });
  gw = await spawnGateway([
    'gateway',
    '--config',
    configFile({
      listen: { host: '127.0.0.1', port: 0 },
      routes: [{ match: { prefix: '/' }, service: 'up', bodyLimit: 1024 * 1024 * 1024, timeoutMs: 60_000 }],
      services: { up: { static: [up.url] } },
    }),
    '--log-level',
    'info',
  ]);
}, 60_000);

afterAll(async () => {
  gw?.proc.kill('SIGTERM');
  await gw?.exited;
  await up?.close();
});

/** Samples the gateway's RSS while `work` runs; resolves with the largest growth seen. */
async function peakGrowth(work: () => Promise<void>): Promise<number> {
  // Warm up the path first so that lazily created buffers are not counted.
  const base = rssOf(gw.pid);
  let peak = base;
  const timer = setInterval(() => {
    peak = Math.max(peak, rssOf(gw.pid));
  }, 25);
  try {
    await work();
  } finally {
    clearInterval(timer);
  }
  return Math.max(peak, rssOf(gw.pid)) - base;
}

function upload(size: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port: gw.port, method: 'PUT', path: '/upload', headers: { 'content-length': size } },
      (res) => {
        let body = '';
        res.on('data', (c) => {
          body += c;
        });
        res.on('end', () => {
          try {
            expect(res.statusCode).toBe(200);
            expect(Number(body)).toBe(size);
            resolve();
          } catch (err) {
            reject(err);
          }
        });
      },
    );
    req.on('error', reject);
    pump(req, size, () => req.end());
  });
}

function download(): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: gw.port, path: '/big' }, (res) => {
      let received = 0;
      res.on('data', (c: Buffer) => {
        received += c.length;
      });
      res.on('end', () => {
        try {
          expect(res.statusCode).toBe(200);
          expect(received).toBe(SIZE);
          resolve();
        } catch (err) {
          reject(err);
        }
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

describe('streaming', () => {
  it('streams a large upload without buffering it', async () => {
    await upload(16 * 1024 * 1024); // warm-up: JIT and heap settle before measuring
    const growth = await peakGrowth(() => upload(SIZE));
    expect(growth).toBeLessThan(96 * 1024 * 1024);
  });

  it('streams a large download without buffering it', async () => {
    await download(); // warm-up: JIT and heap settle before measuring
    const growth = await peakGrowth(download);
    expect(growth).toBeLessThan(96 * 1024 * 1024);
  });
});
