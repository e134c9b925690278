// Driver factory: the config's `driver:` name to an implementation.

import type { DeviceConfig } from '../config/schema.js';
import type { Driver } from './driver.js';
import { simulated } from './simulated.js';

export function createDriver(device: DeviceConfig): Driver {
  switch (device.driver) {
    case 'simulated':
      return simulated(device);
    default:
      // The schema refuses drivers this build lacks; reaching here is a bug.
      throw new Error(`driver "${device.driver}" is not available in this version`);
  }
}
