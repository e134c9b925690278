// DS18B20 1-Wire temperature sensors through the kernel's w1 sysfs
// (/sys/bus/w1/devices/28-*/w1_slave, with dtoverlay=w1-gpio on a Pi).
// A reading with CRC=NO and the sensor's power-on value 85.000 °C are
// rejected, not reported.

import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { DeviceConfig } from '../config/schema.js';
import type { Driver } from './driver.js';
import { poller, Rejected } from './poller.js';

export function parseW1Slave(text: string): number {
  const [first, second] = text.trim().split('\n');
  if (!first || !second) throw new Rejected('incomplete w1_slave');
  if (!/crc=[0-9a-f]{2} YES$/.test(first.trim())) throw new Rejected('CRC check failed (CRC=NO)');
  const m = /t=(-?\d+)$/.exec(second.trim());
  if (!m) throw new Rejected('no t= value');
  const milli = Number(m[1]);
  if (milli === 85000) throw new Rejected('85.000 °C is the power-on value, not a reading');
  if (milli < -55000 || milli > 125000) throw new Rejected(`${milli / 1000} °C is outside the sensor's range`);
  return milli / 1000;
}

export function ds18b20(device: DeviceConfig): Driver {
  const o = device.options;
  if (o.driver !== 'ds18b20') throw new Error('not a ds18b20 device');
  let path: string | undefined;
  return poller('ds18b20', device, async () => {
    if (!path) {
      let id = o.sensor;
      if (!id) {
        const found = (await readdir(o.w1Root).catch(() => [] as string[])).filter((n) => n.startsWith('28-')).sort();
        if (found.length === 0) throw new Error(`no DS18B20 under ${o.w1Root} (is dtoverlay=w1-gpio set?)`);
        id = found[0]!;
      }
      path = join(o.w1Root, id, 'w1_slave');
    }
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      const p = path;
      path = undefined; // look again next time: the sensor may come back under its id
      throw new Error(`cannot read ${p}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
    return parseW1Slave(text);
  });
}
