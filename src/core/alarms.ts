// Threshold alarms with hysteresis: raised when a reading crosses `above` or
// `below`, cleared only once it is back by more than `hysteresis`, so a value
// wobbling at the threshold makes one alarm, not a stream of them. Pure.

import type { Value } from './devices.js';

export interface AlarmRule {
  device: string;
  above?: number;
  below?: number;
  hysteresis: number;
}

export interface AlarmEvent {
  kind: 'raised' | 'cleared';
  device: string;
  side: 'above' | 'below';
  threshold: number;
  value: number;
}

/** An alarm that ended because its device went away, not because a reading recovered. */
export interface EndedAlarm {
  device: string;
  side: 'above' | 'below';
  threshold: number;
}

export class Alarms {
  private readonly activeSides = new Map<string, Set<'above' | 'below'>>();

  constructor(private readonly rules: readonly AlarmRule[]) {}

  /** Feed a reading; returns the alarms it raised or cleared. */
  evaluate(device: string, value: Value): AlarmEvent[] {
    if (typeof value !== 'number') return [];
    const events: AlarmEvent[] = [];
    for (const r of this.rules) {
      if (r.device !== device) continue;
      const active = this.activeSides.get(device) ?? new Set();
      this.activeSides.set(device, active);
      if (r.above !== undefined) {
        if (!active.has('above') && value > r.above) {
          active.add('above');
          events.push({ kind: 'raised', device, side: 'above', threshold: r.above, value });
        } else if (active.has('above') && value < r.above - r.hysteresis) {
          active.delete('above');
          events.push({ kind: 'cleared', device, side: 'above', threshold: r.above, value });
        }
      }
      if (r.below !== undefined) {
        if (!active.has('below') && value < r.below) {
          active.add('below');
          events.push({ kind: 'raised', device, side: 'below', threshold: r.below, value });
        } else if (active.has('below') && value > r.below + r.hysteresis) {
          active.delete('below');
          events.push({ kind: 'cleared', device, side: 'below', threshold: r.below, value });
        }
      }
    }
    return events;
  }

  /**
   * A device that no longer exists (its driver removed it): its alarms end
   * without a reading. Returns those that were active, so they can be announced.
   */
  forget(device: string): EndedAlarm[] {
    const active = this.activeSides.get(device);
    this.activeSides.delete(device);
    if (!active) return [];
    const ended: EndedAlarm[] = [];
    for (const side of active) {
      const threshold = this.rules.find((r) => r.device === device && r[side] !== undefined)?.[side];
      if (threshold !== undefined) ended.push({ device, side, threshold });
    }
    return ended;
  }

  /** Devices with an alarm raised now. */
  active(): string[] {
    return [...this.activeSides].filter(([, s]) => s.size > 0).map(([d]) => d);
  }
}
