// Fault: no real-time clock. A Raspberry Pi boots with the time it last saved
// (fake-hwclock) or with 1970, and NTP sets it minutes later, forward by years;
// a bad NTP source may set it forward or back again. The agent runs as its own
// process under libfaketime (Debian's faketime), whose clock this test sets
// while it runs (a timestamp file), leaving the monotonic clock alone as NTP
// does. It must: say in one line that the clock looks wrong when the server's
// certificate is "not yet valid", keep retrying, come online by itself once
// the clock is set; keep readings and alarms of the wrong-clock time out of
// 1970 (history and XEP-0203 stamps); and neither freeze presence and
// staleness nor fire them all at once when the clock jumps either way.

import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { Element } from 'ltx';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { account, peer, server, xml, type Account, type Peer } from './helpers/peers.js';
import { ask, libfaketime, runAgent, writeConfig, type AgentProcess } from './helpers/agent-process.js';
import { until } from './helpers/until.js';

const LIB = libfaketime();
const YEAR_S = 365 * 86_400;
/** Anything before this is "1970" for the assertions (the agent's floor is a day before its build). */
const SANE = Date.UTC(2020, 0, 1);

describe.skipIf(!LIB)('no real-time clock (the Pi boots in 1970; NTP sets the clock later, forward and back)', () => {
  let dir: string;
  let clockFile: string;
  let gw: Account;
  let owner: Peer;
  let agent: AgentProcess;
  let jid: string;
  const started = Date.now();
  /** When the test set the clock right (NTP): what the agent raised before it must all have been delivered. */
  let clockSetAt = 0;

  /** Set the agent's wall clock to real time + offset (seconds); libfaketime reads the file again within a second. */
  const setClock = (offsetS: number): void => writeFileSync(clockFile, `${offsetS >= 0 ? '+' : ''}${Math.round(offsetS)}\n`);

  const presencesFrom = (from: number): Element[] => owner.stanzas.slice(from).filter((s) => s.name === 'presence' && s.attrs.from === jid && !s.attrs.type);
  const alarmsAtOwner = (): Element[] => owner.stanzas.filter((s) => s.name === 'message' && (s.getChildText('body') ?? '').startsWith('⚠'));

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'xia-nortc-'));
    clockFile = join(dir, 'faketime');
    // Five minutes into 1970, the way a Pi without fake-hwclock boots.
    setClock(-(Date.now() / 1000 - 300));
    gw = await account('gw');
    const o = await account('alice');
    owner = await peer(o);
    jid = `${gw.jid}/agent`;
    const s = server();
    const trace = join(dir, 'flap.csv');
    writeFileSync(trace, Array.from({ length: 40 }, (_, i) => `${i * 0.5},${i % 2 ? 10 : 40}`).join('\n'));
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
state_dir: ${join(dir, 'state')}
presence: { min_interval: 1s, heartbeat: 3s }
history: { interval: 1s, flush_interval: 1s }
devices:
  - { id: level, driver: replay, file: ${trace}, speed: 1, loop: true, unit: "%" }
  - { id: temperature, driver: simulated, type: number, unit: "°C", min: 15, max: 30, interval: 300ms }
  - { id: door, driver: simulated, type: boolean, writable: true, interval: 1h, stale_after: 4s }
alarms:
  - { device: level, above: 30, hysteresis: 1 }
`,
    );
    await owner.send(xml('presence', { type: 'subscribe', to: gw.jid }));
    agent = runAgent(file, {
      password: gw.password,
      // The monotonic clock is left alone, as NTP leaves it; the library re-reads the file every second.
      env: { LD_PRELOAD: LIB!, FAKETIME_TIMESTAMP_FILE: clockFile, FAKETIME_DONT_FAKE_MONOTONIC: '1', FAKETIME_CACHE_DURATION: '1', NO_FAKE_STAT: '1' },
    });
  });

  afterAll(async () => {
    await agent?.stop();
    await owner?.stop();
  });

  it('in 1970: says the clock looks wrong (not just "certificate error"), keeps retrying, and raises alarms into the outbox meanwhile', async () => {
    await until(() => agent.find('it looks wrong') !== undefined, 'the clock watch to say the clock looks wrong', { timeoutMs: 15_000, got: () => agent.lines.slice(-5) });
    // One line per failed attempt, and it says what is wrong: the clock, with the certificate's dates.
    await until(() => agent.count('the clock looks wrong: it says 1970-') >= 3, 'three TLS attempts refused for the clock', { timeoutMs: 20_000, got: () => agent.lines.slice(-5).map((l) => l.msg) });
    const line = agent.find('the clock looks wrong: it says 1970-')!;
    expect(line.msg).toMatch(/before the server certificate of iot\.test becomes valid \(valid from 20\d\d-.* to 20\d\d-/);
    expect(line.level).toBe('error');
    expect(agent.find(/^online/)).toBeUndefined();
    await until(() => agent.count(/^alarm$/) >= 2, 'alarms raised while offline', { timeoutMs: 10_000 });
    expect(agent.child.exitCode).toBeNull();
  }, 60_000);

  it('once NTP sets the clock: online by itself, and the alarms raised in 1970 arrive stamped with when they really happened', async () => {
    const setAt = (clockSetAt = Date.now());
    setClock(0);
    await until(() => agent.find('the clock looks right now') !== undefined, 'the agent to see the clock set', { timeoutMs: 10_000 });
    await until(() => agent.find(/^online/) !== undefined, 'online once the clock is right', { timeoutMs: 20_000 });
    await until(() => alarmsAtOwner().length >= 2, 'the alarms at the owner', { timeoutMs: 15_000 });
    const stamps = alarmsAtOwner().map((m) => m.getChild('delay', 'urn:xmpp:delay')?.attrs.stamp);
    // Never 1970: the ones raised before the clock was set carry their real time (moved by the jump).
    for (const s of stamps) if (s !== undefined) expect(Date.parse(s)).toBeGreaterThan(SANE);
    const early = stamps.filter((s): s is string => s !== undefined).map(Date.parse).filter((t) => t < setAt);
    expect(early.length).toBeGreaterThan(0);
    for (const t of early) expect(t).toBeGreaterThanOrEqual(started - 5_000);
  }, 60_000);

  it('a jump forward by two years: ages stay true, nothing goes stale, presence neither stops nor bursts', async () => {
    await until(() => presencesFrom(0).length > 0, 'presence at the owner', { timeoutMs: 10_000 });
    expect(await ask(owner, jid, 'door on')).toBe('door → on ✓');
    const mark = agent.lines.length;
    setClock(2 * YEAR_S);
    await until(() => agent.find('the clock was set forward by 2 years', mark) !== undefined, 'the agent to see the jump', { timeoutMs: 5_000 });
    expect(await ask(owner, jid, 'get door')).toMatch(/^door on · [0-3] s ago$/);
    expect(await ask(owner, jid, 'status')).toMatch(/^door on$/m);
    const from = owner.stanzas.length;
    await new Promise((r) => setTimeout(r, 4_500));
    const n = presencesFrom(from).length;
    expect(n).toBeGreaterThanOrEqual(1); // at least the 3 s heartbeat
    expect(n).toBeLessThanOrEqual(6); // no more than one a second (min_interval), no burst of everything "due"
  }, 30_000);

  it('a jump back (a bad NTP source): staleness still comes on time, presence still flows', async () => {
    expect(await ask(owner, jid, 'door off')).toBe('door → off ✓');
    const mark = agent.lines.length;
    setClock(-3600);
    await until(() => agent.find('the clock was set back by', mark) !== undefined, 'the agent to see the jump back', { timeoutMs: 5_000 });
    const from = owner.stanzas.length;
    await new Promise((r) => setTimeout(r, 4_500));
    expect(await ask(owner, jid, 'status')).toMatch(/^door off \(stale, [4-9] s ago\)$/m);
    expect(presencesFrom(from).length).toBeGreaterThanOrEqual(1);
    setClock(0);
  }, 30_000);

  it('the history holds no reading stamped 1970: those taken before the clock was set are stored with their real times', async () => {
    await until(() => agent.find('readings held while the clock was wrong are in the history now') !== undefined, 'the held readings written', { timeoutMs: 5_000 });
    expect(await agent.stop()).toBe(0);
    const db = new Database(join(dir, 'state', 'agent.db'), { readonly: true });
    try {
      const { bad, good, early } = db
        .prepare('SELECT sum(t < ?) AS bad, sum(t >= ?) AS good, sum(t BETWEEN ? AND ?) AS early FROM readings')
        .get(SANE, SANE, started - 5_000, started + 20_000) as { bad: number; good: number; early: number };
      expect(bad).toBe(0);
      expect(good).toBeGreaterThan(5);
      expect(early).toBeGreaterThan(0); // the readings of the first seconds, in 1970 by the agent's clock then
      // Nothing raised before the clock was set is left behind (the temperature keeps alarming, so one
      // raised just before the stop may still be waiting for the server's ack: that one is newer).
      expect((db.prepare('SELECT count(*) AS n FROM outbox WHERE created < ?').get(clockSetAt) as { n: number }).n).toBe(0);
      expect(db.pragma('quick_check', { simple: true })).toBe('ok');
    } finally {
      db.close();
    }
  }, 30_000);
});
