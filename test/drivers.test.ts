// Hardware drivers through the same interface the agent uses, with what can
// stand in for hardware here: a fake sysfs tree (DS18B20), node-dht-sensor's own
// fake mode (DHT), a fake GPIO backend, a CSV file (replay).

import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkConfig, type DeviceConfig } from '../src/config/schema.js';
import type { Value } from '../src/core/devices.js';
import { dht, useFakeDht } from '../src/drivers/dht.js';
import type { Driver, DriverContext } from '../src/drivers/driver.js';
import { ds18b20, parseW1Slave } from '../src/drivers/ds18b20.js';
import { gpio, type GpioBackend } from '../src/drivers/gpio.js';
import { parseTrace, replay } from '../src/drivers/replay.js';
import { silentLogger } from '../src/runtime/log.js';

function device(raw: Record<string, unknown>): DeviceConfig {
  const { config, issues } = checkConfig({ xmpp: { jid: 'g@x.org', password: 'p' }, owners: ['a@x.org'], devices: [{ id: 'd', ...raw }] }, { hostname: 'pi' });
  if (!config) throw new Error(issues.map((i) => `${i.path}: ${i.message}`).join('\n'));
  return config.devices[0]!;
}

function recorder() {
  const readings: Value[] = [];
  const faults: string[] = [];
  const ctx: DriverContext = {
    report: (_id, v) => void readings.push(v),
    fault: (_id, m) => void faults.push(m),
    add: () => {},
    remove: () => {},
    taken: () => false,
    log: silentLogger,
  };
  return { readings, faults, ctx };
}

const settle = (ms = 30) => new Promise((r) => setTimeout(r, ms));

describe('ds18b20', () => {
  const W1 = (crc: 'YES' | 'NO', milli: number) => `4b 01 4b 46 7f ff 05 10 e1 : crc=e1 ${crc}\n4b 01 4b 46 7f ff 05 10 e1 t=${milli}\n`;

  it('parses w1_slave and rejects CRC=NO and the 85 °C power-on value', () => {
    expect(parseW1Slave(W1('YES', 21437))).toBe(21.437);
    expect(parseW1Slave(W1('YES', -1250))).toBe(-1.25);
    expect(() => parseW1Slave(W1('NO', 21437))).toThrow('CRC=NO');
    expect(() => parseW1Slave(W1('YES', 85000))).toThrow('power-on value');
  });

  it('reads the first sensor of a (fake) sysfs tree, drops bad samples, faults when the sensor is gone', async () => {
    const root = mkdtempSync(join(tmpdir(), 'xia-w1-'));
    mkdirSync(join(root, '28-0316a2793fff'));
    mkdirSync(join(root, 'w1_bus_master1'));
    const file = join(root, '28-0316a2793fff', 'w1_slave');
    writeFileSync(file, W1('YES', 21437));
    const d = ds18b20(device({ driver: 'ds18b20', w1_root: root, interval: '50ms' }));
    const r = recorder();
    await d.start(r.ctx);
    expect(r.readings).toEqual([21.437]);
    writeFileSync(file, W1('NO', 30000));
    await settle(80);
    writeFileSync(file, W1('YES', 85000));
    await settle(80);
    expect(r.readings.every((v) => v === 21.437)).toBe(true);
    expect(d.stats!().dropped).toBeGreaterThanOrEqual(2);
    await d.stop();

    const empty = ds18b20(device({ driver: 'ds18b20', w1_root: mkdtempSync(join(tmpdir(), 'xia-w1-')) }));
    const e = recorder();
    await empty.start(e.ctx);
    await empty.stop();
    expect(e.faults[0]).toMatch(/no DS18B20 under .*dtoverlay=w1-gpio/);
  });
});

describe('dht', () => {
  it('turns a failed hardware read into a device fault, not a crash', async () => {
    const d = dht(device({ driver: 'dht', pin: 4, reading: 'temperature' }));
    const r = recorder();
    await d.start(r.ctx);
    await d.stop();
    expect(r.readings).toEqual([]);
    expect(r.faults[0]).toMatch(/DHT22 on GPIO 4|node-dht-sensor/);
  });

  it('reads temperature and humidity from one sensor (the library\'s fake mode) and drops implausible values', async () => {
    useFakeDht({ temperature: 21.5, humidity: 48 });
    const t = dht(device({ driver: 'dht', pin: 4, reading: 'temperature' }));
    const h = dht(device({ driver: 'dht', pin: 4, reading: 'humidity' }));
    const rt = recorder();
    const rh = recorder();
    await t.start(rt.ctx);
    await h.start(rh.ctx);
    await t.stop();
    await h.stop();
    expect(rt.readings).toEqual([21.5]);
    expect(rh.readings).toEqual([48]);

    useFakeDht({ temperature: 150, humidity: 48 });
    const bad = dht(device({ driver: 'dht', pin: 17, reading: 'temperature' }));
    const rb = recorder();
    await bad.start(rb.ctx);
    await bad.stop();
    expect(rb.readings).toEqual([]);
    expect(bad.stats!().dropped).toBe(1);
  });
});

function fakeGpio() {
  const levels = new Map<string, boolean>();
  let edge: ((high: boolean) => void) | undefined;
  const backend: GpioBackend = {
    async set(chip, line, high) {
      levels.set(`${chip}:${line}`, high);
    },
    async get(chip, line) {
      return levels.get(`${chip}:${line}`) ?? false;
    },
    watch(_c, _l, onEdge) {
      edge = onEdge;
      return () => (edge = undefined);
    },
    async close() {},
  };
  return { backend, levels, edge: (h: boolean) => edge?.(h) };
}

describe('gpio', () => {
  it('drives an output (active low honoured) and reports what was set', async () => {
    const f = fakeGpio();
    const d: Driver = gpio(device({ driver: 'gpio', line: 17, direction: 'out', active_low: true }), f.backend);
    const r = recorder();
    await d.start(r.ctx);
    expect(f.levels.get('gpiochip0:17')).toBe(true); // off = high on an active-low relay board
    expect(await d.write('d', true)).toBe(true);
    expect(f.levels.get('gpiochip0:17')).toBe(false);
    await d.stop();
  });

  it('debounces an input: a bouncing contact makes one change', async () => {
    const f = fakeGpio();
    const d = gpio(device({ driver: 'gpio', line: 27, direction: 'in', debounce: '40ms' }), f.backend);
    const r = recorder();
    await d.start(r.ctx);
    expect(r.readings).toEqual([false]);
    for (const level of [true, false, true, false, true]) f.edge(level);
    await settle(100);
    expect(r.readings).toEqual([false, true]);
    await expect(d.write('d', true)).rejects.toThrow('an input cannot be set');
    await d.stop();
  });
});

describe('replay', () => {
  it('replays a CSV trace in order at the chosen speed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'xia-replay-'));
    writeFileSync(join(dir, 't.csv'), 'date,temp\n2010-01-01T00:00:00Z,4.5\n2010-01-01T01:00:00Z,4.25\nbad,row\n2010-01-01T02:00:00Z,4.0\n');
    expect(parseTrace('1,2\n3,4\n')).toEqual([{ t: 1000, v: 2 }, { t: 3000, v: 4 }]);
    const d = replay(device({ driver: 'replay', file: join(dir, 't.csv'), speed: 360_000, loop: false }));
    const r = recorder();
    await d.start(r.ctx);
    await settle(100);
    await d.stop();
    expect(r.readings).toEqual([4.5, 4.25, 4]);
  });
});

describe('driver config', () => {
  it('names what each driver needs', () => {
    const issues = (raw: Record<string, unknown>) =>
      checkConfig({ xmpp: { jid: 'g@x.org', password: 'p' }, owners: ['a@x.org'], devices: [{ id: 'd', ...raw }] }, { hostname: 'pi' }).issues.map((i) => `${i.path}: ${i.message}`);
    expect(issues({ driver: 'dht', model: 21 })).toEqual(
      expect.arrayContaining(['devices[0].model: expected 11 or 22 (DHT11 or DHT22/AM2302), got 21', expect.stringMatching(/^devices\[0\]\.pin: is required/), expect.stringMatching(/^devices\[0\]\.reading: is required/)]),
    );
    expect(issues({ driver: 'dht', pin: 4, reading: 'humidity', interval: '1s' })).toEqual(['devices[0].interval: a DHT sensor must not be read more often than every 2 s']);
    expect(issues({ driver: 'gpio', line: 17, direction: 'in', writable: true })).toEqual(['devices[0].writable: set by direction (out is writable, in is not)']);
    expect(issues({ driver: 'ds18b20', sensor: 'nope' })[0]).toMatch(/^devices\[0\]\.sensor: expected a 1-Wire id/);
    expect(issues({ driver: 'replay' })).toEqual(['devices[0].file: is required (a CSV file of timestamp,value rows)']);
  });
});
