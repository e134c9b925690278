// A fleet on a real 2-node ejabberd cluster (tools/dev/ejabberd.ts): gateways
// run as their own processes (dist/cli.js), each given both nodes and
// preferring one, with an alarm that flaps; the owner is on node A. Node B is
// stopped in order (drained), started again (it rejoins), given gateways of
// its own again, then killed (SIGKILL). Each time every gateway that was on B
// comes back on A, the owner gets every alarm exactly once and in order, and
// fresh presence from each gateway (its readings and caps) at once.
//
// Needs ejabberd (apt-get install ejabberd) and root (ejabberdctl runs the
// nodes as the ejabberd user); skipped with a message without them, and CI
// (REQUIRE_EJABBERD=1) refuses to skip.

import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { Element } from 'ltx';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ejabberdUnavailable, startCluster, type EjabberdCluster, type EjabberdNode } from '../tools/dev/ejabberd.js';
import { peer, server, xml, type Account, type Peer } from './helpers/peers.js';
import { until } from './helpers/until.js';

const CLI = join(__dirname, '..', 'dist', 'cli.js');
const NS_SID = 'urn:xmpp:sid:0';
const NS_CAPS = 'http://jabber.org/protocol/caps';
const NS_COMMANDS = 'http://jabber.org/protocol/commands';
/** One row of the flapping trace every this long: an alarm, then its recovery, and so on. */
const FLAP_S = 0.4;

const missing = ejabberdUnavailable();
if (missing) {
  if (process.env.REQUIRE_EJABBERD) throw new Error(missing);
  console.warn(`skipped: ${missing}`);
}

interface Gateway {
  name: string;
  account: Account;
  /** The node it prefers (listed first). */
  home: EjabberdNode;
  /** Its fixed reading, to recognise its presence. */
  temperature: string;
  dir: string;
  child: ChildProcess;
  lines: string[];
  exited: Promise<number | null>;
  /** How long its trace runs from the agent's start: no alarm after that. */
  traceMs: number;
}

let cluster: EjabberdCluster;
let owner: Peer;
let A: EjabberdNode;
let B: EjabberdNode;
let base: string;
const gateways: Gateway[] = [];
const accounts = new Map<string, Account>();

function launch(g: Omit<Gateway, 'child' | 'lines' | 'exited' | 'dir' | 'traceMs'>, rows: number): Gateway {
  const dir = mkdtempSync(join(base, `${g.name}-`));
  const trace = join(dir, 'flap.csv');
  // 40 and 10 in turn, ending calm: an alarm above 30 raised and cleared every 2 × FLAP_S.
  writeFileSync(trace, Array.from({ length: rows }, (_, i) => `${(i * FLAP_S).toFixed(1)},${i % 2 === 0 && i < rows - 1 ? 40 : 10}`).join('\n'));
  const other = g.home === A ? B : A;
  const file = join(dir, 'agent.yaml');
  writeFileSync(
    file,
    `xmpp:
  jid: ${g.account.jid}
  resource: agent
  service: [${g.home.directService}, ${other.directService}]
  tls: { ca_file: ${cluster.caFile} }
  reconnect: { initial_delay: 200ms, max_delay: 1s }
owners: [${owner.jid}]
mdns: { enabled: false }
state_dir: ${join(dir, 'state')}
presence: { min_interval: 500ms }
devices:
  - { id: level, driver: replay, file: ${trace}, speed: 1, loop: false, unit: "%", stale_after: 10m }
  - { id: temperature, driver: simulated, type: number, unit: "°C", initial: ${g.temperature}, min: 0, max: 40, interval: 1h, stale_after: 10m }
alarms:
  - { device: level, above: 30, hysteresis: 1 }
`,
    { mode: 0o600 },
  );
  const child = spawn(process.execPath, [CLI, 'run', '--config', file], { env: { ...process.env, XMPP_IOT_AGENT_PASSWORD: g.account.password }, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let rest = '';
  child.stdout!.on('data', (d: Buffer) => {
    const parts = (rest + d.toString()).split('\n');
    rest = parts.pop()!;
    lines.push(...parts);
  });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const gw = { ...g, dir, child, lines, exited, traceMs: rows * FLAP_S * 1000 };
  gateways.push(gw);
  return gw;
}

type Record_ = { msg: string; endpoint?: string; time: string };
const records = (g: Gateway): Record_[] => g.lines.flatMap((l) => (l.startsWith('{') ? [JSON.parse(l) as Record_] : []));
/** The endpoint of the last time the gateway came online. */
const onlineAt = (g: Gateway): string | undefined => records(g).filter((r) => r.msg.startsWith('online')).at(-1)?.endpoint;
const onlineCount = (g: Gateway): number => records(g).filter((r) => r.msg.startsWith('online')).length;
const bare = (jid: string | undefined): string => (jid ?? '').split('/')[0]!;

/** Presences from the gateway at the owner, from index `since` of the owner's stanzas. */
const presencesFrom = (g: Gateway, since = 0): Element[] => owner.stanzas.slice(since).filter((s) => s.name === 'presence' && bare(s.attrs.from) === g.account.jid);

/** The outbox numbers of the alarms the owner got from the gateway, in arrival order. */
function alarmsFrom(g: Gateway): number[] {
  return owner.stanzas
    .filter((s) => s.name === 'message' && bare(s.attrs.from) === g.account.jid)
    .flatMap((s) => {
      const id = s.getChild('origin-id', NS_SID)?.attrs.id;
      return id ? [Number(id.slice(id.lastIndexOf('-') + 1))] : [];
    });
}

/** What the gateway's outbox holds and has ever handed out, read once the agent is gone (it locks the file). */
function outbox(g: Gateway): { left: number; written: number; rows: unknown[] } {
  const db = new Database(join(g.dir, 'state', 'agent.db'), { readonly: true, fileMustExist: true });
  try {
    const written = (db.prepare("SELECT seq FROM sqlite_sequence WHERE name = 'outbox'").get() as { seq: number } | undefined)?.seq ?? 0;
    const rows = db.prepare('SELECT * FROM outbox').all();
    return { left: rows.length, written, rows };
  } finally {
    db.close();
  }
}

async function statusField(g: Gateway, name: string): Promise<string> {
  const reply = await owner.iq('set', `${g.account.jid}/agent`, xml('command', { xmlns: NS_COMMANDS, node: 'agent-status', action: 'execute' }));
  return reply.getChild('command')?.getChild('x', 'jabber:x:data')?.getChildren('field').find((f: Element) => f.attrs.var === name)?.getChildText('value') ?? '';
}

/** Every gateway that was on `from` is online on the other node; what the owner saw of it since index `since`. */
async function movedOff(from: EjabberdNode, moved: Gateway[], since: number, before: Map<Gateway, number>): Promise<void> {
  const to = from === A ? B : A;
  for (const g of moved) {
    await until(() => onlineCount(g) > before.get(g)! && onlineAt(g) === to.directService, `${g.name} online on node ${to.label}`, { timeoutMs: 20_000, got: () => records(g).slice(-4) });
    // Fresh presence, at once: its current readings and its caps, after the node went away.
    await until(() => presencesFrom(g, since).some((p) => p.attrs.type === undefined && (p.getChildText('status') ?? '').includes(`temperature ${g.temperature} °C`) && p.getChild('c', NS_CAPS) !== undefined), `fresh presence of ${g.name} at the owner`, {
      timeoutMs: 10_000,
      got: () => presencesFrom(g, since).map(String).slice(-2),
    });
    // The stream lived on the node that went away: the survivor refused to resume it, and a new session began.
    expect(records(g).some((r) => r.msg === 'stream not resumed; starting a new session')).toBe(true);
    expect(await statusField(g, 'server')).toBe(`${to.directService} (fallback 1 of 2)`);
  }
}

/** Every alarm each gateway wrote reached the owner once, in order (outbox numbers 1..n). */
async function exactlyOnceInOrder(list: Gateway[]): Promise<void> {
  for (const g of list) {
    // The trace began before the agent logged 'started' (drivers start first): it is over by then + its length.
    const started = Date.parse(records(g).find((r) => r.msg === 'started')?.time ?? '');
    expect(started).toBeGreaterThan(0);
    await until(() => Date.now() > started + g.traceMs + 500, `${g.name}'s trace over`, { timeoutMs: 60_000 });
    await until(async () => (await statusField(g, 'queue')).startsWith('0 waiting'), `${g.name}'s outbox drained`, { timeoutMs: 20_000 });
  }
  for (const g of list) {
    g.child.kill('SIGTERM');
    await g.exited;
    const { left, written, rows } = outbox(g);
    expect(left, `${g.name} left ${JSON.stringify(rows)}; last log: ${g.lines.slice(-6).join('\n')}`).toBe(0);
    expect(written).toBeGreaterThan(10);
    expect(alarmsFrom(g), `${g.name}: outbox numbers at the owner`).toEqual(Array.from({ length: written }, (_, i) => i + 1));
  }
}

describe.skipIf(missing !== undefined)('a fleet on a 2-node ejabberd cluster', () => {
  beforeAll(async () => {
    base = mkdtempSync(join(tmpdir(), 'xia-cluster-'));
    chmodSync(base, 0o755); // the nodes run as the ejabberd user
    const dir = join(base, 'ejabberd');
    mkdirSync(dir);
    // The suite's certificate (the test's stock clients trust it through NODE_EXTRA_CA_CERTS), for the same domain.
    const s = server();
    copyFileSync(s.caFile, join(dir, `${s.domain}.crt`));
    copyFileSync(join(s.dir, `${s.domain}.key`), join(dir, `${s.domain}.key`));
    cluster = await startCluster({ dir, domain: s.domain });
    [A, B] = cluster.nodes;
    const people = ['owner', 'gw-a1', 'gw-a2', 'gw-b1', 'gw-b2', 'gw-b3', 'gw-b4'].map((user) => ({ user, password: `pw-${user}-${Math.random().toString(36).slice(2)}` }));
    await cluster.registerMany(people);
    for (const p of people) accounts.set(p.user, { user: p.user, jid: `${p.user}@${cluster.domain}`, password: p.password });
    owner = await peer(accounts.get('owner')!, 'phone', { service: A.service, domain: cluster.domain });
    const first = [
      { name: 'gw-a1', home: A, temperature: '21.1' },
      { name: 'gw-a2', home: A, temperature: '21.2' },
      { name: 'gw-b1', home: B, temperature: '22.1' },
      { name: 'gw-b2', home: B, temperature: '22.2' },
    ];
    // About 30 s of alarms each: through the drain, B's return and beyond.
    const started = first.map((g) => launch({ ...g, account: accounts.get(g.name)! }, 75));
    for (const g of started) {
      await until(() => onlineAt(g) === g.home.directService, `${g.name} online on its own node ${g.home.label}`, { timeoutMs: 20_000, got: () => g.lines.slice(-3) });
      await owner.send(xml('presence', { type: 'subscribe', to: g.account.jid }));
    }
    for (const g of started) await until(() => presencesFrom(g).some((p) => p.attrs.type === undefined), `presence of ${g.name} at the owner`);
  }, 120_000);

  afterAll(async () => {
    for (const g of gateways) {
      if (g.child.exitCode !== null) continue;
      g.child.kill('SIGTERM');
      await g.exited;
    }
    await owner?.stop();
    await cluster?.stop();
  }, 60_000);

  it('an orderly stop of node B (drain) moves its gateways to node A; the owner sees them come back', async () => {
    const onB = gateways.filter((g) => g.home === B);
    const since = owner.stanzas.length;
    const before = new Map(onB.map((g) => [g, onlineCount(g)]));
    await cluster.drain(B);
    await movedOff(B, onB, since, before);
    // In an orderly stop the node means to tell contacts its users are gone (a kill tells nobody, below), but
    // ejabberd 23.01 sends those presences while it shuts its sessions down, and on a loaded machine some or
    // all of them are lost on the way (one of two in one CI run, both in another). That is the server's
    // business, not the agent's (README's fleet section says what the owner may see): printed, not asserted.
    const told = onB.filter((g) => presencesFrom(g, since).some((p) => p.attrs.type === 'unavailable')).map((g) => g.name);
    console.log(`cluster: drained node B; unavailable presences seen for: ${JSON.stringify(told)} of ${JSON.stringify(onB.map((g) => g.name))}`);
    // Gateways on A were not disturbed.
    for (const g of gateways.filter((x) => x.home === A)) expect(onlineCount(g)).toBe(1);
  }, 60_000);

  it('node B comes back and rejoins: gateways stay where they are, and new gateways log in on B', async () => {
    await cluster.restart(B);
    expect((await cluster.runningNodes(A)).sort()).toEqual([A.name, B.name].sort());
    for (const g of gateways) expect(onlineAt(g)).toBe(A.directService);
    // Two more gateways that prefer B, with about 16 s of alarms each, for the crash that follows.
    const fresh = ['gw-b3', 'gw-b4'].map((name, i) => launch({ name, home: B, temperature: `23.${i + 1}`, account: accounts.get(name)! }, 40));
    for (const g of fresh) {
      await until(() => onlineAt(g) === B.directService, `${g.name} online on node B after it rejoined`, { timeoutMs: 20_000, got: () => g.lines.slice(-3) });
      await owner.send(xml('presence', { type: 'subscribe', to: g.account.jid }));
    }
    // Alarms from B's gateways cross to the owner on A.
    for (const g of fresh) await until(() => alarmsFrom(g).length >= 2, `alarms from ${g.name} through node B`);
  }, 60_000);

  it('SIGKILL of node B: its gateways are back on node A at once, with fresh presence; every alarm reaches the owner exactly once and in order', async () => {
    const fresh = gateways.filter((g) => g.name === 'gw-b3' || g.name === 'gw-b4');
    expect(fresh.map((g) => onlineAt(g))).toEqual([B.directService, B.directService]);
    const since = owner.stanzas.length;
    const before = new Map(fresh.map((g) => [g, onlineCount(g)]));
    const killedAt = Date.now();
    await cluster.kill(B);
    await movedOff(B, fresh, since, before);
    const backMs = Date.now() - killedAt;
    // What ejabberd 23.01 does: a killed node's users are not reported unavailable to their contacts (noted, not asserted).
    const unavailable = fresh.filter((g) => presencesFrom(g, since).some((p) => p.attrs.type === 'unavailable')).map((g) => g.name);
    console.log(`cluster: gateways of the killed node back on A with fresh presence ${backMs} ms after the kill; unavailable presences seen for: ${JSON.stringify(unavailable)}`);
    await exactlyOnceInOrder(gateways);
  }, 90_000);
});
