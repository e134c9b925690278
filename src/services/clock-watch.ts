// The wall clock as a Raspberry Pi has it: no real-time clock, so it boots
// with the time it last saved (fake-hwclock) or with 1970, and NTP sets it
// minutes later, forward by hours or years (and a bad NTP source can set it
// back). Durations never depend on it (Clock.mono); what this watches is what
// the time of day is worth for stamps:
//
// - trusted: not before CLOCK_FLOOR (a day before this agent was built). A
//   clock before it is clearly wrong: readings wait in memory instead of going
//   into the history with a 1970 stamp, and alarms carry no XEP-0203 stamp
//   until the time they were raised is known.
// - a jump: the wall clock minus the monotonic one changed. Logged once with
//   both times; listeners re-stamp what they hold (by the monotonic time that
//   passed) when the clock becomes trusted.

import type { Clock, TimerHandle } from '../core/clock.js';
import type { Logger } from '../runtime/log.js';

/** A change of (wall − monotonic) larger than this is the clock being set, not drift (NTP slews at most 0.5 ms/s). */
export const JUMP_MS = 1000;
const CHECK_EVERY_MS = 5000;

export interface ClockWatch {
  readonly name: string;
  start(): void;
  stop(): void;
  /** The wall clock can be believed now (looks for a jump first). */
  trusted(): boolean;
  /** Wall minus monotonic time as of now: a stamp taken at offset o is worth stamp + (offset() − o) today. */
  offset(): number;
  /** Look for a jump now (cheap; also done every 5 s). */
  check(): void;
  /** The clock became trusted (a jump past the floor). */
  onTrusted(fn: () => void): void;
  /** What is wrong with the clock, for "Agent status" and chat status; undefined when nothing is. */
  notice(): string | undefined;
  readonly stats: { jumps: number; lastJumpMs: number };
}

export function clockWatch(deps: { clock: Clock; floor: number; log: Logger }): ClockWatch {
  const { clock, floor, log } = deps;
  const listeners: (() => void)[] = [];
  const stats = { jumps: 0, lastJumpMs: 0 };
  let last = clock.now() - clock.mono();
  let wasTrusted = clock.now() >= floor;
  let timer: TimerHandle | undefined;

  const check = (): void => {
    const now = clock.now();
    const offset = now - clock.mono();
    const delta = offset - last;
    last = offset;
    const isTrusted = now >= floor;
    if (Math.abs(delta) > JUMP_MS) {
      stats.jumps++;
      stats.lastJumpMs = delta;
      const fields = { byMs: Math.round(delta), from: iso(now - delta), to: iso(now) };
      if (isTrusted) log.info(`the clock was set ${delta > 0 ? 'forward' : 'back'} by ${span(delta)} (NTP?); timers and ages are unaffected`, fields);
      else log.warn(`the clock was set ${delta > 0 ? 'forward' : 'back'} by ${span(delta)} and still says ${iso(now)}, before this agent was built: it looks wrong`, fields);
    }
    if (isTrusted && !wasTrusted) {
      wasTrusted = true;
      log.info('the clock looks right now; readings and alarms held meanwhile get the times they really happened', { now: iso(now) });
      for (const fn of listeners) {
        try {
          fn();
        } catch (err) {
          log.error('a clock listener failed', { error: err });
        }
      }
    } else if (!isTrusted && wasTrusted) {
      wasTrusted = false;
    }
  };

  return {
    name: 'clock watch',
    stats,
    start() {
      if (clock.now() < floor) {
        log.warn(
          `the clock says ${iso(clock.now())}, more than a day before this agent was built (${iso(floor + 86_400_000).slice(0, 10)}): it looks wrong (no real-time clock, and NTP has not set it yet). Readings wait in memory for the history, alarms are queued without a time stamp; both get their real times once the clock is set`,
          { now: iso(clock.now()), floor: iso(floor) },
        );
      }
      timer = clock.setInterval(check, CHECK_EVERY_MS, { unref: true });
    },
    stop() {
      clock.clearInterval(timer);
      timer = undefined;
    },
    trusted() {
      check();
      return wasTrusted;
    },
    offset() {
      check();
      return last;
    },
    check,
    onTrusted(fn) {
      listeners.push(fn);
    },
    notice() {
      const now = clock.now();
      if (now >= floor) return undefined;
      return `clock: says ${iso(now)}, before this agent was built; it looks wrong (no real-time clock, NTP not synced yet: check the network and timedatectl). History is held in memory meanwhile`;
    },
  };
}

function iso(ms: number): string {
  const d = new Date(ms);
  return Number.isFinite(d.getTime()) ? d.toISOString() : String(ms);
}

/** 3 s, 5 min, 2 h 10 min, 4 days, 56 years. */
export function span(ms: number): string {
  const s = Math.abs(ms) / 1000;
  if (s < 90) return `${Math.round(s)} s`;
  if (s < 5400) return `${Math.round(s / 60)} min`;
  if (s < 172_800) return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
  if (s < 31_536_000) return `${Math.round(s / 86_400)} days`;
  const years = Math.round(s / 31_557_600);
  return `${years} year${years === 1 ? '' : 's'}`;
}
