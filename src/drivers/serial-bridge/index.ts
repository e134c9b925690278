// The serial-bridge driver: a microcontroller running our firmware bridge on a
// serial port (firmware-bridge/PROTOCOL.md). Its hello makes its channels
// devices; D frames are readings; SET waits for ACK/NAK; garbage is counted and
// dropped; a port that vanishes is reopened with backoff while its channels
// show a fault.

import { SerialPort } from 'serialport';
import type { DeviceType, Value } from '../../core/devices.js';
import type { BridgeConfig } from '../../config/schema.js';
import { backoff } from '../../util/backoff.js';
import { encode, isValue, LineSplitter, parseLine, type ChannelType, type Frame } from './protocol.js';
import type { Driver, DriverContext, DriverStats } from '../driver.js';

const TYPES: Record<ChannelType, DeviceType> = { n: 'number', b: 'boolean', s: 'string' };
/** The wire is ASCII; these units are shown as people write them. */
const UNITS: Record<string, string> = { degC: '°C', degF: '°F', deg: '°', pct: '%', ohm: 'Ω', uS: 'µS' };
/** Three missed firmware heartbeats. */
export const SILENCE_MS = 6000;
const AGENT_HEARTBEAT_MS = 5000;

export interface BridgeStats extends DriverStats {
  frames: number;
  badCrc: number;
  malformed: number;
  tooLong: number;
  unknown: number;
  gaps: number;
  reopens: number;
  firmware?: string;
}

interface Channel {
  id: string;
  kind: ChannelType;
  unit: string;
  writable: boolean;
}

interface Pending {
  resolve: (v: Value) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
  value: Value;
}

export function serialBridge(cfg: BridgeConfig, opts: { random?: () => number } = {}): Driver & { stats(): BridgeStats } {
  const stats: BridgeStats = { dropped: 0, frames: 0, badCrc: 0, malformed: 0, tooLong: 0, unknown: 0, gaps: 0, reopens: 0 };
  let ctx: DriverContext | undefined;
  let port: SerialPort | undefined;
  let stopping = false;
  let attempt = 0;
  let reopenTimer: NodeJS.Timeout | undefined;
  let silenceTimer: NodeJS.Timeout | undefined;
  let heartbeat: NodeJS.Timeout | undefined;
  let txSeq = 0;
  let rxSeq: number | undefined;
  let lastWho = 0;
  const channels = new Map<string, Channel>();
  /** Channels refused (their id clashes): their readings are ignored without asking WHO again. */
  const ignored = new Set<string>();
  let hello: { expected: number; got: Channel[]; firmware: string } | undefined;
  const pending = new Map<number, Pending>();

  const log = () => ctx!.log;
  const faultAll = (why: string): void => {
    for (const id of channels.keys()) ctx?.fault(id, why);
  };

  const send = (type: string, ...fields: string[]): number => {
    const seq = txSeq;
    txSeq = (txSeq + 1) & 0xff;
    port?.write(encode(seq, type, ...fields));
    return seq;
  };

  const who = (): void => {
    const now = Date.now();
    if (now - lastWho < 1000) return;
    lastWho = now;
    send('WHO');
  };

  const armSilence = (): void => {
    clearTimeout(silenceTimer);
    silenceTimer = setTimeout(() => {
      log().warn('bridge silent', { port: cfg.port, forMs: SILENCE_MS });
      faultAll('the bridge stopped answering');
    }, SILENCE_MS);
  };

  const typed = (ch: Channel, raw: string): Value | undefined => {
    if (!isValue(ch.kind, raw)) return undefined;
    return ch.kind === 'n' ? Number(raw) : ch.kind === 'b' ? raw === '1' : raw;
  };

  const applyHello = (firmware: string, got: Channel[]): void => {
    stats.firmware = firmware;
    const ids = new Set(got.map((c) => c.id));
    for (const id of [...channels.keys()]) {
      if (!ids.has(id)) {
        channels.delete(id);
        ctx?.remove(id);
      }
    }
    for (const ch of got) {
      const known = channels.get(ch.id);
      if (known && known.kind === ch.kind && known.unit === ch.unit && known.writable === ch.writable) continue;
      if (known) ctx?.remove(ch.id); // same id, new shape: replace it
      else if (ctx?.taken(ch.id)) {
        if (!ignored.has(ch.id)) log().error('bridge channel clashes with a configured device; ignored', { channel: ch.id });
        ignored.add(ch.id);
        continue;
      }
      channels.set(ch.id, ch);
      ctx?.add(
        { id: ch.id, name: ch.id, type: TYPES[ch.kind], unit: UNITS[ch.unit] ?? ch.unit, writable: ch.writable, deadband: 0, decimals: 1, staleAfterMs: 30_000 },
        ch.writable ? { write: (id, v) => write(id, v) } : undefined,
      );
    }
    log().info('bridge hello', { firmware, channels: [...channels.keys()] });
  };

  const onFrame = (f: Frame): void => {
    stats.frames++;
    if (rxSeq !== undefined && f.type !== 'HELLO' && f.seq !== ((rxSeq + 1) & 0xff)) stats.gaps++;
    rxSeq = f.seq;
    armSilence();
    switch (f.type) {
      case 'HELLO':
        hello = { expected: f.channels, got: [], firmware: `${f.firmware} ${f.version}` };
        if (f.channels === 0) applyHello(hello.firmware, []);
        return;
      case 'CH': {
        if (!hello) return who();
        hello.got.push({ id: f.id, kind: f.kind, unit: f.unit, writable: f.writable });
        if (hello.got.length === hello.expected) {
          applyHello(hello.firmware, hello.got);
          hello = undefined;
        }
        return;
      }
      case 'D':
        for (const [id, raw] of f.values) {
          const ch = channels.get(id);
          if (!ch) {
            if (!ignored.has(id)) who();
            continue;
          }
          const v = typed(ch, raw);
          if (v === undefined) {
            stats.malformed++;
            stats.dropped++;
            continue;
          }
          ctx?.report(id, v);
        }
        return;
      case 'ACK':
      case 'NAK': {
        const p = pending.get(f.ref);
        if (!p) return;
        pending.delete(f.ref);
        clearTimeout(p.timer);
        if (f.type === 'ACK') p.resolve(p.value);
        else p.reject(new Error(`the bridge refused it (${f.reason})`));
        return;
      }
      case 'ERR':
        if (f.id === '-') faultAll(`bridge error: ${f.reason}`);
        else ctx?.fault(f.id, `bridge error: ${f.reason}`);
        return;
      case 'HB':
        return;
      case 'UNKNOWN':
        stats.unknown++;
        return;
      default:
        return; // SET and WHO are ours; a bridge does not send them
    }
  };

  const onLine = (line: string): void => {
    const r = parseLine(line);
    if (r.ok) return onFrame(r.frame);
    if (r.error === 'crc' || r.error === 'no-crc') stats.badCrc++;
    else if (r.error === 'too-long') stats.tooLong++;
    else stats.malformed++;
    stats.dropped++;
    log().debug('dropped a bad line', () => ({ error: r.error, line: line.slice(0, 40) }));
  };

  const scheduleReopen = (): void => {
    if (stopping || reopenTimer) return;
    const delay = backoff(++attempt, 500, 10_000, opts.random);
    reopenTimer = setTimeout(() => {
      reopenTimer = undefined;
      open();
    }, delay);
  };

  const open = (): void => {
    const p = new SerialPort({ path: cfg.port, baudRate: cfg.baud, autoOpen: false });
    const splitter = new LineSplitter(onLine, () => {
      stats.tooLong++;
      stats.dropped++;
    });
    p.on('data', (chunk: Buffer) => splitter.push(chunk));
    p.on('error', (err) => log().warn('serial port error', { port: cfg.port, error: err }));
    p.on('close', () => {
      if (port !== p) return;
      port = undefined;
      clearTimeout(silenceTimer);
      failPending('the serial port closed');
      if (stopping) return;
      log().warn('serial port gone; reopening', { port: cfg.port });
      faultAll('serial port gone');
      scheduleReopen();
    });
    p.open((err) => {
      if (err) {
        log().debug('serial port not available', { port: cfg.port, error: err });
        return scheduleReopen();
      }
      if (stopping) return void p.close();
      if (attempt > 0) stats.reopens++;
      attempt = 0;
      port = p;
      rxSeq = undefined;
      log().info('serial port open', { port: cfg.port, baud: cfg.baud });
      armSilence();
      who();
    });
  };

  function failPending(why: string): void {
    for (const [, w] of pending) {
      clearTimeout(w.timer);
      w.reject(new Error(why));
    }
    pending.clear();
  }

  function write(id: string, value: Value): Promise<Value> {
    const ch = channels.get(id);
    if (!ch) return Promise.reject(new Error('the bridge no longer has this channel'));
    if (!port) return Promise.reject(new Error('the serial port is not open'));
    const raw = typeof value === 'boolean' ? (value ? '1' : '0') : String(value);
    if (!isValue(ch.kind, raw)) return Promise.reject(new Error(`"${raw}" cannot be sent to the bridge`));
    return new Promise((resolve, reject) => {
      const seq = send('SET', id, raw);
      const timer = setTimeout(() => {
        if (pending.get(seq)?.timer === timer) pending.delete(seq);
        reject(new Error(`no answer from the bridge within ${cfg.ackTimeoutMs} ms`));
      }, cfg.ackTimeoutMs);
      pending.get(seq)?.reject(new Error('superseded'));
      pending.set(seq, { resolve, reject, timer, value });
    });
  }

  return {
    kind: 'serial-bridge',
    stats: () => ({ ...stats }),
    async start(c) {
      ctx = c;
      stopping = false;
      open();
      heartbeat = setInterval(() => port && send('HB'), AGENT_HEARTBEAT_MS);
    },
    async stop() {
      stopping = true;
      clearTimeout(reopenTimer);
      clearTimeout(silenceTimer);
      clearInterval(heartbeat);
      failPending('the agent is stopping');
      const p = port;
      port = undefined;
      if (p?.isOpen) await new Promise<void>((r) => p.close(() => r()));
    },
    write,
  };
}
