// How far back the hourly prune deletes history, on a gateway whose wall
// clock NTP may set by years at any moment (a Pi has no real-time clock).
//
// The rule: the cutoff is `retention` before the wall clock, but it never
// moves forward faster than twice the time that really passed (monotonic)
// since the previous prune, and nothing is pruned while the clock is clearly
// wrong (before the agent's build). So:
// - a jump forward (a bad NTP source, +1 year) deletes at most two hours of
//   history per hour until the clock is set back, not all of it at once;
// - a jump back deletes nothing (the cutoff follows the clock back), and the
//   readings stamped meanwhile are kept;
// - a legitimate correction (the Pi booted with an old fake-hwclock time) is
//   caught up at twice real speed: history is kept that much longer, never less.
// Opening the store trusts the clock it finds (if it is after the build): the
// time the agent was off is not known, and the old history is really that old.

export interface PruneMark {
  /** The cutoff the last prune used (wall ms). */
  cutoff: number;
  /** When it was used, on the monotonic clock. */
  mono: number;
}

/** The most the cutoff moves forward per unit of time that really passed. */
export const CATCH_UP_RATE = 2;

/** The cutoff for a prune now, or undefined when none may run (the clock is not trusted). */
export function pruneCutoff(a: { now: number; mono: number; retentionMs: number; trusted: boolean; last?: PruneMark }): number | undefined {
  if (!a.trusted) return undefined;
  const target = a.now - a.retentionMs;
  if (!a.last) return target;
  return Math.min(target, a.last.cutoff + CATCH_UP_RATE * Math.max(0, a.mono - a.last.mono));
}
