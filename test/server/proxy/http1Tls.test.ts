/**
 * Http1Pool over TLS: an https upstream (a real `node:https` server with a self-signed
 * certificate made by openssl for the test) is reached when its CA is trusted, and refused,
 * before any request byte is sent, when it is not.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Http1Handler, Http1Pool } from '../../../server/proxy/Http1Pool.js';

function haveOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

interface Outcome {
  connected: boolean;
  status?: number;
  body?: string;
  error?: NodeJS.ErrnoException;
}

function get(pool: Http1Pool, path: string): Promise<Outcome> {
  return new Promise((resolve) => {
    const out: Outcome = { connected: false };
    const chunks: Buffer[] = [];
    const handler: Http1Handler = {
      onConnect: () => {
        out.connected = true;
      },
      onHeaders: (status) => {
        out.status = status;
        return true;
      },
      onData: (chunk) => {
        chunks.push(chunk);
        return true;
      },
      onComplete: () => {
        out.body = Buffer.concat(chunks).toString();
        resolve(out);
      },
      onError: (err) => {
        out.error = err;
        resolve(out);
      },
    };
    pool.dispatch({ path, method: 'GET', headers: [], body: null }, handler);
  });
}

describe.skipIf(!haveOpenssl())('Http1Pool over TLS', () => {
  let dir: string;
  let cert: Buffer;
  let server: Server;
  let origin: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ringway-tls-'));
    execFileSync(
      'openssl',
      ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=localhost']
        .concat(['-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'])
        .concat(['-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')]),
      { stdio: 'ignore' },
    );
    cert = readFileSync(join(dir, 'cert.pem'));
    server = createServer({ key: readFileSync(join(dir, 'key.pem')), cert }, (req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(`secure ${req.url} host=${req.headers.host}`);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    origin = `https://localhost:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  });

  it('reaches an https upstream whose CA it trusts, and keeps the connection for the next request', async () => {
    const pool = new Http1Pool(origin, { connections: 2, connectTimeoutMs: 2_000, tls: { ca: cert } });
    const first = await get(pool, '/a?b=1');
    expect(first).toMatchObject({ connected: true, status: 200 });
    expect(first.body).toBe(`secure /a?b=1 host=localhost:${new URL(origin).port}`);
    expect((await get(pool, '/second')).body).toMatch(/^secure \/second /);
    expect(pool.connected).toBe(1);
    await pool.close();
  });

  it('refuses an upstream whose certificate it cannot verify, before sending anything', async () => {
    const pool = new Http1Pool(origin, { connections: 1, connectTimeoutMs: 2_000 });
    const got = await get(pool, '/');
    expect(got.connected).toBe(false); // a connect failure: the proxy may retry it elsewhere
    expect(got.error?.code).toMatch(/SELF_SIGNED|UNABLE_TO_VERIFY|CERT/);
    await pool.close();
  });
});
