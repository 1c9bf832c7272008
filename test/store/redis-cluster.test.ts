/**
 * The store contract on a Redis Cluster of three self-started masters (formed with
 * `redis-cli --cluster create`), and on a Sentinel-managed master: every script must run
 * without CROSSSLOT, and the change feed must work through both client kinds.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, describe } from 'vitest';
import { redisStore } from '../../src/store/redis/RedisStore.js';
import {
  clusterStore,
  freePort,
  haveRedisServerBinary,
  pingRedis,
  type RedisCluster,
  type RedisServer,
  startRedisCluster,
  startRedisServer,
  tempDir,
} from '../helpers/redis.js';
import { run } from './contract.js';

const canStart = haveRedisServerBinary();

describe.skipIf(!canStart)('redis cluster', () => {
  let cluster: Promise<RedisCluster> | undefined;
  afterAll(async () => {
    if (cluster !== undefined) await (await cluster).stop();
  });
  run('redis cluster (3 masters)', async () => {
    cluster ??= startRedisCluster(3);
    return clusterStore(cluster, 'cluster-test:');
  });
});

/** Starts a Sentinel watching `master`; returns its port and a stop function (by PID). */
async function startSentinel(master: RedisServer): Promise<{ port: number; stop: () => void }> {
  const port = await freePort();
  const dir = tempDir(`ringway-sentinel-${port}-`);
  const conf = join(dir, 'sentinel.conf');
  const pidfile = join(dir, 'sentinel.pid');
  writeFileSync(
    conf,
    [
      `port ${port}`,
      'bind 127.0.0.1',
      `dir ${dir}`,
      `pidfile ${pidfile}`,
      'daemonize yes',
      `logfile ${join(dir, 'sentinel.log')}`,
      `sentinel monitor ringway 127.0.0.1 ${master.port} 1`,
      '',
    ].join('\n'),
  );
  const started = spawnSync('redis-server', [conf, '--sentinel'], { encoding: 'utf8' });
  if (started.status !== 0) throw new Error(`sentinel failed to start: ${started.stderr}`);
  const deadline = Date.now() + 10_000;
  while (!(await pingRedis(`redis://127.0.0.1:${port}`, 300))) {
    if (Date.now() > deadline) throw new Error('sentinel did not answer');
  }
  const pid = Number(readFileSync(pidfile, 'utf8').trim());
  return {
    port,
    stop: () => {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {}
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

describe.skipIf(!canStart)('redis sentinel', () => {
  let setup: Promise<{ master: RedisServer; sentinel: { port: number; stop: () => void } }> | undefined;
  afterAll(async () => {
    if (setup === undefined) return;
    const { master, sentinel } = await setup;
    sentinel.stop();
    await master.stop();
  });
  run('redis via sentinel', async () => {
    setup ??= (async () => {
      const master = await startRedisServer();
      return { master, sentinel: await startSentinel(master) };
    })();
    const { sentinel } = await setup;
    const client = new Redis({ sentinels: [{ host: '127.0.0.1', port: sentinel.port }], name: 'ringway' });
    client.on('error', () => {});
    const store = redisStore(client, { prefix: 'sentinel-test:' });
    const close = store.close.bind(store);
    return Object.assign(store, {
      close: async () => {
        await close();
        client.disconnect();
      },
    });
  });
});
