/**
 * Small upstreams started in-process for trying the gateway out (`demo:` in the
 * configuration, used by `npm start`): each answers every request with a JSON line saying
 * which instance it is and what it received, and `/healthz` with 200.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { EndpointInput } from '../../src/balancer/Endpoint.js';

/** Running demo upstreams. */
export interface DemoUpstreams {
  /** One endpoint per instance: `demo-1` at `http://host:port`... */
  readonly endpoints: readonly EndpointInput[];
  /** Stops them. */
  close(): Promise<void>;
}

/** Starts `count` demo upstreams on `host`, on `basePort`, `basePort + 1`... (0: free ports). */
export async function startDemoUpstreams(count: number, host = '127.0.0.1', basePort = 0): Promise<DemoUpstreams> {
  const servers: Server[] = [];
  const endpoints: EndpointInput[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const id = `demo-${i + 1}`;
      let served = 0;
      const server = createServer((req, res) => {
        if (req.url === '/healthz') {
          res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
          return;
        }
        served++;
        const port = (server.address() as AddressInfo).port;
        const body = `${JSON.stringify({
          instance: id,
          port,
          served,
          method: req.method,
          path: req.url,
          requestId: req.headers['x-request-id'],
          forwardedFor: req.headers['x-forwarded-for'],
        })}\n`;
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
        res.end(body);
        req.resume();
      });
      servers.push(server);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(basePort === 0 ? 0 : basePort + i, host, () => resolve());
      });
      const port = (server.address() as AddressInfo).port;
      const shown = host.includes(':') ? `[${host}]` : host;
      endpoints.push({ id, address: `http://${shown}:${port}`, weight: 1 });
    }
  } catch (err) {
    for (const s of servers) s.close();
    throw err;
  }
  return {
    endpoints,
    async close() {
      await Promise.all(
        servers.map(
          (s) =>
            new Promise<void>((resolve) => {
              s.close(() => resolve());
              s.closeAllConnections();
            }),
        ),
      );
    },
  };
}
