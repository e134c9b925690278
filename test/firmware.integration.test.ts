// The real firmware: the Uno sketch built with avr-gcc (arduino-mk), run on an
// emulated ATmega328P (simavr) with its UART on a pseudo-terminal, behind the
// agent's serial-bridge driver, driven by an owner over the real Prosody.
// What is flashed onto a board is what is tested here.

import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findBinary } from '../tools/dev/prosody.js';
import { account, peer, startAgent, xml, type Peer, type RunningAgent } from './helpers/peers.js';
import { until } from './helpers/until.js';

const FW = join(__dirname, '..', 'firmware-bridge');
const haveToolchain = ['avr-gcc', 'make', 'gcc'].every((b) => findBinary(b)) && existsSync('/usr/share/arduino/Arduino.mk') && existsSync('/usr/include/simavr/parts/uart_pty.h');
if (!haveToolchain) {
  const why = 'firmware tests need: apt-get install gcc-avr avr-libc arduino-core-avr arduino-mk simavr libsimavr-dev libsimavrparts1 libelf-dev';
  if (process.env.REQUIRE_FIRMWARE) throw new Error(why);
  console.warn(`skipped: ${why}`);
}

describe.skipIf(!haveToolchain)('firmware on an emulated ATmega328P', () => {
  let emulator: ChildProcess;
  let agent: RunningAgent;
  let owner: Peer;

  beforeAll(async () => {
    const work = mkdtempSync(join(tmpdir(), 'xia-avr-'));
    execFileSync('make', ['-s', '-C', join(FW, 'sketch/xia_bridge'), `OBJDIR=${join(work, 'build')}`], { stdio: 'ignore' });
    const elf = join(work, 'build', 'xia_bridge_.elf');
    expect(existsSync(elf)).toBe(true);
    const runner = join(work, 'run_avr');
    execFileSync('gcc', ['-O2', '-I/usr/include/simavr', join(FW, 'emulator/run_avr.c'), '-o', runner, '-lsimavr', '-lsimavrparts', '-lelf', '-lpthread', '-lutil']);
    const tty = join(work, 'uno-tty');
    emulator = spawn(runner, [elf, tty], { stdio: 'ignore' });
    await until(() => existsSync(tty), "the emulator's pty");
    const o = await account('alice');
    agent = await startAgent({ owners: [o.jid], devices: `  - { id: uno, driver: serial-bridge, port: ${tty} }\n` });
    owner = await peer(o);
  }, 120_000);

  afterAll(async () => {
    await owner?.stop();
    await agent?.stop();
    emulator?.kill('SIGTERM');
  });

  it('says hello: its channels become devices the owner can see', async () => {
    await until(() => agent.agent.devices.ids().length >= 4, 'four channels from the hello', { timeoutMs: 15_000, got: () => agent.agent.devices.ids() });
    const items = await owner.iq('get', agent.fullJid, xml('query', { xmlns: 'http://jabber.org/protocol/disco#items' }));
    expect(items.getChild('query')!.getChildren('item').map((i) => i.attrs.node)).toEqual(['temp', 'light', 'fan', 'led']);
    expect(agent.agent.devices.get('temp')!.info.unit).toBe('°C');
  });

  it('fan on in chat: SET over the pty, the firmware ACKs, the owner is told', async () => {
    expect(await owner.chat(agent.fullJid, 'fan on')).toBe('fan → on ✓');
    expect(await owner.chat(agent.fullJid, 'led on')).toBe('led → on ✓');
    expect(await owner.chat(agent.fullJid, 'get fan')).toMatch(/^fan on/);
  });

  it('refuses to set a sensor before anything goes over the wire, and reads it', async () => {
    expect(await owner.chat(agent.fullJid, 'set temp 3')).toBe('temp is read-only.');
    expect(await owner.chat(agent.fullJid, 'status')).toMatch(/temp -?\d+\.\d °C/);
  });
});
