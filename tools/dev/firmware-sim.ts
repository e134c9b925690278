// A firmware simulator: plays the microcontroller side of the bridge protocol
// on a serial port (one end of a socat pty pair), with the faults a real board
// rarely shows on demand: dropped and corrupted lines, silence, reboots, floods.
//   node dist-tools/tools/dev/firmware-sim.js --port /path/to/pty

import { SerialPort } from 'serialport';
import { encode, LineSplitter, parseLine, type ChannelType, type Frame } from '../../src/drivers/serial-bridge/protocol.js';

export interface SimChannel {
  id: string;
  kind: ChannelType;
  unit?: string;
  writable: boolean;
  value: number | boolean | string;
  min?: number;
  max?: number;
}

export interface SimFaults {
  /** Probability that an outgoing line is not sent. */
  drop: number;
  /** Probability that an outgoing line has a byte changed. */
  corrupt: number;
  /** Send nothing at all (a hung board). */
  silent: boolean;
  /** Refuse every SET with this reason. */
  nak?: string;
}

export class FirmwareSim {
  readonly faults: SimFaults = { drop: 0, corrupt: 0, silent: false };
  readonly received: Frame[] = [];
  private port?: SerialPort;
  private seq = 0;
  private timers: NodeJS.Timeout[] = [];
  private readonly random: () => number;

  constructor(
    private readonly opts: { path: string; channels: SimChannel[]; firmware?: string; heartbeatMs?: number; dataMs?: number; random?: () => number },
  ) {
    this.random = opts.random ?? Math.random;
  }

  get channels(): SimChannel[] {
    return this.opts.channels;
  }

  async start(): Promise<void> {
    const port = new SerialPort({ path: this.opts.path, baudRate: 115200, autoOpen: false });
    port.on('error', () => {});
    const splitter = new LineSplitter((line) => this.onLine(line), () => {});
    port.on('data', (b: Buffer) => splitter.push(b));
    await new Promise<void>((resolve, reject) => port.open((err) => (err ? reject(err) : resolve())));
    this.port = port;
    this.hello();
    this.timers.push(setInterval(() => this.frame('HB'), this.opts.heartbeatMs ?? 2000));
    this.timers.push(setInterval(() => this.data(), this.opts.dataMs ?? 1000));
  }

  async stop(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    const p = this.port;
    this.port = undefined;
    if (p?.isOpen) await new Promise<void>((r) => p.close(() => r()));
  }

  /** A reboot: sequence numbers restart and HELLO is sent again (optionally with other channels). */
  reboot(channels?: SimChannel[]): void {
    if (channels) this.opts.channels.splice(0, this.opts.channels.length, ...channels);
    this.seq = 0;
    this.hello();
  }

  /** Write raw bytes (garbage, floods, half lines). */
  inject(raw: string | Buffer): void {
    this.port?.write(raw);
  }

  value(id: string): SimChannel['value'] | undefined {
    return this.opts.channels.find((c) => c.id === id)?.value;
  }

  private hello(): void {
    this.frame('HELLO', this.opts.firmware ?? 'xia-sim', '1.0.0', String(this.opts.channels.length));
    for (const c of this.opts.channels) this.frame('CH', c.id, c.kind, c.unit || '-', c.writable ? 'rw' : 'ro');
    this.data();
  }

  private show(c: SimChannel): string {
    return typeof c.value === 'boolean' ? (c.value ? '1' : '0') : typeof c.value === 'number' ? c.value.toFixed(1) : c.value;
  }

  private data(ids?: string[]): void {
    for (const c of this.opts.channels) {
      if (c.kind === 'n' && !c.writable && typeof c.value === 'number') {
        const lo = c.min ?? 0;
        const hi = c.max ?? 100;
        c.value = Math.min(hi, Math.max(lo, c.value + (this.random() - 0.5) * (hi - lo) * 0.01));
      }
    }
    const chosen = this.opts.channels.filter((c) => !ids || ids.includes(c.id));
    // Several channels per line, within the line limit.
    for (let i = 0; i < chosen.length; i += 3) this.frame('D', ...chosen.slice(i, i + 3).map((c) => `${c.id}=${this.show(c)}`));
  }

  private frame(type: string, ...fields: string[]): void {
    const line = encode(this.seq, type, ...fields);
    this.seq = (this.seq + 1) & 0xff;
    if (!this.port || this.faults.silent || this.random() < this.faults.drop) return;
    if (this.random() < this.faults.corrupt) {
      const i = Math.floor(this.random() * (line.length - 1));
      this.port.write(line.slice(0, i) + String.fromCharCode(line.charCodeAt(i) ^ 0x01) + line.slice(i + 1));
      return;
    }
    this.port.write(line);
  }

  private onLine(line: string): void {
    const r = parseLine(line);
    if (!r.ok) return;
    const f = r.frame;
    this.received.push(f);
    if (this.faults.silent) return;
    if (f.type === 'WHO') return this.hello();
    if (f.type !== 'SET') return;
    const c = this.opts.channels.find((ch) => ch.id === f.id);
    const nak = (reason: string): void => this.frame('NAK', String(f.seq), reason);
    if (this.faults.nak) return nak(this.faults.nak);
    if (!c) return nak('unknown');
    if (!c.writable) return nak('readonly');
    let v: SimChannel['value'];
    if (c.kind === 'b') {
      if (f.value !== '0' && f.value !== '1') return nak('type');
      v = f.value === '1';
    } else if (c.kind === 'n') {
      const n = Number(f.value);
      if (!Number.isFinite(n)) return nak('type');
      if ((c.min !== undefined && n < c.min) || (c.max !== undefined && n > c.max)) return nak('range');
      v = n;
    } else v = f.value;
    c.value = v;
    this.frame('ACK', String(f.seq));
    this.data([c.id]);
  }
}

export const DEMO_CHANNELS: SimChannel[] = [
  { id: 'temperature', kind: 'n', unit: 'degC', writable: false, value: 21.4, min: 18, max: 26 },
  { id: 'humidity', kind: 'n', unit: '%', writable: false, value: 48, min: 35, max: 60 },
  { id: 'fan', kind: 'b', writable: true, value: false },
  { id: 'setpoint', kind: 'n', unit: 'degC', writable: true, value: 21, min: 5, max: 30 },
];

if (process.argv[1]?.endsWith('firmware-sim.js')) {
  const i = process.argv.indexOf('--port');
  const path = i > 0 ? process.argv[i + 1] : undefined;
  if (!path) {
    process.stderr.write('usage: firmware-sim --port <serial port or pty>\n');
    process.exit(2);
  }
  const sim = new FirmwareSim({ path, channels: DEMO_CHANNELS.map((c) => ({ ...c })) });
  await sim.start();
  process.stderr.write(`firmware simulator on ${path}\n`);
  process.on('SIGTERM', () => void sim.stop().then(() => process.exit(0)));
  process.on('SIGINT', () => void sim.stop().then(() => process.exit(0)));
}
