// The durable outbox as an owner lives it: alarms raised while the server is
// gone, or while the agent itself is dead, arrive once, in order, stamped
// with when they happened — over a real Prosody, from a real SQLite file.

import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Element } from 'ltx';
import { startProsody, type Prosody } from '../tools/dev/prosody.js';
import { openStore } from '../src/store/db.js';
import { agentYaml, startAgent, xml, type RunningAgent } from './helpers/peers.js';
import { Session } from '../src/xmpp/session.js';
import { until } from './helpers/until.js';
import { createLogger, createSink } from '../src/runtime/log.js';

const CLI = join(__dirname, '..', 'dist', 'cli.js');
const DEVICES = `  - id: temperature
    driver: simulated
    type: number
    unit: "°C"
    initial: 21
    interval: 1h
`;
const ALARM = `alarms:
  - device: temperature
    above: 30
    hysteresis: 1
`;

let own: Prosody;
const cleanup: (() => Promise<void>)[] = [];
beforeAll(async () => {
  own = await startProsody({ dir: mkdtempSync(join(tmpdir(), 'xia-outbox-')) });
  for (const [u, p] of [['gw', 'gw-secret'], ['gw2', 'gw2-secret'], ['alice', 'alice-secret']] as const) await own.register(u, p);
});
afterAll(async () => {
  for (const c of cleanup.reverse()) await c().catch(() => {});
  await own?.stop();
});

/** An owner on the private server: our own Session (it resumes and reconnects like a phone would). */
let phones = 0;
async function owner(server: Prosody): Promise<{ bodies: () => string[]; messages: Element[]; session: Session }> {
  const s = new Session({
    jid: `alice@${server.domain}`,
    resource: `phone-${++phones}`, // two sessions on one resource would throw each other off, over and over
    password: 'alice-secret',
    service: server.service,
    ca: readFileSync(server.caFile, 'utf8'),
    allowPlaintext: false,
    reconnect: { initialDelayMs: 50, maxDelayMs: 300 },
    log: createLogger(createSink('error', () => {})),
  });
  const messages: Element[] = [];
  s.on('stanza', (st) => {
    if (st.name === 'message' && st.getChild('body')) messages.push(st);
  });
  s.on('online', (_j, resumed) => {
    if (!resumed) void s.send(xml('presence'));
  });
  s.start();
  cleanup.push(() => s.stop());
  await new Promise((r) => s.once('online', r));
  return { bodies: () => messages.map((m) => m.getChildText('body') ?? ''), messages, session: s };
}

/**
 * A round trip to the agent: it answers in order and the server delivers in order, so whatever the agent
 * sent this owner before the answer has arrived once it is back.
 */
async function pingFrom(o: { session: Session }, agentJid: string): Promise<void> {
  await o.session.request(xml('iq', { type: 'get', to: agentJid }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
}

/** Deliveries here wait on a Prosody restart and a second agent process: more room than the default. */
const LONG = { timeoutMs: 15_000 };

describe('durable outbox', () => {
  it('delivers alarms raised while the server was down once each, in order, with their original time', async () => {
    const a: RunningAgent = await startAgent({
      owners: [`alice@${own.domain}`],
      account: { user: 'gw', jid: `gw@${own.domain}`, password: 'gw-secret' },
      service: own.service,
      caFile: own.caFile,
      devices: DEVICES,
      extra: ALARM,
    });
    cleanup.push(() => a.stop());
    await own.stop();
    await until(() => !a.agent.session.online, 'agent offline', LONG);
    const raisedAt = Date.now();
    for (const v of [31, 25, 32, 20]) a.agent.devices.report('temperature', v); // raise, clear, raise, clear
    expect(a.agent.store.outbox.stats()).toMatchObject({ queued: 4, alarmsQueued: 4 });
    await own.restart();
    const o = await owner(own); // comes online after the agent may have sent: offline storage holds them
    await until(() => o.bodies().length >= 4, 'four alarms', LONG);
    await until(() => a.agent.store.outbox.stats().queued === 0, 'outbox empty', LONG);
    await pingFrom(o, a.fullJid); // a duplicate would have arrived before the answer
    expect(o.bodies()).toEqual([
      '⚠ temperature 31.0 °C above 30.0 °C',
      '✓ temperature back to 25.0 °C (alarm above 30.0 °C cleared)',
      '⚠ temperature 32.0 °C above 30.0 °C',
      '✓ temperature back to 20.0 °C (alarm above 30.0 °C cleared)',
    ]);
    const ids = o.messages.map((m) => m.attrs.id);
    expect(new Set(ids).size).toBe(4);
    for (const m of o.messages) {
      const stamp = m.getChildren('delay').find((d) => d.attrs.from === `${a.jid}/agent` || d.attrs.from === a.jid);
      expect(stamp, 'our XEP-0203 stamp').toBeDefined();
      expect(Math.abs(Date.parse(stamp!.attrs.stamp ?? "") - raisedAt)).toBeLessThan(2_000);
    }
    expect(a.agent.courier.stats.delivered).toBe(4);
  });

  it('survives the agent being killed: the next run sends what the last one could not, once', async () => {
    const work = mkdtempSync(join(tmpdir(), 'xia-outbox-cli-'));
    const state = join(work, 'state');
    writeFileSync(join(work, 'password'), 'gw2-secret');
    chmodSync(join(work, 'password'), 0o600);
    const yaml = (service: string): string =>
      agentYaml({
        account: { user: 'gw2', jid: `gw2@${own.domain}`, password: 'gw2-secret' },
        owners: [`alice@${own.domain}`],
        service,
        caFile: own.caFile,
        devices: DEVICES.replace('initial: 21', 'initial: 35'), // in alarm from the first reading
        extra: ALARM,
        stateDir: state,
      }).replace(/^xmpp:\n/, 'xmpp:\n  password_file: password\n');
    // First run: the server address is wrong, so the alarm can only be queued; then SIGKILL, as a power cut would.
    writeFileSync(join(work, 'agent.yaml'), yaml('xmpp://127.0.0.1:1'));
    const first = spawn(process.execPath, [CLI, 'run', '--config', join(work, 'agent.yaml')], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    first.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    await until(() => out.includes('"msg":"alarm"'), 'the alarm in the first run', LONG);
    first.kill('SIGKILL');
    await new Promise((r) => first.once('exit', r));
    const left = openStore({ dir: state });
    expect(left.outbox.stats().queued).toBe(1);
    left.close();

    const o = await owner(own);
    const before = o.bodies().length;
    writeFileSync(join(work, 'agent.yaml'), yaml(own.service));
    const secondStartedAt = Date.now();
    const second = spawn(process.execPath, [CLI, 'run', '--config', join(work, 'agent.yaml')], { stdio: ['ignore', 'pipe', 'pipe'] });
    cleanup.push(async () => void second.kill('SIGKILL'));

    // The second run raises the same alarm afresh (its first reading is 35 again) and also delivers the stored one.
    await until(() => o.bodies().length >= before + 2, 'the stored alarm and the new one', LONG);
    await pingFrom(o, `gw2@${own.domain}/agent`); // a duplicate would have arrived before the answer
    const got = o.messages.slice(before);
    expect(got).toHaveLength(2);
    const stampOf = (m: Element): number => Date.parse(m.getChildren('delay').find((d) => d.attrs.from?.startsWith(`gw2@${own.domain}`))?.attrs.stamp ?? '');
    // Exactly one carries the time of the dead run: the alarm it wrote before it was killed.
    expect(got.filter((m) => stampOf(m) < secondStartedAt)).toHaveLength(1);
    expect(new Set(got.map((m) => m.attrs.id)).size).toBe(2);
    second.kill('SIGTERM');
    await new Promise((r) => second.once('exit', r));
    const after = openStore({ dir: state });
    expect(after.outbox.stats().queued).toBe(0);
    after.close();
  });

  it('refuses to start over a damaged or busy store, exiting 73 with the way out', async () => {
    const work = mkdtempSync(join(tmpdir(), 'xia-outbox-bad-'));
    const state = join(work, 'state');
    writeFileSync(join(work, 'password'), 'gw2-secret');
    chmodSync(join(work, 'password'), 0o600);
    const yaml = agentYaml({ account: { user: 'gw2', jid: `gw2@${own.domain}`, password: '' }, owners: [`alice@${own.domain}`], service: own.service, caFile: own.caFile, devices: DEVICES, stateDir: state })
      .replace(/^xmpp:\n/, 'xmpp:\n  password_file: password\n');
    writeFileSync(join(work, 'agent.yaml'), yaml);
    const run = (): Promise<{ code: number | null; stderr: string }> =>
      new Promise((resolve) => {
        const c = spawn(process.execPath, [CLI, 'run', '--config', join(work, 'agent.yaml')], { stdio: ['ignore', 'ignore', 'pipe'] });
        let stderr = '';
        c.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
        c.once('exit', (code) => resolve({ code, stderr }));
        cleanup.push(async () => void c.kill('SIGKILL'));
      });
    // Busy: another agent holds the same state_dir.
    const holder = openStore({ dir: state });
    const busy = await run();
    holder.close();
    expect(busy.code).toBe(73);
    expect(busy.stderr).toContain(join(state, 'agent.db'));
    expect(busy.stderr).toMatch(/systemctl stop|state_dir/);
    // Damaged: an SD card that ate the file. It is left exactly as it was.
    writeFileSync(join(state, 'agent.db'), 'this is not a database'.repeat(100));
    const damaged = await run();
    expect(damaged.code).toBe(73);
    expect(damaged.stderr).toContain(`mv ${join(state, 'agent.db')}`);
    expect(readFileSync(join(state, 'agent.db'), 'utf8')).toBe('this is not a database'.repeat(100));
  });
});
