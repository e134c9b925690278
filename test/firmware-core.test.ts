// The firmware's protocol core (plain C++, firmware-bridge/libraries/xia_bridge) compiled on
// the host with g++: its self-test, and the same shared vectors the TypeScript
// parser passes, decoded line by line.

import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { findBinary } from '../src/dev/prosody.js';
import type { Frame } from '../src/drivers/bridge-protocol.js';

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

  it('passes its own checks', () => {
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
});
