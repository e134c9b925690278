// DHT11/DHT22 (AM2302) temperature and humidity on a GPIO pin, through the
// optional node-dht-sensor library (it bit-bangs the sensor's timing via
// bcm2835). One config entry per reading; entries on the same pin share reads.
// Checksum failures are retried by the library; implausible values are dropped.

import type { DeviceConfig } from '../config/schema.js';
import type { Driver } from './driver.js';
import { poller, Rejected } from './poller.js';

interface DhtLib {
  read(type: number, pin: number, cb: (err: Error | null, temperature: number, humidity: number) => void): void;
  setMaxRetries?(n: number): void;
  initialize?(opts: unknown): boolean;
}

const LIMITS = { 11: { t: [0, 50], h: [20, 95] }, 22: { t: [-40, 80], h: [0, 100] } } as const;
let lib: Promise<DhtLib> | undefined;
const shared = new Map<number, { at: number; value: Promise<{ temperature: number; humidity: number }> }>();

/** For tests and demos: the library's own fake mode (no hardware touched). */
export function useFakeDht(values: { temperature: number; humidity: number }): void {
  lib = loadLib().then((l) => {
    l.initialize?.({ test: { fake: values } });
    return l;
  });
  shared.clear();
}

function loadLib(): Promise<DhtLib> {
  return import('node-dht-sensor' as string).then(
    (m: { default?: DhtLib } & DhtLib) => m.default ?? m,
    () => {
      throw new Error('node-dht-sensor is not installed; on the Pi: cd /usr/lib/xmpp-iot-agent && npm install node-dht-sensor');
    },
  );
}

function readPin(l: DhtLib, model: 11 | 22, pin: number): Promise<{ temperature: number; humidity: number }> {
  const now = performance.now(); // monotonic: a clock set backwards must not pin the cached value for hours
  const cached = shared.get(pin);
  if (cached && now - cached.at < 1500) return cached.value; // the other reading of the same sensor
  const value = new Promise<{ temperature: number; humidity: number }>((resolve, reject) => {
    l.read(model, pin, (err, temperature, humidity) => {
      if (err) reject(new Error(`DHT${model} on GPIO ${pin}: ${err.message.trim()}`));
      else resolve({ temperature, humidity });
    });
  });
  shared.set(pin, { at: now, value });
  return value;
}

export function dht(device: DeviceConfig): Driver {
  const o = device.options;
  if (o.driver !== 'dht') throw new Error('not a dht device');
  return poller('dht', device, async () => {
    lib ??= loadLib();
    const l = await lib;
    l.setMaxRetries?.(3);
    const r = await readPin(l, o.model, o.pin);
    const [lo, hi] = LIMITS[o.model][o.reading === 'temperature' ? 't' : 'h'];
    const v = o.reading === 'temperature' ? r.temperature : r.humidity;
    if (!Number.isFinite(v) || v < lo || v > hi) throw new Rejected(`${v} is implausible for a DHT${o.model} ${o.reading}`);
    return v;
  });
}
