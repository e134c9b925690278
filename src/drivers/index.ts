// Driver factory: the config's `driver:` name to an implementation.

import type { DeviceConfig } from '../config/schema.js';
import { dht } from './dht.js';
import type { Driver } from './driver.js';
import { ds18b20 } from './ds18b20.js';
import { gpio } from './gpio.js';
import { replay } from './replay.js';
import { simulated } from './simulated.js';

export function createDriver(device: DeviceConfig): Driver {
  switch (device.driver) {
    case 'simulated':
      return simulated(device);
    case 'dht':
      return dht(device);
    case 'ds18b20':
      return ds18b20(device);
    case 'gpio':
      return gpio(device);
    case 'replay':
      return replay(device);
    default:
      // serial-bridge entries are sources, built by the agent; the schema refuses anything else.
      throw new Error(`driver "${device.driver}" does not make single devices`);
  }
}

/**
 * A driver whose module (and its dependencies: serialport's native addon, …)
 * is loaded only when it starts, so a gateway without one pays no memory for it.
 */
export function lazyDriver(kind: string, load: () => Promise<Driver>): Driver {
  let real: Driver | undefined;
  return {
    kind,
    async start(ctx) {
      real = await load();
      await real.start(ctx);
    },
    async stop() {
      await real?.stop();
    },
    write(id, value) {
      return real ? real.write(id, value) : Promise.reject(new Error(`the ${kind} driver has not started`));
    },
    stats: () => real?.stats?.() ?? { dropped: 0 },
  };
}
