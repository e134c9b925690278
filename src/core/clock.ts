// The one clock every component is handed: the time of day for stamps people
// read and history stored, and timers for everything that waits. Components
// never call Date.now() or the global timers themselves, so a test drives them
// with a fake (or vitest's fake timers behind systemClock) and a clock that
// jumps (a Pi without a real-time clock) is handled in one place.

export type TimerHandle = ReturnType<typeof setTimeout>;

export interface Clock {
  /** Wall-clock time, ms since the epoch. */
  now(): number;
  /** Run fn once after ms; the timer never keeps the process alive on its own when unref is true. */
  setTimeout(fn: () => void, ms: number, opts?: { unref?: boolean }): TimerHandle;
  clearTimeout(timer: TimerHandle | undefined): void;
  setInterval(fn: () => void, ms: number, opts?: { unref?: boolean }): TimerHandle;
  clearInterval(timer: TimerHandle | undefined): void;
}

/** The process's clock. Looks the globals up on each call, so vitest's fake timers apply to it too. */
export const systemClock: Clock = {
  now: () => Date.now(),
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

/** The system's timers with a time of day of the caller's choosing (tests, trace replays). */
export function clockAt(now: () => number): Clock {
  return { ...systemClock, now };
}
