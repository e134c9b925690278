// Readings into the history: every device's value at most once per
// history.interval (a drifting sensor read every 5 s would otherwise write
// 17,000 rows a day per device), and every change of a switch or a text at
// once, since those are events, not samples. The store batches the writes.

import type { Clock } from '../core/clock.js';
import type { Devices, Value } from '../core/devices.js';
import type { Logger } from '../runtime/log.js';

export interface HistoryWriter {
  record(device: string, t: number, value: Value): void;
}

export function recorder(deps: { devices: Devices; history: HistoryWriter; clock: Clock; intervalMs: number; log: Logger }) {
  const last = new Map<string, { t: number; value: Value }>();
  let unsubscribe: (() => void) | undefined;
  let failures = 0;
  return {
    name: 'history recorder',
    start(): void {
      unsubscribe = deps.devices.onChange((c) => {
        if ((c.cause !== 'reading' && c.cause !== 'command') || c.value === undefined) return;
        const t = deps.devices.get(c.id)?.at ?? deps.clock.now();
        const prev = last.get(c.id);
        const isSample = typeof c.value === 'number';
        const due = !prev || (isSample ? t - prev.t >= deps.intervalMs : prev.value !== c.value);
        if (!due) return;
        last.set(c.id, { t, value: c.value });
        try {
          deps.history.record(c.id, t, c.value);
        } catch (err) {
          // History is a convenience: a full card must not stop readings or alarms. Say so, once in a while.
          if (failures++ % 100 === 0) deps.log.error('could not record history', { error: err, failures });
        }
      });
    },
    stop(): void {
      unsubscribe?.();
    },
  };
}
