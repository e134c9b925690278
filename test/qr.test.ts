// The QR encoder against the standard's own vectors (the Reed–Solomon example
// of Annex I, the format and version information tables), read back by a
// reader written apart from it (test/helpers/qr-read.ts) for every version
// and mask, through the terminal text and the PNG; and, where zbarimg is
// installed (zbar-tools), decoded by a third-party reader too.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { capacity, encodeQr, formatBits, isDark, QrTooLongError, qrToRgb, qrToText, reedSolomon, versionBits } from '../src/util/qr.js';
import { encodePng } from '../src/util/png.js';
import { findBinary } from '../tools/dev/prosody.js';
import { pngToModules, readQr, textToModules } from './helpers/qr-read.js';

const URI = 'xmpp:gateway@iot.example.org?message;body=claim%20K7QM-3XRT-9PWD';
const zbarimg = findBinary('zbarimg');

describe('QR building blocks, against the standard', () => {
  it('computes the error correction codewords of Annex I (version 1-M, "01234567")', () => {
    const data = Uint8Array.from([0x10, 0x20, 0x0c, 0x56, 0x61, 0x80, 0xec, 0x11, 0xec, 0x11, 0xec, 0x11, 0xec, 0x11, 0xec, 0x11]);
    expect(Buffer.from(reedSolomon(data, 10)).toString('hex')).toBe('a524d4c1ed36c787' + '2c55');
  });

  it('computes the format information of the standard\'s table for level M, every mask', () => {
    const table = ['101010000010010', '101000100100101', '101111001111100', '101101101001011', '100010111111001', '100000011001110', '100111110010111', '100101010100000'];
    expect([0, 1, 2, 3, 4, 5, 6, 7].map((m) => formatBits(m).toString(2).padStart(15, '0'))).toEqual(table);
    // Level L (bits 01), mask 0, as a check that the level goes in the right place.
    expect(formatBits(0, 0b01).toString(2)).toBe('111011111000100');
  });

  it('computes the version information of the standard\'s table, versions 7 to 10', () => {
    expect([7, 8, 9, 10].map((v) => versionBits(v).toString(2).padStart(18, '0'))).toEqual(['000111110010010100', '001000010110111100', '001001101010011001', '001010010011010011']);
  });

  it('has the byte capacities of level M', () => {
    expect([1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map(capacity)).toEqual([14, 26, 42, 62, 84, 106, 122, 152, 180, 213]);
  });
});

describe('QR symbols, read back', () => {
  for (let version = 1; version <= 10; version++) {
    it(`version ${version}, full, reads back under every mask`, () => {
      // UTF-8 on purpose: the count is of bytes, not characters.
      const text = `é${'x'.repeat(capacity(version) - 3)}!`;
      for (let mask = 0; mask < 8; mask++) {
        const qr = encodeQr(text, { mask });
        expect(qr.version).toBe(version);
        expect(qr.size).toBe(17 + 4 * version);
        const read = readQr(qr.size, (x, y) => isDark(qr, x, y));
        expect(read).toMatchObject({ version, mask, text });
      }
    });
  }

  it('picks the smallest version and a mask by penalty, and reads back', () => {
    const qr = encodeQr(URI);
    expect(qr.version).toBe(5); // 64 bytes: more than version 4's 62
    expect(readQr(qr.size, (x, y) => isDark(qr, x, y)).text).toBe(URI);
  });

  it('refuses what does not fit version 10', () => {
    expect(() => encodeQr('x'.repeat(214))).toThrow(QrTooLongError);
    expect(encodeQr('x'.repeat(213)).version).toBe(10);
  });

  it('draws the terminal text in half blocks that read back (light modules as blocks; inverted too)', () => {
    const qr = encodeQr(URI);
    const text = qrToText(qr);
    const lines = text.split('\n');
    expect(lines).toHaveLength(Math.ceil((qr.size + 8) / 2));
    expect(lines.every((l) => [...l].length === qr.size + 8)).toBe(true);
    expect(/^[█▀▄ \n]+$/.test(text)).toBe(true);
    const m = textToModules(text);
    expect(m.size).toBe(qr.size);
    expect(readQr(m.size, m.dark).text).toBe(URI);
    const inv = textToModules(qrToText(qr, { invert: true }), { inverted: true });
    expect(readQr(inv.size, inv.dark).text).toBe(URI);
  });

  it('draws a PNG that reads back, with the quiet zone', () => {
    const qr = encodeQr(URI);
    const png = encodePng(qrToRgb(qr, { scale: 6 }));
    const m = pngToModules(png);
    expect(m.size).toBe(qr.size);
    expect(readQr(m.size, m.dark).text).toBe(URI);
  });

  it.skipIf(!zbarimg)('is decoded by zbarimg (a third-party reader) for every version', () => {
    const dir = mkdtempSync(join(tmpdir(), 'xia-qr-'));
    for (let version = 1; version <= 10; version++) {
      const prefix = `v${version}:`;
      const text = version === 5 ? URI : prefix + 'y'.repeat(capacity(version) - prefix.length);
      const file = join(dir, `v${version}.png`);
      writeFileSync(file, encodePng(qrToRgb(encodeQr(text), { scale: 4 })));
      const r = spawnSync(zbarimg!, ['-q', '--raw', '-Sdisable', '-Sqrcode.enable', file], { encoding: 'utf8' });
      expect(r.stdout.replace(/\n$/, ''), `version ${version}`).toBe(text);
    }
  });
});
