// The simulated driver, present in every build: a number that drifts within a
// range, a boolean or a string that holds what was last set.

import type { Value } from '../core/devices.js';
import type { DeviceConfig } from '../config/schema.js';
import type { Driver, DriverContext } from './driver.js';

export interface SimulatedOptions {
  random?: () => number;
}

export function simulated(device: DeviceConfig, opts: SimulatedOptions = {}): Driver {
  const random = opts.random ?? Math.random;
  const lo = device.min ?? 0;
  const hi = device.max ?? 100;
  const step = (hi - lo) / 100;
  let value: Value = device.initial ?? defaultInitial(device, lo, hi);
  let timer: NodeJS.Timeout | undefined;
  let ctx: DriverContext | undefined;

  const tick = (): void => {
    if (typeof value === 'number') {
      let next = value + (random() * 2 - 1) * step;
      if (next > hi) next = hi - (next - hi);
      if (next < lo) next = lo + (lo - next);
      value = next;
    }
    ctx?.report(device.id, value);
  };

  return {
    kind: 'simulated',
    async start(c) {
      ctx = c;
      ctx.report(device.id, value);
      timer = setInterval(tick, device.intervalMs);
    },
    async stop() {
      if (timer) clearInterval(timer);
      timer = undefined;
      ctx = undefined;
    },
    async write(_id, v) {
      value = v;
      return value;
    },
  };
}

function defaultInitial(device: DeviceConfig, lo: number, hi: number): Value {
  if (device.type === 'boolean') return false;
  if (device.type === 'string') return '';
  return (lo + hi) / 2;
}
