// The firmware's protocol core (plain C++, firmware-bridge/libraries/xia_bridge) compiled on
// the host with g++: its self-test, and the same shared vectors the TypeScript
// parser passes, decoded line by line.

import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { findBinary } from '../tools/dev/prosody.js';
import fc from 'fast-check';
import { crc8, encode, parseLine, type Frame } from '../src/drivers/serial-bridge/protocol.js';

const FW = join(__dirname, '..', 'firmware-bridge');
const vectors = JSON.parse(readFileSync(join(FW, 'vectors.json'), 'utf8')) as { valid: { line: string; frame: Frame }[]; invalid: { line: string; error: string }[] };

/** The C++ tool's canonical form of a frame. */
function canonical(line: string, f: Frame): string {
  const fields = line.slice(0, line.lastIndexOf('*')).split(' ').slice(2);
  return ['ok', String(f.seq), f.type === 'UNKNOWN' ? f.name : f.type, ...fields].join(' ');
}

describe.skipIf(!findBinary('g++'))('firmware protocol core (C++ on the host)', () => {
  let tool: string;
  beforeAll(() => {
    tool = join(mkdtempSync(join(tmpdir(), 'xia-fw-')), 'decode');
    execFileSync('g++', ['-std=c++11', '-Wall', '-Wextra', '-Werror', '-O2', join(FW, 'libraries/xia_bridge/bridge.cpp'), join(FW, 'test/decode.cpp'), '-o', tool]);
  });

  it('passes its C self-test: 5 passed, 0 failed, nothing on stderr', () => {
    const r = spawnSync(tool, ['--self-test'], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('self-test: 5 passed, 0 failed');
  });

  it('decodes every shared vector exactly as the TypeScript parser does', () => {
    const lines = [...vectors.valid.map((v) => v.line), ...vectors.invalid.map((v) => v.line)];
    const out = execFileSync(tool, { input: lines.join('\n') + '\n', encoding: 'utf8' }).trim().split('\n');
    const expected = [...vectors.valid.map((v) => canonical(v.line, v.frame)), ...vectors.invalid.map((v) => `error ${v.error}`)];
    expect(out).toEqual(expected);
  });

  it('agrees with the TypeScript parser on thousands of random and mutated lines (differential, fast-check)', () => {
    const printable = fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 110 });
    const token = fc.stringMatching(/^[a-zA-Z0-9_.=:-]{1,10}$/);
    const framed = fc
      .tuple(fc.integer({ min: 0, max: 300 }), fc.constantFrom('HELLO', 'CH', 'D', 'ACK', 'NAK', 'ERR', 'HB', 'SET', 'WHO', 'ZAP', 'x'), fc.array(token, { maxLength: 8 }))
      .map(([seq, type, fields]) => `${[String(seq), type, ...fields].join(' ')}`)
      .map((body) => `${body}*${hex(crc8(body))}`);
    const id = fc.stringMatching(/^[a-z][a-z0-9_]{0,6}$/);
    const val = fc.oneof(fc.integer({ min: -999, max: 999 }).map(String), fc.constantFrom('0', '1', '21.5', 'eco', 'a:b'));
    const valid = fc.oneof(
      fc.tuple(fc.nat(255), fc.array(fc.tuple(id, val).map(([k, v]) => `${k}=${v}`), { minLength: 1, maxLength: 6 })).map(([q, f]) => encode(q, 'D', ...f).trimEnd()),
      fc.tuple(fc.nat(255), id, val).map(([q, k, v]) => encode(q, 'SET', k, v).trimEnd()),
      fc.tuple(fc.nat(255), fc.nat(300)).map(([q, r]) => encode(q, 'ACK', String(r)).trimEnd()),
      fc.tuple(fc.nat(255), id, fc.constantFrom('n', 'b', 's', 'x'), fc.constantFrom('-', 'degC', '%'), fc.constantFrom('ro', 'rw', 'wo')).map(([q, i, k, u, a]) => encode(q, 'CH', i, k, u, a).trimEnd()),
    );
    const mutate = fc.tuple(framed, fc.nat(), fc.integer({ min: 0x20, max: 0x7e })).map(([l, i, c]) => l.slice(0, i % (l.length || 1)) + String.fromCharCode(c) + l.slice((i % (l.length || 1)) + 1));
    const lines = fc.sample(fc.oneof(printable, framed, mutate, valid, valid), { numRuns: 3000, seed: 42 });
    const out = execFileSync(tool, { input: lines.join('\n') + '\n', encoding: 'utf8' }).trim().split('\n');
    const ts = lines.map((l) => {
      const r = parseLine(l);
      return r.ok ? canonical(l, r.frame) : `error ${r.error}`;
    });
    const disagreements = lines.map((l, i) => ({ line: l, c: out[i], ts: ts[i] })).filter((d) => d.c !== d.ts);
    expect(disagreements.slice(0, 5)).toEqual([]);
    expect(ts.filter((t) => t.startsWith('ok')).length).toBeGreaterThan(300); // the sample really exercises valid frames
  });
});

function hex(n: number): string {
  return n.toString(16).toUpperCase().padStart(2, '0');
}
