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
