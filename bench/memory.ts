// Memory and CPU of one agent process from start to a burst of readings and
// back to idle: a "profile", run for each build (bundle, tsc output) and each
// runtime flag, over a realistic store (a week of history: 8 devices, one row a
// minute, 80,640 rows).
//
// Two processes per configuration: one with 8 simulated devices (online, then
// idleMs, then RssAnon), one whose 8 devices replay a trace that holds still
// for a moment (the idle CPU rate), then plays all its remaining rows as fast
// as timers go (the burst: CPU per reading), then idles (RssAnon after the
// readings).

import { cpSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openStore } from '../src/store/db.js';
import { cpuSecondsOf, memoryOf, settled, start, stop, type Memory } from './lib.js';
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
  /** RssAnon idleMs after the burst. */
  after: Memory;
  readings: number;
  /** CPU (user + system) per reading during the burst, less the idle rate. */
  cpuUsPerReading: number;
  /** The idle phase was cut short by a slow start: the figures are not comparable. */
  late: boolean;
}

export async function profile(s: Server, o: { label: string; entry?: string; runtime: Runtime; rows: number; idleMs: number; seed: string; scratch: string }): Promise<Profile> {
  const work = mkdtempSync(join(o.scratch, 'profile-'));
  try {
    // Idle: 8 simulated devices, as in the comparison with the baselines.
    const idleRun = await run(s, o, work, 'idle', EIGHT, async (pid) => {
      await new Promise((r) => setTimeout(r, o.idleMs));
      return { idle: memoryOf(pid) };
    });
    // The burst: 8 replayed devices. Row 0 at once, row 1 after a hold (the idle CPU rate), the rest 1 µs
    // apart (each a timer tick). The parsed trace (~50 bytes a row) is released once played.
    const holdMs = 3000;
    const trace = [`0,20`, ...Array.from({ length: o.rows - 1 }, (_, i) => `${(holdMs / 1000 + i * 1e-6).toFixed(6)},${(20 + Math.sin(i / 50) * 5).toFixed(2)}`)];
    writeFileSync(join(work, 'trace.csv'), trace.join('\n'));
    const devices = Array.from({ length: 8 }, (_, i) => `  - { id: r${i}, driver: replay, file: ${join(work, 'trace.csv')}, speed: 1, loop: false, unit: "°C" }\n`).join('');
    const burst = await run(s, o, work, 'burst', devices, async (pid, t0, tOnline) => {
      const cpuOnline = cpuSecondsOf(pid);
      await new Promise((r) => setTimeout(r, Math.max(200, t0 + holdMs - 300 - performance.now())));
      const t1 = performance.now();
      const cpu1 = cpuSecondsOf(pid);
      const late = t1 - t0 > holdMs;
      // The burst begins (the process uses CPU again), then ends (500 ms with almost none).
      const begins = t0 + holdMs + 15_000;
      while (cpuSecondsOf(pid) - cpu1 < 0.03 && performance.now() < begins) await new Promise((r) => setTimeout(r, 50));
      await settled(pid, 500, 180_000);
      const t2 = performance.now();
      const cpu2 = cpuSecondsOf(pid);
      await new Promise((r) => setTimeout(r, o.idleMs));
      const idleRate = (cpu1 - cpuOnline) / Math.max(0.001, (t1 - tOnline) / 1000);
      const cpu = Math.max(0, cpu2 - cpu1 - idleRate * ((t2 - t1) / 1000));
      return { after: memoryOf(pid), cpu, late };
    });
    const readings = 8 * (o.rows - 1);
    return { label: o.label, onlineMs: idleRun.onlineMs, idle: idleRun.idle, after: burst.after, readings, cpuUsPerReading: Math.round((burst.cpu / readings) * 1e6 * 10) / 10, late: burst.late };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** One agent process over a fresh copy of the seed store: online, then `measure`. */
async function run<T>(s: Server, o: { entry?: string; runtime: Runtime; seed: string }, work: string, name: string, devices: string, measure: (pid: number, t0: number, tOnline: number) => Promise<T>): Promise<T & { onlineMs: number }> {
  const state = join(work, `state-${name}`);
  cpSync(o.seed, state, { recursive: true });
  const [cmd, args, env] = agentCommand(s, { devices, stateDir: state, entry: o.entry, runtime: o.runtime });
  const up = online(s, s.agent.jid);
  const t0 = performance.now();
  const child = start(cmd, args, env);
  try {
    await up;
    const tOnline = performance.now();
    return { ...(await measure(child.pid!, t0, tOnline)), onlineMs: Math.round(tOnline - t0) };
  } finally {
    await stop(child);
  }
}
