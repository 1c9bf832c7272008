/**
 * The no-lost-update workload, shared by the in-process contract and the child processes of
 * test/config/processes.test.ts: `writers` concurrent writers each add 1 to a counter
 * `increments` times with read + compare-and-set, retrying on VersionConflictError.
 */
import type { ConfigCenter } from '../../src/config/ConfigCenter.js';
import { VersionConflictError } from '../../src/errors.js';

/** What the writers did: every version a successful write produced, and how many CAS attempts lost. */
export interface CasResult {
  versions: number[];
  conflicts: number;
}

/** Runs the workload over `centers` (writer w uses centers[w % centers.length]). */
export async function casIncrements(
  centers: readonly ConfigCenter[],
  key: string,
  writers: number,
  increments: number,
): Promise<CasResult> {
  const versions: number[] = [];
  let conflicts = 0;
  await Promise.all(
    Array.from({ length: writers }, async (_, w) => {
      const config = centers[w % centers.length] as ConfigCenter;
      for (let i = 0; i < increments; i++) {
        for (;;) {
          const current = await config.get(key);
          const n = typeof current?.value === 'number' ? current.value : 0;
          try {
            const { version } = await config.set(key, n + 1, { expectedVersion: current?.version ?? 0 });
            versions.push(version);
            break;
          } catch (err) {
            if (!(err instanceof VersionConflictError)) throw err;
            conflicts++;
          }
        }
      }
    }),
  );
  return { versions, conflicts };
}
