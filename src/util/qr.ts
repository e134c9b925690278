// QR codes (ISO/IEC 18004) for the claim URI: byte mode, error correction
// level M, versions 1 to 10 (up to 213 bytes), the mask with the lowest
// penalty, format and version information. Written from the standard's rules;
// rendered as Unicode half blocks for a terminal or as pixels for a PNG.
//
// Over 300 lines on purpose: the codeword, Reed-Solomon, placement and mask
// steps are one encoding whose tables index each other; apart, none is usable.

import type { Rgb } from './png.js';

export const MAX_VERSION = 10;

/** Error correction level M, per version: EC codewords per block, and the blocks as [count, data codewords each]. */
const BLOCKS_M: readonly (readonly [number, readonly (readonly [number, number])[]])[] = [
  [0, []],
  [10, [[1, 16]]],
  [16, [[1, 28]]],
  [26, [[1, 44]]],
  [18, [[2, 32]]],
  [24, [[2, 43]]],
  [16, [[4, 27]]],
  [18, [[4, 31]]],
  [22, [[2, 38], [2, 39]]],
  [22, [[3, 36], [2, 37]]],
  [26, [[4, 43], [1, 44]]],
];

/** Row/column centres of the alignment patterns, per version. */
const ALIGNMENT: readonly (readonly number[])[] = [[], [], [6, 18], [6, 22], [6, 26], [6, 30], [6, 34], [6, 22, 38], [6, 24, 42], [6, 26, 46], [6, 28, 50]];

/** Level M's two bits in the format information (L 01, M 00, Q 11, H 10). */
const LEVEL_M_BITS = 0b00;

export class QrTooLongError extends RangeError {
  constructor(readonly bytes: number) {
    super(`${bytes} bytes do not fit a QR code of version ${MAX_VERSION} at level M (at most ${capacity(MAX_VERSION)} bytes)`);
    this.name = 'QrTooLongError';
  }
}

export interface QrCode {
  version: number;
  /** Modules per side: 17 + 4 × version. */
  size: number;
  mask: number;
  /** Row by row, 1 = dark. */
  modules: Uint8Array;
}

export const isDark = (qr: QrCode, x: number, y: number): boolean => x >= 0 && y >= 0 && x < qr.size && y < qr.size && qr.modules[y * qr.size + x] === 1;

const dataCodewords = (version: number): number => BLOCKS_M[version]![1].reduce((n, [count, each]) => n + count * each, 0);
const countBits = (version: number): number => (version <= 9 ? 8 : 16);

/** Bytes that fit a version in byte mode at level M. */
export function capacity(version: number): number {
  return Math.floor((dataCodewords(version) * 8 - 4 - countBits(version)) / 8);
}

// GF(256) over x^8 + x^4 + x^3 + x^2 + 1, the field of the standard's Reed–Solomon code.
const EXP = new Uint8Array(512);
const LOG = new Uint8Array(256);
{
  let v = 1;
  for (let i = 0; i < 255; i++) {
    EXP[i] = v;
    LOG[v] = i;
    v <<= 1;
    if (v & 0x100) v ^= 0x11d;
  }
  for (let i = 255; i < 512; i++) EXP[i] = EXP[i - 255]!;
}
const mul = (a: number, b: number): number => (a === 0 || b === 0 ? 0 : EXP[LOG[a]! + LOG[b]!]!);

/** The generator polynomial ∏ (x − α^i), i < degree, highest coefficient first (which is 1). */
function generator(degree: number): Uint8Array {
  let g = new Uint8Array([1]);
  for (let i = 0; i < degree; i++) {
    const next = new Uint8Array(g.length + 1);
    for (let j = 0; j < g.length; j++) {
      next[j] = next[j]! ^ g[j]!;
      next[j + 1] = next[j + 1]! ^ mul(g[j]!, EXP[i]!);
    }
    g = next;
  }
  return g;
}

/** The Reed–Solomon error correction codewords for a block: the remainder of data · x^n divided by the generator. */
export function reedSolomon(data: Uint8Array, n: number): Uint8Array {
  const g = generator(n);
  const rem = new Uint8Array(n);
  for (const byte of data) {
    const factor = byte ^ rem[0]!;
    rem.copyWithin(0, 1);
    rem[n - 1] = 0;
    for (let i = 0; i < n; i++) rem[i] = rem[i]! ^ mul(g[i + 1]!, factor);
  }
  return rem;
}

/** The data codewords of a version: mode, count, bytes, terminator, padding. */
export function dataBits(bytes: Uint8Array, version: number): Uint8Array {
  const total = dataCodewords(version);
  const bits: number[] = [];
  const put = (value: number, length: number): void => {
    for (let i = length - 1; i >= 0; i--) bits.push((value >>> i) & 1);
  };
  put(0b0100, 4); // byte mode
  put(bytes.length, countBits(version));
  for (const b of bytes) put(b, 8);
  put(0, Math.min(4, total * 8 - bits.length)); // terminator
  while (bits.length % 8 !== 0) bits.push(0);
  const out = new Uint8Array(total);
  for (let i = 0; i < bits.length / 8; i++) {
    let b = 0;
    for (let k = 0; k < 8; k++) b = (b << 1) | bits[i * 8 + k]!;
    out[i] = b;
  }
  for (let i = bits.length / 8, pad = 0; i < total; i++, pad++) out[i] = pad % 2 === 0 ? 0xec : 0x11;
  return out;
}

/** Data split into blocks, each followed by its EC codewords, interleaved codeword by codeword. */
export function interleave(data: Uint8Array, version: number): Uint8Array {
  const [ecPerBlock, groups] = BLOCKS_M[version]!;
  const blocks: Uint8Array[] = [];
  let at = 0;
  for (const [count, each] of groups) {
    for (let i = 0; i < count; i++) {
      blocks.push(data.subarray(at, at + each));
      at += each;
    }
  }
  const ec = blocks.map((b) => reedSolomon(b, ecPerBlock));
  const out: number[] = [];
  const longest = Math.max(...blocks.map((b) => b.length));
  for (let i = 0; i < longest; i++) for (const b of blocks) if (i < b.length) out.push(b[i]!);
  for (let i = 0; i < ecPerBlock; i++) for (const e of ec) out.push(e[i]!);
  return Uint8Array.from(out);
}

/** The 15 format bits: level and mask, a BCH(15,5) code, XORed with 101010000010010. */
export function formatBits(mask: number, level = LEVEL_M_BITS): number {
  const data = (level << 3) | mask;
  let rem = data;
  for (let i = 0; i < 10; i++) rem = (rem << 1) ^ ((rem >>> 9) * 0x537);
  return ((data << 10) | (rem & 0x3ff)) ^ 0x5412;
}

/** The 18 version bits (versions 7 and up): the version and a BCH(18,6) code. */
export function versionBits(version: number): number {
  let rem = version;
  for (let i = 0; i < 12; i++) rem = (rem << 1) ^ ((rem >>> 11) * 0x1f25);
  return (version << 12) | (rem & 0xfff);
}

/** Mask conditions by number; i is the row, j the column. */
export const MASKS: readonly ((i: number, j: number) => boolean)[] = [
  (i, j) => (i + j) % 2 === 0,
  (i) => i % 2 === 0,
  (_i, j) => j % 3 === 0,
  (i, j) => (i + j) % 3 === 0,
  (i, j) => (Math.floor(i / 2) + Math.floor(j / 3)) % 2 === 0,
  (i, j) => ((i * j) % 2) + ((i * j) % 3) === 0,
  (i, j) => (((i * j) % 2) + ((i * j) % 3)) % 2 === 0,
  (i, j) => (((i + j) % 2) + ((i * j) % 3)) % 2 === 0,
];

class Matrix {
  readonly modules: Uint8Array;
  readonly fixed: Uint8Array;
  constructor(readonly size: number) {
    this.modules = new Uint8Array(size * size);
    this.fixed = new Uint8Array(size * size);
  }
  get(x: number, y: number): number {
    return this.modules[y * this.size + x]!;
  }
  isFixed(x: number, y: number): boolean {
    return this.fixed[y * this.size + x] === 1;
  }
  /** A function module (finder, timing, alignment, format, version): never masked, never data. */
  setFixed(x: number, y: number, dark: boolean): void {
    this.modules[y * this.size + x] = dark ? 1 : 0;
    this.fixed[y * this.size + x] = 1;
  }
  clone(): Matrix {
    const m = new Matrix(this.size);
    m.modules.set(this.modules);
    m.fixed.set(this.fixed);
    return m;
  }
}

function drawFunctionPatterns(m: Matrix, version: number): void {
  const size = m.size;
  for (let i = 0; i < size; i++) {
    m.setFixed(6, i, i % 2 === 0);
    m.setFixed(i, 6, i % 2 === 0);
  }
  // Finders with their light separators.
  for (const [cx, cy] of [
    [3, 3],
    [size - 4, 3],
    [3, size - 4],
  ] as const) {
    for (let dy = -4; dy <= 4; dy++) {
      for (let dx = -4; dx <= 4; dx++) {
        const x = cx + dx;
        const y = cy + dy;
        if (x < 0 || y < 0 || x >= size || y >= size) continue;
        const ring = Math.max(Math.abs(dx), Math.abs(dy));
        m.setFixed(x, y, ring !== 2 && ring !== 4);
      }
    }
  }
  const centres = ALIGNMENT[version]!;
  const last = centres.length - 1;
  centres.forEach((cy, i) => {
    centres.forEach((cx, j) => {
      if ((i === 0 && j === 0) || (i === 0 && j === last) || (i === last && j === 0)) return; // under a finder
      for (let dy = -2; dy <= 2; dy++) for (let dx = -2; dx <= 2; dx++) m.setFixed(cx + dx, cy + dy, Math.max(Math.abs(dx), Math.abs(dy)) !== 1);
    });
  });
  drawFormat(m, 0); // reserves the format areas; drawn again with the chosen mask
  if (version >= 7) {
    const bits = versionBits(version);
    for (let i = 0; i < 18; i++) {
      const dark = ((bits >>> i) & 1) === 1;
      const a = size - 11 + (i % 3);
      const b = Math.floor(i / 3);
      m.setFixed(a, b, dark); // top right, 6 rows of 3
      m.setFixed(b, a, dark); // bottom left, 3 rows of 6
    }
  }
}

/** Both copies of the format information, and the dark module beside the bottom-left finder. */
function drawFormat(m: Matrix, mask: number): void {
  const size = m.size;
  const bits = formatBits(mask);
  const bit = (i: number): boolean => ((bits >>> i) & 1) === 1;
  for (let i = 0; i <= 5; i++) m.setFixed(8, i, bit(i));
  m.setFixed(8, 7, bit(6));
  m.setFixed(8, 8, bit(7));
  m.setFixed(7, 8, bit(8));
  for (let i = 9; i < 15; i++) m.setFixed(14 - i, 8, bit(i));
  for (let i = 0; i < 8; i++) m.setFixed(size - 1 - i, 8, bit(i));
  for (let i = 8; i < 15; i++) m.setFixed(8, size - 15 + i, bit(i));
  m.setFixed(8, size - 8, true);
}

/** Codewords into the data modules: two columns at a time from the bottom right, up and down in turn, skipping the vertical timing column. */
function placeCodewords(m: Matrix, codewords: Uint8Array): void {
  const size = m.size;
  const total = codewords.length * 8;
  let i = 0;
  for (let right = size - 1; right >= 1; right -= 2) {
    if (right === 6) right = 5;
    const upward = ((right + 1) & 2) === 0;
    for (let v = 0; v < size; v++) {
      const y = upward ? size - 1 - v : v;
      for (let j = 0; j < 2; j++) {
        const x = right - j;
        if (m.isFixed(x, y)) continue;
        // Remainder modules past the last codeword stay light.
        const dark = i < total && ((codewords[i >>> 3]! >>> (7 - (i & 7))) & 1) === 1;
        m.modules[y * size + x] = dark ? 1 : 0;
        i++;
      }
    }
  }
}

function applyMask(m: Matrix, mask: number): void {
  const f = MASKS[mask]!;
  for (let y = 0; y < m.size; y++) for (let x = 0; x < m.size; x++) if (!m.isFixed(x, y) && f(y, x)) m.modules[y * m.size + x] = m.modules[y * m.size + x]! ^ 1;
}

/** The standard's penalty score: long runs, 2×2 blocks, finder-like patterns and imbalance of dark and light. */
export function penalty(modules: Uint8Array, size: number): number {
  let score = 0;
  const at = (x: number, y: number): number => modules[y * size + x]!;
  const finderLike = [1, 0, 1, 1, 1, 0, 1];
  for (const horizontal of [true, false]) {
    for (let a = 0; a < size; a++) {
      const line = (b: number): number => (horizontal ? at(b, a) : at(a, b));
      let run = 1;
      for (let b = 1; b <= size; b++) {
        if (b < size && line(b) === line(b - 1)) {
          run++;
          continue;
        }
        if (run >= 5) score += 3 + (run - 5);
        run = 1;
      }
      // 1:1:3:1:1 with four light modules on one side.
      for (let b = 0; b + 7 <= size; b++) {
        if (!finderLike.every((v, k) => line(b + k) === v)) continue;
        const lightBefore = b >= 4 && [1, 2, 3, 4].every((k) => line(b - k) === 0);
        const lightAfter = b + 11 <= size && [7, 8, 9, 10].every((k) => line(b + k) === 0);
        if (lightBefore) score += 40;
        if (lightAfter) score += 40;
      }
    }
  }
  for (let y = 0; y + 1 < size; y++) {
    for (let x = 0; x + 1 < size; x++) {
      const c = at(x, y);
      if (at(x + 1, y) === c && at(x, y + 1) === c && at(x + 1, y + 1) === c) score += 3;
    }
  }
  const dark = modules.reduce((n, v) => n + v, 0);
  const total = size * size;
  score += Math.floor(Math.abs(dark * 20 - total * 10) / total) * 10;
  return score;
}

export interface QrOptions {
  /** Force a mask (0–7) instead of the one with the lowest penalty. */
  mask?: number;
  /** Smallest version to use (1–10). */
  minVersion?: number;
}

/** A QR code holding `data` (a string is encoded as UTF-8) in byte mode at level M. */
export function encodeQr(data: string | Uint8Array, opts: QrOptions = {}): QrCode {
  const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data;
  let version = Math.max(1, opts.minVersion ?? 1);
  while (version <= MAX_VERSION && capacity(version) < bytes.length) version++;
  if (version > MAX_VERSION) throw new QrTooLongError(bytes.length);
  const size = 17 + 4 * version;
  const base = new Matrix(size);
  drawFunctionPatterns(base, version);
  placeCodewords(base, interleave(dataBits(bytes, version), version));

  const masks = opts.mask !== undefined ? [opts.mask] : [0, 1, 2, 3, 4, 5, 6, 7];
  let best: { mask: number; m: Matrix; score: number } | undefined;
  for (const mask of masks) {
    if (!Number.isInteger(mask) || mask < 0 || mask > 7) throw new RangeError(`mask must be 0 to 7, got ${mask}`);
    const m = base.clone();
    applyMask(m, mask);
    drawFormat(m, mask);
    const score = penalty(m.modules, size);
    if (!best || score < best.score) best = { mask, m, score };
  }
  return { version, size, mask: best!.mask, modules: best!.m.modules };
}

/** The standard's quiet zone: four light modules around the symbol. */
export const QUIET_ZONE = 4;

/**
 * The symbol as text, two rows of modules per line in Unicode half blocks.
 * The blocks are drawn where modules are light, so on the usual light-on-dark
 * terminal (and the Pi's console) the code shows dark on light as scanners
 * expect; `invert` draws the dark modules instead, for a dark-on-light terminal.
 */
export function qrToText(qr: QrCode, opts: { invert?: boolean; quiet?: number } = {}): string {
  const quiet = opts.quiet ?? QUIET_ZONE;
  const ink = (x: number, y: number): boolean => isDark(qr, x, y) === (opts.invert ?? false);
  const lines: string[] = [];
  for (let y = -quiet; y < qr.size + quiet; y += 2) {
    let line = '';
    for (let x = -quiet; x < qr.size + quiet; x++) {
      const top = ink(x, y);
      const bottom = y + 1 < qr.size + quiet ? ink(x, y + 1) : opts.invert !== true;
      line += top && bottom ? '█' : top ? '▀' : bottom ? '▄' : ' ';
    }
    lines.push(line);
  }
  return lines.join('\n');
}

/** The symbol as black and white pixels, `scale` pixels per module, with the quiet zone. */
export function qrToRgb(qr: QrCode, opts: { scale?: number; quiet?: number } = {}): Rgb {
  const scale = opts.scale ?? 8;
  const quiet = opts.quiet ?? QUIET_ZONE;
  const side = (qr.size + 2 * quiet) * scale;
  const pixels = new Uint8Array(side * side * 3).fill(255);
  for (let y = 0; y < qr.size; y++) {
    for (let x = 0; x < qr.size; x++) {
      if (!isDark(qr, x, y)) continue;
      for (let py = 0; py < scale; py++) {
        const row = ((y + quiet) * scale + py) * side;
        pixels.fill(0, (row + (x + quiet) * scale) * 3, (row + (x + quiet + 1) * scale) * 3);
      }
    }
  }
  return { width: side, height: side, pixels };
}
