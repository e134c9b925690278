// A bridge's channels as the agent's devices. The bridge describes itself in a
// HELLO followed by its CH frames; that set replaces whatever it said before
// (a reboot may bring other channels). D frames become readings, ERR frames
// faults. A channel whose id is already a configured device is refused.

import type { Clock } from '../../core/clock.js';
import type { Actuator, DeviceType, Value } from '../../core/devices.js';
import type { DriverContext } from '../driver.js';
import { isValue, type ChannelType, type Frame } from './protocol.js';

const TYPES: Record<ChannelType, DeviceType> = { n: 'number', b: 'boolean', s: 'string' };
/** The wire is ASCII; these units are shown as people write them. */
const UNITS: Record<string, string> = { degC: '°C', degF: '°F', deg: '°', pct: '%', ohm: 'Ω', uS: 'µS' };
/** A burst of unknown readings (a bridge we have not heard say hello) asks WHO once, not once per line. */
const WHO_EVERY_MS = 1000;

export interface Channel {
  readonly id: string;
  readonly kind: ChannelType;
  /** As on the wire (ASCII); shown through UNITS. */
  readonly unit: string;
  readonly writable: boolean;
}

export interface ChannelsDeps {
  ctx: DriverContext;
  clock: Clock;
  /** Asks the bridge to send its HELLO again. */
  sendWho(): void;
  /** Applies a value to a writable channel (the driver's write). */
  actuator: Actuator;
  count(what: 'malformed'): void;
}

export interface Channels {
  /** HELLO, CH, D and ERR frames; the others are not about channels. */
  frame(f: Frame): void;
  get(id: string): Channel | undefined;
  /** Every channel shows this fault until its next reading. */
  faultAll(why: string): void;
  /** Asks WHO, at most once a second. */
  who(): void;
  /** "<firmware> <version>" from the last complete hello. */
  firmware(): string | undefined;
}

export function channels(deps: ChannelsDeps): Channels {
  const { ctx, clock } = deps;
  const known = new Map<string, Channel>();
  /** Channels refused (their id clashes): their readings are ignored without asking WHO again. */
  const ignored = new Set<string>();
  /** A hello being received: the CH frames seen so far. */
  let hello: { expected: number; got: Channel[]; firmware: string } | undefined;
  let firmware: string | undefined;
  let lastWho: number | undefined;

  const who = (): void => {
    const now = clock.mono();
    if (lastWho !== undefined && now - lastWho < WHO_EVERY_MS) return;
    lastWho = now;
    deps.sendWho();
  };

  const typed = (ch: Channel, raw: string): Value | undefined => {
    if (!isValue(ch.kind, raw)) return undefined;
    return ch.kind === 'n' ? Number(raw) : ch.kind === 'b' ? raw === '1' : raw;
  };

  const same = (a: Channel, b: Channel): boolean => a.kind === b.kind && a.unit === b.unit && a.writable === b.writable;

  const apply = (fw: string, got: Channel[]): void => {
    firmware = fw;
    const ids = new Set(got.map((c) => c.id));
    for (const id of [...known.keys()]) {
      if (!ids.has(id)) {
        known.delete(id);
        ctx.remove(id);
      }
    }
    for (const ch of got) {
      const had = known.get(ch.id);
      if (had && same(had, ch)) continue;
      if (had) ctx.remove(ch.id); // same id, new shape: replace it
      else if (ctx.taken(ch.id)) {
        if (!ignored.has(ch.id)) ctx.log.error('bridge channel clashes with a configured device; ignored', { channel: ch.id });
        ignored.add(ch.id);
        continue;
      }
      known.set(ch.id, ch);
      ctx.add(
        { id: ch.id, name: ch.id, type: TYPES[ch.kind], unit: UNITS[ch.unit] ?? ch.unit, writable: ch.writable, deadband: 0, decimals: 1, staleAfterMs: 30_000 },
        ch.writable ? deps.actuator : undefined,
      );
    }
    ctx.log.info('bridge hello', { firmware: fw, channels: [...known.keys()] });
  };

  const faultAll = (why: string): void => {
    for (const id of known.keys()) ctx.fault(id, why);
  };

  return {
    frame(f) {
      switch (f.type) {
        case 'HELLO':
          hello = { expected: f.channels, got: [], firmware: `${f.firmware} ${f.version}` };
          if (f.channels === 0) apply(hello.firmware, []);
          return;
        case 'CH': {
          // A CH without its HELLO (we opened the port mid-hello): ask for the whole set.
          if (!hello) return who();
          hello.got.push({ id: f.id, kind: f.kind, unit: f.unit, writable: f.writable });
          if (hello.got.length === hello.expected) {
            apply(hello.firmware, hello.got);
            hello = undefined;
          }
          return;
        }
        case 'D':
          for (const [id, raw] of f.values) {
            const ch = known.get(id);
            if (!ch) {
              if (!ignored.has(id)) who();
              continue;
            }
            const v = typed(ch, raw);
            if (v === undefined) {
              deps.count('malformed');
              continue;
            }
            ctx.report(id, v);
          }
          return;
        case 'ERR':
          if (f.id === '-') faultAll(`bridge error: ${f.reason}`);
          else ctx.fault(f.id, `bridge error: ${f.reason}`);
          return;
        default:
          return;
      }
    },
    get: (id) => known.get(id),
    faultAll,
    who,
    firmware: () => firmware,
  };
}
