// ioredis is loaded only when a Redis store is made from a URL. Loading it plainly has a cost for the
// whole process: its resp/verbatim-string.js declares `class VerbatimString extends String`,
// and once any object has String.prototype as its prototype, V8 (Node 20) stops inlining
// String.prototype methods on string primitives: every `s.charCodeAt(i)`, `s.indexOf(x)` or
// `s.startsWith(x)` in the process gets 10-20 ns slower (bench/stringPrototype.bench.ts).
// The embedded store, the balancer and the gateway on it must not pay that.
// Needs `npm run build` first (npm test does it).
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { redisUrl, requireRedis } from '../helpers/redis.js';

const root = fileURLToPath(new URL('../..', import.meta.url));

/** Runs an ES module body in a fresh node and returns what it prints. */
function run(body: string, env: NodeJS.ProcessEnv = process.env): string {
  return execFileSync(process.execPath, ['--input-type=module', '-e', body], {
    cwd: root,
    encoding: 'utf8',
    env,
  }).trim();
}

const LOADED = `Object.keys((await import('node:module')).createRequire(import.meta.url).cache).some((k) => k.includes('/node_modules/ioredis/'))`;

describe('ioredis is loaded lazily', () => {
  it('importing the package entry, the gateway and the CLI module does not load it', () => {
    expect(existsSync(`${root}/dist/src/index.js`), 'run npm run build first').toBe(true);
    const out = run(`
      await import('./dist/src/index.js');
      await import('./dist/server/index.js');
      const { memoryStore } = await import('./dist/src/index.js');
      memoryStore().close();
      console.log(${LOADED});
    `);
    expect(out).toBe('false');
  });

  it('redisStore(url) loads it, and a client passed in needs no load by ringway', () => {
    const out = run(`
      const { redisStore } = await import('./dist/src/index.js');
      const before = ${LOADED};
      const store = redisStore('redis://127.0.0.1:1', { redisOptions: { lazyConnect: true } });
      const after = ${LOADED};
      await store.close();
      console.log(JSON.stringify([before, after]));
    `);
    expect(JSON.parse(out)).toEqual([false, true]);
  });
});

// ioredis 6's VerbatimString (never made by ioredis itself) is what slows every string
// method; ringway loads ioredis with a stand-in for it that does not extend String
// (src/store/redis/loadIoredis.ts). Each case runs in a fresh process: the effect is for life.
const redisAvailable = await requireRedis('ioredis stand-in end to end');

/** In the child: whether ioredis' VerbatimString, as its decoder sees it, extends String. */
const EXTENDS_STRING = `(async () => {
  const require = (await import('node:module')).createRequire(import.meta.url);
  const file = require.resolve('ioredis').replace(/index\\.js$/, 'resp/verbatim-string.js');
  const { VerbatimString } = require(file);
  return String.prototype.isPrototypeOf(VerbatimString.prototype);
})()`;

/**
 * In a fresh process: runs `before`, makes a Redis store from a URL (no connection), and
 * returns what the loader did and whether ioredis' VerbatimString then extends String.
 */
function afterRedisStore(before = '', env: NodeJS.ProcessEnv = process.env): [string, boolean] {
  const out = run(
    `
      ${before}
      const { redisStore } = await import('./dist/src/index.js');
      const store = redisStore('redis://127.0.0.1:1', { redisOptions: { lazyConnect: true } });
      await store.close();
      const loader = await import('./dist/src/store/redis/loadIoredis.js');
      console.log(JSON.stringify([loader.standIn, await ${EXTENDS_STRING}]));
    `,
    env,
  );
  return JSON.parse(out) as [string, boolean];
}

describe('ioredis is loaded without slowing every string method', () => {
  it('redisStore(url) loads it with a VerbatimString that does not extend String, and says so', () => {
    expect(afterRedisStore()).toEqual(['installed', false]);
  });

  it('the stand-in has the fields and string value of the class it replaces', () => {
    const out = run(`
      const { VerbatimString } = await import('./dist/src/store/redis/loadIoredis.js');
      const v = new VerbatimString('txt', 'some text');
      console.log(JSON.stringify([v.format, String(v), \`\${v}\`, v.valueOf(), v instanceof String]));
    `);
    expect(JSON.parse(out)).toEqual(['txt', 'some text', 'some text', 'some text', false]);
  });

  it('an app that loaded ioredis first keeps its module untouched', () => {
    expect(afterRedisStore(`await import('ioredis');`)).toEqual(['already-loaded', true]);
  });

  it('RINGWAY_IOREDIS_PRISTINE=1 loads it untouched', () => {
    expect(afterRedisStore('', { ...process.env, RINGWAY_IOREDIS_PRISTINE: '1' })).toEqual(['disabled', true]);
  });

  it.skipIf(!redisAvailable)(
    'with the stand-in, the store works against a real Redis (scripts, INFO for restarts), and so does an app client made after it',
    () => {
      const out = run(`
        const { redisStore, LockManager, ConfigCenter } = await import('./dist/src/index.js');
        const prefix = 'test:standin:' + process.pid + ':';
        const store = redisStore(${JSON.stringify(redisUrl())}, { prefix });
        const locks = new LockManager({ store });
        const lock = await locks.acquire('r', { ttlMs: 5000 });
        const token = String(lock.token);
        await lock.release();
        const config = new ConfigCenter({ store, namespace: 'app' });
        await config.set('k', { a: 1 });
        const value = (await config.get('k'))?.value;
        // INFO server comes back as a RESP3 verbatim string: read by the restart watcher.
        const { Redis } = await import('ioredis');
        const app = new Redis(${JSON.stringify(redisUrl())});
        const info = await app.info('server');
        const pong = await app.ping();
        await config.close();
        await store.close();
        await app.del(...(await app.keys(prefix + '*')));
        app.disconnect();
        const loader = await import('./dist/src/store/redis/loadIoredis.js');
        console.log(JSON.stringify([loader.standIn, /^[0-9]+$/.test(token), value, typeof info, /run_id:/.test(info), pong, await ${EXTENDS_STRING}]));
      `);
      expect(JSON.parse(out)).toEqual(['installed', true, { a: 1 }, 'string', true, 'PONG', false]);
    },
  );
});
