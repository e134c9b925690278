// Fleet: N gateway sessions (the agent's own Session: TLS, SCRAM, bind,
// presence) against one private Prosody. Reports time until all are online,
// Prosody's RSS per gateway, and failures.
//   node dist-tools/bench/fleet.js [--agents N]     (built by npm run bench:fleet)

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import xml from '@xmpp/xml';
import { startProsody } from '../tools/dev/prosody.js';
import { silentLogger } from '../src/runtime/log.js';
import { Session } from '../src/xmpp/session.js';

function rssKiB(pid: number, field = 'VmRSS'): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith(`${field}:`));
  return Number(line?.split(/\s+/)[1] ?? NaN);
}

export interface FleetResult {
  agents: number;
  online: number;
  failures: number;
  allOnlineMs: number;
  prosodyRssIdleKiB: number;
  prosodyRssFleetKiB: number;
  prosodyKiBPerAgent: number;
}

export async function fleet(agents: number): Promise<FleetResult> {
  const dir = mkdtempSync(join(tmpdir(), 'xia-fleet-'));
  const server = await startProsody({ dir });
  try {
    const pid = server.pid()!;
    const queue = Array.from({ length: agents }, (_, i) => i);
    const register = async (): Promise<void> => {
      for (let i = queue.shift(); i !== undefined; i = queue.shift()) await server.register(`gw${i}`, `pw-${i}`);
    };
    await Promise.all(Array.from({ length: 4 }, register));
    await new Promise((r) => setTimeout(r, 500));
    const idle = rssKiB(pid);
    const ca = readFileSync(server.caFile, 'utf8');
    const sessions: Session[] = [];
    let online = 0;
    let failures = 0;
    const t0 = performance.now();
    const all = new Promise<void>((resolve) => {
      for (let i = 0; i < agents; i++) {
        const s = new Session({
          jid: `gw${i}@${server.domain}`,
          resource: 'bench',
          password: `pw-${i}`,
          service: server.service,
          ca,
          allowPlaintext: false,
          reconnect: { initialDelayMs: 1000, maxDelayMs: 10_000 },
          log: silentLogger,
        });
        s.once('online', () => {
          void s.send(xml('presence', {}, xml('status', {}, 'temperature 21.4 °C · fan off')));
          if (++online + failures === agents) resolve();
        });
        s.once('fatal', () => {
          if (online + ++failures === agents) resolve();
        });
        sessions.push(s);
        s.start();
      }
    });
    const deadline = new Promise<void>((r) => setTimeout(r, 120_000));
    await Promise.race([all, deadline]);
    const allOnlineMs = performance.now() - t0;
    await new Promise((r) => setTimeout(r, 1000));
    const loaded = rssKiB(pid);
    await Promise.all(sessions.map((s) => s.stop()));
    return {
      agents,
      online,
      failures: agents - online,
      allOnlineMs: Math.round(allOnlineMs),
      prosodyRssIdleKiB: idle,
      prosodyRssFleetKiB: loaded,
      prosodyKiBPerAgent: Math.round((loaded - idle) / Math.max(1, online)),
    };
  } finally {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const i = process.argv.indexOf('--agents');
  const n = i > 0 ? Number(process.argv[i + 1]) : 200;
  const r = await fleet(n);
  process.stdout.write(`${JSON.stringify(r)}\n`);
}
