import { Redis } from 'ioredis';
import { afterAll, describe } from 'vitest';
import { redisStore } from '../../src/store/redis/RedisStore.js';
import {
  clusterStore,
  haveRedisServerBinary,
  type RedisCluster,
  type RedisSentinel,
  type RedisServer,
  startRedisCluster,
  startRedisServer,
  startSentinel,
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

describe.skipIf(!canStart)('redis sentinel', () => {
  let setup: Promise<{ master: RedisServer; sentinel: RedisSentinel }> | undefined;
  afterAll(async () => {
    if (setup === undefined) return;
    const { master, sentinel } = await setup;
    await sentinel.stop();
    await master.stop();
  });
  run('redis via sentinel', async () => {
    setup ??= (async () => {
      const master = await startRedisServer();
      return { master, sentinel: await startSentinel(master.port, { name: 'ringway' }) };
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
