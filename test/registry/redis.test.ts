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
import { run } from '../store/registryContract.js';

const available = await requireRedis('registry contract on Redis');
const prefix = testPrefix('registry-redis');

describe.skipIf(!available)('registry on redis', () => {
  afterAll(() => deletePrefix(redisUrl(), prefix));
  run('redis', async () => redisStore(redisUrl(), { prefix }));
});

describe.skipIf(!haveRedisServerBinary())('registry on a redis cluster', () => {
  let cluster: Promise<RedisCluster> | undefined;
  afterAll(async () => {
    if (cluster !== undefined) await (await cluster).stop();
  });
  run('redis cluster (3 masters)', async () => {
    cluster ??= startRedisCluster(3);
    return clusterStore(cluster, 'registry-cluster:');
  });
});
