// PNG encoding with Node's own zlib: enough for charts and QR codes, and no
// image library to install on a Pi. RGB, 8 bits per channel, no interlace.

import { deflateSync } from 'node:zlib';

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(buf: Buffer): number {
  let c = 0xffffffff;
  // An index, not for…of: a Buffer's iterator made ~2 MB of garbage per chart PNG before it was optimised.
  for (let i = 0; i < buf.length; i++) c = CRC_TABLE[(c ^ buf[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'ascii');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0);
  return Buffer.concat([head, data, crc]);
}

/** An RGB image: width × height pixels, 3 bytes each, row by row. */
export interface Rgb {
  width: number;
  height: number;
  pixels: Uint8Array;
}

// The filtered rows handed to deflate, kept for the next image: a fresh megabyte per chart, fully
// written, stayed resident until a collection came (V8 collects for its own heap, not for this).
let scratch: Buffer | undefined;

export function encodePng(img: Rgb): Buffer {
  const { width, height, pixels } = img;
  if (pixels.length !== width * height * 3) throw new RangeError(`expected ${width * height * 3} bytes of pixels, got ${pixels.length}`);
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bits per channel
  ihdr[9] = 2; // colour type: RGB
  const size = (width * 3 + 1) * height;
  if (!scratch || scratch.length < size) scratch = Buffer.alloc(size);
  const raw = scratch.subarray(0, size);
  for (let y = 0; y < height; y++) {
    raw[y * (width * 3 + 1)] = 0; // filter: none
    Buffer.from(pixels.buffer, pixels.byteOffset + y * width * 3, width * 3).copy(raw, y * (width * 3 + 1) + 1);
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw, { level: 9 })),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}
