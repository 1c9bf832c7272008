// The published package works for a user: `npm pack`, install the tarball into a fresh
// folder, import { HashRing } from 'ringway' in plain Node ESM and in strict TypeScript.
// Needs `npm run build` first (npm test does it).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'ringway-pack-'));
const npm = (args: string[], cwd: string) => execFileSync('npm', args, { cwd, encoding: 'utf8', stdio: 'pipe' });

afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('npm pack', () => {
  it('installs into another folder and imports with types', { timeout: 180_000 }, () => {
    expect(existsSync(join(root, 'dist/src/index.js')), 'run npm run build first').toBe(true);
    const packed = JSON.parse(npm(['pack', '--json', '--ignore-scripts', '--pack-destination', work], root)) as {
      filename: string;
      files: { path: string }[];
    }[];
    const info = packed[0] as { filename: string; files: { path: string }[] };
    const paths = info.files.map((f) => f.path);
    expect(paths).toContain('dist/src/index.js');
    expect(paths).toContain('dist/src/index.d.ts');
    expect(paths).toContain('dist/server/index.js');
    expect(paths).toContain('dist/server/cli.js');
    expect(paths.some((p) => p.startsWith('test/') || p.startsWith('assembly/'))).toBe(false);

    const app = join(work, 'app');
    execFileSync('mkdir', ['-p', app]);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
    npm(['install', '--no-audit', '--no-fund', '--prefer-offline', '--ignore-scripts', join(work, info.filename)], app);

    writeFileSync(
      join(app, 'main.mjs'),
      `import { HashRing, RingwayError } from 'ringway';
import { createGateway } from 'ringway/gateway';
if (typeof createGateway !== 'function') throw new Error('ringway/gateway has no createGateway');
const ring = new HashRing({ nodes: ['a', 'b', 'c'] });
let code;
try { new HashRing({ vnodes: 0 }); } catch (err) { code = err instanceof RingwayError && err.code; }
console.log(JSON.stringify({ node: ring.get('user:42'), bytes: ring.get(new TextEncoder().encode('user:42')), code }));
`,
    );
    const out = JSON.parse(execFileSync(process.execPath, ['main.mjs'], { cwd: app, encoding: 'utf8' })) as Record<
      string,
      string
    >;
    expect(['a', 'b', 'c']).toContain(out.node);
    expect(out.bytes).toBe(out.node);
    expect(out.code).toBe('ERR_INVALID_OPTION');

    writeFileSync(
      join(app, 'main.ts'),
      `import { HashRing, type RingOptions } from 'ringway';
const options: RingOptions = { vnodes: 100, nodes: ['a', { id: 'b', weight: 2 }] };
const ring = new HashRing(options);
const node: string | undefined = ring.get('user:42');
const many: (string | undefined)[] = ring.getMany(['x', new Uint8Array([1, 2])]);
// @ts-expect-error: a number is not a key
ring.get(42);
export { node, many };
`,
    );
    const tsc = join(root, 'node_modules/typescript/bin/tsc');
    execFileSync(
      process.execPath,
      [
        tsc,
        '--noEmit',
        '--strict',
        '--module',
        'nodenext',
        '--moduleResolution',
        'nodenext',
        '--target',
        'es2022',
        '--typeRoots',
        join(root, 'node_modules/@types'),
        '--types',
        'node',
        'main.ts',
      ],
      { cwd: app, encoding: 'utf8' },
    );
  });
});
