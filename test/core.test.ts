import { describe, expect, it } from 'vitest';
import { createAuthority } from '../src/core/authority.js';
import { Devices, parseValue, type DeviceInfo } from '../src/core/devices.js';
import { isStanzaError } from '../src/core/errors.js';
import { healthShow, summary } from '../src/core/format.js';
import { decide, snapshot } from '../src/core/reporting.js';
import { closest } from '../src/core/words.js';
import { clockAt } from '../src/core/clock.js';

const info = (over: Partial<DeviceInfo>): DeviceInfo => ({
  id: 'x', name: over.id ?? 'x', type: 'number', unit: '', writable: false, deadband: 0, decimals: 1, staleAfterMs: 30_000, ...over,
});

function fixture() {
  let now = 1_000_000;
  const clock = clockAt(() => now);
  const devices = new Devices({ clock });
  const written: unknown[] = [];
  devices.add(info({ id: 'temperature', unit: '°C', deadband: 0.5 }));
  devices.add(info({ id: 'fan', type: 'boolean', writable: true }), { write: async (_id, v) => (written.push(v), v) });
  return { devices, written, advance: (ms: number) => (now += ms), clock };
}

describe('devices', () => {
  it('sets a writable device through its driver and records the value', async () => {
    const { devices, written } = fixture();
    const changes: string[] = [];
    devices.onChange((c) => changes.push(`${c.id}:${c.cause}:${String(c.value)}`));
    expect(await devices.set('fan', 'on')).toBe(true);
    expect(written).toEqual([true]);
    expect(devices.get('fan')!.value).toBe(true);
    expect(changes).toEqual(['fan:command:true']);
  });

  it('refuses with typed RFC 6120 conditions', async () => {
    const { devices } = fixture();
    const cond = async (p: Promise<unknown>) => p.then(() => 'ok', (e: unknown) => (isStanzaError(e) ? e.condition : 'other'));
    expect(await cond(devices.set('nope', 'on'))).toBe('item-not-found');
    expect(await cond(devices.set('temperature', 20))).toBe('not-allowed');
    expect(await cond(devices.set('fan', 'maybe'))).toBe('bad-request');
  });

  it('turns a driver failure into internal-server-error with a text', async () => {
    const devices = new Devices({ clock: clockAt(() => 0) });
    devices.add(info({ id: 'valve', type: 'boolean', writable: true }), { write: async () => Promise.reject(new Error('no ack')) });
    await expect(devices.set('valve', true)).rejects.toMatchObject({ condition: 'internal-server-error', text: 'valve did not accept the value: no ack' });
  });

  it('keeps a throwing listener from breaking readings', () => {
    const { devices } = fixture();
    devices.onChange(() => {
      throw new Error('boom');
    });
    devices.report('temperature', 21);
    expect(devices.get('temperature')!.value).toBe(21);
    expect(devices.listenerErrors).toBe(1);
  });

  it('rejects a reading of the wrong type as a fault, not a value', () => {
    const { devices } = fixture();
    devices.report('temperature', 'hot');
    expect(devices.get('temperature')!.value).toBeUndefined();
    expect(devices.health('temperature')).toBe('fault');
  });

  it('parses values as people type them', () => {
    const n = info({ min: 0, max: 10, unit: '%' });
    expect(parseValue(n, ' 5.5 ')).toBe(5.5);
    expect(() => parseValue(n, '11')).toThrow('x accepts 0 to 10 %, not 11');
    expect(() => parseValue(n, '5abc')).toThrow(/expects a number/);
    const b = info({ type: 'boolean' });
    expect(['ON', 'true', '1', 'yes'].map((w) => parseValue(b, w))).toEqual([true, true, true, true]);
    expect(['off', 'False', '0', 'no'].map((w) => parseValue(b, w))).toEqual([false, false, false, false]);
  });
});

describe('presence summary and health', () => {
  it('summarises readings with units and shows health', () => {
    const { devices, advance, clock } = fixture();
    expect(summary(devices)).toBe('temperature – · fan –');
    devices.report('temperature', 21.44);
    devices.report('fan', false);
    expect(summary(devices)).toBe('temperature 21.4 °C · fan off');
    expect(healthShow(devices, clock.now())).toBeUndefined();
    advance(31_000);
    expect(healthShow(devices, clock.now())).toBe('away');
    devices.fault('fan', 'no answer');
    expect(healthShow(devices, clock.now())).toBe('xa');
    expect(summary(devices)).toBe('temperature 21.4 °C · fan fault');
  });
});

describe('reporting rules', () => {
  const policy = { minIntervalMs: 10_000, heartbeatMs: 60_000 };

  it('sends the first presence at once', () => {
    const { devices, clock } = fixture();
    expect(decide({ policy, devices, now: clock.now(), current: snapshot(devices, undefined, clock.now()) })).toEqual({ send: true });
  });

  it('ignores changes inside the deadband until the heartbeat', () => {
    const { devices, clock, advance } = fixture();
    devices.report('temperature', 21.0);
    const last = snapshot(devices, undefined, clock.now());
    advance(20_000);
    devices.report('temperature', 21.4);
    const now = clock.now();
    expect(decide({ policy, devices, last, now, current: snapshot(devices, undefined, now) })).toEqual({ send: false, at: last.at + 60_000 });
    advance(40_000);
    expect(decide({ policy, devices, last, now: clock.now(), current: snapshot(devices, undefined, clock.now()) })).toEqual({ send: true });
  });

  it('sends a change beyond the deadband, but not faster than min_interval', () => {
    const { devices, clock, advance } = fixture();
    devices.report('temperature', 21.0);
    const last = snapshot(devices, undefined, clock.now());
    advance(2_000);
    devices.report('temperature', 21.6);
    expect(decide({ policy, devices, last, now: clock.now(), current: snapshot(devices, undefined, clock.now()) })).toEqual({ send: false, at: last.at + 10_000 });
    advance(8_000);
    expect(decide({ policy, devices, last, now: clock.now(), current: snapshot(devices, undefined, clock.now()) })).toEqual({ send: true });
  });

  it('counts slow drift against what was last sent, not the last reading', () => {
    const { devices, clock, advance } = fixture();
    devices.report('temperature', 21.0);
    const last = snapshot(devices, undefined, clock.now());
    for (const v of [21.2, 21.4, 21.6]) {
      advance(11_000);
      devices.report('temperature', v);
    }
    expect(decide({ policy, devices, last, now: clock.now(), current: snapshot(devices, undefined, clock.now()) })).toEqual({ send: true });
  });

  it('reports an owner command at once, inside min_interval', () => {
    const { devices, clock, advance } = fixture();
    devices.report('fan', false);
    const last = snapshot(devices, undefined, clock.now());
    advance(1_000);
    devices.report('fan', true);
    const args = { policy, devices, last, now: clock.now(), current: snapshot(devices, undefined, clock.now()) };
    expect(decide(args).send).toBe(false);
    expect(decide({ ...args, urgent: true })).toEqual({ send: true });
  });
});

describe('authority', () => {
  const a = createAuthority({ self: 'gw@iot.test', owners: ['Alice@iot.test'], viewers: ['bob@iot.test'] });
  it('knows owners, viewers, the server and strangers', () => {
    expect(a.roleOf('alice@iot.test/phone')).toBe('owner');
    expect(a.roleOf('bob@iot.test/x')).toBe('viewer');
    expect(a.roleOf('iot.test')).toBe('server');
    expect(a.roleOf(undefined)).toBe('server');
    expect(a.roleOf('eve@iot.test/x')).toBe('stranger');
    expect(a.roleOf('alice@evil.test')).toBe('stranger');
    expect(a.roleOf('iot.test/component')).toBe('stranger');
  });

  it("gives the gateway's own account no rights it is not given", () => {
    // Its other resources: strangers (the password is on every gateway's SD card).
    expect(a.roleOf('gw@iot.test/other')).toBe('stranger');
    expect(a.roleOf('GW@iot.test/other')).toBe('stranger');
    // The account itself, as the server speaks for it (roster pushes): the server's few rights.
    expect(a.roleOf('gw@iot.test')).toBe('server');
    // Listed, it gets what the list says.
    expect(createAuthority({ self: 'gw@iot.test', owners: ['alice@iot.test'], viewers: ['gw@iot.test'] }).roleOf('gw@iot.test/other')).toBe('viewer');
    expect(createAuthority({ self: 'gw@iot.test', owners: ['gw@iot.test'], viewers: [] }).roleOf('gw@iot.test/other')).toBe('owner');
  });
});

describe('did you mean', () => {
  it('finds typos, swaps and prefixes, and stays quiet for nonsense', () => {
    expect(closest('stauts', ['help', 'status'])).toBe('status');
    expect(closest('fna', ['fan', 'temperature'])).toBe('fan');
    expect(closest('temp', ['fan', 'temperature'])).toBe('temperature');
    expect(closest('xyzzy', ['fan', 'status'])).toBeUndefined();
  });
});
