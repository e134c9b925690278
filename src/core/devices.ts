// The device registry: what each device is, its latest reading and health, and
// the one path by which a value is set. No I/O: drivers are handed in.

import type { Clock } from './clock.js';
import { StanzaError } from './errors.js';
import { clip } from '../util/text.js';

export type DeviceType = 'number' | 'boolean' | 'string';
export type Value = number | boolean | string;
export type Health = 'ok' | 'waiting' | 'stale' | 'fault';

export interface DeviceInfo {
  id: string;
  name: string;
  type: DeviceType;
  unit: string;
  writable: boolean;
  deadband: number;
  decimals: number;
  min?: number;
  max?: number;
  staleAfterMs: number;
}

/** What the registry needs from a driver to change a device. */
export interface Actuator {
  write(id: string, value: Value): Promise<Value>;
}

export interface DeviceState {
  readonly info: DeviceInfo;
  value?: Value;
  /** When the value was read, by the wall clock (stamps: readouts, history). */
  at?: number;
  /** When the value arrived, on the monotonic clock (ages and staleness: a clock set by NTP does not move it). */
  seen?: number;
  fault?: string;
}

export type ChangeCause = 'reading' | 'command' | 'fault' | 'added' | 'removed';

export interface Change {
  id: string;
  cause: ChangeCause;
  value?: Value;
}

export type ChangeListener = (change: Change) => void;

export class Devices {
  private readonly states = new Map<string, DeviceState>();
  private readonly actuators = new Map<string, Actuator>();
  private readonly listeners = new Set<ChangeListener>();
  private readonly settledListeners = new Set<() => void>();
  private depth = 0;
  /** Listener exceptions are counted, not thrown back into drivers. */
  listenerErrors = 0;
  /** Readings accepted since start. */
  readings = 0;

  constructor(private readonly deps: { clock: Clock; onListenerError?: (err: unknown) => void }) {}

  add(info: DeviceInfo, actuator?: Actuator): void {
    if (this.states.has(info.id)) throw new Error(`device ${info.id} already registered`);
    this.states.set(info.id, { info });
    if (actuator) this.actuators.set(info.id, actuator);
    this.emit({ id: info.id, cause: 'added' });
  }

  /** A device a driver no longer has (a firmware bridge rebooted with other channels). */
  remove(id: string): void {
    if (!this.states.delete(id)) return;
    this.actuators.delete(id);
    this.emit({ id, cause: 'removed' });
  }

  ids(): string[] {
    return [...this.states.keys()];
  }

  list(): DeviceState[] {
    return [...this.states.values()];
  }

  get(id: string): DeviceState | undefined {
    return this.states.get(id);
  }

  /** The device, or item-not-found. */
  require(id: string): DeviceState {
    const s = this.states.get(id);
    if (!s) throw new StanzaError('item-not-found', `no device "${clip(id)}"`);
    return s;
  }

  onChange(listener: ChangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Called when the outermost batch() is over: one request's changes are complete. */
  onSettled(listener: () => void): () => void {
    this.settledListeners.add(listener);
    return () => this.settledListeners.delete(listener);
  }

  /** Inside batch(): listeners that report to people (presence) wait for onSettled. */
  get batching(): boolean {
    return this.depth > 0;
  }

  /** Run one request's changes as a unit: every change is still emitted, and onSettled fires once at the end. */
  async batch<T>(fn: () => Promise<T>): Promise<T> {
    this.depth++;
    try {
      return await fn();
    } finally {
      if (--this.depth === 0) {
        for (const l of this.settledListeners) {
          try {
            l();
          } catch (err) {
            this.listenerErrors++;
            this.deps.onListenerError?.(err);
          }
        }
      }
    }
  }

  /** A driver reports a reading. */
  report(id: string, value: Value, at = this.deps.clock.now()): void {
    const s = this.states.get(id);
    if (!s) return;
    if (typeof value !== s.info.type || (typeof value === 'number' && !Number.isFinite(value))) {
      this.fault(id, `driver produced ${JSON.stringify(value)} for a ${s.info.type} device`);
      return;
    }
    s.value = value;
    s.at = at;
    // Taken `now − at` before it arrived (a driver may say so): its age counts from then, on the monotonic clock.
    s.seen = this.deps.clock.mono() - Math.max(0, this.deps.clock.now() - at);
    s.fault = undefined;
    this.readings++;
    this.emit({ id, cause: 'reading', value });
  }

  /** A driver reports that a device cannot be read. */
  fault(id: string, message: string): void {
    const s = this.states.get(id);
    if (!s || s.fault === message) return;
    s.fault = message;
    this.emit({ id, cause: 'fault' });
  }

  /** `mono`: the moment asked about, on the clock's monotonic scale (default: now). */
  health(id: string, mono = this.deps.clock.mono()): Health {
    const s = this.require(id);
    if (s.fault) return 'fault';
    if (s.seen === undefined) return 'waiting';
    return mono - s.seen > s.info.staleAfterMs ? 'stale' : 'ok';
  }

  /** How long ago the last value arrived (ms, monotonic), or undefined before the first. */
  age(id: string, mono = this.deps.clock.mono()): number | undefined {
    const s = this.states.get(id);
    return s?.seen === undefined ? undefined : Math.max(0, mono - s.seen);
  }

  /**
   * Set a device to a value (typed, or text from chat). Throws StanzaError:
   * item-not-found, not-allowed (read-only), bad-request (value), internal-server-error (driver).
   */
  async set(id: string, raw: Value): Promise<Value> {
    const s = this.require(id);
    const actuator = this.actuators.get(id);
    if (!s.info.writable || !actuator) throw new StanzaError('not-allowed', `${id} is read-only`);
    const value = parseValue(s.info, raw);
    let result: Value;
    try {
      result = await actuator.write(id, value);
    } catch (err) {
      throw new StanzaError('internal-server-error', `${id} did not accept the value: ${err instanceof Error ? err.message : String(err)}`);
    }
    s.value = result;
    s.at = this.deps.clock.now();
    s.seen = this.deps.clock.mono();
    s.fault = undefined;
    this.emit({ id, cause: 'command', value: result });
    return result;
  }

  private emit(change: Change): void {
    for (const l of this.listeners) {
      try {
        l(change);
      } catch (err) {
        this.listenerErrors++;
        this.deps.onListenerError?.(err);
      }
    }
  }
}

const TRUE_WORDS = ['on', 'true', '1', 'yes', 'open', 'high'];
const FALSE_WORDS = ['off', 'false', '0', 'no', 'closed', 'low'];

/** Turn a typed value or a word into the device's type, or throw bad-request. */
export function parseValue(info: DeviceInfo, raw: Value): Value {
  switch (info.type) {
    case 'boolean': {
      if (typeof raw === 'boolean') return raw;
      const w = String(raw).trim().toLowerCase();
      if (TRUE_WORDS.includes(w)) return true;
      if (FALSE_WORDS.includes(w)) return false;
      throw new StanzaError('bad-request', `${info.id} expects on or off, not "${clip(raw)}"`);
    }
    case 'number': {
      const n = typeof raw === 'number' ? raw : /^\s*[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?\s*$/i.test(String(raw)) ? Number(raw) : NaN;
      if (!Number.isFinite(n)) throw new StanzaError('bad-request', `${info.id} expects a number, not "${clip(raw)}"`);
      if ((info.min !== undefined && n < info.min) || (info.max !== undefined && n > info.max)) {
        throw new StanzaError('bad-request', `${info.id} accepts ${info.min ?? '−∞'} to ${info.max ?? '∞'}${info.unit ? ' ' + info.unit : ''}, not ${n}`);
      }
      return n;
    }
    case 'string':
      if (typeof raw !== 'string' && typeof raw !== 'number') {
        throw new StanzaError('bad-request', `${info.id} expects text, not ${clip(raw)}`);
      }
      return String(raw);
  }
}
