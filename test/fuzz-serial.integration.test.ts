// Fuzzing the serial bridge: 100,000 random and mutated lines written into a
// real pseudo-terminal (socat) whose other end the agent's bridge driver
// reads, between good frames from the firmware simulator. The agent must not
// crash, must count every line it drops (bad CRC, malformed, too long: with
// the good frames, every line sent is accounted for), must not take a
// reading from a bad line, and must answer normally afterwards (a SET over
// the same wire, a chat reply).

import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FirmwareSim, type SimChannel } from '../tools/dev/firmware-sim.js';
import { ptyPair, type PtyPair } from '../tools/dev/pty.js';
import { findBinary } from '../tools/dev/prosody.js';
import type { BridgeStats } from '../src/drivers/serial-bridge/index.js';
import { crc8, encode, LineSplitter, parseLine } from '../src/drivers/serial-bridge/protocol.js';
import { account, peer, startAgent, type Peer, type RunningAgent } from './helpers/peers.js';
import { until } from './helpers/until.js';

const SERIAL_LINES = 100_000;
/** One good frame every this many lines, so the link is shown to carry on between the bad ones. */
const GOOD_EVERY = 100;

const CHANNELS = (): SimChannel[] => [
  { id: 'temperature', kind: 'n', unit: 'degC', writable: false, value: 21.4, min: 18, max: 26 },
  { id: 'fan', kind: 'b', writable: true, value: false },
];

/** Lines the driver must drop, made from good frames (mutated) and from noise; none of them contains a newline. */
function badLines(n: number, seed: number): Buffer[] {
  const good = fc.oneof(
    fc.tuple(fc.integer({ min: 0, max: 255 }), fc.double({ min: -50, max: 150, noNaN: true })).map(([s, v]) => encode(s, 'D', `temperature=${v.toFixed(1)}`)),
    fc.integer({ min: 0, max: 255 }).map((s) => encode(s, 'HB')),
    fc.integer({ min: 0, max: 255 }).map((s) => encode(s, 'HELLO', 'evil', '6.6.6', '2')),
    fc.integer({ min: 0, max: 255 }).map((s) => encode(s, 'CH', 'pwned', 'n', 'V', 'rw')),
    fc.tuple(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 })).map(([s, r]) => encode(s, 'ACK', String(r))),
  ).map((l) => Buffer.from(l.slice(0, -1), 'latin1'));
  const mutate = fc.tuple(good, fc.nat(), fc.integer({ min: 1, max: 255 }), fc.constantFrom('flip', 'replace', 'truncate', 'double', 'lower', 'pad')).map(([b, at, byte, how]) => {
    const i = at % b.length;
    const c = Buffer.from(b);
    switch (how) {
      case 'flip': {
        const flipped = c[i]! ^ (1 << (byte % 8));
        c[i] = flipped === 0x0a ? flipped ^ 0x80 : flipped; // a newline would make two lines of one
        return c;
      }
      case 'replace':
        c[i] = byte === 0x0a ? 0x0b : byte;
        return c;
      case 'truncate':
        return c.subarray(0, i);
      case 'double':
        return Buffer.concat([c, c]);
      case 'lower':
        return Buffer.from(c.toString('latin1').toLowerCase(), 'latin1');
      default:
        return Buffer.concat([c, Buffer.alloc(60 + (byte % 200), 0x41)]);
    }
  });
  // A valid checksum over a frame that is wrong inside: bad values, wrong field counts, unknown shapes.
  const framed = (body: string): Buffer => Buffer.from(`${body}*${crc8(body).toString(16).toUpperCase().padStart(2, '0')}`, 'latin1');
  const wrongInside = fc.oneof(
    fc.tuple(fc.integer({ min: 0, max: 255 }), fc.stringMatching(/^[a-z#%&]{1,8}$/)).map(([q, v]) => framed(`${q} D temperature=${v}%`)),
    fc.integer({ min: 0, max: 255 }).map((q) => framed(`${q} D`)),
    fc.integer({ min: 0, max: 255 }).map((q) => framed(`${q} lower case`)),
    fc.integer({ min: 0, max: 255 }).map((q) => framed(`${q} HELLO only-one`)),
    fc.integer({ min: 256, max: 999 }).map((q) => framed(`${q} HB`)),
    fc.integer({ min: 0, max: 255 }).map((q) => framed(`${q}  D  a=1`)),
    fc.integer({ min: 0, max: 255 }).map((q) => framed(`${q} CH x n V maybe`)),
  );
  const noise = fc.uint8Array({ minLength: 0, maxLength: 140 }).map((a) => Buffer.from(a.map((x) => (x === 0x0a ? 0x20 : x))));
  const printable = fc.string({ maxLength: 120 }).map((s) => Buffer.from(s.replace(/\n/g, ' '), 'latin1'));
  const candidates = fc.sample(fc.oneof({ arbitrary: mutate, weight: 3 }, { arbitrary: wrongInside, weight: 1 }, { arbitrary: noise, weight: 1 }, { arbitrary: printable, weight: 1 }), { numRuns: Math.ceil(n * 1.05), seed });
  // The rare mutation that still parses (a valid CRC by chance, an unknown but well-formed type) is not a bad line: left out.
  const stillGood = (b: Buffer): boolean => {
    let ok = false;
    new LineSplitter((line) => void (ok = parseLine(line).ok), () => {}).push(Buffer.concat([b, Buffer.from('\n')]));
    return ok;
  };
  const out = candidates.filter((b) => !stillGood(b)).slice(0, n);
  if (out.length < n) throw new Error('not enough bad lines generated');
  return out;
}

describe.skipIf(!findBinary('socat'))(`fuzzing the serial bridge with ${SERIAL_LINES.toLocaleString('en')} random and mutated lines over a real pty`, () => {
  let pty: PtyPair;
  let sim: FirmwareSim;
  let agent: RunningAgent;
  let owner: Peer;
  const stats = (): BridgeStats => agent.agent.driverStats().find((d) => d.kind === 'serial-bridge')!.stats as BridgeStats;

  beforeAll(async () => {
    pty = await ptyPair(mkdtempSync(join(tmpdir(), 'xia-fuzzpty-')));
    sim = new FirmwareSim({ path: pty.firmware, channels: CHANNELS(), heartbeatMs: 500, dataMs: 300 });
    await sim.start();
    const o = await account('alice');
    agent = await startAgent({ owners: [o.jid], devices: `  - { id: bridge, driver: serial-bridge, port: ${pty.agent}, ack_timeout: 2s }\n` });
    owner = await peer(o);
    await until(() => agent.agent.devices.ids().length === 2, 'the bridge channels');
  });
  afterAll(async () => {
    await owner?.stop();
    await agent?.stop();
    await sim?.stop();
    await pty?.stop();
  });

  it('counts every bad line, takes no reading from one, and answers normally afterwards', async () => {
    const bad = badLines(SERIAL_LINES, 16);
    sim.faults.silent = true; // only our lines on the wire while we count
    // Until a frame still on its way has arrived: the count must not move on its own any more.
    for (let last = -1; stats().frames !== last; ) {
      last = stats().frames;
      await new Promise((r) => setTimeout(r, 300));
    }
    const temperatures: number[] = [];
    const unwatch = agent.agent.devices.onChange((c) => c.cause === 'reading' && c.id === 'temperature' && temperatures.push(c.value as number));
    const before = stats();
    const lines: Buffer[] = [];
    let goodSent = 0;
    for (let i = 0; i < bad.length; i++) {
      if (i % GOOD_EVERY === 0) {
        lines.push(Buffer.from(encode(goodSent++ & 0xff, 'D', 'temperature=22.0')));
      }
      lines.push(Buffer.concat([bad[i]!, Buffer.from('\n')]));
    }
    // In chunks, as a chatty board would send them, not one giant write.
    for (let i = 0; i < lines.length; i += 500) sim.inject(Buffer.concat(lines.slice(i, i + 500)));
    const dropped = (s: BridgeStats): number => s.badCrc + s.malformed + s.tooLong - (before.badCrc + before.malformed + before.tooLong);
    await until(() => dropped(stats()) + (stats().frames - before.frames) >= lines.length, 'every line accounted for', { timeoutMs: 60_000, got: () => ({ ...stats(), sent: lines.length }) });
    const after = stats();
    unwatch();
    expect(dropped(after)).toBe(SERIAL_LINES);
    expect(after.dropped - before.dropped).toBe(SERIAL_LINES);
    expect(after.frames - before.frames).toBe(goodSent);
    // Every temperature came from a good frame: the mutated ones carried -50…150.
    expect(temperatures.length).toBeGreaterThan(0);
    expect(new Set(temperatures)).toEqual(new Set([22]));
    expect(agent.agent.devices.ids().sort()).toEqual(['fan', 'temperature']);
    // The counts the report quotes (README, "When the Pi itself misbehaves").
    console.log(`serial fuzz: ${SERIAL_LINES} bad lines (${after.badCrc - before.badCrc} bad CRC, ${after.malformed - before.malformed} malformed, ${after.tooLong - before.tooLong} too long) and ${goodSent} good frames; all counted`);
    sim.faults.silent = false;
    expect(await owner.chat(agent.fullJid, 'fan on')).toBe('fan → on ✓');
    expect(sim.value('fan')).toBe(true);
    expect(await owner.chat(agent.fullJid, 'get temperature')).toMatch(/^temperature \d+\.\d °C · \d+ s ago$/);
  }, 120_000);
});
