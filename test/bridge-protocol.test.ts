// The bridge protocol codec: the shared test vectors (which the C++ side
// passes too), and properties over random input with fast-check.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { crc8, encode, LineSplitter, MAX_LINE, parseLine } from '../src/drivers/serial-bridge/protocol.js';

const vectors = JSON.parse(readFileSync(join(__dirname, '..', 'firmware-bridge', 'vectors.json'), 'utf8')) as {
  valid: { line: string; frame: unknown }[];
  invalid: { line: string; error: string }[];
};

describe('shared test vectors', () => {
  it('has the standard CRC-8/SMBus check value', () => {
    expect(crc8('123456789')).toBe(0xf4);
  });

  it.each(vectors.valid.map((v) => [v.line, v.frame]))('decodes %s', (line, frame) => {
    expect(parseLine(line)).toEqual({ ok: true, frame });
  });

  it.each(vectors.invalid.map((v) => [v.line, v.error]))('refuses %j as %s', (line, error) => {
    expect(parseLine(line)).toEqual({ ok: false, error });
  });
});

const id = fc.stringMatching(/^[a-z][a-z0-9_]{0,15}$/);
const value = fc.oneof(fc.integer({ min: -100000, max: 100000 }).map(String), fc.stringMatching(/^[A-Za-z][A-Za-z0-9_.:-]{0,23}$/), fc.constantFrom('0', '1'));

describe('properties', () => {
  it('decodes what it encodes', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 255 }), fc.array(fc.tuple(id, value), { minLength: 1, maxLength: 3 }), (seq, pairs) => {
        const line = encode(seq, 'D', ...pairs.map(([k, v]) => `${k}=${v}`));
        fc.pre(line.length <= MAX_LINE);
        expect(parseLine(line.slice(0, -1))).toEqual({ ok: true, frame: { seq, type: 'D', values: pairs } });
      }),
    );
  });

  it('detects every single-bit error', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 255 }), id, value, fc.nat(), fc.integer({ min: 0, max: 7 }), (seq, k, v, pos, bit) => {
        const line = encode(seq, 'SET', k, v).slice(0, -1);
        fc.pre(line.length < MAX_LINE);
        const i = pos % line.length;
        const flipped = line.slice(0, i) + String.fromCharCode(line.charCodeAt(i) ^ (1 << bit)) + line.slice(i + 1);
        expect(parseLine(flipped).ok).toBe(false);
      }),
    );
  });

  it('never throws on random bytes: each newline-ended run under the limit is one line, each longer run one overflow, and only lines with a good CRC are accepted', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ minLength: 0, maxLength: 300 }), { maxLength: 10 }), (chunks) => {
        // The same bytes cut at every newline, wherever the chunk borders fall (latin1: one character per byte).
        const runs = Buffer.concat(chunks).toString('latin1').split('\n');
        let overflows = 0;
        const lines: string[] = [];
        const splitter = new LineSplitter((l) => lines.push(l), () => overflows++);
        for (const c of chunks) splitter.push(Buffer.from(c));
        for (const l of lines) {
          expect(l.length).toBeLessThan(MAX_LINE);
          const r = parseLine(l);
          if (r.ok) {
            const body = l.replace(/\r$/, '').slice(0, -3);
            expect(crc8(body).toString(16).toUpperCase().padStart(2, '0')).toBe(l.replace(/\r$/, '').slice(-2));
          }
        }
        // A run reaching MAX_LINE bytes is skipped up to its newline and counted once, the unfinished last one too.
        expect(overflows).toBe(runs.filter((r) => r.length >= MAX_LINE).length);
        expect(lines).toHaveLength(runs.slice(0, -1).filter((r) => r.length < MAX_LINE).length);
      }),
    );
  });

  it('skips an endless line and resynchronises at the next newline', () => {
    const lines: string[] = [];
    let overflows = 0;
    const s = new LineSplitter((l) => lines.push(l), () => overflows++);
    s.push(Buffer.from('x'.repeat(1000)));
    s.push(Buffer.from('y'.repeat(1000) + '\n' + encode(1, 'HB')));
    expect(overflows).toBe(1);
    expect(lines).toEqual(['1 HB*C6']);
  });
});
