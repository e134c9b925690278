// When this agent was built, as the floor below which the wall clock is
// clearly wrong. A Raspberry Pi has no real-time clock: it boots with the time
// it last saved (fake-hwclock) or with 1970, until NTP sets it. Any time
// before this agent existed cannot be today's.

import { statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

// Replaced by scripts/bundle.mjs (esbuild define) with the build's time; absent in an unbundled run.
declare const __XIA_BUILD_TIME__: string | undefined;

const DAY_MS = 86_400_000;

/** Unbundled (tests, tools): the nearest package.json's modification time, else 2026-01-01. */
function packageTime(): number {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    try {
      return statSync(join(dir, 'package.json')).mtimeMs;
    } catch {
      const up = dirname(dir);
      if (up === dir) return Date.UTC(2026, 0, 1);
      dir = up;
    }
  }
}

/** When this agent was built (ms since the epoch). */
export const BUILD_TIME: number = (() => {
  const injected = typeof __XIA_BUILD_TIME__ === 'string' ? Date.parse(__XIA_BUILD_TIME__) : NaN;
  return Number.isFinite(injected) ? injected : packageTime();
})();

/** A wall clock earlier than this is clearly wrong: a day before the build (room for a build machine's own clock). */
export const CLOCK_FLOOR: number = BUILD_TIME - DAY_MS;
