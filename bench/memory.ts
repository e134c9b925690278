// Memory and CPU of one agent process from start to a burst of readings and
// back to idle: a "profile", run for each build (bundle, tsc output) and each
// runtime flag, over a realistic store (a week of history: 8 devices, one row a
// minute, 80,640 rows).
//
// Two processes per configuration: one with 8 simulated devices (online, then
// idleMs, then RssAnon), one with a firmware bridge of 8 channels whose board
// (simulated here, on a pty) is quiet for a moment (the idle CPU rate, RssAnon
// before), then sends o.rows samples of all 8 as fast as the agent takes them
// (the burst: CPU per reading, serial parsing included), then is quiet again
// (RssAnon idleMs after the last reading, and settleMs after it).

import { appendFileSync, cpSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { encode } from '../src/drivers/serial-bridge/protocol.js';
import { FirmwareSim } from '../tools/dev/firmware-sim.js';
import { ptyPair } from '../tools/dev/pty.js';
import { join } from 'node:path';
import { openStore } from '../src/store/db.js';
import { cpuSecondsOf, memoryOf, start, stop, type Memory } from './lib.js';
import { agentCommand, EIGHT, online, type Runtime, type Server } from './setup.js';

const WEEK_MINUTES = 7 * 1440;

/** A state dir holding a week of history for these devices (numbers, or booleans for ids listed in `booleans`), ending now. */
export function weekStore(dir: string, ids: string[], booleans: string[] = []): { dir: string; rows: number; bytes: number } {
  const now = Date.now();
  const store = openStore({ dir, now: () => now, historyMaxBuffered: 100_000 });
  let rows = 0;
  for (let m = WEEK_MINUTES - 1; m >= 0; m--) {
    const t = now - m * 60_000;
    for (const [k, id] of ids.entries()) {
      store.history.record(id, t, booleans.includes(id) ? (m + k) % 90 < 45 : 20 + 5 * Math.sin((m + k * 100) / 300));
      rows++;
    }
    if (m % 1000 === 0) store.history.flush();
  }
  store.close();
  return { dir, rows, bytes: statSync(join(dir, 'agent.db')).size };
}

export interface Profile {
  label: string;
  /** Start → the owner sees it online. */
  onlineMs: number;
  /** RssAnon after idleMs online (the burst has not begun). */
  idle: Memory;
  /** The bridge agent's own RssAnon just before the burst, idleMs after it, and settleMs after it. */
  before: Memory;
  early: Memory;
  after: Memory;
  /** When early and after were read, ms after the last reading. */
  earlyMs: number;
  afterMs: number;
  readings: number;
  /** CPU (user + system) per reading during the burst, less the idle rate. */
  cpuUsPerReading: number;
  /** The idle phase was cut short by a slow start: the figures are not comparable. */
  late: boolean;
}

export async function profile(s: Server, o: { label: string; entry?: string; runtime: Runtime; rows: number; idleMs: number; settleMs?: number; seed: string; scratch: string; logTo?: string; extra?: string; beforehand?: (pid: number) => Promise<void>; afterwards?: (pid: number) => Promise<void> }): Promise<Profile> {
  const work = mkdtempSync(join(o.scratch, 'profile-'));
  try {
    // Idle: 8 simulated devices, as in the comparison with the baselines.
    const idleRun = await run(s, o, work, 'idle', EIGHT, async (pid) => {
      await new Promise((r) => setTimeout(r, o.idleMs));
      return { idle: memoryOf(pid) };
    });
    // The burst: a firmware bridge with 8 channels on a pty, the simulated board in this process (so the
    // readings to come take no memory in the agent). Idle for a moment, then o.rows samples of all 8 as
    // fast as the agent takes them, the last reading 99 everywhere: the presence that shows it eight
    // times marks the end.
    const pty = await ptyPair(work);
    const channels = Array.from({ length: 8 }, (_, i) => ({ id: `c${i}`, kind: 'n' as const, unit: 'degC', writable: false, value: 20, min: 0, max: 100 }));
    const sim = new FirmwareSim({ path: pty.firmware, channels, dataMs: 3_600_000 });
    await sim.start();
    const ready = s.o.seen((st) => st.name === 'presence' && st.attrs.from?.split('/')[0] === s.agent.jid && /\bc7\b/.test(st.getChildText('status') ?? ''));
    const over = s.o.seen((st) => st.name === 'presence' && st.attrs.from?.split('/')[0] === s.agent.jid && (st.getChildText('status')?.match(/\b99\b/g)?.length ?? 0) >= 8);
    const extra = `presence:\n  min_interval: 1s\n${o.extra ?? ''}`;
    const burst = await run(s, { ...o, extra }, work, 'burst', `  - { id: bridge, driver: serial-bridge, port: ${pty.agent} }\n`, async (pid) => {
      await ready;
      await new Promise((r) => setTimeout(r, Math.max(0, o.idleMs - 1000)));
      const tQuiet = performance.now();
      const cpuQuiet = cpuSecondsOf(pid);
      await new Promise((r) => setTimeout(r, 1000));
      const before = memoryOf(pid);
      await o.beforehand?.(pid);
      const t1 = performance.now();
      const cpu1 = cpuSecondsOf(pid);
      for (let k = 0; k < o.rows; k++) {
        const v = (j: number): string => (k === o.rows - 1 ? '99' : (20 + 5 * Math.sin((k + j * 10) / 50)).toFixed(1));
        for (let j = 0; j < 8; j += 3) sim.inject(encode(k * 3 + j / 3, 'D', ...channels.slice(j, j + 3).map((c, i) => `${c.id}=${v(j + i)}`)));
        if (k % 100 === 99) await new Promise((r) => setTimeout(r, 1));
      }
      await Promise.race([over, new Promise((r) => setTimeout(r, 300_000))]);
      const t2 = performance.now();
      const cpu2 = cpuSecondsOf(pid);
      await new Promise((r) => setTimeout(r, o.idleMs));
      const idleRate = (cpu1 - cpuQuiet) / Math.max(0.001, (t1 - tQuiet) / 1000);
      const cpu = Math.max(0, cpu2 - cpu1 - idleRate * ((t2 - t1) / 1000));
      const early = memoryOf(pid);
      // The agent gives memory back once it has been quiet for 8 s (src/runtime/compactor.ts).
      await new Promise((r) => setTimeout(r, Math.max(0, (o.settleMs ?? o.idleMs) - o.idleMs)));
      const after = memoryOf(pid);
      await o.afterwards?.(pid);
      return { before, early, after, cpu, late: false };
    }).finally(async () => {
      await sim.stop();
      await pty.stop();
    });
    const readings = 8 * o.rows;
    return { label: o.label, onlineMs: idleRun.onlineMs, idle: idleRun.idle, before: burst.before, early: burst.early, after: burst.after, earlyMs: o.idleMs, afterMs: Math.max(o.idleMs, o.settleMs ?? o.idleMs), readings, cpuUsPerReading: Math.round((burst.cpu / readings) * 1e6 * 10) / 10, late: burst.late };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** One agent process over a fresh copy of the seed store: online, then `measure`. */
async function run<T>(s: Server, o: { entry?: string; runtime: Runtime; seed: string; extra?: string; logTo?: string }, work: string, name: string, devices: string, measure: (pid: number, t0: number) => Promise<T>): Promise<T & { onlineMs: number }> {
  const state = join(work, `state-${name}`);
  cpSync(o.seed, state, { recursive: true });
  const [cmd, args, env] = agentCommand(s, { devices, stateDir: state, entry: o.entry, runtime: o.runtime, extra: o.extra });
  const up = online(s, s.agent.jid);
  const t0 = performance.now();
  const child = start(cmd, args, env);
  if (o.logTo) for (const out of [child.stdout!, child.stderr!]) out.on('data', (d: Buffer) => appendFileSync(o.logTo!, d));
  try {
    await up;
    const onlineMs = Math.round(performance.now() - t0);
    return { ...(await measure(child.pid!, t0)), onlineMs };
  } finally {
    await stop(child);
  }
}
