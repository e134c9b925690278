// The serial-bridge driver: a microcontroller running our firmware bridge on a
// serial port (firmware-bridge/PROTOCOL.md). Its hello makes its channels
// devices; D frames are readings; SET waits for ACK/NAK; garbage is counted and
// dropped; a port that vanishes is reopened with backoff while its channels
// show a fault. This file wires the pieces: link.ts (the port), channels.ts
// (the devices), requests.ts (what we send and the answers).

import { systemClock, type Clock, type TimerHandle } from '../../core/clock.js';
import type { Value } from '../../core/devices.js';
import type { BridgeConfig } from '../../config/schema.js';
import type { Driver, DriverStats } from '../driver.js';
import { channels, type Channels } from './channels.js';
import { link, type Link, type OpenPort } from './link.js';
import { isValue } from './protocol.js';
import { requests, type Requests } from './requests.js';

export { SILENCE_MS, type OpenPort, type Port } from './link.js';

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

export interface BridgeDriver extends Driver {
  stats(): BridgeStats;
}

type Counter = Exclude<keyof BridgeStats, 'firmware' | 'dropped'>;

export interface BridgeDeps {
  /** Makes the port; by default node-serialport's SerialPort, imported when the driver starts. */
  open?: OpenPort;
  clock?: Clock;
  /** Backoff jitter. */
  random?: () => number;
}

/** serialport (with its native addon, ~0.8 MiB) is loaded only by a gateway that has a bridge. */
async function serialportOpener(): Promise<OpenPort> {
  const { SerialPort } = await import('serialport');
  return ({ path, baudRate }) => new SerialPort({ path, baudRate, autoOpen: false });
}

export function serialBridge(cfg: BridgeConfig, deps: BridgeDeps = {}): BridgeDriver {
  const clock = deps.clock ?? systemClock;
  const counts: Omit<BridgeStats, 'firmware'> = { dropped: 0, frames: 0, badCrc: 0, malformed: 0, tooLong: 0, unknown: 0, gaps: 0, reopens: 0 };
  const count = (what: Counter): void => {
    counts[what]++;
    // These are lines or values thrown away; unknown frame types are ignored, not dropped.
    if (what === 'badCrc' || what === 'malformed' || what === 'tooLong') counts.dropped++;
  };
  let running: { link: Link; channels: Channels; requests: Requests; heartbeat: TimerHandle } | undefined;

  function write(id: string, value: Value): Promise<Value> {
    const ch = running?.channels.get(id);
    if (!running || !ch) return Promise.reject(new Error('the bridge no longer has this channel'));
    if (!running.link.isOpen()) return Promise.reject(new Error('the serial port is not open'));
    const raw = typeof value === 'boolean' ? (value ? '1' : '0') : String(value);
    if (!isValue(ch.kind, raw)) return Promise.reject(new Error(`"${raw}" cannot be sent to the bridge`));
    return running.requests.set(id, raw).then(() => value);
  }

  return {
    kind: 'serial-bridge',
    stats() {
      const firmware = running?.channels.firmware();
      return firmware === undefined ? { ...counts } : { ...counts, firmware };
    },
    async start(ctx) {
      const open = deps.open ?? (await serialportOpener());
      const out: Requests = requests({ write: (line) => void port.write(line), clock, timeoutMs: cfg.ackTimeoutMs });
      const devices: Channels = channels({ ctx, clock, sendWho: () => void out.send('WHO'), actuator: { write }, count });
      const port: Link = link({
        path: cfg.port,
        baudRate: cfg.baud,
        open,
        clock,
        log: ctx.log,
        random: deps.random,
        count,
        frame(f) {
          switch (f.type) {
            case 'ACK':
            case 'NAK':
              return out.answer(f);
            case 'UNKNOWN':
              return void count('unknown');
            case 'HB':
              return; // the link has already noted that the bridge is alive
            default:
              return devices.frame(f); // SET and WHO are ours; a bridge does not send them, and channels ignores them
          }
        },
        opened: () => devices.who(),
        closed: () => out.failAll('the serial port closed'),
        fault: (why) => devices.faultAll(why),
      });
      const heartbeat = clock.setInterval(() => port.isOpen() && out.send('HB'), AGENT_HEARTBEAT_MS);
      running = { link: port, channels: devices, requests: out, heartbeat };
      port.start();
    },
    async stop() {
      if (!running) return;
      clock.clearInterval(running.heartbeat);
      running.requests.failAll('the agent is stopping');
      await running.link.stop();
    },
    write,
  };
}
