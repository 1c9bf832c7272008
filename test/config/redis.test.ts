import { afterAll, describe } from 'vitest';
import { redisStore } from '../../src/store/redis/RedisStore.js';
import {
  clusterStore,
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
    return clusterStore(cluster, 'config-cluster:');
  });
});
