// The one clock every component is handed: the time of day for stamps people
// read and history stored, a monotonic reading for every duration, and timers
// for everything that waits. Components never call Date.now() or the global
// timers themselves, so a test drives them with a fake (or vitest's fake
// timers behind systemClock) and a clock that jumps (a Pi without a real-time
// clock, set by NTP minutes after boot) is handled in one place: intervals,
// ages and deadlines are measured with mono(), which NTP never moves; now()
// only says what time of day to write on something.

export type TimerHandle = ReturnType<typeof setTimeout>;

export interface Clock {
  /** Wall-clock time, ms since the epoch: for stamps (history, XEP-0203, readouts), never for durations. */
  now(): number;
  /** Monotonic ms from an arbitrary origin: for every interval, age and deadline (a jump of the wall clock leaves it alone). */
  mono(): number;
  /** Run fn once after ms; the timer never keeps the process alive on its own when unref is true. */
  setTimeout(fn: () => void, ms: number, opts?: { unref?: boolean }): TimerHandle;
  clearTimeout(timer: TimerHandle | undefined): void;
  setInterval(fn: () => void, ms: number, opts?: { unref?: boolean }): TimerHandle;
  clearInterval(timer: TimerHandle | undefined): void;
}

/** The process's clock. Looks the globals up on each call, so vitest's fake timers apply to it too. */
export const systemClock: Clock = {
  now: () => Date.now(),
  // CLOCK_MONOTONIC (libuv's hrtime): what NTP steps leave alone. vitest's fake timers fake it too.
  mono: () => performance.now(),
  setTimeout(fn, ms, opts) {
    const t = setTimeout(fn, ms);
    if (opts?.unref) t.unref();
    return t;
  },
  clearTimeout: (t) => clearTimeout(t),
  setInterval(fn, ms, opts) {
    const t = setInterval(fn, ms);
    if (opts?.unref) t.unref();
    return t;
  },
  clearInterval: (t) => clearInterval(t),
};

/**
 * The system's timers with a time of day of the caller's choosing (tests, trace replays).
 * Durations follow the same function unless a monotonic one is given (a test of a clock that jumps).
 */
export function clockAt(now: () => number, mono: () => number = now): Clock {
  return { ...systemClock, now, mono };
}
