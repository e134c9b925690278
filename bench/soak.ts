// npm run soak [-- --minutes N]: the agent (the real CLI, as its own process)
// against a private Prosody and the firmware simulator on a pty, while the
// server is restarted (gracefully and with SIGKILL), the agent itself is
// killed (SIGKILL, then started again on the same state), the network between
// agent and server is cut (a TCP proxy drops every connection), and the serial
// cable is pulled — and a tank level crosses its alarm threshold all along. An
// owner (on its own connection) counts what arrives by message id. Exit 1 on
// any alarm lost or duplicated (the server archives messages, XEP-0313, so a
// killed agent must not repeat itself either). Figures go to BENCHMARKS.md (the soak section) and bench/soak.json.

import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import xml from '@xmpp/xml';
import type { Element } from 'ltx';
import { startProsody, freePort } from '../tools/dev/prosody.js';
import { ptyPair } from '../tools/dev/pty.js';
import { FirmwareSim } from '../tools/dev/firmware-sim.js';
import { createLogger, createSink } from '../src/runtime/log.js';
import Database from 'better-sqlite3';
import { openStore } from '../src/store/db.js';
import { Session } from '../src/xmpp/session.js';
import { memoryOf, median, percentile, round } from './lib.js';
import { writeSoakSection } from './report.js';

const ROOT = new URL('../..', import.meta.url).pathname;
const arg = (name: string): string | undefined => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : undefined;
};
const minutes = Number(arg('minutes') ?? 2);
/** --no-report: leave BENCHMARKS.md and bench/soak.json alone (the test suite's short soak). */
const report = !process.argv.includes('--no-report');
if (!(minutes > 0)) throw new Error('--minutes must be a positive number');
const say = (s: string): boolean => process.stderr.write(`[soak ${((Date.now() - t0) / 1000).toFixed(1).padStart(6)} s] ${s}\n`);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const t0 = Date.now();

// ---- the world: server, proxy, cable, board ---------------------------------
const dir = mkdtempSync(join(tmpdir(), 'xia-soak-'));
const server = await startProsody({ dir: join(dir, 'prosody') });
const ca = readFileSync(server.caFile, 'utf8');
await server.register('gateway', 'gateway-secret');
await server.register('alice', 'alice-secret');

/** The network between the agent and the server: cut() drops every connection and refuses new ones for a while. */
function proxy(target: number) {
  const sockets = new Set<net.Socket>();
  let blockedUntil = 0;
  const srv = net.createServer((client) => {
    if (Date.now() < blockedUntil) return void client.destroy();
    const upstream = net.connect(target, '127.0.0.1');
    upstream.setNoDelay(true);
    client.setNoDelay(true);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => {});
      s.on('close', () => {
        sockets.delete(s);
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream);
    upstream.pipe(client);
  });
  return {
    srv,
    cut(forMs: number): void {
      blockedUntil = Date.now() + forMs;
      for (const s of sockets) s.destroy();
    },
  };
}
const proxyPort = await freePort();
const net1 = proxy(server.port);
await new Promise<void>((r) => net1.srv.listen(proxyPort, '127.0.0.1', r));

const pty = await ptyPair(dir);
const tank = { id: 'tank', kind: 'n' as const, unit: '%', writable: true, value: 40 };
const sim = new FirmwareSim({ path: pty.firmware, channels: [tank], dataMs: 200, heartbeatMs: 1000 });
await sim.start();

// ---- the owner: counts every alarm by its message id ------------------------
const received: { id: string; body: string; at: number }[] = [];
const owner = new Session({
  jid: `alice@${server.domain}`,
  resource: 'phone',
  password: 'alice-secret',
  service: server.service,
  ca,
  allowPlaintext: false,
  reconnect: { initialDelayMs: 100, maxDelayMs: 1000 },
  log: createLogger(createSink('error', () => {})),
});
owner.on('stanza', (st: Element) => {
  const body = st.name === 'message' ? st.getChildText('body') : null;
  if (body && /^[⚠✓]/.test(body)) received.push({ id: st.attrs.id ?? '', body, at: Date.now() });
});
owner.on('online', (_jid, resumed) => {
  if (!resumed) void owner.send(xml('presence')).catch(() => {}); // available: the server hands over what it stored
});
owner.start();
await new Promise((r) => owner.once('online', r));

// ---- the agent -----------------------------------------------------------------
writeFileSync(join(dir, 'password'), 'gateway-secret');
chmodSync(join(dir, 'password'), 0o600);
const state = join(dir, 'state');
writeFileSync(
  join(dir, 'agent.yaml'),
  `xmpp:
  jid: gateway@${server.domain}
  resource: soak
  password_file: password
  service: xmpp://127.0.0.1:${proxyPort}
  tls:
    ca_file: ${server.caFile}
  reconnect:
    initial_delay: 200ms
    max_delay: 2s
  keepalive:
    interval: 10s
    timeout: 5s
owners: [alice@${server.domain}]
mdns:
  enabled: false
state_dir: ${state}
devices:
  - id: bridge
    driver: serial-bridge
    port: ${pty.agent}
alarms:
  - device: tank
    above: 50
    hysteresis: 1
`,
);
interface LogLine { msg: string; time: string; [k: string]: unknown }
const lines: (LogLine & { at: number })[] = [];
/** The agent as its own process; started again (same state dir) after each kill. */
function startAgent(): ChildProcess {
  const child = spawn(process.execPath, [join(ROOT, 'dist/cli.js'), 'run', '--config', join(dir, 'agent.yaml')], { stdio: ['ignore', 'pipe', 'inherit'] });
  let buf = '';
  child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const text = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      try {
        lines.push({ ...(JSON.parse(text) as LogLine), at: Date.now() });
      } catch {
        say(`agent wrote a non-JSON line: ${text.slice(0, 120)}`);
      }
    }
  });
  return child;
}
let agent = startAgent();
let agentStartedAt = Date.now();
const logged = (msg: string | RegExp, after: number): boolean => lines.some((l) => l.at >= after && (typeof msg === 'string' ? l.msg === msg : msg.test(l.msg)));
const waitLog = async (msg: string | RegExp, after: number, ms = 30_000): Promise<number> => {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const l = lines.find((x) => x.at >= after && (typeof msg === 'string' ? x.msg === msg : msg.test(x.msg)));
    if (l) return l.at - after;
    await sleep(10);
  }
  return NaN;
};
await waitLog(/^online/, t0);
await waitLog('bridge hello', t0);
await sleep(2000);
let rssStart = memoryOf(agent.pid!);
say(`agent online; RssAnon ${(rssStart.rssAnonKiB / 1024).toFixed(1)} MiB`);

// ---- alarms all along: the tank crosses 50 % up and down ------------------------
let flips = 0;
const flipper = setInterval(() => {
  flips++;
  tank.value = flips % 2 === 1 ? 60 + (flips % 10) : 40 - (flips % 10);
}, 600);

// ---- faults on a schedule -------------------------------------------------------
const recovery = { serverGraceful: [] as number[], serverKilled: [] as number[], agentKilled: [] as number[], network: [] as number[], serial: [] as number[] };
const faults = ['server (SIGTERM)', 'serial', 'agent (SIGKILL)', 'network', 'server (SIGKILL)', 'serial', 'network'] as const;
const endAt = t0 + minutes * 60_000;
const stepMs = Math.max(6_000, Math.floor((minutes * 60_000 - 20_000) / 15));
let n = 0;
while (Date.now() + stepMs < endAt) {
  await sleep(stepMs - 2_500);
  const fault = faults[n++ % faults.length]!;
  if (fault.startsWith('server')) {
    const hard = fault.includes('KILL');
    say(`restarting Prosody with ${hard ? 'SIGKILL' : 'SIGTERM'}`);
    await server.restart({ hard });
    const back = Date.now();
    const ms = await waitLog(/^online/, back);
    (hard ? recovery.serverKilled : recovery.serverGraceful).push(ms);
    say(`  agent online again after ${ms} ms`);
  } else if (fault === 'agent (SIGKILL)') {
    // As a power cut would: in the middle of whatever it was doing, alarms flapping.
    say('killing the agent (SIGKILL) and starting it again');
    agent.kill('SIGKILL');
    await new Promise((r) => agent.once('exit', r));
    const back = Date.now();
    agent = startAgent();
    agentStartedAt = back;
    const ms = await waitLog(/^online/, back);
    recovery.agentKilled.push(ms);
    say(`  agent online again after ${ms} ms`);
    await sleep(2000);
    rssStart = memoryOf(agent.pid!); // memory is the new process's from here on
  } else if (fault === 'network') {
    say('cutting the network for 2 s');
    net1.cut(2_000);
    const back = Date.now() + 2_000;
    await sleep(2_000);
    const ms = await waitLog(/^online/, back);
    recovery.network.push(ms);
    say(`  agent online again ${ms} ms after the network came back (${logged('online (stream resumed)', back) ? 'resumed' : 'new session'})`);
  } else {
    say('pulling the serial cable for 2 s');
    await pty.unplug();
    await sim.stop(); // the board loses its end of the cable too
    await sleep(2_000);
    await pty.plug();
    const back = Date.now();
    await sim.start();
    const ms = await waitLog('bridge hello', back);
    recovery.serial.push(ms);
    say(`  bridge back after ${ms} ms`);
  }
}
while (Date.now() < endAt) await sleep(200);
clearInterval(flipper);

// ---- drain, count, report --------------------------------------------------------
// Every alarm is on disk before it is logged; a kill between the two loses the line, so the log only
// says when to look: the store (read after the agent stops) says how many there were.
const loggedCount = (): number => lines.filter((l) => l.msg === 'alarm' || l.msg === 'alarm cleared').length;
const drainStart = Date.now();
while (Date.now() - drainStart < 60_000 && new Set(received.map((r) => r.id)).size < loggedCount()) await sleep(100);
await sleep(3_000); // room for the ones written but not logged, and a late duplicate
const rssEnd = memoryOf(agent.pid!);
const ids = received.map((r) => r.id);
const distinct = new Set(ids).size;
const duplicates = ids.length - distinct;
const seq = received.map((r) => Number(r.id.split('-').pop()));
let reordered = 0;
for (let i = 1; i < seq.length; i++) if (seq[i]! < seq[i - 1]!) reordered++;

agent.kill('SIGTERM');
await new Promise((r) => agent.once('exit', r));
const store = openStore({ dir: state });
const left = store.outbox.stats();
store.close();
const sent = writtenCount(join(state, 'agent.db')) - left.dropped;
const resumes = lines.filter((l) => l.msg === 'online (stream resumed)').length;
const sessions = lines.filter((l) => l.msg === 'online').length;
const garbage = lines.filter((l) => /garbled|bad frame/i.test(l.msg)).length;

/** Outbox entries ever written: ids are AUTOINCREMENT, so the highest one handed out. */
function writtenCount(file: string): number {
  const db = new Database(file, { readonly: true });
  try {
    return (db.prepare("SELECT seq FROM sqlite_sequence WHERE name = 'outbox'").get() as { seq: number } | undefined)?.seq ?? 0;
  } finally {
    db.close();
  }
}

const figure = (v: number[]): string => (v.length ? `median ${Math.round(median(v))} ms, max ${Math.round(Math.max(...v))} ms (${v.length}×)` : '—');
const results = {
  when: new Date().toISOString(),
  minutes,
  alarms: { sent, received: distinct, lost: sent - distinct, duplicates, reordered, outboxLeft: left.queued, droppedWhenFull: left.dropped },
  faults: { serverRestartsGraceful: recovery.serverGraceful.length, serverRestartsKilled: recovery.serverKilled.length, agentKills: recovery.agentKilled.length, networkCuts: recovery.network.length, serialCuts: recovery.serial.length },
  recoveryMs: {
    serverGraceful: figure(recovery.serverGraceful),
    serverKilled: figure(recovery.serverKilled),
    agentKilled: figure(recovery.agentKilled),
    network: figure(recovery.network),
    serial: figure(recovery.serial),
    p99All: round(percentile([...recovery.serverGraceful, ...recovery.serverKilled, ...recovery.network], 99), 0),
  },
  sessions: { newSessions: sessions, resumed: resumes },
  /** RSS figures are of the last agent process (started after the last kill). */
  lastAgentMinutes: round((Date.now() - agentStartedAt) / 60_000, 1),
  rss: { startKiB: rssStart.rssAnonKiB, endKiB: rssEnd.rssAnonKiB, vmRssStartKiB: rssStart.vmRssKiB, vmRssEndKiB: rssEnd.vmRssKiB },
  garbage,
};
const pass = results.alarms.lost === 0 && results.alarms.duplicates === 0 && left.queued === 0 && sent > 0;
if (report) {
  writeFileSync(join(ROOT, 'bench/soak.json'), JSON.stringify(results, null, 2) + '\n');
  writeSoakSection(join(ROOT, 'BENCHMARKS.md'), results, pass);
}
process.stdout.write(JSON.stringify(results, null, 2) + '\n');
say(pass ? 'PASS: every alarm arrived exactly once' : `FAIL: ${results.alarms.lost} lost, ${duplicates} duplicated, ${left.queued} left in the outbox`);

await owner.stop();
await sim.stop();
await pty.stop();
net1.srv.close();
await server.stop();
if (!process.env.KEEP_SOAK && existsSync(dir)) rmSync(dir, { recursive: true, force: true });
process.exit(pass ? 0 : 1);
