// Shared by drivers that read a sensor on an interval: read at start and then
// every interval, never two reads at once, and a failing read is a device
// fault (with the reason), never an exception.

import type { DeviceConfig } from '../config/schema.js';
import type { Value } from '../core/devices.js';
import type { Driver, DriverContext, DriverStats } from './driver.js';

export class Rejected extends Error {}

/** `read` returns a value, throws Rejected for a sample to drop (counted), or throws for a fault. */
export function poller(kind: string, device: DeviceConfig, read: () => Promise<Value>): Driver {
  const stats: DriverStats = { dropped: 0 };
  let ctx: DriverContext | undefined;
  let timer: NodeJS.Timeout | undefined;
  let busy = false;

  const tick = async (): Promise<void> => {
    if (busy || !ctx) return;
    busy = true;
    try {
      ctx.report(device.id, await read());
    } catch (err) {
      if (err instanceof Rejected) {
        stats.dropped++;
        ctx?.log.debug('sample rejected', { reason: err.message });
      } else {
        ctx?.fault(device.id, err instanceof Error ? err.message : String(err));
      }
    } finally {
      busy = false;
    }
  };

  return {
    kind,
    stats: () => ({ ...stats }),
    async start(c) {
      ctx = c;
      await tick();
      timer = setInterval(() => void tick(), device.intervalMs);
    },
    async stop() {
      clearInterval(timer);
      ctx = undefined;
    },
    async write() {
      throw new Error(`a ${kind} device cannot be set`);
    },
  };
}
