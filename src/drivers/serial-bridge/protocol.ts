// The firmware bridge protocol (firmware-bridge/PROTOCOL.md): CRC-8 framing,
// a line splitter that survives garbage, and typed frames. Pure.

export const MAX_LINE = 96;
/** Fields after the type (the firmware's fixed array). */
export const MAX_FIELDS = 6;

/** CRC-8/SMBus: polynomial 0x07, init 0x00, no reflection, no final XOR. */
export function crc8(text: string): number {
  let crc = 0;
  for (let i = 0; i < text.length; i++) {
    crc ^= text.charCodeAt(i) & 0xff;
    for (let b = 0; b < 8; b++) crc = crc & 0x80 ? ((crc << 1) ^ 0x07) & 0xff : (crc << 1) & 0xff;
  }
  return crc;
}

export type ChannelType = 'n' | 'b' | 's';

export type Frame =
  | { seq: number; type: 'HELLO'; firmware: string; version: string; channels: number }
  | { seq: number; type: 'CH'; id: string; kind: ChannelType; unit: string; writable: boolean }
  | { seq: number; type: 'D'; values: [string, string][] }
  | { seq: number; type: 'ACK'; ref: number }
  | { seq: number; type: 'NAK'; ref: number; reason: string }
  | { seq: number; type: 'ERR'; id: string; reason: string }
  | { seq: number; type: 'HB' }
  | { seq: number; type: 'SET'; id: string; value: string }
  | { seq: number; type: 'WHO' }
  | { seq: number; type: 'UNKNOWN'; name: string };

export type ParseError = 'too-long' | 'no-crc' | 'crc' | 'malformed';
export type Parsed = { ok: true; frame: Frame } | { ok: false; error: ParseError };

const ID = /^[a-z][a-z0-9_]{0,15}$/;
const NUMBER = /^-?\d+(\.\d+)?$/;
const STRING = /^[A-Za-z0-9_.:-]{1,24}$/;
const WORD = /^[A-Za-z0-9_.-]{1,32}$/;

export function isValue(kind: ChannelType, v: string): boolean {
  return kind === 'n' ? NUMBER.test(v) : kind === 'b' ? v === '0' || v === '1' : STRING.test(v);
}

export function encode(seq: number, type: string, ...fields: string[]): string {
  const body = [String(seq & 0xff), type, ...fields].join(' ');
  return `${body}*${crc8(body).toString(16).toUpperCase().padStart(2, '0')}\n`;
}

/** One line (without \n; a trailing \r is ignored) to a frame, or why not. */
export function parseLine(raw: string): Parsed {
  const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
  if (line.length + 1 > MAX_LINE) return { ok: false, error: 'too-long' };
  // The CRC marker is the third byte from the end (found by differential testing against the C++ core:
  // "…**8" is a bad CRC, not a missing one).
  const star = line.length - 3;
  if (star < 0 || line[star] !== '*') return { ok: false, error: 'no-crc' };
  const body = line.slice(0, star);
  const crc = line.slice(star + 1);
  if (!/^[0-9A-F]{2}$/.test(crc) || parseInt(crc, 16) !== crc8(body)) return { ok: false, error: 'crc' };
  const parts = body.split(' ');
  if (parts.some((p) => p.length === 0) || parts.length < 2 || parts.length > MAX_FIELDS + 2) return { ok: false, error: 'malformed' };
  const [seqText, type, ...f] = parts as [string, string, ...string[]];
  if (!/^\d{1,3}$/.test(seqText) || Number(seqText) > 255 || !/^[A-Z]{1,8}$/.test(type)) return { ok: false, error: 'malformed' };
  const seq = Number(seqText);
  const frame = typed(seq, type, f);
  return frame ? { ok: true, frame } : { ok: false, error: 'malformed' };
}

function typed(seq: number, type: string, f: string[]): Frame | undefined {
  const ref = (s: string | undefined): number | undefined => (s !== undefined && /^\d{1,3}$/.test(s) && Number(s) <= 255 ? Number(s) : undefined);
  switch (type) {
    case 'HELLO': {
      const [firmware, version, n] = f;
      if (f.length !== 3 || !WORD.test(firmware!) || !WORD.test(version!) || !/^\d{1,2}$/.test(n!)) return undefined;
      return { seq, type, firmware: firmware!, version: version!, channels: Number(n) };
    }
    case 'CH': {
      const [id, kind, unit, access] = f;
      if (f.length !== 4 || !ID.test(id!) || !['n', 'b', 's'].includes(kind!) || !/^[^\s*]{1,8}$/.test(unit!) || (access !== 'ro' && access !== 'rw')) return undefined;
      return { seq, type, id: id!, kind: kind as ChannelType, unit: unit === '-' ? '' : unit!, writable: access === 'rw' };
    }
    case 'D': {
      if (f.length === 0) return undefined;
      const values: [string, string][] = [];
      for (const pair of f) {
        const eq = pair.indexOf('=');
        const id = pair.slice(0, eq);
        const v = pair.slice(eq + 1);
        if (eq < 1 || !ID.test(id) || !(NUMBER.test(v) || STRING.test(v))) return undefined;
        values.push([id, v]);
      }
      return { seq, type, values };
    }
    case 'ACK': {
      const r = ref(f[0]);
      return f.length === 1 && r !== undefined ? { seq, type, ref: r } : undefined;
    }
    case 'NAK': {
      const r = ref(f[0]);
      return f.length === 2 && r !== undefined && WORD.test(f[1]!) ? { seq, type, ref: r, reason: f[1]! } : undefined;
    }
    case 'ERR':
      return f.length === 2 && (f[0] === '-' || ID.test(f[0]!)) && WORD.test(f[1]!) ? { seq, type, id: f[0]!, reason: f[1]! } : undefined;
    case 'HB':
      return f.length === 0 ? { seq, type } : undefined;
    case 'WHO':
      return f.length === 0 ? { seq, type } : undefined;
    case 'SET':
      return f.length === 2 && ID.test(f[0]!) && (NUMBER.test(f[1]!) || STRING.test(f[1]!)) ? { seq, type, id: f[0]!, value: f[1]! } : undefined;
    default:
      return { seq, type: 'UNKNOWN', name: type };
  }
}

/**
 * Splits a byte stream into lines of at most MAX_LINE bytes. An overlong line
 * is reported once as too long and skipped up to its newline. Bytes outside
 * printable ASCII make the line malformed (the CRC would fail anyway).
 */
export class LineSplitter {
  private buf = '';
  private skipping = false;

  constructor(private readonly onLine: (line: string) => void, private readonly onOverflow: () => void) {}

  push(chunk: Buffer): void {
    for (const byte of chunk) {
      if (byte === 0x0a) {
        if (!this.skipping) this.onLine(this.buf);
        this.buf = '';
        this.skipping = false;
        continue;
      }
      if (this.skipping) continue;
      if (this.buf.length + 2 > MAX_LINE) {
        this.onOverflow();
        this.skipping = true;
        this.buf = '';
        continue;
      }
      this.buf += byte >= 0x20 && byte < 0x7f ? String.fromCharCode(byte) : byte === 0x0d ? '\r' : '\u0000';
    }
  }
}
