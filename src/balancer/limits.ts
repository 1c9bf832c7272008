/**
 * Limits shared by the balancer's option resolvers.
 */

/** Longest duration any balancer option accepts, in ms: about 24.8 days, the most setTimeout takes. */
export const MAX_DURATION_MS = 2_147_483_647;
