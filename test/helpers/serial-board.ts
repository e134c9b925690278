// The board's side of a serial bridge on node-serialport's mock binding, and
// the agent's side of a driver context, for the serial-bridge unit tests.

import { vi } from 'vitest';
import { SerialPortMock } from 'serialport';
import type { Actuator, DeviceInfo, Value } from '../../src/core/devices.js';
import type { DriverContext } from '../../src/drivers/driver.js';
import type { OpenPort } from '../../src/drivers/serial-bridge/index.js';
import { encode, parseLine, type Frame } from '../../src/drivers/serial-bridge/protocol.js';
import { createLogger, createSink } from '../../src/runtime/log.js';

export const PATH = '/dev/ttyBRIDGE';
// @serialport/binding-mock as SerialPortMock holds it, not imported here: the
// package ships a CommonJS and an ES build with separate port tables (and no
// types for the ES one), and serialport, being CommonJS, sees only the first.
export const binding = SerialPortMock.binding;

/** Lets the mock binding's nextTick/promise chains run (no time passes). */
export const settle = async (): Promise<void> => {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
};
export const advance = async (ms: number): Promise<void> => {
  await vi.advanceTimersByTimeAsync(ms);
  await settle();
};

/** The board's side of the mock port: what it says, what it was sent, its cable. */
export function board() {
  const ports: SerialPortMock[] = [];
  const openedAt: number[] = [];
  let seq = 0;
  binding.createPort(PATH, { record: true });
  const open: OpenPort = ({ path, baudRate }) => {
    openedAt.push(Date.now());
    const p = new SerialPortMock({ path, baudRate, autoOpen: false });
    ports.push(p);
    return p;
  };
  const wire = () => {
    const p = ports.at(-1)?.port;
    if (!p?.isOpen) throw new Error('the board is not connected');
    return p;
  };
  return {
    open,
    openedAt,
    raw: (bytes: string | Buffer) => wire().emitData(bytes),
    say(type: string, ...fields: string[]) {
      wire().emitData(encode(seq, type, ...fields));
      seq = (seq + 1) & 0xff;
    },
    /** Frames that never reached the agent. */
    lose: (n: number) => void (seq = (seq + n) & 0xff),
    hello(...chs: [id: string, kind: string, unit: string, access: string][]) {
      seq = 0; // a booting board starts counting again
      this.say('HELLO', 'xia-test', '1.2.0', String(chs.length));
      for (const ch of chs) this.say('CH', ...ch);
    },
    /** Every well-formed frame the agent wrote, on every port it opened. */
    received: (): Frame[] =>
      ports
        .flatMap((p) => (p.port?.recording.toString('latin1') ?? '').split('\n'))
        .map((l) => parseLine(l))
        .flatMap((r) => (r.ok ? [r.frame] : [])),
    /** The cable is pulled: the port closes under the driver and cannot be opened again. */
    unplug() {
      binding.reset();
      ports.at(-1)?.close();
    },
    plug: () => binding.createPort(PATH, { record: true }),
  };
}

/** The agent's side of DriverContext, recording what the driver told it. */
export function agentSide(configured: string[] = []) {
  const devices = new Map<string, { info: DeviceInfo; actuator: Actuator | undefined }>();
  const events: string[] = [];
  const readings: [string, Value][] = [];
  const faults: [string, string][] = [];
  const lines: string[] = [];
  const ctx: DriverContext = {
    report: (id, v) => void readings.push([id, v]),
    fault: (id, m) => void faults.push([id, m]),
    add(info, actuator) {
      events.push(`add ${info.id}`);
      devices.set(info.id, { info, actuator });
    },
    remove(id) {
      events.push(`remove ${id}`);
      devices.delete(id);
    },
    taken: (id) => configured.includes(id) || devices.has(id),
    log: createLogger(createSink('debug', (l) => lines.push(l)), 'driver:bridge'),
  };
  const logged = (msg: string): unknown[] => lines.map((l) => JSON.parse(l) as { msg: string }).filter((r) => r.msg === msg);
  return { ctx, devices, events, readings, faults, logged };
}
