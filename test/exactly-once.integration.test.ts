// Exactly once across crashes, like MQTT QoS 2. The agent runs as its own
// process with an alarm that flaps several times a second, and is killed
// with SIGKILL at the worst moments: right after it wrote an alarm to the
// outbox, right after the server took one (the owner has it, the agent has
// no ack yet), and at random. The owner counts alarms by their id. With the
// server's message archive (XEP-0313) every alarm arrives once; without it,
// none is lost, copies may come (same id), and the agent says so.

import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { Element } from 'ltx';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startProsody, type Prosody } from '../tools/dev/prosody.js';
import { account, peer, server, xml, type Account, type Peer } from './helpers/peers.js';
import { until } from './helpers/until.js';
import { slowLink, type SlowLink } from './helpers/slow-link.js';

/** Server → agent delay: the server has each alarm this long before the agent hears its ack. */
const LINK_DELAY_MS = 120;

const CLI = join(__dirname, '..', 'dist', 'cli.js');
const NS_SID = 'urn:xmpp:sid:0';

interface Site {
  service: string;
  caFile: string;
  gateway: Account;
  owner: Peer;
}

function config(site: Site, dir: string, flapping: boolean): string {
  const trace = join(dir, 'flap.csv');
  // 40 and 10 in turn, one row every 150 ms: an alarm above 30 raised and cleared several times a second.
  writeFileSync(trace, Array.from({ length: 400 }, (_, i) => `${i * 0.15},${i % 2 ? 10 : 40}`).join('\n'));
  const device = flapping
    ? `  - { id: level, driver: replay, file: ${trace}, speed: 1, loop: true, unit: "%" }`
    : '  - { id: level, driver: simulated, type: number, unit: "%", initial: 10, interval: 1h }';
  const file = join(dir, 'agent.yaml');
  writeFileSync(
    file,
    `xmpp:
  jid: ${site.gateway.jid}
  resource: agent
  service: ${site.service}
  tls: { ca_file: ${site.caFile} }
  reconnect: { initial_delay: 100ms, max_delay: 500ms }
owners: [${site.owner.jid}]
mdns: { enabled: false }
state_dir: ${join(dir, 'state')}
presence: { min_interval: 1s }
devices:
${device}
alarms:
  - { device: level, above: 30, hysteresis: 1 }
`,
  );
  chmodSync(file, 0o600);
  return file;
}

interface Run {
  child: ChildProcess;
  lines: string[];
  exited: Promise<number | null>;
}

function run(file: string, password: string): Run {
  const child = spawn(process.execPath, [CLI, 'run', '--config', file], { env: { ...process.env, XMPP_IOT_AGENT_PASSWORD: password }, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let rest = '';
  child.stdout!.on('data', (d: Buffer) => {
    const parts = (rest + d.toString()).split('\n');
    rest = parts.pop()!;
    lines.push(...parts);
  });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return { child, lines, exited };
}

const logged = (r: Run, msg: string): boolean => r.lines.some((l) => l.includes(`"msg":"${msg}"`));

/** Alarm ids the owner received, with how often. */
function received(owner: Peer): Map<string, number> {
  const n = new Map<string, number>();
  for (const s of owner.stanzas) {
    const id = s.name === 'message' ? s.getChild('origin-id', NS_SID)?.attrs.id : undefined;
    if (id) n.set(id, (n.get(id) ?? 0) + 1);
  }
  return n;
}

/** Every id the outbox ever handed out (AUTOINCREMENT: 1..seq), read once the agent is gone. */
function written(dir: string): string[] {
  const db = new Database(join(dir, 'state', 'agent.db'), { readonly: true });
  try {
    const token = (db.prepare("SELECT value FROM meta WHERE key = 'token'").get() as { value: string }).value;
    const seq = (db.prepare("SELECT seq FROM sqlite_sequence WHERE name = 'outbox'").get() as { seq: number } | undefined)?.seq ?? 0;
    const left = (db.prepare('SELECT count(*) AS n FROM outbox').get() as { n: number }).n;
    expect(left).toBe(0);
    return Array.from({ length: seq }, (_, i) => `xia-${token}-${i + 1}`);
  } finally {
    db.close();
  }
}

/** Kill the agent `kills` times at the worst moments, then let it drain its outbox without new alarms. */
async function killLoop(site: Site, kills: number): Promise<{ dir: string; runs: Run[] }> {
  const dir = mkdtempSync(join(tmpdir(), 'xia-once-'));
  const flapping = config(site, dir, true);
  const runs: Run[] = [];
  for (let k = 0; k < kills; k++) {
    const r = run(flapping, site.gateway.password);
    runs.push(r);
    await until(() => logged(r, 'online'), 'the agent online', { timeoutMs: 15_000 });
    const moment = k % 3;
    if (moment === 0) {
      // Right after an alarm was written (the log line follows the write).
      const before = r.lines.filter((l) => l.includes('"msg":"alarm"')).length;
      await until(() => r.lines.filter((l) => l.includes('"msg":"alarm"')).length > before, 'an alarm written');
    } else if (moment === 1) {
      // Right after the server took one: the owner has it; the agent's ack may still be on its way.
      const before = site.owner.stanzas.length;
      await until(() => site.owner.stanzas.slice(before).some((s) => s.getChild('origin-id', NS_SID) !== undefined), 'an alarm at the owner');
    } else {
      await new Promise((res) => setTimeout(res, 200 + ((k * 397) % 900))); // at a varying moment: this one is about time
    }
    r.child.kill('SIGKILL');
    await r.exited;
  }
  // The last start has nothing new to say: it only delivers what the killed ones left.
  const calm = config(site, dir, false);
  const last = run(calm, site.gateway.password);
  runs.push(last);
  await until(() => logged(last, 'online'), 'the last agent online', { timeoutMs: 15_000 });
  const status = async (): Promise<string> => {
    const reply = await site.owner.iq('set', `${site.gateway.jid}/agent`, xml('command', { xmlns: 'http://jabber.org/protocol/commands', node: 'agent-status', action: 'execute' }));
    return reply.getChild('command')?.getChild('x', 'jabber:x:data')?.getChildren('field').find((f: Element) => f.attrs.var === 'queue')?.getChildText('value') ?? '';
  };
  await until(async () => (await status()).startsWith('0 waiting'), 'the outbox drained', { timeoutMs: 20_000 });
  last.child.kill('SIGTERM');
  await last.exited;
  return { dir, runs };
}

async function subscribe(owner: Peer, gateway: Account): Promise<void> {
  await owner.send(xml('presence', { type: 'subscribe', to: gateway.jid }));
  await until(() => owner.stanzas.some((s) => s.name === 'presence' && s.attrs.type === 'subscribed'), 'subscribed', { timeoutMs: 10_000 }).catch(() => {});
}

describe('exactly once across crashes', () => {
  let site: Site;
  let link: SlowLink;
  beforeAll(async () => {
    const [gw, o] = await Promise.all([account('gw'), account('alice')]);
    const s = server();
    link = await slowLink({ host: '127.0.0.1', port: s.port }, LINK_DELAY_MS);
    site = { service: `xmpp://127.0.0.1:${link.port}`, caFile: s.caFile, gateway: gw, owner: await peer(o) };
  });
  afterAll(async () => {
    await site?.owner.stop();
    await link?.close();
  });

  it('with the server archiving our messages (mod_mam): killed 9 times at the worst moments, every alarm reaches the owner once, none twice', async () => {
    const { dir, runs } = await killLoop(site, 9);
    const ids = written(dir);
    const got = received(site.owner);
    expect(ids.length).toBeGreaterThan(9);
    const missing = ids.filter((id) => !got.has(id));
    const twice = ids.filter((id) => (got.get(id) ?? 0) > 1);
    expect({ missing, twice }).toEqual({ missing: [], twice: [] });
    // Nothing the owner got that the outbox never wrote.
    expect([...got.keys()].filter((id) => !ids.includes(id))).toEqual([]);
    expect(runs.some((r) => logged(r, 'the server already had these; not sending them again'))).toBe(true);
    expect(runs.some((r) => logged(r, 'the server keeps no archive of our messages (XEP-0313): after a crash an alarm may arrive twice, with the same id'))).toBe(false);
  });
});

describe('at least once without an archive', () => {
  let own: Prosody;
  let site: Site;
  let link: SlowLink;
  beforeAll(async () => {
    // The suite's certificate, so that the stock client (which trusts only it) trusts this server too.
    const dir = mkdtempSync(join(tmpdir(), 'xia-nomam-'));
    for (const ext of ['crt', 'key']) copyFileSync(join(server().dir, `${server().domain}.${ext}`), join(dir, `${server().domain}.${ext}`));
    own = await startProsody({ dir, mam: false });
    await own.register('gw', 'gw-secret');
    await own.register('alice', 'alice-secret');
    const gateway = { user: 'gw', jid: `gw@${own.domain}`, password: 'gw-secret' };
    const owner = await peer({ user: 'alice', jid: `alice@${own.domain}`, password: 'alice-secret' }, 'phone', { service: own.service, domain: own.domain });
    link = await slowLink({ host: '127.0.0.1', port: own.port }, LINK_DELAY_MS);
    site = { service: `xmpp://127.0.0.1:${link.port}`, caFile: own.caFile, gateway, owner };
    await subscribe(owner, gateway);
  });
  afterAll(async () => {
    await site?.owner.stop();
    await link?.close();
    await own?.stop();
  });

  it('with a server that keeps no archive (no mod_mam): killed 4 times, no alarm is lost, copies carry the same id, and the agent says so once per start', async () => {
    const { dir, runs } = await killLoop(site, 4);
    const ids = written(dir);
    const got = received(site.owner);
    expect(ids.filter((id) => !got.has(id))).toEqual([]);
    expect([...got.keys()].filter((id) => !ids.includes(id))).toEqual([]);
    // The kill as the owner received one (its ack still on the slow link) makes a copy, with the same id: at least once.
    expect(ids.filter((id) => (got.get(id) ?? 0) > 1).length).toBeGreaterThan(0);
    // Once per process at most (a run killed early may not have asked yet), and it was said.
    const said = runs.map((r) => r.lines.filter((l) => l.includes('the server keeps no archive of our messages')).length);
    expect(Math.max(...said)).toBe(1);
    expect(said.at(-1)).toBe(1);
  });
});
