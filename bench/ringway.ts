/**
 * Which ringway a bench measures: the build in dist/ (what users run) when it is newer than
 * every source file under src/, else the TypeScript sources under tsx. The sources under tsx
 * pay for esbuild's `keepNames` helper (`__name(fn, "name")`, a defineProperty per closure
 * created), which measured 3-5 % of an uncontended lock pair, a cost no user pays.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** Newest mtime of a .ts file under `dir`. */
function newestSource(dir: string): number {
  return readdirSync(dir, { withFileTypes: true }).reduce((m, e) => {
    const p = join(dir, e.name);
    return Math.max(m, e.isDirectory() ? newestSource(p) : e.name.endsWith('.ts') ? statSync(p).mtimeMs : 0);
  }, 0);
}

/**
 * Whether `built` (a path under the checkout, e.g. `dist/server/cli.js`) exists and is newer
 * than every .ts file under `sourceDirs` (checkout-relative).
 */
export function isFresh(built: string, sourceDirs: readonly string[]): boolean {
  const file = join(ROOT, built);
  if (!existsSync(file)) return false;
  const builtAt = statSync(file).mtimeMs;
  return sourceDirs.every((dir) => builtAt >= newestSource(join(ROOT, dir)));
}

export type Ringway = typeof import('../src/index.js');

/** ringway's public API, and where it came from ('dist (built)' or 'sources under tsx'). */
export async function loadRingway(): Promise<{ ringway: Ringway; from: string }> {
  if (isFresh('dist/src/index.js', ['src'])) {
    const ringway = (await import(join(ROOT, 'dist', 'src', 'index.js'))) as Ringway;
    return { ringway, from: 'dist (built)' };
  }
  console.warn('ringway: dist/ is missing or older than src/: measuring the sources under tsx (run npm run build)');
  return { ringway: await import('../src/index.js'), from: 'sources under tsx' };
}
