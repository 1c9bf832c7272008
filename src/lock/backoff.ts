/**
 * Exponential backoff with full jitter (M. Brooker, "Exponential Backoff And Jitter", AWS
 * Architecture Blog, 2015): attempt n waits a uniformly random time in
 * [0, min(cap, base x 2^n)]. Spreading waiters over the whole interval keeps contending
 * clients from retrying in lockstep.
 */

/**
 * The delay before retry number `attempt` (0 for the first retry), in ms.
 * @param random a uniform number in [0, 1); tests may pass their own.
 */
export function fullJitterDelay(
  attempt: number,
  baseMs: number,
  capMs: number,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * (ceiling + 1));
}
