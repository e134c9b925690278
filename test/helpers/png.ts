// A PNG decoder for the tests, on zlib: 8-bit RGB, no interlace, any of the
// five row filters (so it also reads PNGs not written by our encoder), and
// helpers to find the pixels of a colour.

import { inflateSync } from 'node:zlib';

export interface Decoded {
  width: number;
  height: number;
  /** RGB, 3 bytes a pixel, row by row. */
  pixels: Buffer;
}

export function decodePng(png: Buffer): Decoded {
  if (png.subarray(0, 8).toString('hex') !== '89504e470d0a1a0a') throw new Error('not a PNG');
  let off = 8;
  let width = 0;
  let height = 0;
  const idat: Buffer[] = [];
  while (off < png.length) {
    const len = png.readUInt32BE(off);
    const type = png.toString('ascii', off + 4, off + 8);
    const data = png.subarray(off + 8, off + 8 + len);
    if (type === 'IHDR') {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      if (data[8] !== 8 || data[9] !== 2 || data[12] !== 0) throw new Error(`unsupported PNG: depth ${data[8]}, colour type ${data[9]}, interlace ${data[12]}`);
    }
    if (type === 'IDAT') idat.push(data);
    if (type === 'IEND') break;
    off += 12 + len;
  }
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * 3;
  const pixels = Buffer.alloc(stride * height);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)]!;
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    for (let i = 0; i < stride; i++) {
      const a = i >= 3 ? pixels[y * stride + i - 3]! : 0;
      const b = y > 0 ? pixels[(y - 1) * stride + i]! : 0;
      const c = i >= 3 && y > 0 ? pixels[(y - 1) * stride + i - 3]! : 0;
      const p = a + b - c;
      const paeth = Math.abs(p - a) <= Math.abs(p - b) && Math.abs(p - a) <= Math.abs(p - c) ? a : Math.abs(p - b) <= Math.abs(p - c) ? b : c;
      const pred = [0, a, b, (a + b) >> 1, paeth][filter];
      if (pred === undefined) throw new Error(`bad filter ${filter} on row ${y}`);
      pixels[y * stride + i] = (line[i]! + pred) & 0xff;
    }
  }
  return { width, height, pixels };
}

export type Rgb3 = readonly [number, number, number];

export function pixelAt(img: Decoded, x: number, y: number): Rgb3 {
  const o = (y * img.width + x) * 3;
  return [img.pixels[o]!, img.pixels[o + 1]!, img.pixels[o + 2]!];
}

export interface Box {
  x0: number;
  x1: number;
  y0: number;
  y1: number;
}

/** Every pixel (in the box) whose colour passes the test. */
export function pixelsWhere(img: Decoded, test: (c: Rgb3) => boolean, box?: Box): { x: number; y: number }[] {
  const out: { x: number; y: number }[] = [];
  const { x0 = 0, x1 = img.width, y0 = 0, y1 = img.height } = box ?? {};
  for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) if (test(pixelAt(img, x, y))) out.push({ x, y });
  return out;
}

/** Every pixel whose colour is one of these, exactly. */
export function pixelsOf(img: Decoded, colors: readonly Rgb3[], box?: Box): { x: number; y: number }[] {
  return pixelsWhere(img, ([r, g, b]) => colors.some((c) => c[0] === r && c[1] === g && c[2] === b), box);
}
