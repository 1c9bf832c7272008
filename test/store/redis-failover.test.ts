import { Cluster, type ClusterOptions, Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigCenter } from '../../src/config/ConfigCenter.js';
import { StoreUnavailableError } from '../../src/errors.js';
import type { Lock } from '../../src/lock/Lock.js';
import { LockManager } from '../../src/lock/LockManager.js';
import { ServiceRegistry } from '../../src/registry/ServiceRegistry.js';
import { type RedisStore, redisStore } from '../../src/store/redis/RedisStore.js';
import type { RestartEvent } from '../../src/store/Store.js';
import {
  clusterStore,
  haveRedisServerBinary,
  type RedisCluster,
  type RedisSentinel,
  type RedisServer,
  replyCutter,
  startRedisCluster,
  startRedisServer,
  startSentinel,
} from '../helpers/redis.js';

const canStart = haveRedisServerBinary();
if (!canStart) {
  const bar = '!'.repeat(78);
  console.warn(`\n${bar}\n!! SKIPPING Redis failover tests: redis-server is not installed\n${bar}\n`);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `check` every 25 ms until it returns true; fails after `timeoutMs`. */
async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(25);
  }
}

/** The command timeout of the stores under test; the ceiling a call in the gap may take is this plus slack. */
const COMMAND_TIMEOUT_MS = 1_000;
const SETTLE_CEILING_MS = COMMAND_TIMEOUT_MS + 1_500;

/** Names whose keys (hash tags) live on the master that is killed. */
interface Names {
  readonly lock: string;
  /** A lock granted while the replica is cut off: the promoted replica never gets it. */
  readonly lostLock: string;
  readonly service: string;
  readonly namespace: string;
}

/** What a topology gives the shared scenario. */
interface Topology {
  /** The store under test and a second one (another process) that writes after the failover. */
  readonly watched: RedisStore;
  readonly writer: RedisStore;
  readonly names: Names;
  /** The `server` a restart event names: the master's name behind Sentinel, the promoted node on a cluster. */
  readonly restartedServer: string;
  /** Makes the replica of the master to kill catch up with it (a write + WAIT 1 there). */
  sync(): Promise<void>;
  /**
   * Cuts the replica off (SIGSTOP, and the master drops its link), so that writes from now on
   * reach the master only, as when a master fails before replicating its last writes.
   */
  detachReplica(): Promise<void>;
  /** Kills the master (SIGKILL by PID), then lets a detached replica run again. */
  kill(): Promise<void>;
  /** Stops everything it started. */
  stop(): Promise<void>;
}

/**
 * The failover scenario, run once per topology: set up watches and a held lock, kill the
 * master, then check each property in order (later tests rely on the failover done earlier).
 */
function failoverScenario(label: string, start: () => Promise<Topology>): void {
  describe.skipIf(!canStart)(label, () => {
    let topology: Topology;
    let names: Names;
    const restarts: RestartEvent[] = [];
    const feed: string[] = [];
    const registryIds: string[][] = [];
    const configChanges: { key: string; value: unknown; reason: string }[] = [];
    let locks: LockManager;
    let writerLocks: LockManager;
    let registry: ServiceRegistry;
    let writerRegistry: ServiceRegistry;
    let config: ConfigCenter;
    let writerConfig: ConfigCenter;
    let held: Lock;
    let tokenBefore = 0;
    let lostLock: Lock;
    const closers: (() => unknown)[] = [];

    beforeAll(async () => {
      topology = await start();
      names = topology.names;
      const { watched, writer } = topology;
      closers.push(() => topology.stop());
      closers.push(() => writer.close());
      closers.push(() => watched.close());
      watched.onRestart((event) => restarts.push(event));
      await watched.changes.subscribe('feed', (message) => feed.push(message));

      locks = new LockManager({ store: watched });
      writerLocks = new LockManager({ store: writer });
      closers.push(
        () => locks.close(),
        () => writerLocks.close(),
      );
      // Three grants, the last one still held across the failover.
      for (let i = 0; i < 2; i++) await (await writerLocks.acquire(names.lock, { ttlMs: 30_000 })).release();
      held = await locks.acquire(names.lock, { ttlMs: 30_000 });
      tokenBefore = held.token;
      // The fencing counter of the lock to be lost exists on the replica too.
      await (await writerLocks.acquire(names.lostLock, { ttlMs: 30_000 })).release();

      registry = new ServiceRegistry({ store: watched, sweepIntervalMs: 60_000 });
      writerRegistry = new ServiceRegistry({ store: writer, sweepIntervalMs: 60_000 });
      closers.push(
        () => registry.close(),
        () => writerRegistry.close(),
      );
      const before = await writerRegistry.register({
        service: names.service,
        id: 'before',
        address: 'http://127.0.0.1:1',
      });
      closers.push(() => before.deregister().catch(() => undefined));
      const watch = registry.watch(names.service, (instances) => registryIds.push(instances.map((i) => i.id)));
      await watch.ready;
      closers.push(() => watch.close());

      config = new ConfigCenter({ store: watched, namespace: names.namespace, pollIntervalMs: 60_000 });
      writerConfig = new ConfigCenter({ store: writer, namespace: names.namespace, pollIntervalMs: 60_000 });
      closers.push(
        () => config.close(),
        () => writerConfig.close(),
      );
      await writerConfig.set('app.before', 1);
      const configWatch = config.watch('app.', (change) =>
        configChanges.push({ key: change.key, value: change.value, reason: change.reason }),
      );
      await configWatch.ready;
      closers.push(() => configWatch.close());

      // The feed works before the failover.
      await writer.changes.publish('feed', 'before');
      await waitFor('the message before the failover', () => feed.includes('before'), 5_000);
      await topology.sync();
    }, 40_000);

    afterAll(async () => {
      for (const close of closers.reverse()) {
        try {
          await close();
        } catch {}
      }
    }, 20_000);

    it('calls during the gap fail with ERR_STORE_UNAVAILABLE, each within the command timeout, and the store comes back by itself', async () => {
      // The replica stays cut off only for this grant and the kill (a Sentinel would count a
      // replica silent for down-after-milliseconds as down, and never promote it).
      await topology.detachReplica();
      try {
        lostLock = await locks.acquire(names.lostLock, { ttlMs: 30_000 });
      } finally {
        await topology.kill();
      }
      const killedAt = performance.now();
      const { watched } = topology;
      // Right after the kill, one call of each kind: each settles within the ceiling, and a
      // failure is ERR_STORE_UNAVAILABLE. (On a cluster, keyless calls may reach a live node.)
      const burst = await Promise.all(
        [
          () => watched.time(),
          () => watched.changes.publish('feed', 'gap'),
          () => watched.config.get(names.namespace, 'app.before'),
          () => watched.registry.sync(names.service, undefined, { logLimit: 256, tombstoneMs: 60_000 }),
          // Another resource on the same slot: a late grant must not block the lock tested below.
          () =>
            watched.locks.acquire({
              resource: names.service,
              holder: 'gap',
              ttlMs: 1_000,
              fair: false,
              queueTtlMs: 1_000,
            }),
        ].map((call) => {
          const sent = performance.now();
          return Promise.race([
            call().then(
              () => 'ok' as const,
              (err: unknown) => err,
            ),
            sleep(SETTLE_CEILING_MS * 2).then(() => 'hung' as const),
          ]).then((outcome) => ({ outcome, ms: performance.now() - sent }));
        }),
      );
      for (const { outcome, ms } of burst) {
        expect(outcome).not.toBe('hung');
        if (outcome !== 'ok') expect(outcome).toBeInstanceOf(StoreUnavailableError);
        expect(ms).toBeLessThan(SETTLE_CEILING_MS);
      }
      const failures: unknown[] = [];
      const fast: number[] = [];
      let slowest = 0;
      // One call at a time, key-routed (on a cluster, to the killed master's slot), until one succeeds.
      for (;;) {
        const sent = performance.now();
        const outcome = await Promise.race([
          topology.watched.locks.inspect(names.lock).then(
            () => 'ok' as const,
            (err: unknown) => err,
          ),
          sleep(SETTLE_CEILING_MS * 2).then(() => 'hung' as const),
        ]);
        const ms = performance.now() - sent;
        slowest = Math.max(slowest, ms);
        expect(outcome).not.toBe('hung');
        if (outcome === 'ok') break;
        failures.push(outcome);
        if (ms < 100) fast.push(ms);
        expect(performance.now() - killedAt).toBeLessThan(30_000);
        await sleep(50);
      }
      const recoveredAt = performance.now();
      console.info(
        `[${label}] back ${Math.round(recoveredAt - killedAt)} ms after the kill; ` +
          `${failures.length} calls failed meanwhile (${fast.length} in under 100 ms), the slowest settled in ` +
          `${Math.round(slowest)} ms; errors: ${[...new Set(failures.map((e) => (e as Error).message))].join(' | ')}; ` +
          `burst: ${burst.map(({ outcome, ms }) => `${outcome === 'ok' ? 'ok' : 'failed'} ${Math.round(ms)} ms`).join(', ')}`,
      );
      // The gap was seen: by the burst, or by the calls after it.
      expect(failures.length + burst.filter(({ outcome }) => outcome !== 'ok').length).toBeGreaterThan(0);
      for (const err of failures) {
        expect(err).toBeInstanceOf(StoreUnavailableError);
        expect(err).toMatchObject({ code: 'ERR_STORE_UNAVAILABLE' });
      }
      expect(slowest).toBeLessThan(SETTLE_CEILING_MS);
    }, 40_000);

    it('the writer store comes back by itself too', async () => {
      await waitFor('the writer store', () =>
        topology.writer.locks.inspect(names.lock).then(
          () => true,
          () => false,
        ),
      );
    }, 20_000);

    it('onRestart fires: the promoted replica has another run id', async () => {
      await waitFor('a restart event', () => restarts.length > 0, 5_000);
      expect(restarts[0]!.runId).not.toBe(restarts[0]!.previousRunId);
      // About the failed-over master only: no other server is reported.
      expect(restarts.map((r) => r.server)).toEqual([topology.restartedServer]);
    }, 10_000);

    it('the change feed delivers again (resubscribed on the new master)', async () => {
      const deadline = Date.now() + 10_000;
      let i = 0;
      while (!feed.some((m) => m.startsWith('after')) && Date.now() < deadline) {
        await topology.writer.changes.publish('feed', `after-${i++}`).catch(() => undefined);
        await sleep(100);
      }
      expect(feed.filter((m) => m.startsWith('after')).length).toBeGreaterThan(0);
    }, 15_000);

    it('a registry watch sees a registration made after the failover', async () => {
      const after = await writerRegistry.register({
        service: names.service,
        id: 'after',
        address: 'http://127.0.0.1:2',
      });
      closers.push(() => after.deregister().catch(() => undefined));
      await waitFor(
        'the registration after the failover',
        () => registryIds.some((ids) => ids.includes('after')),
        10_000,
      );
      expect(registryIds.at(-1)).toEqual(['after', 'before']);
    }, 15_000);

    it('a config watch sees a write made after the failover', async () => {
      await writerConfig.set('app.after', 2);
      await waitFor('the write after the failover', () => configChanges.some((c) => c.key === 'app.after'), 10_000);
      expect(configChanges.find((c) => c.key === 'app.after')).toMatchObject({ value: 2 });
      expect(configChanges.filter((c) => c.key === 'app.before')).toEqual([
        { key: 'app.before', value: 1, reason: 'initial' },
      ]);
    }, 15_000);

    it('a lock granted just before the failover that the new master lacks is reported lost (the restart check)', async () => {
      await waitFor('the lock to be reported lost', () => lostLock.lost, 5_000);
      expect(lostLock.signal.aborted).toBe(true);
      expect(lostLock.signal.reason).toMatchObject({ code: 'ERR_LOCK_LOST' });
      expect((await locks.inspect(names.lostLock)).holder).toBeUndefined();
    }, 10_000);

    // The promoted replica has the fencing counter as it was before the lost grant: tokens are
    // the larger of counter + 1 and the server clock in µs, so the next grant does not get the
    // lost grant's token again (two holders with one token).
    it('a grant the failover lost does not have its token given out again', async () => {
      const again = await writerLocks.acquire(names.lostLock, { ttlMs: 5_000 });
      try {
        expect(again.token).toBeGreaterThan(lostLock.token);
      } finally {
        await again.release();
      }
    }, 10_000);

    it('the lock held across the failover is still held, and fencing tokens keep increasing', async () => {
      // The replica was in sync: the lease survived, and the restart check keeps the lock.
      expect((await locks.inspect(names.lock)).holder).toBe(held.holder);
      await held.extend(30_000);
      expect(held.lost).toBe(false);
      expect(await held.release()).toBe(true);
      const next = await writerLocks.acquire(names.lock, { ttlMs: 5_000 });
      expect(next.token).toBeGreaterThan(tokenBefore);
      const last = await locks.acquire(names.lock, { ttlMs: 5_000, waitMs: 0 }).catch((err: unknown) => err);
      expect(last).toMatchObject({ code: 'ERR_LOCK_TIMEOUT' });
      await next.release();
      const after = await locks.acquire(names.lock, { ttlMs: 5_000 });
      expect(after.token).toBeGreaterThan(next.token);
      await after.release();
    }, 15_000);
  });
}

/** SIGSTOPs `replica` and has the master drop its replication link (see Topology.detachReplica). */
async function detachReplica(masterUrl: string, replica: RedisServer): Promise<void> {
  const admin = new Redis(masterUrl, { maxRetriesPerRequest: 1 });
  admin.on('error', () => {});
  try {
    await admin.ping();
    process.kill(replica.pid, 'SIGSTOP');
    await admin.call('CLIENT', 'KILL', 'TYPE', 'replica');
  } finally {
    admin.disconnect();
  }
}

/** Lets a replica stopped by {@link detachReplica} run again (harmless when it runs). */
function resume(replica: RedisServer): void {
  if (replica.pid !== 0) process.kill(replica.pid, 'SIGCONT');
}

/** Makes the replica of the master at `url` catch up: a write on the slot of hash tag `tag`, then WAIT 1. */
async function syncReplica(url: string, tag: string): Promise<void> {
  const admin = new Redis(url, { maxRetriesPerRequest: 1 });
  admin.on('error', () => {});
  try {
    // WAIT covers the writes of its own connection: one written after the store's writes
    // reaches the replica only after theirs.
    await admin.set(`failover-marker:{${tag}}`, '1');
    const acked = Number(await admin.call('WAIT', '1', '5000'));
    if (acked < 1) throw new Error(`the replica did not acknowledge within 5 s (${acked})`);
  } finally {
    admin.disconnect();
  }
}

failoverScenario('sentinel failover (master + 1 replica, 1 sentinel)', async () => {
  const started: { stop(): Promise<void> }[] = [];
  const stop = async () => {
    for (const s of started.reverse()) await s.stop();
  };
  try {
    const master: RedisServer = await startRedisServer();
    started.push(master);
    const replica = await startRedisServer({ args: ['--replicaof', '127.0.0.1', String(master.port)] });
    started.push(replica);
    const sentinel: RedisSentinel = await startSentinel(master.port, { downAfterMs: 500, failoverTimeoutMs: 5_000 });
    started.push(sentinel);
    // Sentinel can only promote a replica it knows of, and Redis only one that synced.
    const probe = new Redis(`redis://127.0.0.1:${sentinel.port}`);
    probe.on('error', () => {});
    try {
      await waitFor('the sentinel to see the synced replica', async () => {
        const replicas = (await probe.call('SENTINEL', 'REPLICAS', 'mymaster')) as string[][];
        return replicas.some((r) => {
          const fields = new Map<string, string>();
          for (let i = 0; i + 1 < r.length; i += 2) fields.set(r[i]!, r[i + 1]!);
          return fields.get('port') === String(replica.port) && fields.get('master-link-status') === 'ok';
        });
      });
    } finally {
      probe.disconnect();
    }
    const make = (prefix: string) => {
      const client = new Redis({
        sentinels: [{ host: '127.0.0.1', port: sentinel.port }],
        name: 'mymaster',
        autoResendUnfulfilledCommands: false,
      });
      client.on('error', () => {});
      const store = redisStore(client, { prefix, commandTimeoutMs: COMMAND_TIMEOUT_MS });
      const close = store.close.bind(store);
      return Object.assign(store, {
        close: async () => {
          await close();
          client.disconnect();
        },
      });
    };
    const watched = make('failover:');
    const writer = make('failover:');
    return {
      watched,
      writer,
      names: { lock: 'job', lostLock: 'lost', service: 'svc', namespace: 'ns' },
      restartedServer: 'sentinel:mymaster',
      sync: () => syncReplica(master.url, 'x'),
      detachReplica: () => detachReplica(master.url, replica),
      kill: async () => {
        await master.stop();
        resume(replica);
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
});

/** Parses `CLUSTER NODES`: each node's port, role, its master's id and its slot ranges. */
function clusterNodes(text: string) {
  return text
    .trim()
    .split('\n')
    .map((line) => {
      const [id, address, flags, masterId, , , , , ...slots] = line.split(' ');
      return {
        id: id!,
        port: Number(address!.split('@')[0]!.split(':')[1]),
        master: flags!.includes('master'),
        masterId: masterId!,
        slots: slots.filter((s) => !s.startsWith('[')).map((s) => s.split('-').map(Number) as [number, number?]),
      };
    });
}

failoverScenario('cluster failover (3 masters + 3 replicas)', async () => {
  const cluster = await startRedisCluster(3, 20_000, { replicas: 1, nodeTimeoutMs: 1_000 });
  const clusterPromise: Promise<RedisCluster> = Promise.resolve(cluster);
  const stores: RedisStore[] = [];
  const stop = async () => {
    for (const s of stores) await s.close().catch(() => undefined);
    await cluster.stop();
  };
  try {
    const admin = new Redis(cluster.nodes[0]!.url);
    admin.on('error', () => {});
    try {
      const nodes = clusterNodes(String(await admin.call('CLUSTER', 'NODES')));
      // The watched store's subscriber connection sits on a random node: make stores until it
      // sits on a master, and kill that one, so that the feed must move to another node.
      let watched: RedisStore | undefined;
      let victim: (typeof nodes)[number] | undefined;
      for (let attempt = 0; attempt < 30 && victim === undefined; attempt++) {
        const store = await clusterStore(clusterPromise, 'failover:', { commandTimeoutMs: COMMAND_TIMEOUT_MS });
        stores.push(store);
        await store.changes.subscribe('probe', () => {});
        for (const node of nodes) {
          const client = new Redis(`redis://127.0.0.1:${node.port}`);
          client.on('error', () => {});
          const channels = (await client.pubsub('CHANNELS', 'failover:probe')) as string[];
          client.disconnect();
          if (channels.length > 0 && node.master) {
            victim = node;
            watched = store;
          }
        }
        if (victim === undefined) {
          stores.pop();
          await store.close();
        }
      }
      if (victim === undefined || watched === undefined) throw new Error('no store subscribed on a master');
      const owned = (slot: number) => victim!.slots.some(([from, to]) => slot >= from && slot <= (to ?? from));
      /** The first `base-N` whose hash slot the victim serves. */
      const nameOn = async (base: string) => {
        for (let i = 0; ; i++) {
          const name = `${base}-${i}`;
          if (owned(Number(await admin.call('CLUSTER', 'KEYSLOT', name)))) return name;
        }
      };
      const names = {
        lock: await nameOn('job'),
        lostLock: await nameOn('lost'),
        service: await nameOn('svc'),
        namespace: await nameOn('ns'),
      };
      const writer = await clusterStore(clusterPromise, 'failover:', { commandTimeoutMs: COMMAND_TIMEOUT_MS });
      stores.push(writer);
      const server = cluster.nodes.find((n) => n.port === victim!.port)!;
      const promoted = nodes.find((n) => n.masterId === victim!.id)!;
      const replica = cluster.nodes.find((n) => n.port === promoted.port)!;
      return {
        watched,
        writer,
        names,
        restartedServer: `127.0.0.1:${promoted.port}`,
        sync: async () => {
          for (const name of Object.values(names)) await syncReplica(server.url, name);
        },
        detachReplica: () => detachReplica(server.url, replica),
        kill: async () => {
          await server.stop();
          resume(replica);
        },
        stop,
      };
    } finally {
      admin.disconnect();
    }
  } catch (err) {
    await stop();
    throw err;
  }
});

/**
 * What a master that dies right after running a command leaves behind: a connection closed
 * before the reply. The README promises such a command fails with ERR_STORE_UNAVAILABLE and is
 * never sent a second time (the scripts are not idempotent: a CAS that succeeded would come
 * back a conflict). A standalone or Sentinel client keeps it with
 * `autoResendUnfulfilledCommands: false`; an ioredis Cluster resends on its own layer: a
 * command rejected with "Connection is closed." is retried after `retryDelayOnFailover`
 * (100 ms by default), up to `maxRedirections` (16) times, on whichever node then serves the
 * slot. In the real failovers above those tries ran out (about 0.8 s) before the replica was
 * promoted (about 2.5 s); a faster failover, or a master back within that time, gets the
 * write twice. Shown here with the node kept up and only the connection cut.
 */
describe.skipIf(!canStart)('cluster: a write whose reply is lost', () => {
  let cluster: RedisCluster | undefined;
  let cutter: Awaited<ReturnType<typeof replyCutter>> | undefined;
  let other = 0;
  let victim = 0;
  const namespace = 'lost';
  const closers: (() => unknown)[] = [];

  beforeAll(async () => {
    cluster = await startRedisCluster(3);
    const admin = new Redis(cluster.nodes[0]!.url);
    admin.on('error', () => {});
    try {
      const nodes = clusterNodes(String(await admin.call('CLUSTER', 'NODES')));
      const slot = Number(await admin.call('CLUSTER', 'KEYSLOT', namespace));
      victim = nodes.find((n) => n.slots.some(([from, to]) => slot >= from && slot <= (to ?? from)))!.port;
      other = nodes.find((n) => n.port !== victim)!.port;
    } finally {
      admin.disconnect();
    }
    cutter = await replyCutter({ host: '127.0.0.1', port: victim });
  }, 30_000);

  afterAll(async () => {
    for (const close of closers.reverse()) {
      try {
        await close();
      } catch {}
    }
    await cutter?.close();
    await cluster?.stop();
  }, 20_000);

  /** A config center on a Cluster client whose connections to the namespace's master go through the cutter. */
  function center(clusterOptions: ClusterOptions): ConfigCenter {
    const client = new Cluster([{ host: '127.0.0.1', port: other }], {
      natMap: { [`127.0.0.1:${victim}`]: { host: '127.0.0.1', port: cutter!.port } },
      redisOptions: { maxRetriesPerRequest: 1, autoResendUnfulfilledCommands: false },
      ...clusterOptions,
    });
    client.on('error', () => {});
    const store = redisStore(client, { prefix: 'lost:', commandTimeoutMs: 2_000 });
    const config = new ConfigCenter({ store, namespace, pollIntervalMs: 60_000 });
    closers.push(
      () => client.disconnect(),
      () => store.close(),
      () => config.close(),
    );
    return config;
  }

  async function writtenOnce(config: ConfigCenter, key: string): Promise<void> {
    await config.set(key, 0);
    cutter!.arm('written');
    const outcome = await config.set(key, 1, { expectedVersion: 1 }).catch((err: unknown) => err);
    // Ran exactly once, whatever the caller was told.
    expect((await config.history(key)).map((h) => [h.version, h.value])).toEqual([
      [2, 1],
      [1, 0],
    ]);
    // Not a conflict with its own result: unknown (ERR_STORE_UNAVAILABLE), as the README says.
    expect(outcome).toMatchObject({ code: 'ERR_STORE_UNAVAILABLE' });
  }

  // KNOWN ISSUE (not fixed here: the fix is an option of the caller's client, i.e. the README's
  // advice for Cluster clients; the store does not change a client it was given): with
  // ioredis' default retryDelayOnFailover the Cluster client sends the write again, and the
  // caller gets ERR_VERSION_CONFLICT for a write that was applied.
  it.fails('a default Cluster client sends it again: the CAS reports a conflict with its own write', async () => {
    await writtenOnce(center({}), 'default');
  }, 15_000);

  it('a Cluster client with retryDelayOnFailover: 0 fails it with ERR_STORE_UNAVAILABLE, applied once', async () => {
    await writtenOnce(center({ retryDelayOnFailover: 0 }), 'no-resend');
  }, 15_000);
});
