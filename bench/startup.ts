// Where the time to online goes: node itself, loading the bundle, the config,
// the agent built until its session starts connecting, the store and the
// drivers (while the connection is under way), the rest of the login (TCP,
// STARTTLS, SASL), bind and stream management, and the presence reaching the
// owner. Read from the agent's own debug log (ms timestamps).

import { spawnSync } from 'node:child_process';
import Database from 'better-sqlite3';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { median, round, start, stop } from './lib.js';
import { agentCommand, BUNDLE, EIGHT, online, type Runtime, type Server } from './setup.js';

export interface Startup {
  runs: number;
  /** Median ms of each phase, in order; they add up to the time to online. */
  phases: Record<string, number>;
  totalMs: number;
  /** What opening the store after an unclean stop adds: SQLite's quick_check over the same store, timed in the bench process (median ms). The seed was closed cleanly, so the runs above skip it. */
  quickCheckMs: number;
}

const wall = (args: string[], runtime: Runtime): number => {
  const t = performance.now();
  spawnSync(process.execPath, [...runtime.nodeArgs, ...args], { env: { ...process.env, ...runtime.env }, stdio: 'ignore' });
  return performance.now() - t;
};

export async function startup(s: Server, o: { runs: number; runtime: Runtime; seed: string; scratch: string }): Promise<Startup> {
  const rows: Record<string, number>[] = [];
  for (let run = 0; run < o.runs; run++) {
    // Measured beside each run, so that a noisy neighbour weighs on all three alike.
    const nodeMs = wall(['-e', '0'], o.runtime);
    const loadMs = Math.max(0, wall([BUNDLE, '--version'], o.runtime) - nodeMs);
    const work = mkdtempSync(join(o.scratch, 'startup-'));
    cpSync(o.seed, join(work, 'state'), { recursive: true });
    const [cmd, args, env] = agentCommand(s, { devices: EIGHT, stateDir: join(work, 'state'), runtime: o.runtime, extra: 'log:\n  level: debug\n' });
    const lines: { time: number; msg: string; ns: string; status?: string }[] = [];
    const seen = online(s, s.agent.jid);
    const t0 = Date.now();
    const child = start(cmd, args, env);
    let buf = '';
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        try {
          const j = JSON.parse(line) as { time: string; msg: string; ns: string; status?: string };
          lines.push({ ...j, time: Date.parse(j.time) });
        } catch {
          // not a log line
        }
      }
    });
    await seen;
    const t9 = Date.now();
    await new Promise((r) => setTimeout(r, 200));
    await stop(child);
    rmSync(work, { recursive: true, force: true });
    const at = (p: (l: (typeof lines)[number]) => boolean): number => lines.find(p)?.time ?? NaN;
    const starting = at((l) => l.msg === 'starting');
    const connecting = at((l) => l.msg === 'status' && l.status === 'connecting');
    const started = at((l) => l.msg === 'started');
    const authenticated = at((l) => l.msg === 'authenticated');
    // Every component started, or logged in first (a slow driver): the milestones stay in order.
    const ready = Math.min(started, authenticated);
    const up = at((l) => l.msg === 'online' || l.msg === 'online (stream resumed)');
    rows.push({
      'node starts (node -e 0)': nodeMs,
      'the bundle loads (dist/cli.js --version, less node)': loadMs,
      'config read, logger (to the "starting" log, less the above)': Math.max(0, starting - t0 - nodeMs - loadMs),
      'agent built, the session starts connecting (to its "connecting")': connecting - starting,
      'store opened, drivers started, the connection under way (to "started")': ready - connecting,
      'the rest of TCP, STARTTLS, TLS, SASL (to authenticated)': authenticated - ready,
      'bind, XEP-0198 enable (to online)': up - authenticated,
      'first presence reaches the owner': t9 - up,
    });
  }
  const phases = Object.fromEntries(Object.keys(rows[0]!).map((k) => [k, round(median(rows.map((r) => r[k]!)), 0)]));
  const checks: number[] = [];
  for (let run = 0; run < o.runs; run++) {
    const work = mkdtempSync(join(o.scratch, 'check-'));
    cpSync(o.seed, work, { recursive: true });
    const db = new Database(join(work, 'agent.db'), { timeout: 0 });
    db.pragma('cache_size = -256');
    const t = performance.now();
    db.pragma('quick_check');
    checks.push(performance.now() - t);
    db.close();
    rmSync(work, { recursive: true, force: true });
  }
  return { runs: o.runs, phases, totalMs: round(Object.values(phases).reduce((a, b) => a + b, 0), 0), quickCheckMs: round(median(checks), 0) };
}
