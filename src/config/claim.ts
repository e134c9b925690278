// Config of claim by code: a gateway without owners hands ownership to the
// first person who sends it the one-time code shown at the device.

import type { Checker } from './validate.js';

export interface ClaimConfig {
  /** A gateway without owners opens a one-time claim code; `owners` may then be left out. */
  enabled: boolean;
  /** How long a code stays valid after it was made (a code written by `image` counts from the first start). */
  codeTtlMs: number;
}

export const DEFAULT_CLAIM: Readonly<ClaimConfig> = { enabled: false, codeTtlMs: 24 * 3_600_000 };
export const CLAIM_KEYS = ['enabled', 'code_ttl'];

export function checkClaim(c: Checker, raw: unknown): ClaimConfig {
  const o = c.object('claim', raw, CLAIM_KEYS, false) ?? {};
  return {
    enabled: c.boolean('claim.enabled', o.enabled) ?? DEFAULT_CLAIM.enabled,
    codeTtlMs: c.duration('claim.code_ttl', o.code_ttl, { minMs: 60_000 }) ?? DEFAULT_CLAIM.codeTtlMs,
  };
}

/** What `owners` says when it is missing or empty, by whether claim is on. */
export const OWNERS_HINT = 'or set claim.enabled: true to let the first person with the code shown at the device become the owner';
