/** Bounds of a restore policy, checked by the engine's parser, the API's validation and the CRDs. */

/** Longest glob a policy may hold (the CRDs say the same). */
export const MAX_GLOB_LENGTH = 1024;

/**
 * Most rules a policy may have (the CRDs say the same): with the glob bound,
 * what one fd costs to decide is bounded too.
 */
export const MAX_POLICY_RULES = 256;
