// npm run soak [-- --minutes N]: the agent (the real CLI, as its own process)
// against a private Prosody and the firmware simulator on a pty, while the
// server is restarted (gracefully and with SIGKILL), the agent itself is
// killed (SIGKILL, then started again on the same state), the network between
// agent and server is cut (a TCP proxy drops every connection), and the serial
// cable is pulled — and a tank level crosses its alarm threshold all along. An
// owner (on its own connection) counts what arrives by message id. Exit 1 on
// any alarm lost or duplicated (the server archives messages, XEP-0313, so a
// killed agent must not repeat itself either). Figures go to BENCHMARKS.md (the soak section) and bench/soak.json.
// The Pi's own faults join in where this machine allows (bench/pi-faults.ts): NTP setting the agent's clock
// (libfaketime), the SD card filling up and going read-only (an ext4 image; root), the server's certificate
// renewed, and the agent booting without a network. A soak of 10 minutes or more kills the agent only in its
// first 5 minutes, so memory drift and card writes are measured on one process from minute 5 to the end.

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
import { clockControl, sdCard, siteCa, unitEnvironment, writeBytesOf } from './pi-faults.js';

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
const site = siteCa(dir, 'iot.test', join(dir, 'prosody'));
const server = await startProsody({ dir: join(dir, 'prosody') });
const ca = readFileSync(site.caFile, 'utf8');
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
const card = sdCard(dir, state);
const clock = clockControl(dir);
if (!card) say('the SD card faults are skipped (they need root and loop devices)');
if (!clock) say('the clock jumps are skipped (libfaketime is not installed: apt-get install faketime)');
writeFileSync(
  join(dir, 'agent.yaml'),
  `xmpp:
  jid: gateway@${server.domain}
  resource: soak
  password_file: password
  service: xmpp://127.0.0.1:${proxyPort}
  tls:
    ca_file: ${site.caFile}
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
/** As the unit runs it: its runtime settings (deploy/systemd), the clock the faults set, and SOAK_NODE_OPTIONS appended (e.g. --inspect-port, to look into its heap). */
function agentEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...unitEnvironment(join(ROOT, 'deploy/systemd/xmpp-iot-agent.service')), ...clock?.env };
  if (process.env.SOAK_NODE_OPTIONS) env.NODE_OPTIONS = `${env.NODE_OPTIONS ?? ''} ${process.env.SOAK_NODE_OPTIONS}`.trim();
  return env;
}
/** The agent as its own process; started again (same state dir) after each kill. */
function startAgent(): ChildProcess {
  const child = spawn(process.execPath, [join(ROOT, 'dist/cli.js'), 'run', '--config', join(dir, 'agent.yaml')], { stdio: ['ignore', 'pipe', 'inherit'], env: agentEnv() });
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
const pi = { bootWithoutNetwork: [] as number[], diskFull: [] as number[], diskFullTimes: 0, readOnly: [] as number[], clockJumps: 0, certRenewals: 0 };
/** Alarms an hour of a busy real gateway (the soak's tank flaps some 6,000 times an hour), for the card's rate at a real pace. */
const REALISTIC_ALARMS_PER_HOUR = 10;
/** --drift-from M: where the one-process part begins (default minute 5, for soaks of 10 minutes or more). */
const driftMinute = arg('drift-from') !== undefined ? Number(arg('drift-from')) : 5;
const long = minutes >= 10 || arg('drift-from') !== undefined;
/** From here on the agent is not killed: memory drift and card writes are one process's. */
const driftFrom = long ? t0 + driftMinute * 60_000 : Infinity;
const classic = ['server (SIGTERM)', 'serial', 'agent (SIGKILL)', 'network', 'server (SIGKILL)', 'serial', 'network'] as const;
type Fault = (typeof classic)[number] | 'boot without network' | 'clock jump' | 'disk full' | 'card read-only' | 'certificate renewed';
const piFaults: Fault[] = ['certificate renewed', ...(clock ? ['clock jump' as const] : []), ...(card ? ['disk full' as const] : [])];
// Short soaks: the classic rotation first (the test suite's one-minute soak sees each of those), then the Pi's.
// Long ones: the kills (and a boot without network) early, the rest mixed all along, the card broken once.
// The card is broken once, early: its repair mounts it again through a loop device of its own, and the one-process
// figures from minute 5 on are then all taken on that one.
const early: Fault[] = long ? ['server (SIGTERM)', 'agent (SIGKILL)', 'boot without network', ...(card ? ['card read-only' as const] : []), 'network', 'serial', ...piFaults] : [...classic, 'boot without network', ...piFaults];
const late: Fault[] = ['server (SIGKILL)', 'serial', 'network', ...piFaults, 'server (SIGTERM)', 'network', 'serial'];
let brokeCard = false;
const endAt = t0 + minutes * 60_000;
const stepMs = Math.max(6_000, Math.min(long ? 40_000 : Infinity, Math.floor((minutes * 60_000 - 20_000) / 15)));
let n = 0;
let m = 0;
let drift: { at: number; pid: number; rss: ReturnType<typeof memoryOf>; writeBytes: number; cardBytes?: number } | undefined;
const measureDrift = (): void => {
  if (drift || Date.now() < driftFrom) return;
  drift = { at: Date.now(), pid: agent.pid!, rss: memoryOf(agent.pid!), writeBytes: writeBytesOf(agent.pid!), cardBytes: card?.deviceBytesWritten() };
  say(`minute ${driftMinute}: RssAnon ${(drift.rss.rssAnonKiB / 1024).toFixed(1)} MiB, ${(drift.writeBytes / 1024).toFixed(0)} KiB written so far`);
};
const waitStep = async (ms: number): Promise<void> => {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    measureDrift();
    await sleep(Math.min(500, until - Date.now()));
  }
};
let lastWrites = { at: Date.now(), bytes: 0, pid: 0, card: 0 };
while (Date.now() + stepMs < endAt) {
  await waitStep(stepMs - 2_500);
  if (process.env.SOAK_WRITES) {
    const bytes = writeBytesOf(agent.pid!);
    const cardNow = card?.deviceBytesWritten() ?? NaN;
    if (lastWrites.pid === agent.pid) say(`  since the last fault (${((Date.now() - lastWrites.at) / 1000).toFixed(0)} s): write_bytes ${((bytes - lastWrites.bytes) / 1024).toFixed(0)} KiB, the card's device ${((cardNow - lastWrites.card) / 1024).toFixed(0)} KiB`);
    lastWrites = { at: Date.now(), bytes, pid: agent.pid!, card: cardNow };
  }
  let fault: Fault = Date.now() < driftFrom ? early[n++ % early.length]! : late[m++ % late.length]!;
  if (fault === 'card read-only' && brokeCard) fault = 'network';
  // Near the drift line a kill would leave a process too young to measure: something else instead.
  if (long && (fault === 'agent (SIGKILL)' || fault === 'boot without network') && Date.now() > driftFrom - 90_000) fault = 'serial';
  if (fault === 'boot without network') {
    // A reboot with the Wi-Fi not up yet: the agent stops, the network is gone, the agent starts anyway.
    say('restarting the agent with the network down for 8 s');
    agent.kill('SIGTERM');
    await new Promise((r) => agent.once('exit', r));
    net1.cut(8_000);
    const started = Date.now();
    agent = startAgent();
    agentStartedAt = started;
    await sleep(8_000);
    const back = Date.now();
    const ms = await waitLog(/^online/, back);
    pi.bootWithoutNetwork.push(ms);
    say(`  started at once, online ${ms} ms after the network came back (${lines.filter((l) => l.at >= started && l.msg === 'reconnecting').length} attempts meanwhile)`);
    await sleep(2000);
    rssStart = memoryOf(agent.pid!);
  } else if (fault === 'clock jump') {
    say('NTP sets the agent\'s clock 6 h forward, then 2 h back, then right');
    for (const offset of [6 * 3600, -2 * 3600, 0]) {
      clock!.set(offset);
      await sleep(3_000);
    }
    pi.clockJumps++;
  } else if (fault === 'disk full') {
    say('filling the SD card for 5 s');
    const filledAt = Date.now();
    const free = card!.fill();
    await sleep(5_000);
    free();
    const back = Date.now();
    pi.diskFullTimes++;
    if (logged(/^state store: the disk is full/, filledAt)) {
      const ms = await waitLog(/^state store: writes again/, back, 20_000);
      pi.diskFull.push(ms);
      say(`  the store writes again ${ms} ms after space came back`);
      if (Number.isNaN(ms)) for (const l of lines.filter((x) => x.at >= filledAt && String(x.ns).includes('store'))) say(`  ${l.msg.slice(0, 200)}`);
    } else {
      say('  the agent needed no new space meanwhile');
    }
  } else if (fault === 'card read-only') {
    brokeCard = true;
    say('the SD card goes read-only (ext4 after an I/O error); 5 s later it is checked and mounted again');
    const repair = card!.breakIt();
    await sleep(5_000);
    repair();
    const back = Date.now();
    const ms = await waitLog(/^state store: writes again/, back, 30_000);
    pi.readOnly.push(ms);
    say(`  the store writes again ${ms} ms after the card was mounted again`);
  } else if (fault === 'certificate renewed') {
    say('the server certificate is renewed (the next connection verifies the new one)');
    site.renew();
    pi.certRenewals++;
  } else if (fault.startsWith('server')) {
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
while (Date.now() < endAt) {
  measureDrift();
  await sleep(200);
}
clearInterval(flipper);

// ---- drain, count, report --------------------------------------------------------
// Every alarm is on disk before it is logged; a kill between the two loses the line, so the log only
// says when to look: the store (read after the agent stops) says how many there were.
const loggedCount = (): number => lines.filter((l) => l.msg === 'alarm' || l.msg === 'alarm cleared').length;
const drainStart = Date.now();
while (Date.now() - drainStart < 60_000 && new Set(received.map((r) => r.id)).size < loggedCount()) await sleep(100);
await sleep(3_000); // room for the ones written but not logged, and a late duplicate
const rssEnd = memoryOf(agent.pid!);
const writesEnd = writeBytesOf(agent.pid!);
const cardEnd = card?.deviceBytesWritten();
const measuredTo = Date.now();
// A long soak ends with two quiet minutes (no alarms; readings, history and presence go on): what the card takes from a gateway at rest.
let quiet: { seconds: number; writeBytes: number; cardBytes?: number } | undefined;
if (long) {
  say('two quiet minutes: what the card takes when nothing alarms');
  const q0 = writeBytesOf(agent.pid!);
  const c0 = card?.deviceBytesWritten();
  const at = Date.now();
  await sleep(120_000);
  const c1 = card?.deviceBytesWritten();
  quiet = { seconds: (Date.now() - at) / 1000, writeBytes: writeBytesOf(agent.pid!) - q0, cardBytes: c0 !== undefined && c1 !== undefined ? c1 - c0 : undefined };
}
const ids = received.map((r) => r.id);
const distinct = new Set(ids).size;
const duplicates = ids.length - distinct;
const seq = received.map((r) => Number(r.id.split('-').pop()));
let reordered = 0;
for (let i = 1; i < seq.length; i++) if (seq[i]! < seq[i - 1]!) reordered++;

agent.kill('SIGTERM');
await new Promise((r) => agent.once('exit', r));
const renewalsSeen = lines.filter((l) => l.msg.startsWith('the server presents a new certificate')).length;
const jumpsSeen = lines.filter((l) => l.msg.startsWith('the clock was set')).length;
const store = openStore({ dir: state });
const left = store.outbox.stats();
store.close();
// Alarms the disk refused were sent from memory under ids of their own; those written to disk later went by their outbox id.
const keptInMemory = new Set(lines.filter((l) => l.msg.startsWith('kept in memory')).map((l) => String(l.id)));
for (const l of lines) if (l.msg === 'a message kept in memory is on disk now') keptInMemory.delete(String(l.memoryId));
const sent = writtenCount(join(state, 'agent.db')) - left.dropped + keptInMemory.size;
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
  piFaults: {
    bootWithoutNetwork: pi.bootWithoutNetwork.length,
    clockJumps: pi.clockJumps,
    clockJumpsLogged: jumpsSeen,
    diskFull: pi.diskFullTimes,
    diskFullRefused: pi.diskFull.length,
    readOnly: pi.readOnly.length,
    certRenewals: pi.certRenewals,
    renewalsNoticed: renewalsSeen,
    recoveryMs: { bootWithoutNetwork: figure(pi.bootWithoutNetwork), diskFull: figure(pi.diskFull), readOnly: figure(pi.readOnly) },
    skipped: [...(clock ? [] : ['clock jumps (no libfaketime)']), ...(card ? [] : ['SD card full and read-only (not root)'])],
  },
  /** One agent process from minute 5 (--drift-from) to the end (long soaks only): the figures the frugality goals are about. */
  drift: drift && drift.pid === agent.pid ? cardFigures(drift) : undefined,
};

/**
 * The one-process figures. The card's own figure is its block device's count (the soak's card is a loop device
 * the agent alone writes to; journal and metadata included); write_bytes of /proc/PID/io is given beside it, as
 * an upper bound (see writeBytesOf). Per alarm: what the window took beyond the quiet rate, over its alarms.
 */
function cardFigures(from: NonNullable<typeof drift>) {
  const hours = (measuredTo - from.at) / 3_600_000;
  const alarms = lines.filter((l) => l.at >= from.at && l.at <= endAt && (l.msg === 'alarm' || l.msg === 'alarm cleared')).length;
  const cardBytes = cardEnd !== undefined && from.cardBytes !== undefined ? cardEnd - from.cardBytes : undefined;
  const quietCardPerHour = quiet?.cardBytes !== undefined ? quiet.cardBytes / (quiet.seconds / 3600) : undefined;
  const quietWritePerHour = quiet ? quiet.writeBytes / (quiet.seconds / 3600) : undefined;
  const perAlarm = (bytes: number | undefined, quietPerHour: number | undefined): number | undefined =>
    bytes !== undefined && quietPerHour !== undefined && alarms > 0 ? Math.round(Math.max(0, bytes - quietPerHour * hours) / alarms) : undefined;
  const cardBytesPerAlarm = perAlarm(cardBytes, quietCardPerHour);
  return {
    fromMinute: round((from.at - t0) / 60_000, 1),
    toMinute: round((measuredTo - t0) / 60_000, 1),
    rssAnonKiB: { from: from.rss.rssAnonKiB, to: rssEnd.rssAnonKiB, drift: rssEnd.rssAnonKiB - from.rss.rssAnonKiB },
    alarmsPerHour: Math.round(alarms / ((endAt - from.at) / 3_600_000)),
    cardDeviceBytes: cardBytes,
    cardDeviceBytesPerHour: cardBytes !== undefined ? Math.round(cardBytes / hours) : undefined,
    cardBytesPerAlarm,
    quietCardDeviceBytesPerHour: quietCardPerHour !== undefined ? Math.round(quietCardPerHour) : undefined,
    /** A gateway's real pace (REALISTIC_ALARMS_PER_HOUR, a busy one): the quiet rate plus that many alarms. */
    realisticAlarmsPerHour: REALISTIC_ALARMS_PER_HOUR,
    cardBytesPerHourRealistic: quietCardPerHour !== undefined && cardBytesPerAlarm !== undefined ? Math.round(quietCardPerHour + REALISTIC_ALARMS_PER_HOUR * cardBytesPerAlarm) : undefined,
    sdWriteBytes: writesEnd - from.writeBytes,
    sdWriteBytesPerHour: Math.round((writesEnd - from.writeBytes) / hours),
    writeBytesPerAlarm: perAlarm(writesEnd - from.writeBytes, quietWritePerHour),
    quietWriteBytesPerHour: quietWritePerHour !== undefined ? Math.round(quietWritePerHour) : undefined,
  };
}
const pass = results.alarms.lost === 0 && results.alarms.duplicates === 0 && left.queued === 0 && sent > 0 && !lines.some((l) => l.msg.includes('uncaught exception') || l.msg.includes('unhandled rejection'));
if (report) {
  writeFileSync(join(ROOT, 'bench/soak.json'), JSON.stringify(results, null, 2) + '\n');
  writeSoakSection(join(ROOT, 'BENCHMARKS.md'), results, pass);
}
process.stdout.write(JSON.stringify(results, null, 2) + '\n');
if (results.drift) {
  const d = results.drift;
  const kib = (b: number | undefined): string => (b === undefined ? '—' : b >= 1_048_576 ? `${(b / 1_048_576).toFixed(1)} MiB` : `${(b / 1024).toFixed(1)} KiB`);
  say(`minute ${d.fromMinute} → ${d.toMinute}: RssAnon ${d.rssAnonKiB.drift >= 0 ? '+' : ''}${(d.rssAnonKiB.drift / 1024).toFixed(2)} MiB; the card's block device ${kib(d.cardDeviceBytesPerHour)}/h at ${d.alarmsPerHour} alarms/h, ${kib(d.cardBytesPerAlarm)} per alarm, ${kib(d.quietCardDeviceBytesPerHour)}/h quiet, ${kib(d.cardBytesPerHourRealistic)}/h at ${d.realisticAlarmsPerHour} alarms/h`);
  say(`  /proc/PID/io write_bytes ${kib(d.sdWriteBytesPerHour)}/h (${kib(d.writeBytesPerAlarm)} per alarm): an upper bound, the kernel charges whole page-cache folios; the card's own count is the figure`);
}
say(pass ? 'PASS: every alarm arrived exactly once' : `FAIL: ${results.alarms.lost} lost, ${duplicates} duplicated, ${left.queued} left in the outbox`);

await owner.stop();
await sim.stop();
await pty.stop();
net1.srv.close();
await server.stop();
card?.close();
if (!process.env.KEEP_SOAK && existsSync(dir)) rmSync(dir, { recursive: true, force: true });
process.exit(pass ? 0 : 1);
