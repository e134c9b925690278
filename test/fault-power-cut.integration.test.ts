// Fault: the power is cut in the middle of writing. The agent runs as its own
// process with an alarm flapping ten times a second (each one an fsynced
// outbox write) and a sensor read 20 times a second whose readings the history flushes ten times a
// second, behind a slow link (the server has each alarm 120 ms before the
// agent hears its ack), and is killed with SIGKILL at random moments, over and
// over. After every kill the files are checked as a reboot would find them
// (a copy, opened by SQLite: integrity, and every history row the previous
// check saw is still there, unchanged, and the history reaches to within a
// flush of the kill); every restart must open the store (no exit 73, no store
// error). At the end every alarm the outbox ever wrote reached the owner once,
// none twice (the server archives messages, XEP-0313: the approach of
// exactly-once.integration.test.ts, with the history's side added).

import { copyFileSync, existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { Element } from 'ltx';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { account, peer, server, xml, type Account, type Peer } from './helpers/peers.js';
import { runAgent, writeConfig, type AgentProcess } from './helpers/agent-process.js';
import { slowLink, type SlowLink } from './helpers/slow-link.js';
import { until } from './helpers/until.js';

const KILLS = 16;
const NS_SID = 'urn:xmpp:sid:0';

describe('power cut in the middle of writing (SIGKILL during an alarm burst and a history flush, many times)', () => {
  let dir: string;
  let gw: Account;
  let owner: Peer;
  let link: SlowLink;
  let flapping: string;
  let calm: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'xia-powercut-'));
    gw = await account('gw');
    const o = await account('alice');
    owner = await peer(o);
    await owner.send(xml('presence', { type: 'subscribe', to: gw.jid }));
    link = await slowLink({ host: '127.0.0.1', port: server().port }, 120);
    const trace = join(dir, 'flap.csv');
    writeFileSync(trace, Array.from({ length: 400 }, (_, i) => `${i * 0.1},${i % 2 ? 10 : 40}`).join('\n'));
    const yaml = (level: string): string => `xmpp:
  jid: ${gw.jid}
  resource: agent
  service: xmpp://127.0.0.1:${link.port}
  tls: { ca_file: ${server().caFile} }
  reconnect: { initial_delay: 100ms, max_delay: 500ms }
owners: [${o.jid}]
mdns: { enabled: false }
state_dir: ${join(dir, 'state')}
presence: { min_interval: 1s }
history: { interval: 10ms, flush_interval: 100ms }
devices:
${level}
  - { id: temperature, driver: simulated, type: number, unit: "°C", interval: 50ms }
alarms:
  - { device: level, above: 30, hysteresis: 1 }
`;
    flapping = writeConfig(dir, yaml(`  - { id: level, driver: replay, file: ${trace}, speed: 1, loop: true, unit: "%" }`), 'flapping.yaml');
    calm = writeConfig(dir, yaml('  - { id: level, driver: simulated, type: number, unit: "%", initial: 10, interval: 1h }'), 'calm.yaml');
  });

  afterAll(async () => {
    await owner?.stop();
    await link?.close();
  });

  /** The files as a reboot finds them, opened by SQLite from a copy (recovery of the WAL included). */
  function afterThePowerCut(): { integrity: string; rows: Map<number, string>; newest: number } {
    const copy = mkdtempSync(join(tmpdir(), 'xia-powercut-copy-'));
    for (const f of ['agent.db', 'agent.db-wal']) if (existsSync(join(dir, 'state', f))) copyFileSync(join(dir, 'state', f), join(copy, f));
    const db = new Database(join(copy, 'agent.db'));
    try {
      const integrity = db.pragma('integrity_check', { simple: true }) as string;
      const all = db.prepare('SELECT rowid AS id, device, t, num FROM readings').all() as { id: number; device: string; t: number; num: number }[];
      return { integrity, rows: new Map(all.map((r) => [r.id, `${r.device} ${r.t} ${r.num}`])), newest: Math.max(0, ...all.map((r) => r.t)) };
    } finally {
      db.close();
    }
  }

  it(`killed ${KILLS} times mid-write: the store opens cleanly every time, history before the last flush is intact, and every alarm arrives once`, async () => {
    const runs: AgentProcess[] = [];
    let seen = new Map<number, string>();
    let flushedLate = 0;
    for (let k = 0; k < KILLS; k++) {
      const r = runAgent(flapping, { password: gw.password });
      runs.push(r);
      await until(() => r.find(/^online/) !== undefined || r.child.exitCode !== null, 'the agent online', { timeoutMs: 15_000, got: () => r.lines.slice(-3) });
      expect(r.child.exitCode, `run ${k} exited: ${JSON.stringify([...r.lines.slice(-3), ...r.other])}`).toBeNull();
      // Alarms and flushes never stop here, so any moment is in the middle of one or the other; vary it.
      await new Promise((res) => setTimeout(res, 300 + ((k * 379) % 1100)));
      const killedAt = Date.now();
      await r.kill();
      const now = afterThePowerCut();
      expect(now.integrity).toBe('ok');
      for (const [id, row] of seen) expect(now.rows.get(id), `row ${id} after kill ${k}`).toBe(row);
      expect(now.rows.size).toBeGreaterThan(seen.size);
      // What was flushed reaches to within a flush (100 ms) of the kill; a loaded machine gets a second.
      if (killedAt - now.newest > 1000) flushedLate++;
      seen = now.rows;
    }
    expect(flushedLate).toBeLessThanOrEqual(2);
    // Every start opened the store: no exit 73, no store error, nothing but JSON on stdout.
    for (const r of runs) {
      expect(r.lines.filter((l) => l.ns === 'agent:store' && l.level === 'error')).toEqual([]);
      expect(r.find('failed to start')).toBeUndefined();
    }

    // The last start raises nothing new: it only delivers what the killed ones left.
    const last = runAgent(calm, { password: gw.password });
    await until(() => last.find(/^online/) !== undefined, 'the last agent online', { timeoutMs: 15_000 });
    const queue = async (): Promise<string> => {
      const reply = await owner.iq('set', `${gw.jid}/agent`, xml('command', { xmlns: 'http://jabber.org/protocol/commands', node: 'agent-status', action: 'execute' }));
      return reply.getChild('command')?.getChild('x', 'jabber:x:data')?.getChildren('field').find((f: Element) => f.attrs.var === 'queue')?.getChildText('value') ?? '';
    };
    await until(async () => (await queue()).startsWith('0 waiting'), 'the outbox drained', { timeoutMs: 30_000 });
    expect(await last.stop()).toBe(0);

    const db = new Database(join(dir, 'state', 'agent.db'), { readonly: true });
    let ids: string[];
    try {
      const token = (db.prepare("SELECT value FROM meta WHERE key = 'token'").get() as { value: string }).value;
      const seq = (db.prepare("SELECT seq FROM sqlite_sequence WHERE name = 'outbox'").get() as { seq: number }).seq;
      ids = Array.from({ length: seq }, (_, i) => `xia-${token}-${i + 1}`);
      const byId = db.prepare('SELECT device, t, num FROM readings WHERE rowid = ?');
      const at = (id: number): string | undefined => {
        const r = byId.get(id) as { device: string; t: number; num: number } | undefined;
        return r && `${r.device} ${r.t} ${r.num}`;
      };
      for (const [id, row] of seen) expect(at(id)).toBe(row);
    } finally {
      db.close();
    }
    await new Promise((res) => setTimeout(res, 1000)); // room for a late copy
    const got = new Map<string, number>();
    for (const s of owner.stanzas) {
      const id = s.name === 'message' ? s.getChild('origin-id', NS_SID)?.attrs.id : undefined;
      if (id) got.set(id, (got.get(id) ?? 0) + 1);
    }
    expect(ids.length).toBeGreaterThan(KILLS * 3);
    expect({ missing: ids.filter((id) => !got.has(id)), twice: ids.filter((id) => (got.get(id) ?? 0) > 1) }).toEqual({ missing: [], twice: [] });
    expect([...got.keys()].filter((id) => !ids.includes(id))).toEqual([]);
  }, 180_000);
});
