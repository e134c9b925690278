// Fleet at scale (npm run bench:fleet): N gateway sessions, each the agent's
// own Session (TLS, SCRAM, bind, XEP-0198, presence), against one private
// Prosody and against the private 2-node ejabberd cluster, and the login storm
// after a server restart with the agent's jittered backoff against a fixed 1 s
// reconnect (what the stock @xmpp/client does). The sessions share this one
// process (a machine of 2 cores cannot run 500 agent processes); the servers
// are measured from /proc. Writes its own section of BENCHMARKS.md.
//   node dist-tools/bench/scale.js [--gateways N] [--no-cluster] [--no-write]

import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import xml from '@xmpp/xml';
import { startProsody, type Prosody } from '../tools/dev/prosody.js';
import { ejabberdUnavailable, startCluster } from '../tools/dev/ejabberd.js';
import { silentLogger } from '../src/runtime/log.js';
import { Session } from '../src/xmpp/session.js';
import { STABLE_MS } from '../src/xmpp/reconnect.js';
import { cpuSecondsOf, memoryOf, round } from './lib.js';
import { writeScaleSection } from './scale-report.js';

export interface FleetRun {
  server: string;
  gateways: number;
  online: number;
  failures: number;
  /** Reconnects scheduled during the first login of all (refused, timed out, dropped). */
  loginRetries: number;
  /** From the first connect to the last gateway online. */
  allOnlineMs: number;
  /** Bulk account creation (ms for all of them). */
  accountsMs: number;
  serverRssIdleMiB: number;
  serverRssFleetMiB: number;
  serverKiBPerGateway: number;
  /** Gateways per node, for the cluster. */
  perNode?: Record<string, number>;
}

export interface StormRun {
  reconnect: string;
  gateways: number;
  /** From the restarted server listening again to the last gateway back online. */
  allBackMs: number;
  back: number;
  failures: number;
  /** The server's highest CPU use over a 250 ms window during the recovery (100 % = one core). */
  peakCpuPercent: number;
  /** CPU seconds the server spent until all were back. */
  serverCpuS: number;
  /** Connection attempts the gateways made until then. */
  attempts: number;
}

export interface ScaleResult {
  date: string;
  gateways: number;
  prosody: FleetRun;
  cluster?: FleetRun;
  storms: StormRun[];
}

interface Fleet {
  sessions: Session[];
  online(): number;
  attempts(): number;
  /** Resolves when every session is online (or the deadline passed); the elapsed ms. */
  allOnline(deadlineMs: number): Promise<number>;
  stop(): Promise<void>;
}

function connectFleet(o: {
  accounts: { jid: string; password: string }[];
  services: (i: number) => string[];
  ca: string;
  reconnect: { initialDelayMs: number; maxDelayMs: number };
  random?: () => number;
}): Fleet {
  const sessions: Session[] = [];
  let attempts = 0;
  o.accounts.forEach((a, i) => {
    const s = new Session({ jid: a.jid, resource: 'gw', password: a.password, services: o.services(i), ca: o.ca, allowPlaintext: false, reconnect: o.reconnect, random: o.random, log: silentLogger });
    s.on('online', () => void s.send(xml('presence', {}, xml('status', {}, 'temperature 21.4 °C · fan off'))).catch(() => {}));
    s.on('reconnecting', () => attempts++);
    sessions.push(s);
  });
  const online = (): number => sessions.filter((s) => s.online).length;
  return {
    sessions,
    online,
    attempts: () => attempts,
    async allOnline(deadlineMs) {
      const t0 = performance.now();
      while (online() < sessions.length && performance.now() - t0 < deadlineMs) await new Promise((r) => setTimeout(r, 20));
      return performance.now() - t0;
    },
    stop: async () => {
      await Promise.all(sessions.map((s) => s.stop()));
    },
  };
}

const MiB = (kib: number): number => round(kib / 1024, 1);
const settle = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function prosodyAccounts(server: Prosody, n: number): Promise<{ accounts: { jid: string; password: string }[]; ms: number }> {
  const accounts = Array.from({ length: n }, (_, i) => ({ user: `gw${i}`, password: `pw-${i}` }));
  const t0 = performance.now();
  const queue = [...accounts];
  const worker = async (): Promise<void> => {
    for (let a = queue.shift(); a; a = queue.shift()) await server.register(a.user, a.password);
  };
  await Promise.all(Array.from({ length: 4 }, worker));
  return { accounts: accounts.map((a) => ({ jid: `${a.user}@${server.domain}`, password: a.password })), ms: Math.round(performance.now() - t0) };
}

/** Restart the server under a connected fleet; measure until all are back. */
async function storm(server: Prosody, fleet: Fleet, reconnect: string): Promise<StormRun> {
  const n = fleet.sessions.length;
  const attempts0 = fleet.attempts();
  await server.restart();
  const pid = server.pid()!;
  let last = { t: performance.now(), cpu: cpuSecondsOf(pid) };
  const cpu0 = last.cpu;
  let peak = 0;
  const sampler = setInterval(() => {
    try {
      const now = { t: performance.now(), cpu: cpuSecondsOf(pid) };
      peak = Math.max(peak, ((now.cpu - last.cpu) / ((now.t - last.t) / 1000)) * 100);
      last = now;
    } catch {
      // the process went away
    }
  }, 250);
  // The sessions notice the closed streams during the restart; count from the server listening again.
  const ms = await fleet.allOnline(180_000);
  clearInterval(sampler);
  const back = fleet.online();
  return { reconnect, gateways: n, allBackMs: Math.round(ms), back, failures: n - back, peakCpuPercent: Math.round(peak), serverCpuS: round(cpuSecondsOf(pid) - cpu0, 2), attempts: fleet.attempts() - attempts0 };
}

export async function scale(o: { gateways: number; cluster: boolean }): Promise<ScaleResult> {
  const n = o.gateways;
  const dir = mkdtempSync(join(tmpdir(), 'xia-scale-'));
  chmodSync(dir, 0o755); // the cluster's nodes run as the ejabberd user
  const storms: StormRun[] = [];
  let prosody: FleetRun;
  let cluster: FleetRun | undefined;
  try {
    const server = await startProsody({ dir: join(dir, 'prosody') });
    try {
      const { accounts, ms: accountsMs } = await prosodyAccounts(server, n);
      await settle(500);
      const idle = memoryOf(server.pid()!).vmRssKiB;
      const ca = readFileSync(server.caFile, 'utf8');
      const jittered = connectFleet({ accounts, services: () => [server.service], ca, reconnect: { initialDelayMs: 1000, maxDelayMs: 300_000 } });
      const t0 = performance.now();
      for (const s of jittered.sessions) s.start();
      await jittered.allOnline(120_000);
      const allOnlineMs = Math.round(performance.now() - t0);
      const loginRetries = jittered.attempts();
      // Past STABLE_MS online, as a fleet that has run for a while: the backoff starts over at its shortest delay.
      await settle(STABLE_MS + 1000);
      const loaded = memoryOf(server.pid()!).vmRssKiB;
      const online = jittered.online();
      prosody = { server: 'Prosody 0.12, one process', gateways: n, online, failures: n - online, loginRetries, allOnlineMs, accountsMs, serverRssIdleMiB: MiB(idle), serverRssFleetMiB: MiB(loaded), serverKiBPerGateway: Math.round((loaded - idle) / Math.max(1, online)) };
      process.stderr.write(`[scale] prosody: ${JSON.stringify(prosody)}\n`);

      storms.push(await storm(server, jittered, 'the agent: 1 s doubling to 5 min, jittered (half to all of each delay)'));
      process.stderr.write(`[scale] storm: ${JSON.stringify(storms.at(-1))}\n`);
      await jittered.stop();
      await settle(1000);

      // Stock @xmpp/client: a fixed 1 s after every loss, the same for every gateway.
      const fixed = connectFleet({ accounts, services: () => [server.service], ca, reconnect: { initialDelayMs: 1000, maxDelayMs: 1000 }, random: () => 1 });
      for (const s of fixed.sessions) s.start();
      await fixed.allOnline(120_000);
      await settle(STABLE_MS + 1000);
      storms.push(await storm(server, fixed, 'fixed 1 s (stock @xmpp/client)'));
      process.stderr.write(`[scale] storm: ${JSON.stringify(storms.at(-1))}\n`);
      await fixed.stop();
    } finally {
      await server.stop();
    }

    const why = ejabberdUnavailable();
    if (o.cluster && why) process.stderr.write(`[scale] cluster skipped: ${why}\n`);
    if (o.cluster && !why) {
      const c = await startCluster({ dir: join(dir, 'ejabberd') });
      try {
        const accounts = Array.from({ length: n }, (_, i) => ({ user: `gw${i}`, password: `pw-${i}` }));
        const t1 = performance.now();
        await c.registerMany(accounts);
        const accountsMs = Math.round(performance.now() - t1);
        await settle(3000);
        const rss = (): number => c.nodes.reduce((sum, node) => sum + memoryOf(node.pid()!).vmRssKiB, 0);
        const idle = rss();
        const ca = readFileSync(c.caFile, 'utf8');
        const [A, B] = c.nodes;
        // Half prefer each node; each is given both.
        const fleet = connectFleet({
          accounts: accounts.map((a) => ({ jid: `${a.user}@${c.domain}`, password: a.password })),
          services: (i) => (i % 2 === 0 ? [A.directService, B.directService] : [B.directService, A.directService]),
          ca,
          reconnect: { initialDelayMs: 1000, maxDelayMs: 300_000 },
        });
        const t0 = performance.now();
        for (const s of fleet.sessions) s.start();
        await fleet.allOnline(180_000);
        const allOnlineMs = Math.round(performance.now() - t0);
        const loginRetries = fleet.attempts();
        await settle(3000);
        const loaded = rss();
        const online = fleet.online();
        const perNode: Record<string, number> = {};
        for (const s of fleet.sessions) {
          const at = s.stats.endpoint ?? 'offline';
          const label = at === A.directService ? 'A' : at === B.directService ? 'B' : at;
          perNode[label] = (perNode[label] ?? 0) + 1;
        }
        cluster = { server: 'ejabberd 23.01, 2 nodes', gateways: n, online, failures: n - online, loginRetries, allOnlineMs, accountsMs, serverRssIdleMiB: MiB(idle), serverRssFleetMiB: MiB(loaded), serverKiBPerGateway: Math.round((loaded - idle) / Math.max(1, online)), perNode };
        process.stderr.write(`[scale] cluster: ${JSON.stringify(cluster)}\n`);
        await fleet.stop();
      } finally {
        await c.stop();
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return { date: new Date().toISOString().slice(0, 10), gateways: n, prosody, cluster, storms };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const i = process.argv.indexOf('--gateways');
  const n = i > 0 ? Number(process.argv[i + 1]) : 500;
  const r = await scale({ gateways: n, cluster: !process.argv.includes('--no-cluster') });
  process.stdout.write(`${JSON.stringify(r)}\n`);
  if (!process.argv.includes('--no-write')) writeScaleSection(new URL('../../BENCHMARKS.md', import.meta.url).pathname, r);
}
