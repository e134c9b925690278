// A pair of connected pseudo-terminals from socat, standing in for a USB
// serial cable: the agent opens one end, the firmware (simulated or emulated)
// the other. Killing socat is the cable being pulled.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { findBinary } from './prosody.js';

export interface PtyPair {
  /** The agent's end. */
  agent: string;
  /** The firmware's end. */
  firmware: string;
  /** Pull the cable: both ends vanish. */
  unplug(): Promise<void>;
  /** Plug it back in (same paths). */
  plug(): Promise<void>;
  stop(): Promise<void>;
}

const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of running) c.kill('SIGTERM');
});

export async function ptyPair(dir: string): Promise<PtyPair> {
  const socat = findBinary('socat');
  if (!socat) throw new Error('socat is not installed: apt-get install -y socat');
  const agent = join(dir, 'tty-agent');
  const firmware = join(dir, 'tty-firmware');
  let child: ChildProcess | undefined;

  const plug = async (): Promise<void> => {
    const c = spawn(socat, [`pty,raw,echo=0,link=${agent}`, `pty,raw,echo=0,link=${firmware}`], { stdio: 'ignore' });
    child = c;
    running.add(c);
    c.on('exit', () => running.delete(c));
    c.on('error', () => {});
    const deadline = Date.now() + 5000;
    while (!(existsSync(agent) && existsSync(firmware))) {
      if (Date.now() > deadline) throw new Error('socat did not create the pseudo-terminals');
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  const unplug = async (): Promise<void> => {
    const c = child;
    child = undefined;
    if (!c || c.exitCode !== null) return;
    const gone = new Promise((r) => c.once('exit', r));
    c.kill('SIGTERM');
    await gone;
  };
  await plug();
  return { agent, firmware, plug, unplug, stop: unplug };
}
