import { spawnSync } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createBalancer } from '../../src/balancer/createBalancer.js';
import { HealthChecker, resolveHealthCheckOptions } from '../../src/balancer/HealthChecker.js';
import { parseProbeTarget } from '../../src/balancer/healthProbe.js';
import type { BalancerOptions } from '../../src/balancer/options.js';
import { closedPort, httpServer, seeded, type TestServer, until } from './helpers.js';

const servers: TestServer[] = [];
const closers: (() => void)[] = [];

async function server(mode: number | 'hang' = 200): Promise<TestServer> {
  const s = await httpServer(mode);
  servers.push(s);
  return s;
}

afterEach(async () => {
  for (const close of closers.splice(0)) close();
  for (const s of servers.splice(0)) await s.close();
  vi.restoreAllMocks();
});

/** Fast checks for tests: every 20 ms, 150 ms timeout, 2 failures / 2 successes to flip. */
const fast = { intervalMs: 20, timeoutMs: 150, healthyThreshold: 2, unhealthyThreshold: 2, jitterPercent: 10 };

function balancer(addresses: string[], healthCheck: BalancerOptions['healthCheck']) {
  const lb = createBalancer({
    strategy: 'round-robin',
    endpoints: addresses.map((address, i) => ({ id: `e${i}`, address })),
    healthCheck,
  });
  closers.push(() => lb.close());
  const events: string[] = [];
  lb.on('healthy', ({ endpoint }) => events.push(`healthy:${endpoint.id}`));
  lb.on('unhealthy', ({ endpoint, reason }) => events.push(`unhealthy:${endpoint.id}:${reason}`));
  return { lb, events };
}

describe('active HTTP health checks against loopback servers', () => {
  it('keeps a 200 server healthy and GETs the configured path', async () => {
    const up = await server(200);
    const { lb, events } = balancer([up.address], { ...fast, path: '/ready' });
    await until(() => up.paths.length >= 3);
    expect(up.paths.every((p) => p === '/ready')).toBe(true);
    expect(events).toEqual([]);
    expect(lb.available).toBe(1);
  });

  it('marks a closed port unhealthy (ECONNREFUSED) and takes it out of rotation', async () => {
    const up = await server(200);
    const port = await closedPort();
    const { lb, events } = balancer([up.address, `http://127.0.0.1:${port}`], fast);
    await until(() => events.length > 0);
    expect(events).toEqual(['unhealthy:e1:ECONNREFUSED']);
    expect(lb.status().endpoints[1]).toMatchObject({ healthy: false, healthReason: 'ECONNREFUSED', inRotation: false });
    for (let i = 0; i < 10; i++) expect(lb.acquire()?.endpoint.id).toBe('e0');
  });

  it('fails a server slower than the timeout', async () => {
    const slow = await server('hang');
    const { lb, events } = balancer([slow.address], { ...fast, timeoutMs: 60 });
    await until(() => events.length > 0);
    expect(events).toEqual(['unhealthy:e0:timeout after 60 ms']);
    expect(lb.acquire()).toBeUndefined();
    expect(() => lb.acquireOrThrow()).toThrow(/1 failing health checks/);
  });

  it('fails a 500-erroring server, and brings it back once it answers 200 twice', async () => {
    const flaky = await server(500);
    const { lb, events } = balancer([flaky.address], fast);
    await until(() => events.length === 1);
    expect(events[0]).toBe('unhealthy:e0:HTTP 500');
    const checksBefore = flaky.paths.length;
    flaky.mode = 200;
    await until(() => events.length === 2);
    expect(events[1]).toBe('healthy:e0');
    expect(flaky.paths.length - checksBefore).toBeGreaterThanOrEqual(2);
    expect(lb.acquire()?.endpoint.id).toBe('e0');
  });

  it('counts only the expected statuses as healthy', async () => {
    const s = await server(200);
    const { events } = balancer([s.address], { ...fast, expectedStatuses: [204, [500, 503]] });
    await until(() => events.length === 1);
    expect(events[0]).toBe('unhealthy:e0:HTTP 200');
    s.mode = 503;
    await until(() => events.length === 2);
    expect(events[1]).toBe('healthy:e0');
  });

  it('starts endpoints unhealthy when initiallyHealthy is false, until they pass', async () => {
    const s = await server(200);
    const { lb, events } = balancer([s.address], { ...fast, initiallyHealthy: false });
    expect(lb.acquire()).toBeUndefined();
    await until(() => events.length === 1);
    expect(events).toEqual(['healthy:e0']);
    expect(lb.acquire()).toBeDefined();
  });

  it('says why an endpoint that starts unhealthy fails its probes', async () => {
    const port = await closedPort();
    const { lb, events } = balancer([`http://127.0.0.1:${port}`], { ...fast, initiallyHealthy: false });
    await until(() => lb.status().endpoints[0]?.healthReason !== '', 2_000);
    expect(lb.status().endpoints[0]).toMatchObject({ healthy: false, healthReason: 'ECONNREFUSED' });
    expect(events).toEqual([]); // never healthy, so no transition
  });

  it('restarts checks at the new address when update() moves an endpoint', async () => {
    const port = await closedPort();
    const good = await server(200);
    const { lb, events } = balancer([`http://127.0.0.1:${port}`], fast);
    await until(() => events.length === 1);
    lb.update([{ id: 'e0', address: good.address }]);
    await until(() => events.length === 2);
    expect(events[1]).toBe('healthy:e0');
  });

  it('close() stops every probe: no more requests reach the server', async () => {
    const s = await server(200);
    const hang = await server('hang');
    const { lb } = balancer([s.address, hang.address], { ...fast, timeoutMs: 5_000 });
    await until(() => s.paths.length >= 2 && hang.paths.length >= 1);
    lb.close();
    const seen = s.paths.length;
    await new Promise((r) => setTimeout(r, 120));
    expect(s.paths.length).toBe(seen);
    expect(lb.status().closed).toBe(true);
  });
});

describe('active TCP health checks', () => {
  it('passes when the port accepts and fails when it is closed', async () => {
    const listener = net.createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
    closers.push(() => listener.close());
    const open = (listener.address() as net.AddressInfo).port;
    const closed = await closedPort();
    const { lb, events } = balancer([`127.0.0.1:${open}`, `tcp://127.0.0.1:${closed}`], { ...fast, type: 'tcp' });
    await until(() => events.length === 1);
    expect(events).toEqual(['unhealthy:e1:ECONNREFUSED']);
    expect(lb.status().endpoints[0]?.healthy).toBe(true);
  });

  it('reports an address it cannot probe', async () => {
    const { events } = balancer(['not an address'], { ...fast, type: 'tcp' });
    await until(() => events.length === 1);
    expect(events[0]).toMatch(/unhealthy:e0:cannot probe address "not an address"/);
  });
});

describe('HealthChecker', () => {
  it('spreads probes with jitter: waits of interval + 0..jitter%, first probes scattered', () => {
    const delays: number[] = [];
    const real = globalThis.setTimeout;
    vi.spyOn(globalThis, 'setTimeout').mockImplementation(((_fn: () => void, ms?: number) => {
      delays.push(ms ?? 0);
      return real(() => {}, 0);
    }) as typeof setTimeout);
    const checker = new HealthChecker(
      resolveHealthCheckOptions({ intervalMs: 1_000, jitterPercent: 20 }),
      () => {},
      seeded(3),
    );
    for (let i = 0; i < 20; i++) {
      checker.add({ id: `e${i}`, address: `127.0.0.1:${1_000 + i}`, weight: 1, zone: undefined, meta: {} });
    }
    checker.close();
    expect(delays.length).toBe(20);
    for (const d of delays) expect(d >= 0 && d <= 200).toBe(true);
    expect(new Set(delays.map((d) => Math.round(d))).size).toBeGreaterThan(15);
  });

  it('tracks consecutive results per endpoint and forgets removed ones', async () => {
    const port = await closedPort();
    const changes: string[] = [];
    const checker = new HealthChecker(resolveHealthCheckOptions({ ...fast, type: 'tcp' }), (id, healthy, reason) =>
      changes.push(`${id}:${healthy}:${reason}`),
    );
    closers.push(() => checker.close());
    checker.add({ id: 'a', address: `127.0.0.1:${port}`, weight: 1, zone: undefined, meta: {} });
    await until(() => changes.length === 1);
    expect(changes).toEqual(['a:false:ECONNREFUSED']);
    expect(checker.status('a')).toMatchObject({ healthy: false, lastFailure: 'ECONNREFUSED' });
    expect(checker.status('a')?.failures).toBeGreaterThanOrEqual(2);
    expect(checker.remove('a')).toBe(true);
    expect(checker.remove('a')).toBe(false);
    expect(checker.status('a')).toBeUndefined();
    checker.close();
    expect(checker.closed).toBe(true);
    checker.add({ id: 'b', address: `127.0.0.1:${port}`, weight: 1, zone: undefined, meta: {} });
    expect(checker.status('b')).toBeUndefined();
  });

  it('parses the addresses endpoints use', () => {
    expect(parseProbeTarget('http://127.0.0.1:3001/x')).toEqual({
      protocol: 'http:',
      hostname: '127.0.0.1',
      port: 3001,
    });
    expect(parseProbeTarget('https://example.test')).toEqual({
      protocol: 'https:',
      hostname: 'example.test',
      port: 443,
    });
    expect(parseProbeTarget('http://localhost')?.port).toBe(80);
    expect(parseProbeTarget('10.0.0.7:6379')).toEqual({ protocol: 'tcp:', hostname: '10.0.0.7', port: 6379 });
    expect(parseProbeTarget('[::1]:8080')).toEqual({ protocol: 'tcp:', hostname: '::1', port: 8080 });
    expect(parseProbeTarget('redis://cache:6380')?.port).toBe(6380);
    expect(parseProbeTarget('cache')).toBeUndefined();
    expect(parseProbeTarget('::::')).toBeUndefined();
  });

  it('never keeps the process alive: a script that forgets close() still exits', () => {
    const script = fileURLToPath(new URL('./fixtures/forgetClose.ts', import.meta.url));
    const run = spawnSync(process.execPath, ['--import', 'tsx', script], { encoding: 'utf8', timeout: 20_000 });
    expect(run.stderr).toBe('');
    expect(run.stdout.trim()).toBe('started');
    expect(run.status).toBe(0);
  });
});
