/**
 * The config contract on the shared Redis (skips loudly without one unless REQUIRE_REDIS=1)
 * and on a self-started Redis Cluster of three masters: every script must run on one slot.
 */
import { Cluster } from 'ioredis';
import { afterAll, describe } from 'vitest';
import { redisStore } from '../../src/store/redis/RedisStore.js';
import {
  deletePrefix,
  haveRedisServerBinary,
  type RedisCluster,
  redisUrl,
  requireRedis,
  startRedisCluster,
  testPrefix,
} from '../helpers/redis.js';
import { run } from '../store/configContract.js';

const available = await requireRedis('config contract on Redis');
const prefix = testPrefix('config-redis');

describe.skipIf(!available)('config on redis', () => {
  afterAll(() => deletePrefix(redisUrl(), prefix));
  run('redis', async () => redisStore(redisUrl(), { prefix }));
});

describe.skipIf(!haveRedisServerBinary())('config on a redis cluster', () => {
  let cluster: Promise<RedisCluster> | undefined;
  afterAll(async () => {
    if (cluster !== undefined) await (await cluster).stop();
  });
  run('redis cluster (3 masters)', async () => {
    cluster ??= startRedisCluster(3);
    const { startupNodes } = await cluster;
    const client = new Cluster([...startupNodes], { redisOptions: { maxRetriesPerRequest: 1 } });
    client.on('error', () => {});
    const store = redisStore(client, { prefix: 'config-cluster:' });
    const close = store.close.bind(store);
    return Object.assign(store, {
      close: async () => {
        await close();
        client.disconnect();
      },
    });
  });
});
