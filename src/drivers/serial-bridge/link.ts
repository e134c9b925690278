// The serial line to a firmware bridge: opens the port, turns its bytes into
// frames (counting what it has to drop), notices when the bridge goes silent,
// and reopens a port that vanished (USB unplugged) with backoff. It knows
// nothing of channels or SETs; it tells its owner what happened.

import type { Clock, TimerHandle } from '../../core/clock.js';
import type { Logger } from '../../runtime/log.js';
import { backoff } from '../../util/backoff.js';
import { LineSplitter, parseLine, type Frame } from './protocol.js';

/** Three missed firmware heartbeats. */
export const SILENCE_MS = 6000;
const REOPEN_INITIAL_MS = 500;
const REOPEN_MAX_MS = 10_000;

/**
 * What the link needs from a serial port: the part of node-serialport's
 * SerialPort (and of its SerialPortMock) that it uses, so a test can hand it a
 * port on the mock binding and play the device's side.
 */
export interface Port {
  readonly isOpen: boolean;
  open(callback: (err: Error | null) => void): void;
  write(data: string): unknown;
  close(callback?: (err: Error | null) => void): void;
  on(event: 'data', listener: (chunk: Buffer) => void): unknown;
  on(event: 'error', listener: (err: Error) => void): unknown;
  on(event: 'close', listener: () => void): unknown;
}

/** Makes a port object, not yet open (the link opens it and handles the outcome). */
export type OpenPort = (options: { path: string; baudRate: number }) => Port;

/** The link's own counters; the driver keeps the totals. */
export type LinkCounter = 'frames' | 'gaps' | 'badCrc' | 'malformed' | 'tooLong' | 'reopens';

export interface LinkDeps {
  path: string;
  baudRate: number;
  open: OpenPort;
  clock: Clock;
  log: Logger;
  random?: () => number;
  count(what: LinkCounter): void;
  /** A frame with a good CRC arrived. */
  frame(f: Frame): void;
  /** The port is open (again): the bridge may have been running for hours, so ask it who it is. */
  opened(): void;
  /** The port closed, for whatever reason: nothing sent on it will be answered. */
  closed(): void;
  /** The bridge's channels cannot be trusted until it speaks again. */
  fault(why: string): void;
}

export interface Link {
  start(): void;
  stop(): Promise<void>;
  /** Sends a line if the port is open; false if it is not. */
  write(line: string): boolean;
  isOpen(): boolean;
}

export function link(deps: LinkDeps): Link {
  const { path, baudRate, clock, log } = deps;
  let port: Port | undefined;
  let stopping = false;
  let attempt = 0;
  let reopenTimer: TimerHandle | undefined;
  let silenceTimer: TimerHandle | undefined;
  /** The bridge's last sequence number; unknown until the first frame after opening. */
  let rxSeq: number | undefined;

  const armSilence = (): void => {
    clock.clearTimeout(silenceTimer);
    silenceTimer = clock.setTimeout(() => {
      log.warn('bridge silent', { port: path, forMs: SILENCE_MS });
      deps.fault('the bridge stopped answering');
    }, SILENCE_MS);
  };

  const onLine = (line: string): void => {
    const r = parseLine(line);
    if (!r.ok) {
      deps.count(r.error === 'crc' || r.error === 'no-crc' ? 'badCrc' : r.error === 'too-long' ? 'tooLong' : 'malformed');
      log.debug('dropped a bad line', () => ({ error: r.error, line: line.slice(0, 40) }));
      return;
    }
    const f = r.frame;
    deps.count('frames');
    // A HELLO restarts the bridge's counter, so it is never a gap.
    if (rxSeq !== undefined && f.type !== 'HELLO' && f.seq !== ((rxSeq + 1) & 0xff)) deps.count('gaps');
    rxSeq = f.seq;
    armSilence();
    deps.frame(f);
  };

  const scheduleReopen = (): void => {
    if (stopping || reopenTimer) return;
    const delay = backoff(++attempt, REOPEN_INITIAL_MS, REOPEN_MAX_MS, deps.random);
    reopenTimer = clock.setTimeout(() => {
      reopenTimer = undefined;
      open();
    }, delay);
  };

  const open = (): void => {
    const p = deps.open({ path, baudRate });
    // One splitter per port: half a line left over from a vanished port is not glued to the next one.
    const splitter = new LineSplitter(onLine, () => deps.count('tooLong'));
    p.on('data', (chunk) => splitter.push(chunk));
    // Always handled: an unhandled 'error' would take the agent down.
    p.on('error', (err) => log.warn('serial port error', { port: path, error: err }));
    p.on('close', () => {
      if (port !== p) return; // a port we gave up on, or closed ourselves
      port = undefined;
      clock.clearTimeout(silenceTimer);
      deps.closed();
      if (stopping) return;
      log.warn('serial port gone; reopening', { port: path });
      deps.fault('serial port gone');
      scheduleReopen();
    });
    p.open((err) => {
      if (err) {
        // Debug only: while a board is unplugged this repeats every few seconds.
        log.debug('serial port not available', { port: path, error: err });
        return scheduleReopen();
      }
      if (stopping) return void p.close();
      if (attempt > 0) deps.count('reopens');
      attempt = 0;
      port = p;
      rxSeq = undefined;
      log.info('serial port open', { port: path, baud: baudRate });
      armSilence();
      deps.opened();
    });
  };

  return {
    start() {
      stopping = false;
      open();
    },
    async stop() {
      stopping = true;
      clock.clearTimeout(reopenTimer);
      reopenTimer = undefined;
      clock.clearTimeout(silenceTimer);
      const p = port;
      port = undefined;
      if (p?.isOpen) await new Promise<void>((r) => p.close(() => r()));
    },
    write(line) {
      if (!port) return false;
      port.write(line);
      return true;
    },
    isOpen: () => port !== undefined,
  };
}
