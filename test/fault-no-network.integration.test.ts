// Fault: no network at boot. The agent starts in a network namespace of its
// own with nothing in it (no route anywhere, loopback down, so DNS fails at
// once and nothing can leave the machine), with its own /etc/hosts, the way a
// Pi boots before Wi-Fi is up. It must start anyway (drivers, history, alarms
// into the outbox), tell systemd it is ready and keep its watchdog fed (so the
// unit is not restarted in a loop), retry with backoff, and come online by
// itself when the network does: first the name resolves but the server is
// unreachable, then a bridge (a unix socket, the only way in or out of that
// namespace) reaches the suite's Prosody.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { Element } from 'ltx';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findBinary } from '../tools/dev/prosody.js';
import { account, peer, server, xml, type Account, type Peer } from './helpers/peers.js';
import { isRoot, runAgent, writeConfig, type AgentProcess } from './helpers/agent-process.js';
import { until } from './helpers/until.js';

const UNIT = join(__dirname, '..', 'deploy', 'systemd', 'xmpp-iot-agent.service');
const tools = ['unshare', 'nsenter', 'ip', 'socat', 'systemd-notify', 'python3'].every((b) => findBinary(b));
const can = isRoot && tools;
if (!can) console.warn('fault-no-network: the process part is skipped (needs root, unshare, nsenter, ip, socat, systemd-notify, python3)');

const NOTIFY_LISTENER = `
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], 'a') as out:
    while True:
        out.write(s.recv(4096).decode().replace('\\n', '|') + '\\n')
        out.flush()
`;

describe('no network at boot: the systemd unit', () => {
  it('waits for network-online.target without requiring it, and restarts only on failure (never for a bad config, login or store)', () => {
    const unit = readFileSync(UNIT, 'utf8');
    const values = (key: string): string[] => [...unit.matchAll(new RegExp(`^${key}=(.*)$`, 'gm'))].flatMap((m) => m[1]!.trim().split(/\s+/));
    expect(values('Wants')).toContain('network-online.target');
    expect(values('After')).toContain('network-online.target');
    // Wants, not Requires: a gateway whose network never comes up still starts (history, alarms into the outbox).
    expect(values('Requires')).not.toContain('network-online.target');
    expect(values('Restart')).toEqual(['on-failure']);
    expect(values('RestartPreventExitStatus')).toEqual(expect.arrayContaining(['73', '77', '78']));
  });
});

describe.skipIf(!can)('no network at boot (DNS fails, no route, then the server unreachable)', () => {
  let dir: string;
  let hosts: string;
  let gw: Account;
  let owner: Peer;
  let agent: AgentProcess;
  let listener: ChildProcess;
  const bridges: ChildProcess[] = [];
  let notifyLog: string;
  let port: number;
  const name = 'xmpp.gateway.test';
  const notified = (): string => (existsSync(notifyLog) ? readFileSync(notifyLog, 'utf8') : '');
  const alarms = (): Element[] => owner.stanzas.filter((s) => s.name === 'message' && /^[⚠✓] /.test(s.getChildText('body') ?? ''));
  const inNetns = (args: string[]): ChildProcess => {
    const c = spawn('nsenter', ['-t', String(agent.child.pid), '-n', ...args], { stdio: 'ignore' });
    c.on('error', () => {});
    return c;
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'xia-nonet-'));
    hosts = join(dir, 'hosts');
    writeFileSync(hosts, '127.0.0.1 localhost\n');
    notifyLog = join(dir, 'notified');
    writeFileSync(join(dir, 'listen.py'), NOTIFY_LISTENER);
    listener = spawn('python3', [join(dir, 'listen.py'), join(dir, 'notify'), notifyLog], { stdio: 'ignore' });
    await until(() => existsSync(join(dir, 'notify')), 'the notify socket');
    gw = await account('gw');
    const o = await account('alice');
    owner = await peer(o);
    await owner.send(xml('presence', { type: 'subscribe', to: gw.jid }));
    port = 5222;
    const trace = join(dir, 'flap.csv');
    writeFileSync(trace, Array.from({ length: 40 }, (_, i) => `${i * 0.5},${i % 2 ? 10 : 40}`).join('\n'));
    const file = writeConfig(
      dir,
      `xmpp:
  jid: ${gw.jid}
  resource: agent
  service: xmpp://${name}:${port}
  tls: { ca_file: ${server().caFile} }
  reconnect: { initial_delay: 100ms, max_delay: 2s }
owners: [${o.jid}]
mdns: { enabled: false }
state_dir: ${join(dir, 'state')}
history: { interval: 1s, flush_interval: 1s }
devices:
  - { id: level, driver: replay, file: ${trace}, speed: 1, loop: true, unit: "%" }
  - { id: temperature, driver: simulated, type: number, unit: "°C", interval: 500ms }
alarms:
  - { device: level, above: 30, hysteresis: 1 }
`,
    );
    // A network namespace with nothing in it, and this test's /etc/hosts in a mount namespace of its own.
    agent = runAgent(file, {
      password: gw.password,
      prefix: ['unshare', '--net', '--mount', '--', 'sh', '-c', `mount --bind ${hosts} /etc/hosts && exec "$0" "$@"`],
      env: { NOTIFY_SOCKET: join(dir, 'notify'), WATCHDOG_USEC: '1000000' },
    });
  });

  afterAll(async () => {
    await agent?.stop();
    for (const b of bridges) b.kill();
    listener?.kill();
    await owner?.stop();
  });

  it('starts anyway: drivers, history and alarms into the outbox; ready for systemd, watchdog fed; retries with backoff', async () => {
    await until(() => agent.find(/^started$/) !== undefined, 'the agent started', { timeoutMs: 15_000, got: () => [...agent.lines.slice(-3), ...agent.other.slice(-3)] });
    await until(() => /READY=1/.test(notified()), 'READY=1 while offline', { timeoutMs: 10_000, got: notified });
    await until(() => agent.count(/^reconnecting$/) >= 6, 'six attempts', { timeoutMs: 20_000 });
    const failures = agent.lines.filter((l) => l.msg === 'connection attempt failed' || l.msg === 'connection error');
    expect(JSON.stringify(failures[0])).toMatch(/EAI_AGAIN|ENOTFOUND|getaddrinfo/);
    const delays = agent.lines.filter((l) => l.msg === 'reconnecting').map((l) => Number(l.inMs));
    // Exponential (equal jitter: each at least half its step, so growing until the cap), capped at max_delay.
    for (let i = 1; i < 4; i++) expect(delays[i]).toBeGreaterThanOrEqual(delays[i - 1]!);
    expect(Math.max(...delays)).toBeLessThanOrEqual(2000);
    expect(agent.count(/^alarm$/)).toBeGreaterThanOrEqual(3);
    const pings = (): number => (notified().match(/WATCHDOG=1/g) ?? []).length;
    const before = pings();
    await until(() => pings() >= before + 2, 'the watchdog fed while offline', { timeoutMs: 5_000 });
    expect(agent.child.exitCode).toBeNull();
  }, 60_000);

  it('the name resolves but the server is unreachable: still retrying, still up', async () => {
    const mark = agent.lines.length;
    writeFileSync(hosts, `127.0.0.1 localhost\n127.0.0.1 ${name}\n`);
    await new Promise<void>((r) => inNetns(['ip', 'link', 'set', 'lo', 'up']).once('exit', () => r()));
    await until(() => agent.lines.slice(mark).some((l) => /ECONNREFUSED/.test(JSON.stringify(l))), 'connection refused, not a DNS failure', { timeoutMs: 10_000, got: () => agent.lines.slice(-3) });
    expect(agent.find(/^online/)).toBeUndefined();
    expect(agent.child.exitCode).toBeNull();
  }, 30_000);

  it('comes online by itself when the network does, and every alarm raised offline arrives once, stamped', async () => {
    const sock = join(dir, 'bridge.sock');
    // Outside: the unix socket to Prosody; inside the agent's namespace: its port to the unix socket.
    const outside = spawn('socat', [`UNIX-LISTEN:${sock},fork`, `TCP:127.0.0.1:${server().port}`], { stdio: 'ignore' });
    bridges.push(outside);
    await until(() => existsSync(sock), 'the bridge socket');
    bridges.push(inNetns(['socat', `TCP-LISTEN:${port},bind=127.0.0.1,fork,reuseaddr`, `UNIX-CONNECT:${sock}`]));
    const offline = agent.count(/^alarm( cleared)?$/);
    await until(() => agent.find(/^online/) !== undefined, 'online once the network is up', { timeoutMs: 15_000, got: () => agent.lines.slice(-3) });
    await until(() => /STATUS=online as /.test(notified()), 'systemd told', { timeoutMs: 5_000 });
    await until(() => alarms().length >= offline, 'the alarms raised offline at the owner', { timeoutMs: 15_000, got: () => [alarms().length, offline] });
    const ids = alarms().map((m) => m.getChild('origin-id', 'urn:xmpp:sid:0')?.attrs.id);
    expect(new Set(ids).size).toBe(ids.length);
    // The first ones waited: they carry the time they were raised.
    expect(alarms()[0]!.getChild('delay', 'urn:xmpp:delay')?.attrs.stamp).toBeDefined();
    expect(agent.child.exitCode).toBeNull();
    // The history went on while offline.
    const onlineAt = Date.parse(agent.find(/^online/)!.time);
    expect(await agent.stop()).toBe(0);
    const db = new Database(join(dir, 'state', 'agent.db'), { readonly: true });
    try {
      expect((db.prepare('SELECT count(*) AS n FROM readings WHERE t < ?').get(onlineAt) as { n: number }).n).toBeGreaterThan(3);
    } finally {
      db.close();
    }
  }, 45_000);
});
