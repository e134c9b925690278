// Per-driver options of the hardware drivers (dht, ds18b20, gpio, replay):
// which keys each takes, and the type, unit and writability each implies.

import type { DeviceType } from '../core/devices.js';
import type { Checker } from './validate.js';

export type HardwareOptions =
  | { driver: 'simulated' }
  | { driver: 'dht'; model: 11 | 22; pin: number; reading: 'temperature' | 'humidity' }
  | { driver: 'ds18b20'; sensor?: string; w1Root: string }
  | { driver: 'gpio'; chip: string; line: number; direction: 'in' | 'out'; activeLow: boolean; debounceMs: number }
  | { driver: 'replay'; file: string; speed: number; loop: boolean; column: number };

export interface Implied {
  type?: DeviceType;
  unit?: string;
  writable?: boolean;
}

export const HARDWARE_KEYS: Record<string, string[]> = {
  dht: ['model', 'pin', 'reading'],
  ds18b20: ['sensor', 'w1_root'],
  gpio: ['chip', 'line', 'direction', 'active_low', 'debounce'],
  replay: ['file', 'speed', 'loop', 'column'],
};

export function checkHardware(c: Checker, path: string, driver: string, d: Record<string, unknown>): { options?: HardwareOptions; implied: Implied } {
  switch (driver) {
    case 'dht': {
      const model = (c.number(`${path}.model`, d.model, { integer: true }) ?? 22) as 11 | 22;
      if (model !== 11 && model !== 22) c.fail(`${path}.model`, `expected 11 or 22 (DHT11 or DHT22/AM2302), got ${model}`);
      const pin = c.number(`${path}.pin`, d.pin, { integer: true, min: 0, max: 53 });
      if (pin === undefined) c.fail(`${path}.pin`, 'is required (the GPIO number, BCM numbering, e.g. 4)');
      const reading = c.oneOf(`${path}.reading`, d.reading, ['temperature', 'humidity'] as const, true);
      const options = pin !== undefined && reading ? ({ driver: 'dht', model, pin, reading } as const) : undefined;
      return { options, implied: { type: 'number', unit: reading === 'humidity' ? '%' : '°C', writable: false } };
    }
    case 'ds18b20': {
      const sensor = c.string(`${path}.sensor`, d.sensor, { pattern: /^[0-9a-f]{2}-[0-9a-f]{12}$/, what: 'a 1-Wire id such as 28-0316a2793fff' });
      const w1Root = c.string(`${path}.w1_root`, d.w1_root, { what: 'a directory' }) ?? '/sys/bus/w1/devices';
      return { options: { driver: 'ds18b20', sensor, w1Root }, implied: { type: 'number', unit: '°C', writable: false } };
    }
    case 'gpio': {
      const chip = c.string(`${path}.chip`, d.chip, { pattern: /^gpiochip\d+$/, what: 'a chip such as gpiochip0' }) ?? 'gpiochip0';
      const line = c.number(`${path}.line`, d.line, { integer: true, min: 0, max: 511 });
      if (line === undefined) c.fail(`${path}.line`, 'is required (the line offset on the chip; on a Pi, the BCM GPIO number)');
      const direction = c.oneOf(`${path}.direction`, d.direction, ['in', 'out'] as const, true);
      const activeLow = c.boolean(`${path}.active_low`, d.active_low) ?? false;
      const debounceMs = c.duration(`${path}.debounce`, d.debounce) ?? 50;
      const options = line !== undefined && direction ? ({ driver: 'gpio', chip, line, direction, activeLow, debounceMs } as const) : undefined;
      return { options, implied: { type: 'boolean', writable: direction === 'out' } };
    }
    case 'replay': {
      const file = c.string(`${path}.file`, d.file, { required: true, what: 'a CSV file of timestamp,value rows' });
      const speed = c.number(`${path}.speed`, d.speed, { min: 0.001 }) ?? 1;
      const loop = c.boolean(`${path}.loop`, d.loop) ?? true;
      const column = c.number(`${path}.column`, d.column, { integer: true, min: 1 }) ?? 1;
      return { options: file ? { driver: 'replay', file, speed, loop, column } : undefined, implied: { type: 'number', writable: false } };
    }
    default:
      return { options: { driver: 'simulated' }, implied: {} };
  }
}
