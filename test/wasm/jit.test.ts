// A wrong-type key must be a TypeError, never a crashed process, even after V8 has optimised
// the lookup. Runs in a child process because the failure mode is SIGSEGV.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

describe('WASM calls under the optimising JIT', () => {
  it('throw TypeError for keys of the wrong type after warm-up, without crashing', { timeout: 120_000 }, () => {
    const script = fileURLToPath(new URL('./fixtures/polymorphicKeys.ts', import.meta.url));
    const run = spawnSync(process.execPath, ['--import', 'tsx', script], { encoding: 'utf8' });
    expect(run.signal, run.stderr).toBeNull();
    expect(run.status, run.stderr).toBe(0);
    const out = JSON.parse(run.stdout) as { typeErrors: number };
    expect(out.typeErrors).toBe(20 * 2000 * 8 * 2);
  });
});
