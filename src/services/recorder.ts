// Readings into the history: every device's value at most once per
// history.interval (a drifting sensor read every 5 s would otherwise write
// 17,000 rows a day per device), and every change of a switch or a text at
// once, since those are events, not samples. The store batches the writes.
//
// The interval is measured on the monotonic clock, so NTP setting the time
// neither stops the history nor writes a burst. While the wall clock is
// clearly wrong (a Pi that booted in 1970 and has no network yet), readings
// wait here instead of going into the history stamped 1970; once the clock is
// set they are written with the times they really had (their stamp moved by
// the jump). At most HELD_MAX wait; past that the oldest go, and the log says so.

import type { Clock } from '../core/clock.js';
import type { Devices, Value } from '../core/devices.js';
import type { Logger } from '../runtime/log.js';

export interface HistoryWriter {
  record(device: string, t: number, value: Value): void;
}

/** What the recorder asks of the clock watch (services/clock-watch.ts). */
export interface TimeTrust {
  trusted(): boolean;
  /** Wall minus monotonic time now. */
  offset(): number;
}

export const HELD_MAX = 5000;

interface Held {
  device: string;
  t: number;
  value: Value;
  /** The clock's offset when it was taken: the stamp moves by however much the clock is set afterwards. */
  offset: number;
}

export function recorder(deps: { devices: Devices; history: HistoryWriter; clock: Clock; intervalMs: number; log: Logger; trust?: TimeTrust }) {
  const last = new Map<string, { mono: number; value: Value }>();
  const held: Held[] = [];
  const stats = { held: 0, heldDropped: 0, restamped: 0 };
  let unsubscribe: (() => void) | undefined;
  let failures = 0;
  let saidHolding = false;

  const write = (device: string, t: number, value: Value): void => {
    try {
      deps.history.record(device, t, value);
    } catch (err) {
      // History is a convenience: a full card must not stop readings or alarms. Say so, once in a while.
      if (failures++ % 100 === 0) deps.log.error('could not record history', { error: err, failures });
    }
  };

  /** The clock is right now: what waited goes into the history with the time it really had. */
  const release = (): void => {
    if (held.length === 0 || (deps.trust && !deps.trust.trusted())) return;
    const offset = deps.trust?.offset() ?? 0;
    const rows = held.splice(0);
    for (const h of rows) write(h.device, h.t + (offset - h.offset), h.value);
    stats.restamped += rows.length;
    stats.held = 0;
    deps.log.info('readings held while the clock was wrong are in the history now, with their real times', { count: rows.length, dropped: stats.heldDropped });
    saidHolding = false;
  };

  return {
    name: 'history recorder',
    stats,
    release,
    start(): void {
      unsubscribe = deps.devices.onChange((c) => {
        if ((c.cause !== 'reading' && c.cause !== 'command') || c.value === undefined) return;
        const state = deps.devices.get(c.id);
        const t = state?.at ?? deps.clock.now();
        const mono = state?.seen ?? deps.clock.mono();
        const prev = last.get(c.id);
        const isSample = typeof c.value === 'number';
        const due = !prev || (isSample ? mono - prev.mono >= deps.intervalMs : prev.value !== c.value);
        if (!due) return;
        last.set(c.id, { mono, value: c.value });
        if (deps.trust && !deps.trust.trusted()) {
          held.push({ device: c.id, t, value: c.value, offset: deps.trust.offset() });
          if (held.length > HELD_MAX) stats.heldDropped += held.splice(0, held.length - HELD_MAX).length;
          stats.held = held.length;
          if (!saidHolding) {
            saidHolding = true;
            deps.log.warn('the clock looks wrong: readings wait in memory instead of going into the history stamped with it', { max: HELD_MAX });
          }
          return;
        }
        if (held.length > 0) release();
        write(c.id, t, c.value);
      });
    },
    stop(): void {
      unsubscribe?.();
    },
  };
}
