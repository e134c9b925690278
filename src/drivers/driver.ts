// The one interface every driver implements. A driver produces readings for
// the devices it serves and, for writable ones, applies values.

import type { Logger } from '../runtime/log.js';
import type { Actuator, DeviceInfo, Value } from '../core/devices.js';

export interface DriverContext {
  report(id: string, value: Value, at?: number): void;
  fault(id: string, message: string): void;
  /** Drivers that discover their devices (a firmware bridge's hello) add and remove them. */
  add(info: DeviceInfo, actuator?: Actuator): void;
  remove(id: string): void;
  /** Ids already taken by other devices. */
  taken(id: string): boolean;
  log: Logger;
}

export interface DriverStats {
  /** Frames or samples received but rejected (bad checksum, garbage, implausible). */
  dropped: number;
}

export interface Driver extends Actuator {
  readonly kind: string;
  start(ctx: DriverContext): Promise<void>;
  stop(): Promise<void>;
  stats?(): DriverStats;
}
