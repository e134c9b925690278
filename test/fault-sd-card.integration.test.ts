// Fault: the SD card fills up, or ext4 remounts it read-only after an I/O
// error. The agent runs as its own process with its state dir on a real
// filesystem the test controls: a small tmpfs that fills up, and a loop-mounted
// ext4 image made to fail (trigger_fs_error: what ext4 does on an I/O error,
// errors=remount-ro). Meanwhile it must keep serving chat, presence and
// control; send every alarm (kept in memory while the disk refuses it);
// pause the history and say so; say in "Agent status", chat status and the
// log what is wrong and what to do; and carry on by itself when the disk
// takes writes again, losing nothing that was stored before.

import { execFileSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import Database from 'better-sqlite3';
import type { Element } from 'ltx';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { account, peer, server, xml, type Account, type Peer } from './helpers/peers.js';
import { ask, isRoot, runAgent, writeConfig, type AgentProcess } from './helpers/agent-process.js';
import { until } from './helpers/until.js';

const canMount = isRoot && existsSync('/dev/loop-control');
if (!canMount) console.warn('fault-sd-card: skipped (mounting a tmpfs and a loop image needs root and /dev/loop-control)');

const sh = (cmd: string, args: string[]): string => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

interface Site {
  dir: string;
  state: string;
  file: string;
  gw: Account;
  owner: Peer;
  jid: string;
}

async function site(mountState: (state: string) => void): Promise<Site> {
  const dir = mkdtempSync(join(tmpdir(), 'xia-card-'));
  const state = join(dir, 'state');
  mkdirSync(state);
  mountState(state);
  const gw = await account('gw');
  const o = await account('alice');
  const owner = await peer(o);
  const s = server();
  const trace = join(dir, 'flap.csv');
  // An alarm raised and cleared every second, all along.
  execFileSync('sh', ['-c', `for i in $(seq 0 39); do echo "$((i)),$(( i % 2 ? 10 : 40 ))"; done > ${trace}`]);
  const file = writeConfig(
    dir,
    `xmpp:
  jid: ${gw.jid}
  resource: agent
  service: xmpp://127.0.0.1:${s.port}
  tls: { ca_file: ${s.caFile} }
  reconnect: { initial_delay: 100ms, max_delay: 1s }
owners: [${o.jid}]
mdns: { enabled: false }
state_dir: ${state}
presence: { min_interval: 500ms, heartbeat: 2s }
history: { interval: 100ms, flush_interval: 300ms }
devices:
  - { id: level, driver: replay, file: ${trace}, speed: 1, loop: true, unit: "%" }
  - { id: temperature, driver: simulated, type: number, unit: "°C", min: 15, max: 30, interval: 100ms }
  - { id: fan, driver: simulated, type: boolean, writable: true }
alarms:
  - { device: level, above: 30, hysteresis: 1 }
`,
  );
  await owner.send(xml('presence', { type: 'subscribe', to: gw.jid }));
  return { dir, state, file, gw, owner, jid: `${gw.jid}/agent` };
}

const alarmsAt = (owner: Peer): Element[] => owner.stanzas.filter((s) => s.name === 'message' && /^[⚠✓]/.test(s.getChildText('body') ?? ''));
const raised = (a: AgentProcess): number => a.count(/^alarm( cleared)?$/);

async function agentStatus(s: Site): Promise<Record<string, string>> {
  const reply = await s.owner.iq('set', s.jid, xml('command', { xmlns: 'http://jabber.org/protocol/commands', node: 'agent-status', action: 'execute' }));
  const fields = reply.getChild('command')?.getChild('x', 'jabber:x:data')?.getChildren('field') ?? [];
  return Object.fromEntries(fields.map((f: Element) => [f.attrs.var ?? '', f.getChildText('value') ?? '']));
}

/** Rows the history held when the agent stopped, with their rowids: all must still be there later. */
function historyRows(state: string): Map<number, string> {
  const db = new Database(join(state, 'agent.db'));
  try {
    expect(db.pragma('quick_check', { simple: true })).toBe('ok');
    const rows = db.prepare('SELECT rowid AS id, device, t, num, txt FROM readings').all() as { id: number; device: string; t: number; num: number | null; txt: string | null }[];
    return new Map(rows.map((r) => [r.id, `${r.device} ${r.t} ${r.num} ${r.txt}`]));
  } finally {
    db.close();
  }
}

/** A first run that leaves some history on the card, then the run that meets the fault. */
async function withHistory(s: Site): Promise<{ before: Map<number, string>; first: AgentProcess; agent: AgentProcess }> {
  const first = runAgent(s.file, { password: s.gw.password });
  await until(() => first.find(/^online/) !== undefined, 'the first agent online', { timeoutMs: 15_000 });
  await new Promise((r) => setTimeout(r, 1500));
  expect(await first.stop()).toBe(0);
  const before = historyRows(s.state);
  expect(before.size).toBeGreaterThan(3);
  const agent = runAgent(s.file, { password: s.gw.password });
  await until(() => agent.find(/^online/) !== undefined, 'the agent online', { timeoutMs: 15_000 });
  return { before, first, agent };
}

/** While the disk refuses writes: chat, control, presence and alarms carry on, and everything says what is wrong. */
async function servesWhileBroken(s: Site, agent: AgentProcess, words: RegExp): Promise<void> {
  const alarmsBefore = alarmsAt(s.owner).length;
  const presencesBefore = s.owner.stanzas.filter((x) => x.name === 'presence' && x.attrs.from === s.jid).length;
  await until(() => agent.find('kept in memory: the disk refused it') !== undefined, 'an alarm kept in memory', { timeoutMs: 10_000 });
  expect(await ask(s.owner, s.jid, 'fan on')).toBe('fan → on ✓');
  const status = await ask(s.owner, s.jid, 'status');
  expect(status).toMatch(/^fan on$/m);
  expect(status).toMatch(words);
  const fields = await agentStatus(s);
  expect(fields.storage).toMatch(words);
  await until(() => alarmsAt(s.owner).length >= alarmsBefore + 3, 'alarms at the owner while the disk refuses them', { timeoutMs: 10_000 });
  await until(() => s.owner.stanzas.filter((x) => x.name === 'presence' && x.attrs.from === s.jid).length > presencesBefore, 'presence meanwhile', { timeoutMs: 10_000 });
  expect(agent.child.exitCode).toBeNull();
}

/** Stopped, every alarm both runs raised reached the owner exactly once, and the history from before is intact. */
async function nothingLost(s: Site, runs: AgentProcess[], before: Map<number, string>): Promise<void> {
  const agent = runs.at(-1)!;
  const total = (): number => runs.reduce((n, r) => n + raised(r), 0);
  await until(() => alarmsAt(s.owner).length >= total(), 'every alarm at the owner', { timeoutMs: 15_000, got: () => [alarmsAt(s.owner).length, total()] });
  expect(await agent.stop()).toBe(0);
  await new Promise((r) => setTimeout(r, 500));
  const ids = alarmsAt(s.owner).map((m) => m.getChild('origin-id', 'urn:xmpp:sid:0')?.attrs.id ?? '');
  const twice = ids.filter((id, i) => ids.indexOf(id) !== i);
  if (twice.length > 0) {
    // What the owner got twice, and what the agent said meanwhile: enough to tell a lost session from a reused id.
    console.error('alarms received twice:', alarmsAt(s.owner).filter((m) => twice.includes(m.getChild('origin-id', 'urn:xmpp:sid:0')?.attrs.id ?? '')).map(String));
    for (const r of runs) console.error(r.lines.filter((l) => l.level !== 'debug').map((l) => `${l.time} ${l.level} ${l.ns} ${l.msg} ${JSON.stringify({ ...l, time: undefined, level: undefined, ns: undefined, msg: undefined })}`).join('\n'));
  }
  expect(twice).toEqual([]);
  expect(alarmsAt(s.owner).length).toBe(total());
  const after = historyRows(s.state);
  for (const [id, row] of before) expect(after.get(id)).toBe(row);
  expect(after.size).toBeGreaterThan(before.size);
  const db = new Database(join(s.state, 'agent.db'), { readonly: true });
  try {
    expect((db.prepare('SELECT count(*) AS n FROM outbox').get() as { n: number }).n).toBe(0);
  } finally {
    db.close();
  }
}

describe.skipIf(!canMount)('SD card full', () => {
  let s: Site;
  let mnt: string;
  beforeAll(async () => {
    s = await site((state) => {
      mnt = state;
      sh('mount', ['-t', 'tmpfs', '-o', 'size=3m,mode=0700', 'tmpfs', state]);
    });
  });
  afterAll(async () => {
    await s?.owner.stop();
    if (mnt) sh('umount', ['-l', mnt]);
  });

  it('keeps serving chat, presence, control and alarms, says what is wrong and what to do, and carries on once space returns, losing nothing', async () => {
    const { before, first, agent } = await withHistory(s);
    const filler = join(s.state, 'filler');
    const fd = openSync(filler, 'w');
    try {
      for (;;) writeSync(fd, Buffer.alloc(4096));
    } catch (err) {
      expect((err as NodeJS.ErrnoException).code).toBe('ENOSPC');
    } finally {
      closeSync(fd);
    }
    await until(() => agent.find('state store: the disk is full') !== undefined, 'the log to say the disk is full', { timeoutMs: 10_000, got: () => agent.lines.slice(-3).map((l) => l.msg) });
    expect(agent.find('state store: the disk is full')!.msg).toContain(`free some space on it (df -h ${s.state}`);
    await servesWhileBroken(s, agent, /storage: the disk is full .*free some space on it/);
    unlinkSync(filler);
    await until(() => agent.find('state store: writes again') !== undefined, 'the store to write again', { timeoutMs: 15_000 });
    expect((await agentStatus(s)).storage).toBe('ok');
    expect(await ask(s.owner, s.jid, 'status')).not.toMatch(/storage/);
    await nothingLost(s, [first, agent], before);
  }, 90_000);
});

describe.skipIf(!canMount)('SD card remounted read-only (ext4 after an I/O error)', () => {
  let s: Site;
  let image: string;
  let loop: string | undefined;
  beforeAll(async () => {
    s = await site((state) => {
      image = join(tmpdir(), `xia-card-${basename(state)}-${process.pid}.img`);
      sh('truncate', ['-s', '32M', image]);
      sh('mkfs.ext4', ['-q', '-F', image]);
      sh('mount', ['-o', 'loop,errors=remount-ro', image, state]);
    });
  });
  afterAll(async () => {
    await s?.owner.stop();
    try {
      sh('umount', ['-l', s.state]);
    } catch {
      // already gone
    }
    if (loop) sh('losetup', ['-d', loop]);
    rmSync(image, { force: true });
  });

  it('keeps serving while the card is read-only, says to check the card and reboot, and opens the store again once it is mounted writable', async () => {
    const { before, first, agent } = await withHistory(s);
    const device = basename(sh('findmnt', ['-n', '-o', 'SOURCE', s.state]).trim());
    // What ext4 does on an I/O error with errors=remount-ro.
    execFileSync('sh', ['-c', `echo 1 > /sys/fs/ext4/${device}/trigger_fs_error`]);
    expect(readFileSync('/proc/mounts', 'utf8')).toMatch(new RegExp(`${s.state} ext4 (ro|rw,.*emergency_ro)`));
    await until(() => agent.find('state store: the disk is read-only') !== undefined, 'the log to say the disk is read-only', { timeoutMs: 10_000, got: () => agent.lines.slice(-3).map((l) => l.msg) });
    expect(agent.find('state store: the disk is read-only')!.msg).toMatch(/reboot \(fsck repairs it at boot\) and replace the card/);
    await servesWhileBroken(s, agent, /storage: the disk is read-only .*reboot/);
    // What a reboot would do, without one: unmount, check, mount again at the same place. The old
    // filesystem lives on (the agent still has its files open), so the image gets a loop device of its own.
    sh('umount', ['-l', s.state]);
    loop = sh('losetup', ['-f', '--show', image]).trim();
    try {
      sh('e2fsck', ['-f', '-y', loop]);
    } catch (err) {
      if ((err as { status?: number }).status !== 1) throw err; // 1: errors corrected
    }
    sh('mount', ['-o', 'errors=remount-ro', loop, s.state]);
    await until(() => agent.find('state store: writes again') !== undefined, 'the store to write again', { timeoutMs: 30_000, got: () => agent.lines.filter((l) => l.ns === 'agent:store' || l.level === 'error').slice(-8) });
    expect(agent.find('state store opened again')).toBeDefined();
    await nothingLost(s, [first, agent], before);
  }, 120_000);
});
