// A QR reader for tests: reads a module matrix back to its bytes, written
// apart from the encoder (src/util/qr.ts) and sharing none of its code. It
// checks the finders, timing and dark module, takes the format information
// from both copies (and must find it in the standard's table of level-M
// words, not compute it), the version information from both blocks, unmasks,
// reads the codewords in placement order, de-interleaves the blocks, and
// requires every block to be an error-free Reed–Solomon codeword (all
// syndromes zero) before it parses the byte-mode segment.

import { decodePng } from './png.js';

/** ISO/IEC 18004 table of format information words for level M, by mask. */
const FORMAT_M = [0b101010000010010, 0b101000100100101, 0b101111001111100, 0b101101101001011, 0b100010111111001, 0b100000011001110, 0b100111110010111, 0b100101010100000];
/** The standard's version information words, versions 7 to 10. */
const VERSION_WORDS: Record<number, number> = { 7: 0x07c94, 8: 0x085bc, 9: 0x09a99, 10: 0x0a4d3 };
/** Level M blocks: EC codewords per block, data codewords of each block. */
const BLOCKS: Record<number, { ec: number; data: number[] }> = {
  1: { ec: 10, data: [16] },
  2: { ec: 16, data: [28] },
  3: { ec: 26, data: [44] },
  4: { ec: 18, data: [32, 32] },
  5: { ec: 24, data: [43, 43] },
  6: { ec: 16, data: [27, 27, 27, 27] },
  7: { ec: 18, data: [31, 31, 31, 31] },
  8: { ec: 22, data: [38, 38, 39, 39] },
  9: { ec: 22, data: [36, 36, 36, 37, 37] },
  10: { ec: 26, data: [43, 43, 43, 43, 44] },
};
const ALIGN: Record<number, number[]> = { 1: [], 2: [6, 18], 3: [6, 22], 4: [6, 26], 5: [6, 30], 6: [6, 34], 7: [6, 22, 38], 8: [6, 24, 42], 9: [6, 26, 46], 10: [6, 28, 50] };

export interface ReadQr {
  version: number;
  mask: number;
  bytes: Uint8Array;
  text: string;
}

/** `dark(x, y)` for x (column) and y (row) in 0 … size − 1. */
export function readQr(size: number, dark: (x: number, y: number) => boolean): ReadQr {
  const version = (size - 17) / 4;
  if (!Number.isInteger(version) || !BLOCKS[version]) throw new Error(`size ${size} is no QR version 1-10`);
  const bit = (x: number, y: number): number => (dark(x, y) ? 1 : 0);

  // Finder patterns (7×7 rings) and their light separators.
  for (const [ox, oy] of [
    [0, 0],
    [size - 7, 0],
    [0, size - 7],
  ]) {
    for (let y = -1; y <= 7; y++) {
      for (let x = -1; x <= 7; x++) {
        const X = ox! + x;
        const Y = oy! + y;
        if (X < 0 || Y < 0 || X >= size || Y >= size) continue;
        const inner = x >= 2 && x <= 4 && y >= 2 && y <= 4;
        const border = x === 0 || x === 6 || y === 0 || y === 6;
        const inside = x >= 0 && x <= 6 && y >= 0 && y <= 6;
        const want = inside && (inner || border);
        if (dark(X, Y) !== want) throw new Error(`finder module (${X},${Y}) should be ${want ? 'dark' : 'light'}`);
      }
    }
  }
  for (let i = 8; i < size - 8; i++) {
    if (dark(i, 6) !== (i % 2 === 0) || dark(6, i) !== (i % 2 === 0)) throw new Error(`timing pattern broken at ${i}`);
  }
  if (!dark(8, size - 8)) throw new Error('the dark module is light');

  // Format information, most significant bit first, as in the standard's figure.
  const first = [bit(0, 8), bit(1, 8), bit(2, 8), bit(3, 8), bit(4, 8), bit(5, 8), bit(7, 8), bit(8, 8), bit(8, 7), bit(8, 5), bit(8, 4), bit(8, 3), bit(8, 2), bit(8, 1), bit(8, 0)];
  const second: number[] = [];
  for (let y = size - 1; y >= size - 7; y--) second.push(bit(8, y));
  for (let x = size - 8; x < size; x++) second.push(bit(x, 8));
  const word = (bits: number[]): number => bits.reduce((n, b) => (n << 1) | b, 0);
  const f1 = word(first);
  const f2 = word(second);
  if (f1 !== f2) throw new Error(`the two format copies differ: ${f1.toString(2)} vs ${f2.toString(2)}`);
  const mask = FORMAT_M.indexOf(f1);
  if (mask < 0) throw new Error(`format ${f1.toString(2).padStart(15, '0')} is no level-M word of the standard`);

  const fn = new Set<number>();
  const mark = (x: number, y: number): void => void fn.add(y * size + x);
  for (let y = 0; y < 9; y++) for (let x = 0; x < 9; x++) mark(x, y);
  for (let y = 0; y < 9; y++) for (let x = size - 8; x < size; x++) mark(x, y);
  for (let y = size - 8; y < size; y++) for (let x = 0; x < 9; x++) mark(x, y);
  for (let i = 0; i < size; i++) {
    mark(i, 6);
    mark(6, i);
  }
  const a = ALIGN[version]!;
  for (const cy of a) {
    for (const cx of a) {
      const underFinder = (cx === 6 && cy === 6) || (cx === 6 && cy === a.at(-1)) || (cx === a.at(-1) && cy === 6);
      if (underFinder) continue;
      for (let y = -2; y <= 2; y++) {
        for (let x = -2; x <= 2; x++) {
          const want = Math.max(Math.abs(x), Math.abs(y)) !== 1;
          if (dark(cx + x, cy + y) !== want) throw new Error(`alignment pattern at (${cx},${cy}) broken`);
          mark(cx + x, cy + y);
        }
      }
    }
  }
  if (version >= 7) {
    // Top right: 6 rows × 3 columns; bottom left: 3 rows × 6 columns; least significant bit first.
    let tr = 0;
    let bl = 0;
    for (let i = 17; i >= 0; i--) {
      const r = Math.floor(i / 3);
      const c = size - 11 + (i % 3);
      tr = (tr << 1) | bit(c, r);
      bl = (bl << 1) | bit(r, c);
      mark(c, r);
      mark(r, c);
    }
    if (tr !== VERSION_WORDS[version] || bl !== VERSION_WORDS[version]) throw new Error(`version information ${tr.toString(16)}/${bl.toString(16)}, expected ${VERSION_WORDS[version]!.toString(16)}`);
  }

  const masked = (x: number, y: number): boolean => {
    const i = y;
    const j = x;
    switch (mask) {
      case 0: return (i + j) % 2 === 0;
      case 1: return i % 2 === 0;
      case 2: return j % 3 === 0;
      case 3: return (i + j) % 3 === 0;
      case 4: return (Math.floor(i / 2) + Math.floor(j / 3)) % 2 === 0;
      case 5: return ((i * j) % 2) + ((i * j) % 3) === 0;
      case 6: return (((i * j) % 2) + ((i * j) % 3)) % 2 === 0;
      default: return (((i * j) % 3) + ((i + j) % 2)) % 2 === 0;
    }
  };

  // Read upwards and downwards in two-column strips from the right, skipping column 6.
  const stream: number[] = [];
  let up = true;
  for (let col = size - 1; col > 0; col -= 2) {
    if (col === 6) col--;
    for (let k = 0; k < size; k++) {
      const y = up ? size - 1 - k : k;
      for (const x of [col, col - 1]) {
        if (fn.has(y * size + x)) continue;
        stream.push(bit(x, y) ^ (masked(x, y) ? 1 : 0));
      }
    }
    up = !up;
  }
  const { ec, data } = BLOCKS[version]!;
  const total = data.reduce((n, d) => n + d, 0) + ec * data.length;
  const codewords: number[] = [];
  for (let i = 0; i < total; i++) codewords.push(stream.slice(i * 8, i * 8 + 8).reduce((n, b) => (n << 1) | b, 0));

  // De-interleave: data codeword by codeword across blocks (short blocks end early), then EC likewise.
  const blocks = data.map(() => [] as number[]);
  let at = 0;
  for (let i = 0; i < Math.max(...data); i++) data.forEach((d, b) => i < d && blocks[b]!.push(codewords[at++]!));
  const dataOnly = blocks.map((b) => [...b]);
  for (let i = 0; i < ec; i++) blocks.forEach((b) => b.push(codewords[at++]!));

  // Syndromes over GF(256) mod x^8+x^4+x^3+x^2+1: r(α^i) = 0 for i < ec means no error at all.
  const gfMul = (x: number, y: number): number => {
    let r = 0;
    while (y) {
      if (y & 1) r ^= x;
      x <<= 1;
      if (x & 0x100) x ^= 0x11d;
      y >>= 1;
    }
    return r;
  };
  blocks.forEach((block, b) => {
    let alpha = 1;
    for (let i = 0; i < ec; i++) {
      let s = 0;
      for (const c of block) s = gfMul(s, alpha) ^ c;
      if (s !== 0) throw new Error(`block ${b}: syndrome ${i} is ${s}, the codeword has errors`);
      alpha = gfMul(alpha, 2);
    }
  });

  const bits = dataOnly.flat().flatMap((c) => [7, 6, 5, 4, 3, 2, 1, 0].map((k) => (c >> k) & 1));
  let p = 0;
  const take = (n: number): number => {
    let v = 0;
    for (let i = 0; i < n; i++) v = (v << 1) | bits[p++]!;
    return v;
  };
  const mode = take(4);
  if (mode !== 0b0100) throw new Error(`mode ${mode.toString(2)}, expected byte mode 0100`);
  const count = take(version <= 9 ? 8 : 16);
  const bytes = new Uint8Array(count);
  for (let i = 0; i < count; i++) bytes[i] = take(8);
  return { version, mask, bytes, text: new TextDecoder('utf-8', { fatal: true }).decode(bytes) };
}

/**
 * Parses the half-block text rendering back into modules (blocks where the
 * module is light unless `inverted`), dropping the quiet zone, which must be light.
 */
export function textToModules(text: string, opts: { inverted?: boolean; quiet?: number } = {}): { size: number; dark: (x: number, y: number) => boolean } {
  const quiet = opts.quiet ?? 4;
  const lines = text.split('\n');
  const rows: boolean[][] = [];
  for (const line of lines) {
    const chars = [...line];
    const top: boolean[] = [];
    const bottom: boolean[] = [];
    for (const ch of chars) {
      const [t, b] = ch === '█' ? [true, true] : ch === '▀' ? [true, false] : ch === '▄' ? [false, true] : ch === ' ' ? [false, false] : [undefined, undefined];
      if (t === undefined) throw new Error(`unexpected character ${JSON.stringify(ch)} in the QR text`);
      top.push(t);
      bottom.push(b!);
    }
    rows.push(top, bottom);
  }
  const ink = (x: number, y: number): boolean => rows[y]![x]!;
  const inkIsDark = opts.inverted === true;
  const width = [...lines[0]!].length;
  const size = width - 2 * quiet;
  for (let y = 0; y < size + 2 * quiet; y++) {
    for (let x = 0; x < width; x++) {
      const inSymbol = x >= quiet && y >= quiet && x < quiet + size && y < quiet + size;
      if (!inSymbol && ink(x, y) === inkIsDark) throw new Error(`quiet zone module (${x},${y}) is dark`);
    }
  }
  return { size, dark: (x, y) => ink(x + quiet, y + quiet) === inkIsDark };
}

/** Reads a PNG (8-bit RGB, no interlace, as src/util/png.ts writes) back into modules: module size from the finder, centres sampled. */
export function pngToModules(png: Buffer): { size: number; dark: (x: number, y: number) => boolean } {
  const { width, height, pixels } = decodePng(png);
  const px = (x: number, y: number): boolean => pixels[(y * width + x) * 3]! < 128;
  // The first dark pixel is the top-left corner of the top-left finder; its first row is 7 modules of dark.
  let start = -1;
  for (let i = 0; i < Math.min(width, height) && start < 0; i++) if (px(i, i)) start = i;
  if (start < 0) throw new Error('no dark pixel on the diagonal');
  let run = 0;
  while (px(start + run, start)) run++;
  const scale = run / 7;
  if (!Number.isInteger(scale)) throw new Error(`finder run of ${run} pixels is not 7 modules`);
  const size = width / scale - (2 * start) / scale;
  return { size, dark: (x, y) => px(start + x * scale + Math.floor(scale / 2), start + y * scale + Math.floor(scale / 2)) };
}
