// ioredis is loaded only when a Redis store is made from a URL. Loading it has a cost for the
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

const root = fileURLToPath(new URL('../..', import.meta.url));

/** Runs an ES module body in a fresh node and returns what it prints. */
function run(body: string): string {
  return execFileSync(process.execPath, ['--input-type=module', '-e', body], { cwd: root, encoding: 'utf8' }).trim();
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
