/**
 * Reconnect delay for the n-th attempt (n ≥ 1): exponential, capped, with
 * "equal jitter" (half fixed, half random) so a fleet that lost its server at
 * the same moment does not come back at the same moment.
 */
export function backoff(attempt: number, initialMs: number, maxMs: number, random: () => number = Math.random): number {
  const exp = Math.min(maxMs, initialMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(exp / 2 + random() * (exp / 2));
}
