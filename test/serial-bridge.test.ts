// The serial-bridge driver's pieces with the device played on node-serialport's
// mock binding and time on vitest's fake timers: the link (frames, what it
// drops, gaps, reopening with backoff), the channels a hello describes, and
// SETs waiting for their answers. The real-port version is
// bridge.integration.test.ts (socat) and firmware.integration.test.ts (simavr).

import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { systemClock } from '../src/core/clock.js';
import type { Value } from '../src/core/devices.js';
import { serialBridge, SILENCE_MS, type BridgeStats } from '../src/drivers/serial-bridge/index.js';
import { link, type LinkCounter } from '../src/drivers/serial-bridge/link.js';
import { encode, type Frame } from '../src/drivers/serial-bridge/protocol.js';
import { requests } from '../src/drivers/serial-bridge/requests.js';
import { advance, agentSide, binding, board, PATH, settle } from './helpers/serial-board.js';

const stops: (() => Promise<void>)[] = [];

beforeEach(() => {
  // The mock binding works on nextTick and setImmediate; only the clock's timers, Date and the monotonic clock are fake.
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date', 'performance'] });
});

afterEach(async () => {
  for (const stop of stops.splice(0)) await stop();
  binding.reset();
  vi.useRealTimers();
});

async function bridge(opts: { configured?: string[]; ackTimeoutMs?: number } = {}) {
  const b = board();
  const agent = agentSide(opts.configured);
  const driver = serialBridge({ id: 'bridge', port: PATH, baud: 115200, ackTimeoutMs: opts.ackTimeoutMs ?? 2000 }, { open: b.open, clock: systemClock, random: () => 0 });
  stops.push(() => driver.stop());
  await driver.start(agent.ctx);
  await settle();
  return { b, agent, driver };
}

const TEMP_FAN: [string, string, string, string][] = [
  ['temperature', 'n', 'degC', 'ro'],
  ['fan', 'b', '-', 'rw'],
];

describe('link', () => {
  function started() {
    const b = board();
    const counts: Partial<Record<LinkCounter, number>> = {};
    const frames: Frame[] = [];
    const faults: string[] = [];
    let opened = 0;
    const l = link({ path: PATH, baudRate: 115200, open: b.open, clock: systemClock, log: agentSide().ctx.log, random: () => 0,
      count: (what) => void (counts[what] = (counts[what] ?? 0) + 1),
      frame: (f) => void frames.push(f),
      opened: () => void opened++,
      closed: () => {},
      fault: (why) => void faults.push(why),
    });
    stops.push(() => l.stop());
    l.start();
    return { b, l, counts, frames, faults, opened: () => opened };
  }

  it('passes on a frame split across reads, and drops a bad-CRC, a garbled and an endless line, counting each', async () => {
    const { b, counts, frames } = started();
    await settle();
    const good = encode(0, 'D', 'temperature=21.4');
    b.raw(good.slice(0, 7));
    await settle();
    b.raw(good.slice(7));
    b.raw(encode(1, 'D', 'temperature=99.0').replace(/\*..\n$/, '*00\n'));
    b.raw(Buffer.from([0x00, 0xff, 0x13, 0x37, 0x0a]));
    b.raw(encode(2, 'lower'));
    b.raw('z'.repeat(500) + '\n');
    b.raw(encode(3, 'HB'));
    await settle();
    expect(frames.map((f) => f.type)).toEqual(['D', 'HB']);
    expect(frames[0]).toEqual({ seq: 0, type: 'D', values: [['temperature', '21.4']] });
    expect(counts).toMatchObject({ frames: 2, badCrc: 2, malformed: 1, tooLong: 1 });
  });

  it('counts a gap in the bridge’s sequence numbers, but not the restart a HELLO brings', async () => {
    const { b, counts } = started();
    await settle();
    b.say('HB');
    b.say('HB');
    b.lose(2);
    b.say('HB');
    await settle();
    expect(counts.gaps).toBe(1);
    b.hello();
    b.say('HB');
    await settle();
    expect(counts.gaps).toBe(1);
  });

  it('reopens a vanished port after 250, 500, 1000 and 2000 ms (backoff), then counts one reopen', async () => {
    const { b, counts, faults, opened } = started();
    await settle();
    expect(opened()).toBe(1);
    b.unplug();
    await settle();
    expect(faults).toEqual(['serial port gone']);
    const gone = Date.now();
    await advance(250 + 500 + 1000);
    expect(b.openedAt.slice(1).map((t) => t - gone)).toEqual([250, 750, 1750]);
    b.plug();
    await advance(1999);
    expect(b.openedAt).toHaveLength(4);
    await advance(1);
    expect(b.openedAt.slice(1).map((t) => t - gone)).toEqual([250, 750, 1750, 3750]);
    expect(opened()).toBe(2);
    expect(counts.reopens).toBe(1);
  });

  it('reports silence once SILENCE_MS pass without a frame; each frame starts the wait again', async () => {
    const { b, faults } = started();
    await settle();
    await advance(SILENCE_MS - 1);
    b.say('HB');
    await advance(SILENCE_MS - 1);
    expect(faults).toEqual([]);
    await advance(1);
    expect(faults).toEqual(['the bridge stopped answering']);
  });
});

describe('channels', () => {
  it('a hello makes its channels devices once the last CH is in: types, units as people write them, writability', async () => {
    const { b, agent, driver } = await bridge();
    expect(b.received().map((f) => f.type)).toEqual(['WHO']);
    b.say('HELLO', 'xia-test', '1.2.0', '3');
    b.say('CH', 'temperature', 'n', 'degC', 'ro');
    b.say('CH', 'fan', 'b', '-', 'rw');
    await settle();
    expect(agent.devices.size).toBe(0);
    b.say('CH', 'mode', 's', 'pct', 'rw');
    await settle();
    const info = (id: string) => agent.devices.get(id)?.info;
    expect(info('temperature')).toMatchObject({ type: 'number', unit: '°C', writable: false });
    expect(info('fan')).toMatchObject({ type: 'boolean', unit: '', writable: true });
    expect(info('mode')).toMatchObject({ type: 'string', unit: '%', writable: true });
    expect(agent.devices.get('temperature')?.actuator).toBeUndefined();
    expect(agent.devices.get('fan')?.actuator).toBeDefined();
    expect(driver.stats().firmware).toBe('xia-test 1.2.0');
    expect(agent.logged('bridge hello')).toEqual([expect.objectContaining({ firmware: 'xia-test 1.2.0', channels: ['temperature', 'fan', 'mode'] })]);
  });

  it('a second hello removes the channels it no longer has, replaces one whose shape changed, and leaves the rest alone', async () => {
    const { b, agent } = await bridge();
    b.hello(...TEMP_FAN, ['light', 'n', 'pct', 'ro']);
    await settle();
    agent.events.length = 0;
    b.hello(['temperature', 'n', 'degC', 'ro'], ['fan', 'n', 'pct', 'rw'], ['pump', 'b', '-', 'rw']);
    await settle();
    expect(agent.events).toEqual(['remove light', 'remove fan', 'add fan', 'add pump']);
    expect(agent.devices.get('fan')?.info).toMatchObject({ type: 'number', unit: '%' });
    expect([...agent.devices.keys()].sort()).toEqual(['fan', 'pump', 'temperature']);
  });

  it('refuses a channel whose id is a configured device, logs it once, and ignores its readings without asking WHO', async () => {
    const { b, agent } = await bridge({ configured: ['fan'] });
    b.hello(...TEMP_FAN);
    b.hello(...TEMP_FAN);
    await settle();
    expect([...agent.devices.keys()]).toEqual(['temperature']);
    expect(agent.logged('bridge channel clashes with a configured device; ignored')).toHaveLength(1);
    await advance(2000); // past the WHO rate limit
    b.say('D', 'fan=1');
    await settle();
    expect(agent.readings).toEqual([]);
    expect(b.received().filter((f) => f.type === 'WHO')).toHaveLength(1);
    b.say('D', 'mystery=1');
    await settle();
    expect(b.received().filter((f) => f.type === 'WHO')).toHaveLength(2);
  });

  it('a D frame is a reading, typed by its channel', async () => {
    const { b, agent } = await bridge();
    b.hello(...TEMP_FAN);
    b.say('D', 'temperature=21.4', 'fan=1');
    await settle();
    expect(agent.readings).toEqual([['temperature', 21.4], ['fan', true]]);
  });

  it('a value its channel cannot hold is counted as malformed and dropped; the other values of the line still count', async () => {
    const { b, agent, driver } = await bridge();
    b.hello(...TEMP_FAN);
    await settle();
    const before: BridgeStats = driver.stats();
    b.say('D', 'fan=7', 'temperature=20');
    await settle();
    expect(agent.readings).toEqual([['temperature', 20]]);
    expect(driver.stats()).toMatchObject({ malformed: before.malformed + 1, dropped: before.dropped + 1 });
  });

  it('readings for a channel it never described ask WHO, at most once a second', async () => {
    const { b } = await bridge();
    const whos = () => b.received().filter((f) => f.type === 'WHO').length;
    await advance(1000);
    b.say('D', 'mystery=1');
    b.say('D', 'mystery=2');
    await settle();
    expect(whos()).toBe(2); // the one on opening, and one for the burst
    await advance(1000);
    b.say('D', 'mystery=3');
    await settle();
    expect(whos()).toBe(3);
  });

  it('ERR faults its channel; ERR - faults them all', async () => {
    const { b, agent } = await bridge();
    b.hello(...TEMP_FAN);
    b.say('ERR', 'temperature', 'sensor');
    await settle();
    expect(agent.faults).toEqual([['temperature', 'bridge error: sensor']]);
    b.say('ERR', '-', 'brownout');
    await settle();
    expect(agent.faults.slice(1)).toEqual([['temperature', 'bridge error: brownout'], ['fan', 'bridge error: brownout']]);
  });

  it('stats: a bad line or value counts as dropped, a frame of a type it does not know only as unknown', async () => {
    const { b, driver } = await bridge();
    b.hello(...TEMP_FAN);
    b.raw(encode(9, 'D', 'fan=1').replace(/\*..\n$/, '*00\n'));
    b.raw(encode(9, 'lower'));
    b.raw('z'.repeat(500) + '\n');
    b.say('D', 'fan=7');
    b.say('FUTURE', 'x');
    await settle();
    expect(driver.stats()).toEqual({ frames: 5, badCrc: 1, malformed: 2, tooLong: 1, unknown: 1, dropped: 4, gaps: 0, reopens: 0, firmware: 'xia-test 1.2.0' });
  });
});

describe('requests', () => {
  it('SET goes on the wire and waits for the ACK carrying its sequence number', async () => {
    const { b, agent } = await bridge();
    b.hello(...TEMP_FAN);
    await settle();
    const timers = vi.getTimerCount();
    let result: Value | undefined;
    const done = agent.devices.get('fan')!.actuator!.write('fan', true).then((v) => (result = v));
    await settle();
    const set = b.received().at(-1);
    expect(set).toMatchObject({ type: 'SET', id: 'fan', value: '1' });
    b.say('ACK', String((set!.seq + 1) & 0xff));
    await settle();
    expect(result).toBeUndefined();
    b.say('ACK', String(set!.seq));
    await done;
    expect(result).toBe(true);
    expect(vi.getTimerCount()).toBe(timers); // its timeout went with the answer
  });

  it('a NAK becomes an error with the bridge’s reason', async () => {
    const { b, driver } = await bridge();
    b.hello(...TEMP_FAN);
    await settle();
    const done = driver.write('fan', false);
    await settle();
    b.say('NAK', String(b.received().at(-1)!.seq), 'busy');
    await expect(done).rejects.toThrow('the bridge refused it (busy)');
  });

  it('a SET with no answer fails when the ack timeout is up, not before', async () => {
    const { b, driver } = await bridge({ ackTimeoutMs: 500 });
    b.hello(...TEMP_FAN);
    await settle();
    let error: unknown;
    const done = driver.write('fan', true).catch((e: unknown) => (error = e));
    await advance(499);
    expect(error).toBeUndefined();
    await advance(1);
    await done;
    expect(error).toEqual(new Error('no answer from the bridge within 500 ms'));
  });

  it('refuses before sending: a channel it does not have, a value the channel cannot carry', async () => {
    const { b, driver } = await bridge();
    b.hello(...TEMP_FAN);
    await settle();
    await expect(driver.write('pump', true)).rejects.toThrow('the bridge no longer has this channel');
    await expect(driver.write('fan', 'maybe')).rejects.toThrow('"maybe" cannot be sent to the bridge');
    expect(b.received().filter((f) => f.type === 'SET')).toEqual([]);
  });

  it('a SET superseded by a wrapped sequence number does not leave its timer running (regression)', async () => {
    const sent: string[] = [];
    const r = requests({ write: (l) => void sent.push(l), clock: systemClock, timeoutMs: 2000 });
    const first = r.set('fan', '1');
    for (let i = 0; i < 255; i++) r.send('HB');
    const second = r.set('fan', '0');
    expect(sent.at(-1)).toBe(encode(0, 'SET', 'fan', '0'));
    await expect(first).rejects.toThrow('superseded');
    expect(vi.getTimerCount()).toBe(1);
    r.answer({ seq: 9, type: 'ACK', ref: 0 });
    await expect(second).resolves.toBeUndefined();
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe('faults', () => {
  it('the port vanishing faults every channel, fails the SET in flight, and the bridge is back after a reopen', async () => {
    const { b, agent, driver } = await bridge();
    b.hello(...TEMP_FAN);
    await settle();
    await advance(1000); // so the WHO on reopening is not held back by the once-a-second limit
    const set = driver.write('fan', true);
    await settle();
    b.unplug();
    await expect(set).rejects.toThrow('the serial port closed');
    expect(agent.faults).toEqual([['temperature', 'serial port gone'], ['fan', 'serial port gone']]);
    expect(agent.logged('serial port gone; reopening')).toHaveLength(1);
    await expect(driver.write('fan', true)).rejects.toThrow('the serial port is not open');
    b.plug();
    await advance(250);
    expect(driver.stats().reopens).toBe(1);
    expect(b.received().filter((f) => f.type === 'WHO')).toHaveLength(2);
    b.hello(...TEMP_FAN);
    b.say('D', 'fan=0');
    await settle();
    expect(agent.readings.at(-1)).toEqual(['fan', false]);
  });

  it('silence for SILENCE_MS faults every channel, and the agent’s heartbeats carry on meanwhile', async () => {
    const { b, agent } = await bridge();
    b.hello(...TEMP_FAN);
    await settle();
    await advance(SILENCE_MS - 1);
    expect(agent.faults).toEqual([]);
    await advance(1);
    expect(agent.faults).toEqual([['temperature', 'the bridge stopped answering'], ['fan', 'the bridge stopped answering']]);
    expect(agent.logged('bridge silent')).toHaveLength(1);
    expect(b.received().filter((f) => f.type === 'HB')).toHaveLength(1);
  });
});
