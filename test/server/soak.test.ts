// Bounded soak tests: does anything the gateway holds grow with churn rather than with what
// is live now? Real upstreams (node:http on 127.0.0.1), the real gateway, the memory store.
// Three kinds of churn, each under steady client traffic and well under 20 s:
// - registry churn: pods registered under a NEW id and port on every cycle, the old ones
//   deregistered or left to expire;
// - config churn: live routes rewritten many times (new route names, services, `connections`);
// - client churn: short-lived client connections, and clients that leave mid-answer.
// What is counted are structures (balancer endpoints, pools, health-check targets, breakers,
// metric series, store subscriptions, listeners, timers, sockets), not the heap.
import { createHook } from 'node:async_hooks';
import { Agent, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveGatewayConfig } from '../../server/config/GatewayConfig.js';
import type { Gateway } from '../../server/gateway.js';
import type { GatewayMetrics } from '../../server/metrics/GatewayMetrics.js';
import type { Balancer } from '../../src/balancer/Balancer.js';
import type { JsonValue } from '../../src/config/jsonValue.js';
import type { Registration } from '../../src/registry/Registration.js';
import { ServiceRegistry } from '../../src/registry/ServiceRegistry.js';
import { type MemoryStore, memoryStore } from '../../src/store/memory/MemoryStore.js';
import { redisStore } from '../../src/store/redis/RedisStore.js';
import type { Store } from '../../src/store/Store.js';
import { deletePrefix, redisUrl, requireRedis, testPrefix } from '../helpers/redis.js';
import {
  echo,
  type Reply,
  send,
  startGateway,
  startUpstream,
  type TestGateway,
  type Upstream,
  type UpstreamHandler,
  until,
} from './helpers.js';

// ---------------------------------------------------------------------------------------------
// Instruments

/** Live Node timers (Timeout objects, ref'd or not), tracked through async_hooks. */
const liveTimers = new Set<number>();
const timerHook = createHook({
  init(id, type) {
    if (type === 'Timeout') liveTimers.add(id);
  },
  destroy(id) {
    liveTimers.delete(id);
  },
});
beforeAll(() => {
  timerHook.enable();
});
afterAll(() => {
  timerHook.disable();
});

/** Open TCP sockets of this process (both ends of loopback connections count). */
function tcpSockets(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap').length;
}

/**
 * Counts the live subscriptions on a memory store's change feed (registry views, config
 * watches): the feed's own `on`, wrapped to count, nothing else changed.
 */
function countSubscriptions(store: MemoryStore): () => number {
  let live = 0;
  const feed = store.changes;
  const on = feed.on.bind(feed);
  feed.on = (channel, listener) => {
    live++;
    const off = on(channel, listener);
    let done = false;
    return () => {
      if (!done) live--;
      done = true;
      off();
    };
  };
  return () => live;
}

/** What a balancer holds per endpoint (health-check targets, breakers, ejections). */
function balancerState(b: Balancer): { endpoints: number; checkTargets: number; breakers: number; ejected: number } {
  const inner = b as unknown as {
    checker?: { targets: Map<string, unknown> };
    detector?: { ejectedCount: number };
  };
  const status = b.status();
  return {
    endpoints: status.endpoints.length,
    checkTargets: inner.checker?.targets.size ?? 0,
    breakers: status.endpoints.filter((e) => e.breaker !== undefined).length,
    ejected: inner.detector?.ejectedCount ?? 0,
  };
}

/** Distinct values of `label` in the scrape, over the series of the metrics named. */
function labelValues(scrape: string, label: string, metric?: string): Set<string> {
  const out = new Set<string>();
  const re = new RegExp(`${label}="([^"]*)"`);
  for (const line of scrape.split('\n')) {
    if (line.startsWith('#') || line === '') continue;
    if (metric !== undefined && !line.startsWith(metric)) continue;
    const m = re.exec(line);
    if (m !== null) out.add(m[1] as string);
  }
  return out;
}

/** Series (sample lines) in the scrape whose line carries `label`. */
function seriesWith(scrape: string, label: string): number {
  return scrape.split('\n').filter((l) => !l.startsWith('#') && l.includes(`${label}="`)).length;
}

function metricsOf(g: Gateway): GatewayMetrics {
  return g.metrics as GatewayMetrics;
}

/**
 * A GET through a keep-alive agent, read whole; network errors come back as status 0. Answers
 * other than 200 and 429 are noted in `odd` (the first 20), for the report.
 */
function get(agent: Agent, port: number, path: string, odd?: string[]): Promise<number> {
  return new Promise((resolve) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        body += c;
      });
      res.on('end', () => {
        if (odd !== undefined && odd.length < 20 && res.statusCode !== 200 && res.statusCode !== 429) {
          odd.push(`${path} ${res.statusCode} ${body.replace(/"requestId":"[^"]*"/, '')}`);
        }
        resolve(res.statusCode ?? 0);
      });
      res.on('error', () => resolve(0));
    });
    req.on('error', () => resolve(0));
    req.end();
  });
}

/** Steady traffic over `paths` from `clients` loops until `stop()`; counts statuses. */
function steadyTraffic(
  port: number,
  paths: readonly string[],
  clients = 2,
): { readonly odd: string[]; stop(): Promise<Map<number, number>> } {
  const agent = new Agent({ keepAlive: true, maxSockets: clients });
  const statuses = new Map<number, number>();
  const odd: string[] = [];
  let running = true;
  const loops = Array.from({ length: clients }, async (_, c) => {
    let i = c;
    while (running) {
      const status = await get(agent, port, paths[i++ % paths.length] as string, odd);
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
      // Yield to timers between requests so that the churn side is never starved.
      await new Promise((r) => setImmediate(r));
    }
  });
  return {
    odd,
    async stop() {
      running = false;
      await Promise.all(loops);
      agent.destroy();
      return statuses;
    },
  };
}

function total(statuses: Map<number, number>): number {
  let n = 0;
  for (const v of statuses.values()) n += v;
  return n;
}

/** An upstream whose `/healthz` always answers 200 and whose other paths answer `status` (or echo). */
function pod(name: string, status?: number): UpstreamHandler {
  const ok = echo(name);
  return (req, res, seen) => {
    if (req.url === '/healthz' || status === undefined) {
      ok(req, res, seen);
      return;
    }
    req.resume();
    req.on('end', () => {
      res.writeHead(status, { 'content-type': 'text/plain' });
      res.end(`${name} ${status}`);
    });
  };
}

const report: Record<string, unknown> = {};
afterAll(() => {
  // The numbers, for the record (vitest prints console output of the file).
  console.log(JSON.stringify(report, null, 2));
});

// ---------------------------------------------------------------------------------------------
// 1. Registry churn

/**
 * `cycles` pods, each registered under a new id with a new port while the oldest of the
 * `LIVE` goes (deregistered, or its heartbeats stop and its lease expires), under steady
 * traffic; then checks that the gateway holds what the live pods need and no more.
 * `subscriptions` counts the store's change-feed subscriptions (memory store only).
 */
async function registryChurn(
  store: Store,
  name: string,
  cycles: number,
  subscriptions: () => number = () => 0,
): Promise<void> {
  const LIVE = 3;
  // The pods' side (another process, in a real deployment) and the gateway's registry.
  const pods = new ServiceRegistry({ store, sweepIntervalMs: 50 });
  const gwRegistry = new ServiceRegistry({ store, sweepIntervalMs: 50 });
  const gw = await startGateway(
    {
      routes: [
        {
          name: 'rr',
          match: { prefix: '/rr' },
          service: 'churn',
          strategy: 'round-robin',
          retries: { attempts: 2, on: ['connect-failure', 'reset', '503'] },
        },
        {
          name: 'p2c',
          match: { prefix: '/p2c' },
          service: 'churn',
          strategy: 'p2c',
          retries: { attempts: 2, on: ['connect-failure', 'reset', '503'] },
        },
      ],
      services: {
        churn: {
          healthCheck: { type: 'http', path: '/healthz', intervalMs: 100, timeoutMs: 1_000 },
          outlierDetection: { consecutiveFailures: 2, baseEjectionMs: 60_000, maxEjectionPercent: 50 },
          circuitBreaker: { failureThreshold: 2, cooldownMs: 60_000 },
        },
      },
    },
    { store, registry: gwRegistry },
  );
  type Live = { id: string; up: Upstream; reg: Registration; expires: boolean };
  const live: Live[] = [];
  const dying: Live[] = [];
  const balancers = (): Balancer[] => [...gw.gateway.upstreams.balancers('churn').values()];
  const inBalancers = (id: string): boolean => balancers().every((b) => b.endpoints.some((e) => e.id === id));
  const goneFromBalancers = (id: string): boolean => balancers().every((b) => !b.endpoints.some((e) => e.id === id));
  let serial = 0;
  const addPod = async (): Promise<void> => {
    const n = serial++;
    const id = `churn-${n}-${Math.random().toString(36).slice(2, 8)}`;
    // Every 7th pod fails its requests (503): retries, failures, ejections and breakers get
    // series and state for instances that later leave.
    const up = await startUpstream(pod(id, n % 7 === 3 ? 503 : undefined));
    // Every 4th pod will "crash": its heartbeats stop and its short lease expires.
    const expires = n % 4 === 1;
    const reg = await pods.register({ service: 'churn', id, address: up.url, ttlMs: expires ? 300 : 10_000 });
    live.push({ id, up, reg, expires });
    await until(() => inBalancers(id), 5_000, `${id} in the balancers`);
  };
  const removeOldest = async (): Promise<void> => {
    const old = live.shift() as Live;
    if (old.expires) old.reg.stop();
    else await old.reg.deregister();
    dying.push(old);
  };
  /** Closes the upstreams of pods the gateway no longer routes to. */
  const reap = async (): Promise<void> => {
    for (const d of [...dying]) {
      if (!goneFromBalancers(d.id)) continue;
      dying.splice(dying.indexOf(d), 1);
      await d.up.close();
    }
  };

  /** Reaps until every removed pod has left (within 5 s). */
  const reapAll = (what: string): Promise<void> =>
    until(
      async () => {
        await reap();
        return dying.length === 0;
      },
      5_000,
      what,
    );

  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  let traffic: ReturnType<typeof steadyTraffic> | undefined;
  try {
    for (let i = 0; i < LIVE; i++) await addPod();
    traffic = steadyTraffic(gw.port, ['/rr/x', '/p2c/y']);
    // Warm up a few cycles, then take the baseline.
    for (let i = 0; i < 5; i++) {
      await addPod();
      await removeOldest();
      await reap();
    }
    await reapAll('warm-up pods to leave');
    const before = {
      timers: liveTimers.size,
      sockets: tcpSockets(),
      subscriptions: subscriptions(),
      pools: gw.gateway.pools.size,
    };

    for (let i = 0; i < cycles; i++) {
      await addPod();
      // A few requests per cycle on top of the steady ones: every pod gets some.
      for (const path of ['/rr/a', '/p2c/b', '/rr/c', '/p2c/d']) await get(agent, gw.port, path);
      await removeOldest();
      await reap();
    }
    await reapAll('removed pods to leave the balancers (deregistered or expired)');
    const statuses = await traffic.stop();

    // The balancers: the live pods, and per-endpoint state for them only.
    const liveIds = new Set(live.map((l) => l.id));
    const states = balancers().map(balancerState);
    for (const b of balancers()) expect(new Set(b.endpoints.map((e) => e.id))).toEqual(liveIds);
    for (const s of states) {
      expect(s.endpoints).toBe(LIVE);
      expect(s.checkTargets).toBe(LIVE);
      expect(s.breakers).toBe(LIVE);
      expect(s.ejected).toBeLessThanOrEqual(LIVE);
    }
    // One pool per live origin.
    await until(() => gw.gateway.pools.size === LIVE, 5_000, 'pools of gone pods to close');
    // The registry: one watched service with the live instances, one registration per live pod.
    const health = gw.gateway.registry.health();
    expect(health.services.map((s) => [s.service, s.instances, s.watchers])).toEqual([['churn', LIVE, 1]]);
    expect(pods.health().registrations.length).toBe(LIVE);
    // Listeners on each balancer: the gateway's four, not one per endpoint that came and went.
    for (const b of balancers()) {
      for (const name of ['ejected', 'restored', 'healthy', 'unhealthy'] as const)
        expect(b.listenerCount(name)).toBe(1);
    }
    // Store subscriptions: the gateway's watch of the service and of the live routes key.
    expect(subscriptions()).toBe(before.subscriptions);

    // Metrics, before any scrape: the per-route request counts by upstream.
    const metrics = metricsOf(gw.gateway);
    const byUpstream = ['rr', 'p2c'].map((r) => [...metrics.route(r).requests.keys()].filter((u) => u !== ''));
    const out: Record<string, unknown> = {
      cycles,
      requests: total(statuses),
      statuses: Object.fromEntries(statuses),
      oddAnswers: traffic.odd,
      balancers: states,
      pools: gw.gateway.pools.size,
      routeStatsUpstreamsBeforeScrape: byUpstream.map((u) => u.length),
    };
    for (const ids of byUpstream) expect(ids.length).toBeLessThanOrEqual(LIVE);
    // And as scraped: no series names an instance that left.
    const scrape = await metrics.registry.metrics();
    const upstreams = labelValues(scrape, 'upstream');
    upstreams.delete('');
    out.scrapedUpstreams = upstreams.size;
    out.seriesWithUpstream = seriesWith(scrape, 'upstream');
    for (const u of upstreams) expect(liveIds.has(u)).toBe(true);

    // Timers and sockets: what the live pods need, as before the churn.
    await until(() => tcpSockets() <= before.sockets, 8_000, `sockets back to ${before.sockets}`).catch(() => {});
    await until(() => liveTimers.size <= before.timers, 5_000, `timers back to ${before.timers}`).catch(() => {});
    Object.assign(out, {
      timers: `${before.timers} -> ${liveTimers.size}`,
      sockets: `${before.sockets} -> ${tcpSockets()}`,
      subscriptions: `${before.subscriptions} -> ${subscriptions()}`,
    });
    report[name] = out;
    expect(liveTimers.size).toBeLessThanOrEqual(before.timers);
    expect(tcpSockets()).toBeLessThanOrEqual(before.sockets);
    // Nearly every request answered 200 (retries cover the failing pods).
    expect((statuses.get(200) ?? 0) / total(statuses)).toBeGreaterThan(0.95);
  } finally {
    await traffic?.stop();
    agent.destroy();
    await gw.close();
    await gwRegistry.close();
    await pods.close();
    for (const l of [...live, ...dying]) await l.up.close();
  }
}

const redisAvailable = await requireRedis('the registry churn soak on Redis');

describe('registry churn: pods with new ids and ports, registered and removed continuously', () => {
  it('what the gateway holds is bounded by the live instances, not by every instance that ever was', async () => {
    const store = memoryStore();
    try {
      await registryChurn(store, 'registryChurn', 200, countSubscriptions(store));
    } finally {
      await store.close();
    }
  });

  it.skipIf(!redisAvailable)('the same on Redis (100 cycles)', async () => {
    const prefix = testPrefix('soak');
    const store = redisStore(redisUrl(), { prefix });
    try {
      await registryChurn(store, 'registryChurnRedis', 100);
    } finally {
      await store.close();
      await deletePrefix(redisUrl(), prefix);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// 2. Config churn

describe('config churn: live routes rewritten many times', () => {
  it('old pools close, old balancers stop, listeners and route series stay bounded', async () => {
    const VERSIONS = 200;
    const store = memoryStore();
    const subscriptions = countSubscriptions(store);
    const pods = new ServiceRegistry({ store, sweepIntervalMs: 50 });
    const gwRegistry = new ServiceRegistry({ store, sweepIntervalMs: 50 });
    const a = await startUpstream(pod('a'));
    const b = await startUpstream(pod('b'));
    const bad = await startUpstream(pod('bad', 503));
    const r = await startUpstream(pod('r'));
    const gw = await startGateway(
      {
        routes: [{ name: 'file', match: { prefix: '/api' }, service: 'base' }],
        services: { base: { static: [a.url] } },
      },
      { store, registry: gwRegistry },
    );
    const live = gw.gateway.liveRoutes as NonNullable<Gateway['liveRoutes']>;
    const center = gw.gateway.configCenter;
    // Five registry-backed services the versions take turns on (one instance each).
    const regs: Registration[] = [];
    for (let k = 0; k < 5; k++) regs.push(await pods.register({ service: `reg-${k}`, id: `r-${k}`, address: r.url }));
    const versionValue = (i: number) => {
      const svc = `svc-${i % 7}`;
      const reg = `reg-${i % 5}`;
      return {
        routes: [
          {
            name: `api-${i}`,
            match: { prefix: '/api' },
            service: svc,
            timeoutMs: 2_000 + (i % 9) * 100,
            retries: { attempts: 1, on: ['503'] },
          },
          { name: `reg-${i}`, match: { prefix: '/reg' }, service: reg },
          {
            name: `limited-${i}`,
            match: { prefix: '/limited' },
            service: svc,
            retries: { attempts: 1, on: ['503'] },
            rateLimit: { rps: 1, burst: 1 },
          },
        ],
        services: {
          [svc]: {
            static: [a.url, b.url, bad.url],
            connections: 1 + (i % 11),
            ...(i % 3 === 0 ? { healthCheck: { type: 'http', path: '/healthz', intervalMs: 100 } } : {}),
            circuitBreaker: i % 2 === 0,
            // bad is ejected at its first 503: ejection series for every service name.
            outlierDetection: { consecutiveFailures: 1, baseEjectionMs: 60_000 },
          },
          [reg]: { connections: 1 + (i % 13) },
        },
      };
    };
    const seenBalancers = new Set<Balancer>();
    const noteBalancers = (): void => {
      for (const name of gw.gateway.upstreams.serviceNames) {
        for (const bal of gw.gateway.upstreams.balancers(name).values()) seenBalancers.add(bal);
      }
    };
    const applyVersion = async (i: number): Promise<void> => {
      const { version } = await center.set('gateway/routes', versionValue(i) as unknown as JsonValue);
      expect(await live.waitFor(version, 5_000)).toBe(true);
      noteBalancers();
    };
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    let traffic: ReturnType<typeof steadyTraffic> | undefined;
    try {
      traffic = steadyTraffic(gw.port, ['/api/x', '/reg/y', '/limited/z']);
      for (let i = 1; i <= 10; i++) {
        await applyVersion(i);
        for (const path of ['/api/a', '/reg/b', '/limited/c']) await get(agent, gw.port, path);
      }
      await until(() => gw.gateway.pools.size === 4, 5_000, 'warm-up pools');
      const before = { timers: liveTimers.size, sockets: tcpSockets(), subscriptions: subscriptions() };

      for (let i = 11; i <= VERSIONS; i++) {
        await applyVersion(i);
        // Requests on every version, so that each one's pools and route series get used.
        for (const path of ['/api/a', '/reg/b', '/limited/c', '/api/d']) await get(agent, gw.port, path);
      }
      const statuses = await traffic.stop();

      const current = versionValue(VERSIONS);
      const services = Object.keys(current.services).sort();
      const routeNames = new Set(current.routes.map((x) => x.name));
      expect(gw.gateway.upstreams.serviceNames.sort()).toEqual(services);
      // Balancers of earlier versions are closed (those that requests still held when they were
      // replaced, once the last of those was done); the live ones carry the gateway's listeners only.
      const liveBalancers = new Set(services.flatMap((s) => [...gw.gateway.upstreams.balancers(s).values()]));
      const stillOpen = () => [...seenBalancers].filter((x) => !liveBalancers.has(x) && !x.closed).length;
      await until(() => stillOpen() === 0, 5_000, 'replaced balancers to close');
      for (const bal of liveBalancers) {
        for (const name of ['ejected', 'restored', 'healthy', 'unhealthy'] as const)
          expect(bal.listenerCount(name)).toBe(1);
      }
      // Pools: the three static origins and the registry one, with the live settings; the
      // pools of earlier settings closed.
      await until(() => gw.gateway.pools.size === 4, 5_000, 'pools of old settings to close');
      // One config watch (live routes); registry views watched: the live service's only, and no
      // more views than services that were ever routed to (idle ones go after idleViewMs).
      expect(center.health().watches.length).toBe(1);
      const views = gw.gateway.registry.health().services;
      expect(views.filter((v) => v.watchers > 0).map((v) => v.service)).toEqual([`reg-${VERSIONS % 5}`]);
      expect(views.length).toBeLessThanOrEqual(5);
      expect(subscriptions()).toBeLessThanOrEqual(1 + 5);

      // Route series: those of the live routes only (requests_total, latency, retries,
      // failures, rate limits), whatever the number of route names that came and went.
      const scrape = await metricsOf(gw.gateway).registry.metrics();
      const routesInScrape = labelValues(scrape, 'route');
      report.configChurn = {
        versions: VERSIONS,
        requests: total(statuses),
        statuses: Object.fromEntries(statuses),
        oddAnswers: traffic.odd,
        services: gw.gateway.upstreams.serviceNames.length,
        balancersSeen: seenBalancers.size,
        pools: gw.gateway.pools.size,
        views: views.length,
        subscriptions: `${before.subscriptions} -> ${subscriptions()}`,
        routeLabelsScraped: routesInScrape.size,
        seriesWithRoute: seriesWith(scrape, 'route'),
        routeLabelsByMetric: Object.fromEntries(
          [
            'ringway_gateway_requests_total',
            'ringway_gateway_request_duration_seconds',
            'ringway_gateway_retries_total',
            'ringway_gateway_upstream_failures_total',
            'ringway_gateway_rate_limited_total',
          ].map((m) => [m, labelValues(scrape, 'route', m).size]),
        ),
      };
      expect([...routesInScrape].filter((x) => !routeNames.has(x))).toEqual([]);
      // Service series (ejections): the live services only.
      const servicesInScrape = labelValues(scrape, 'service');
      (report.configChurn as Record<string, unknown>).serviceLabelsScraped = servicesInScrape.size;
      expect([...servicesInScrape].filter((x) => !services.includes(x))).toEqual([]);

      // Timers and sockets: as before the churn (old health checks stopped, old pools closed).
      await until(() => tcpSockets() <= before.sockets, 8_000, `sockets back to ${before.sockets}`).catch(() => {});
      await until(() => liveTimers.size <= before.timers, 5_000, `timers back to ${before.timers}`).catch(() => {});
      Object.assign(report.configChurn as object, {
        timers: `${before.timers} -> ${liveTimers.size}`,
        sockets: `${before.sockets} -> ${tcpSockets()}`,
      });
      expect(liveTimers.size).toBeLessThanOrEqual(before.timers);
      expect(tcpSockets()).toBeLessThanOrEqual(before.sockets);
      // Answers: 200, and 429 on /limited. A few 502s come from retries of requests in flight
      // across a version change (the retry of a 503 finds its balancer closed): a bug of its
      // own, not growth, shown by the `it.fails` test below; not asserted here.
      expect([...statuses.keys()].filter((s) => s !== 200 && s !== 429 && s !== 502)).toEqual([]);
    } finally {
      await traffic?.stop();
      agent.destroy();
      await gw.close();
      await gwRegistry.close();
      await pods.close();
      for (const u of [a, b, bad, r]) await u.close();
      await store.close();
    }
  });
});

// ---------------------------------------------------------------------------------------------
// 3. Client churn

/** Open connections of a server. */
function connectionsOf(server: { getConnections(cb: (err: Error | null, n: number) => void): void }): Promise<number> {
  return new Promise((resolve) => server.getConnections((_err, n) => resolve(n)));
}

/** One request on a connection of its own, which closes after the answer. */
function oneShot(port: number, path: string): Promise<number> {
  return new Promise((resolve) => {
    const req = httpRequest(
      { host: '127.0.0.1', port, path, agent: false, headers: { connection: 'close' } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', () => resolve(0));
      },
    );
    req.on('error', () => resolve(0));
    req.end();
  });
}

/** A request whose client leaves: after the first body bytes (`mid`), or after `ms` without an answer. */
function abandoned(port: number, path: string, how: { mid: true } | { afterMs: number }): Promise<string> {
  return new Promise((resolve) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      res.once('data', () => {
        req.destroy();
        resolve('left mid-answer');
      });
      res.on('error', () => {});
    });
    req.on('error', () => resolve('left'));
    req.end();
    if ('afterMs' in how) setTimeout(() => req.destroy(), how.afterMs);
  });
}

/** A POST whose client leaves after sending part of its declared body. */
function abandonedUpload(port: number, path: string): Promise<void> {
  return new Promise((resolve) => {
    const req = httpRequest({
      host: '127.0.0.1',
      port,
      path,
      method: 'POST',
      agent: false,
      headers: { 'content-length': '100000', 'content-type': 'application/octet-stream' },
    });
    req.on('error', () => resolve());
    req.on('close', () => resolve());
    req.write(Buffer.alloc(4_000, 1), () => setTimeout(() => req.destroy(), 5));
  });
}

/** In batches of `width` at once. */
async function inBatches<T>(n: number, width: number, run: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = [];
  for (let i = 0; i < n; i += width) {
    out.push(...(await Promise.all(Array.from({ length: Math.min(width, n - i) }, (_, k) => run(i + k)))));
  }
  return out;
}

describe('client churn: short-lived connections and clients that leave mid-answer', () => {
  it('in-flight counts return to 0 and every connection closes', async () => {
    // An answer that streams for a while (unless its client goes), and one that comes late.
    const streams = new Set<ServerResponse>();
    const stream = await startUpstream((req: IncomingMessage, res: ServerResponse) => {
      req.resume();
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('first chunk\n');
      streams.add(res);
      let n = 0;
      const timer = setInterval(() => {
        if (++n === 100) {
          clearInterval(timer);
          res.end('done\n');
        } else res.write(`chunk ${n}\n`);
      }, 20);
      res.on('close', () => {
        clearInterval(timer);
        streams.delete(res);
      });
    });
    const lateTimers = new Set<NodeJS.Timeout>();
    const late = await startUpstream((req, res) => {
      req.resume();
      const t = setTimeout(() => {
        lateTimers.delete(t);
        if (!res.destroyed) res.end('late');
      }, 2_000);
      lateTimers.add(t);
      res.on('close', () => {
        clearTimeout(t);
        lateTimers.delete(t);
      });
    });
    const fast = await startUpstream(echo('fast'));
    const gw: TestGateway = await startGateway({
      routes: [
        { name: 'fast', match: { prefix: '/fast' }, service: 'fast' },
        { name: 'stream', match: { prefix: '/stream' }, service: 'stream' },
        { name: 'late', match: { prefix: '/late' }, service: 'late' },
      ],
      services: {
        fast: { static: [fast.url] },
        stream: { static: [stream.url] },
        late: { static: [late.url] },
      },
    });
    try {
      const before = { sockets: tcpSockets(), timers: liveTimers.size };
      // 300 clients with one request each, 20 at a time.
      const statuses = await inBatches(300, 20, () => oneShot(gw.port, '/fast/x'));
      // 100 that leave after the first bytes of a streaming answer, 100 that leave before any
      // answer, 50 that leave in the middle of their upload.
      const mid = await inBatches(100, 20, () => abandoned(gw.port, '/stream/s', { mid: true }));
      const early = await inBatches(100, 20, () => abandoned(gw.port, '/late/l', { afterMs: 30 }));
      await inBatches(50, 10, () => abandonedUpload(gw.port, '/fast/upload'));

      const g = gw.gateway;
      await until(() => g.inFlight === 0, 5_000, 'the gateway in-flight count to return to 0');
      const scrape = await metricsOf(g).registry.metrics();
      const gauge = Number(/^ringway_gateway_in_flight_requests (\S+)$/m.exec(scrape)?.[1]);
      const balancers = ['fast', 'stream', 'late'].flatMap((s) => [...g.upstreams.balancers(s).values()]);
      const status = balancers.map((b) => b.status());
      // Every connection the clients opened is closed on the gateway; the upstreams' streams
      // and waits of clients that left were cut.
      await until(async () => (await connectionsOf(g.app.server)) === 0, 5_000, 'client connections to close');
      await until(() => streams.size === 0 && lateTimers.size === 0, 5_000, 'abandoned upstream answers to stop');
      await until(
        async () => (await connectionsOf(stream.server)) === 0 && (await connectionsOf(late.server)) === 0,
        5_000,
        'connections of abandoned tries to close',
      );
      report.clientChurn = {
        oneShot: statuses.length,
        oneShotStatuses: [...new Set(statuses)],
        leftMidAnswer: mid.filter((m) => m === 'left mid-answer').length,
        leftBeforeAnswer: early.length,
        leftMidUpload: 50,
        gatewayInFlight: g.inFlight,
        inFlightGauge: gauge,
        balancerInFlight: status.map((s) => s.inFlight),
        retriesActive: status.map((s) => s.retries.active),
        gatewayConnections: await connectionsOf(g.app.server),
        upstreamConnections: {
          fast: await connectionsOf(fast.server),
          stream: await connectionsOf(stream.server),
          late: await connectionsOf(late.server),
        },
        statuses499: labelValues(scrape, 'status', 'ringway_gateway_requests_total').has('499'),
      };
      expect(statuses.every((s) => s === 200)).toBe(true);
      expect(gauge).toBe(0);
      for (const s of status) {
        expect(s.inFlight).toBe(0);
        expect(s.retries.active).toBe(0);
        for (const e of s.endpoints) expect(e.inFlight).toBe(0);
      }
      // The clients that left are counted as 499, not as failures of the instances.
      expect(scrape).toMatch(/ringway_gateway_requests_total\{route="stream",status="499"|route="late",status="499"/);
      for (const s of status) for (const e of s.endpoints) expect(e.ejected).toBe(false);
      // What stays open is the fast upstream's idle keep-alive connections (at most what ran
      // at once), each counted at both of its ends, and they close after the keep-alive.
      const fastIdle = await connectionsOf(fast.server);
      expect(fastIdle).toBeLessThanOrEqual(20);
      await until(() => tcpSockets() <= before.sockets + 2 * fastIdle, 5_000, 'sockets back').catch(() => {});
      await until(() => liveTimers.size <= before.timers + 2, 5_000, 'timers back').catch(() => {});
      Object.assign(report.clientChurn as object, {
        fastIdleConnections: fastIdle,
        sockets: `${before.sockets} -> ${tcpSockets()}`,
        timers: `${before.timers} -> ${liveTimers.size}`,
      });
      expect(tcpSockets()).toBeLessThanOrEqual(before.sockets + 2 * fastIdle);
    } finally {
      await gw.close();
      for (const u of [fast, stream, late]) await u.close();
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Found by the config churn: a retry of a request in flight across a live change.

describe('a request in flight across a live change that replaces its balancer', () => {
  // README ("Live routes"): "Requests already in flight finish on the route they matched".
  // Upstreams.apply used to close the balancers no route used any more at once (here:
  // `connections` changed, so the service's balancers are rebuilt), and a closed balancer's
  // acquire() answers undefined: the retry of a request that matched the old route found no
  // instance and the client got the 502 of the failed try, although another instance was
  // there to answer. A replaced balancer now serves its requests' retries until they are done.
  it('its retry goes to another instance of the route it matched, not to a 502', async () => {
    let answerBad: (() => void) | undefined;
    let arrived: () => void = () => {};
    const atBad = new Promise<void>((resolve) => {
      arrived = resolve;
    });
    const bad = await startUpstream((req, res) => {
      req.resume();
      answerBad = () => {
        if (res.headersSent) return;
        res.writeHead(503, { 'content-type': 'text/plain' });
        res.end('bad');
      };
      arrived();
    });
    const good = await startUpstream(echo('good'));
    const config = (connections: number) =>
      resolveGatewayConfig({
        routes: [{ name: 'r', match: { prefix: '/' }, service: 's', retries: { attempts: 1, on: ['503'] } }],
        services: { s: { static: [bad.url, good.url], connections, outlierDetection: false } },
      });
    const gw = await startGateway(
      {
        routes: [{ name: 'r', match: { prefix: '/' }, service: 's', retries: { attempts: 1, on: ['503'] } }],
        services: { s: { static: [bad.url, good.url], connections: 4, outlierDetection: false } },
      },
      { liveRoutes: false },
    );
    try {
      // Round-robin: within two requests, one is held at `bad`.
      let held: Promise<Reply> | undefined;
      for (let i = 0; i < 2 && held === undefined; i++) {
        const reply = send(gw.port, '/x');
        const first = await Promise.race([atBad.then(() => 'bad' as const), reply.then(() => 'answered' as const)]);
        if (first === 'bad') held = reply;
      }
      expect(held).toBeDefined();
      // A live change of the service's pool settings while that request is in flight.
      gw.gateway.apply(config(8));
      answerBad?.();
      const reply = await (held as Promise<Reply>);
      expect([reply.status, reply.body]).toEqual([200, expect.stringContaining('"name":"good"')]);
    } finally {
      answerBad?.();
      await gw.close();
      await bad.close();
      await good.close();
    }
  });
});
