// One of three upstream processes is killed with SIGKILL under steady load: no failed GET
// reaches a client, outlier detection ejects the dead instance, and it takes traffic again
// once it is back. Bounded: 4 concurrent clients on loopback for a few seconds, with the
// default retry budget (20%, at least 3 retries in flight).
import { type ChildProcess, spawn } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import type { Gateway } from '../../server/gateway.js';
import { closedPort, startGateway, type TestGateway, until } from './helpers.js';

const UPSTREAM = `
const http = require('node:http');
const [port, name] = process.argv.slice(1);
http.createServer((req, res) => {
  const body = name + '\\n';
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length });
  res.end(body);
}).listen(Number(port), '127.0.0.1', () => process.stdout.write('ready\\n'));
`;

async function startProcess(port: number, name: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['-e', UPSTREAM, String(port), name], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout?.once('data', () => resolve());
    child.once('exit', (code) => reject(new Error(`upstream ${name} exited with ${code}`)));
  });
  return child;
}

function ejections(gateway: Gateway): Promise<number> {
  return (gateway.metrics as NonNullable<Gateway['metrics']>).ejections
    .get()
    .then((m) => m.values.reduce((a, v) => a + v.value, 0));
}

const children: ChildProcess[] = [];
let gw: TestGateway | undefined;

afterAll(async () => {
  await gw?.close();
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

describe('upstream killed under load', () => {
  it('no failed GET reaches the client; the dead instance is ejected and comes back', async () => {
    const ports = [await closedPort(), await closedPort(), await closedPort()];
    const names = ['u1', 'u2', 'u3'];
    for (let i = 0; i < 3; i++) children.push(await startProcess(ports[i] as number, names[i] as string));
    gw = await startGateway({
      routes: [
        {
          match: { prefix: '/' },
          service: 's',
          strategy: 'p2c',
          timeoutMs: 5_000,
          retries: { attempts: 2, on: ['connect-failure', 'reset', '502', '503', '504'] },
        },
      ],
      services: {
        s: {
          static: ports.map((p) => `http://127.0.0.1:${p}`),
          outlierDetection: { consecutiveFailures: 3, baseEjectionMs: 1_000, maxEjectionPercent: 50 },
        },
      },
    });
    const url = `${gw.url}/work`;
    const failures: string[] = [];
    const seenAfterReturn = new Set<string>();
    let phase: 'before' | 'dead' | 'back' = 'before';
    let stop = false;
    let total = 0;
    const client = async (): Promise<void> => {
      while (!stop) {
        try {
          const res = await fetch(url);
          const text = (await res.text()).trim();
          total++;
          if (res.status !== 200) failures.push(`${res.status} ${text}`);
          else if (phase === 'back') seenAfterReturn.add(text);
        } catch (err) {
          failures.push(String(err));
        }
      }
    };
    const clients = Array.from({ length: 4 }, () => client());

    await until(() => total > 300, 20_000, 'steady load');
    const victim = children[1] as ChildProcess;
    victim.kill('SIGKILL');
    phase = 'dead';
    const killedAt = total;
    await until(() => total > killedAt + 1_000, 30_000, 'load after the kill');
    expect(await ejections(gw.gateway)).toBeGreaterThanOrEqual(1);

    children.push(await startProcess(ports[1] as number, 'u2'));
    phase = 'back';
    await until(() => seenAfterReturn.has('u2'), 20_000, 'the instance to take traffic again');
    stop = true;
    await Promise.all(clients);

    expect(failures).toEqual([]);
    expect(total).toBeGreaterThan(1_300);
  }, 90_000);
});
