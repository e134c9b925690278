// Claim by QR code and people management over a real Prosody: a gateway
// without owners opens a one-time code, shows it as a QR code of its xmpp:
// URI, and makes the first person who sends it an owner; owners then invite
// and revoke people from chat and ad-hoc commands, who survive a restart; and
// the gateway asks nobody for their presence.

import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Element } from 'ltx';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { claimUri } from '../src/core/claim.js';
import { readClaim, writeClaim } from '../src/store/claim-file.js';
import { account, agentYaml, peer, startAgent, xml, type Account, type Peer, type RunningAgent } from './helpers/peers.js';
import { readQr, textToModules } from './helpers/qr-read.js';
import { until } from './helpers/until.js';

const CLI = join(__dirname, '..', 'dist', 'cli.js');
const NS = 'http://jabber.org/protocol/commands';
const DATA = 'jabber:x:data';
const CLAIM = 'claim:\n  enabled: true\n  code_ttl: 1h\n';

let gw: Account;
let stateDir: string;
let agent: RunningAgent;
const notices: string[] = [];
let carol: Peer; // claims the gateway
let bob: Peer; // invited as a viewer
let dave: Peer; // a viewer named in agent.yaml
let eve: Peer; // a stranger
let mallory: Peer; // guesses codes
let accounts: Record<'carol' | 'bob' | 'dave' | 'eve' | 'mallory', Account>;

const start = (): Promise<RunningAgent> =>
  startAgent({ owners: [], viewers: [accounts.dave.jid], extra: CLAIM, stateDir, account: gw, claimNotice: (t) => notices.push(t) });
const code = (): string => {
  const s = readClaim(stateDir);
  if (s?.state !== 'open') throw new Error(`no open code: ${JSON.stringify(s)}`);
  return s.code;
};
/** Log lines at info or above that hold `text`. */
const loud = (logs: string[], text: string): string[] => logs.filter((l) => l.includes(text) && JSON.parse(l).level !== 'debug');
/** Everything the gateway sent `p` so far, after a ping round trip has shown it handled what came before. */
async function settled(p: Peer): Promise<Element[]> {
  await p.iq('get', agent.fullJid, xml('ping', { xmlns: 'urn:xmpp:ping' })).catch(() => {});
  return p.stanzas.filter((s) => (s.attrs.from ?? '').split('/')[0] === gw.jid);
}
const command = (p: Peer, attrs: Record<string, string>, ...children: Element[]): Promise<Element> =>
  p.iq('set', agent.fullJid, xml('command', { xmlns: NS, ...attrs }, ...children)).then((r) => r.getChild('command', NS)!);
const submit = (fields: Record<string, string>): Element =>
  xml('x', { xmlns: DATA, type: 'submit' }, ...Object.entries(fields).map(([k, v]) => xml('field', { var: k }, xml('value', {}, v))));
const values = (x: Element | undefined, name: string): string[] => x?.getChildren('field').find((f) => f.attrs.var === name)?.getChildren('value').map((v) => v.text()) ?? [];

beforeAll(async () => {
  const [g, c, b, d, e, m] = await Promise.all([account('gw'), account('carol'), account('bob'), account('dave'), account('eve'), account('mallory')]);
  gw = g;
  accounts = { carol: c, bob: b, dave: d, eve: e, mallory: m };
  stateDir = mkdtempSync(join(tmpdir(), 'xia-claim-'));
  agent = await start();
  [carol, bob, dave, eve, mallory] = await Promise.all([peer(c), peer(b), peer(d), peer(e), peer(m)]);
});

afterAll(async () => {
  await Promise.all([carol, bob, dave, eve, mallory].map((p) => p?.stop()));
  await agent?.stop();
});

describe('claim by QR code', () => {
  it('opens a code at first start and shows a QR code of the xmpp: URI, the URI and the code; one log line holds the code', () => {
    const c = code();
    expect(c).toMatch(/^[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}$/);
    expect(notices).toHaveLength(1);
    const uri = claimUri(gw.jid, c);
    expect(uri).toBe(`xmpp:${gw.jid}?message;body=claim%20${c}`);
    expect(notices[0]).toContain(uri);
    expect(notices[0]).toContain(`"claim ${c}"`);
    // The QR code in the notice, read back module by module.
    const block = notices[0]!.split('\n').filter((l) => /^[█▀▄ ]{20,}$/.test(l)).join('\n');
    const m = textToModules(block);
    expect(readQr(m.size, m.dark).text).toBe(uri);
    const lines = loud(agent.logs, c);
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({ level: 'info', ns: 'agent:claim', code: c, uri });
  });

  it('refuses a stranger anything but a claim, and a wrong code', async () => {
    expect(await eve.chat(agent.fullJid, `invite ${eve.jid} owner`)).toBe('Sorry, this gateway only answers its owners.');
    expect(await eve.chat(agent.fullJid, 'claim AAAA-BBBB-CCCC')).toBe('That is not the code shown at the device.');
    const iq = await command(eve, { node: 'invite', action: 'execute' }).catch((e: { condition?: string }) => e.condition);
    expect(iq).toBe('forbidden');
    expect(agent.agent.people.list().map((p) => p.jid)).toEqual([dave.jid]);
  });

  it('limits wrong codes per sender: the sixth try is refused whatever it is, and then there is silence', async () => {
    for (let i = 0; i < 5; i++) expect(await mallory.chat(agent.fullJid, `claim ${i}${i}${i}${i}-BBBB-CCCC`)).toBe('That is not the code shown at the device.');
    // The right code, but after five wrong ones: refused too.
    expect(await mallory.chat(agent.fullJid, `claim ${code()}`)).toBe('Too many wrong codes. Try again in 15 min.');
    const messages = async (): Promise<number> => (await settled(mallory)).filter((s) => s.name === 'message').length;
    const before = await messages();
    await mallory.send(xml('message', { type: 'chat', to: agent.fullJid }, xml('body', {}, `claim ${code()}`)));
    expect(await messages()).toBe(before);
    expect(agent.agent.people.owners()).toEqual([]);
  });

  it('makes the first person with the right code an owner who can actuate; the code then dies', async () => {
    const c = code();
    // As typed on a phone: lower case, without the dashes.
    expect(await carol.chat(agent.fullJid, `Claim ${c.toLowerCase().replace(/-/g, '')}`)).toMatch(/^✓ You own this gateway now\./);
    expect(await carol.chat(agent.fullJid, 'fan on')).toBe('fan → on ✓');
    expect(agent.agent.devices.get('fan')?.value).toBe(true);
    expect(readClaim(stateDir)).toMatchObject({ state: 'done', by: carol.jid });
    expect(await eve.chat(agent.fullJid, `claim ${c}`)).toBe('This gateway already has an owner. Ask them to invite you (they type: invite <your address>).');
    expect(loud(agent.logs, c)).toHaveLength(1);
  });

  it('lists owners and viewers with where each comes from', async () => {
    const list = await carol.chat(agent.fullJid, 'owners');
    expect(list).toMatch(new RegExp(`^Owners:\\n  ${carol.jid} — claimed the gateway with its code, \\d{4}-\\d\\d-\\d\\d\\nViewers:\\n  ${dave.jid} — agent.yaml\\n`));
    expect(list).toContain('People named in agent.yaml cannot be revoked from chat.');
  });
});

describe('people management', () => {
  it('an owner invites a viewer, who reads but cannot actuate or invite', async () => {
    expect(await carol.chat(agent.fullJid, `invite ${bob.jid} viewer`)).toBe(`✓ ${bob.jid} may now read this gateway (viewer). When they add ${gw.jid} to their contacts, their request is approved.`);
    // No message or presence request reaches them for it: the invitation is the owner's to pass on.
    expect((await settled(bob)).filter((s) => s.name === 'presence' && s.attrs.type?.startsWith('subscribe'))).toEqual([]);
    expect(await bob.chat(agent.fullJid, 'status')).toMatch(/^temperature \d+\.\d °C\nfan on$/);
    expect(await bob.chat(agent.fullJid, 'fan off')).toBe('Only owners can change devices; you can read them (try: get fan).');
    expect(agent.agent.devices.get('fan')?.value).toBe(true);
    expect(await bob.chat(agent.fullJid, `invite ${eve.jid}`)).toBe('Only owners can manage who may use this gateway.');
    expect(await dave.chat(agent.fullJid, `revoke ${bob.jid}`)).toBe('Only owners can manage who may use this gateway.');
    expect(await carol.chat(agent.fullJid, `invite ${gw.jid} owner`)).toBe("The gateway's own account gets rights only from agent.yaml (owners/viewers), never from chat.");
  });

  it('approves subscriptions from owners and viewers, refuses a stranger, and asks nobody for their presence', async () => {
    for (const p of [carol, bob, dave]) await p.send(xml('presence', { type: 'subscribe', to: gw.jid }));
    await eve.send(xml('presence', { type: 'subscribe', to: gw.jid }));
    for (const p of [carol, bob, dave]) {
      await p.waitFor((s) => s.name === 'presence' && s.attrs.type === 'subscribed' && s.attrs.from === gw.jid, 10_000, 'subscribed');
      await p.waitFor((s) => s.name === 'presence' && s.attrs.from === agent.fullJid && !s.attrs.type, 10_000, 'the readings');
    }
    await eve.waitFor((s) => s.name === 'presence' && s.attrs.type === 'unsubscribed' && s.attrs.from === gw.jid, 10_000, 'unsubscribed');
    for (const p of [carol, bob, dave, eve]) {
      expect((await settled(p)).filter((s) => s.name === 'presence' && s.attrs.type === 'subscribe')).toEqual([]);
    }
    // And on the server: the gateway's roster has no request of its own pending, and no subscription to anyone.
    const roster = await agent.agent.session.request(xml('iq', { type: 'get' }, xml('query', { xmlns: 'jabber:iq:roster' })));
    const items = roster.getChild('query')!.getChildren('item');
    expect(items.filter((i) => i.attrs.ask === 'subscribe')).toEqual([]);
    expect(Object.fromEntries(items.map((i) => [i.attrs.jid, i.attrs.subscription]))).toMatchObject({ [carol.jid]: 'from', [bob.jid]: 'from', [dave.jid]: 'from' });
  });

  it('revokes an invited person at once, and refuses for people named in agent.yaml and for the only owner', async () => {
    expect(await carol.chat(agent.fullJid, `revoke ${dave.jid}`)).toBe(
      `${dave.jid} is named in agent.yaml (viewers) and cannot be revoked from chat: take them out of the file and restart the agent.`,
    );
    expect(await carol.chat(agent.fullJid, `revoke ${carol.jid}`)).toBe(`${carol.jid} is the only owner; invite another owner first.`);
    expect(await carol.chat(agent.fullJid, `revoke ${bob.jid}`)).toBe(`✓ ${bob.jid} can no longer read this gateway; their subscription to its presence is taken back.`);
    await bob.waitFor((s) => s.name === 'presence' && s.attrs.type === 'unsubscribed' && s.attrs.from === gw.jid, 10_000, 'unsubscribed');
    expect(await bob.chat(agent.fullJid, 'status')).toBe('Sorry, this gateway only answers its owners.');
    expect(await dave.chat(agent.fullJid, 'get fan')).toMatch(/^fan on · /);
  });

  it('does the same with ad-hoc commands, and shows people in "Agent status"', async () => {
    const form = await command(carol, { node: 'invite', action: 'execute' });
    expect(form.attrs.status).toBe('executing');
    expect(form.getChild('x', DATA)!.getChildren('field').map((f) => [f.attrs.var, f.attrs.type])).toEqual([
      ['jid', 'jid-single'],
      ['role', 'list-single'],
    ]);
    const done = await command(carol, { node: 'invite', sessionid: form.attrs.sessionid!, action: 'complete' }, submit({ jid: bob.jid, role: 'viewer' }));
    expect(done.attrs.status).toBe('completed');
    expect(done.getChild('note')!.attrs.type).toBe('info');
    expect(done.getChildText('note')).toMatch(/^✓ .* may now read this gateway \(viewer\)/);
    expect(await carol.chat(agent.fullJid, `invite ${eve.jid} owner`)).toMatch(/^✓ /);

    const people = (await command(carol, { node: 'people', action: 'execute' })).getChild('x', DATA);
    expect(values(people, 'owners')).toEqual([`${carol.jid} (claimed)`, `${eve.jid} (invited by ${carol.jid})`]);
    expect(values(people, 'viewers')).toEqual([`${dave.jid} (agent.yaml)`, `${bob.jid} (invited by ${carol.jid})`]);

    const revoke = await command(carol, { node: 'revoke', action: 'execute' });
    const options = revoke.getChild('x', DATA)!.getChildren('field')[0]!.getChildren('option').map((o) => o.getChildText('value'));
    expect(options).toEqual([carol.jid, bob.jid, eve.jid]); // not dave: named in agent.yaml
    const revoked = await command(carol, { node: 'revoke', sessionid: revoke.attrs.sessionid!, action: 'complete' }, submit({ jid: eve.jid }));
    expect(revoked.getChildText('note')).toMatch(/^✓ .* can no longer read or control this gateway/);

    const status = (await command(dave, { node: 'agent-status', action: 'execute' })).getChild('x', DATA);
    expect(values(status, 'people')).toEqual([`owners: ${carol.jid} (claimed) · viewers: ${dave.jid} (agent.yaml), ${bob.jid} (invited by ${carol.jid})`]);
    // A viewer may not run them.
    expect(await command(bob, { node: 'invite', action: 'execute' }).catch((e: { condition?: string }) => e.condition)).toBe('forbidden');
  });

  it('keeps people across a restart on the same state dir, without opening a new code', async () => {
    await agent.stop();
    agent = await start();
    expect(notices).toHaveLength(1);
    expect(readClaim(stateDir)).toMatchObject({ state: 'done', by: carol.jid });
    expect(await carol.chat(agent.fullJid, 'fan off')).toBe('fan → off ✓');
    expect(await bob.chat(agent.fullJid, 'get fan')).toMatch(/^fan off · /);
    expect(await eve.chat(agent.fullJid, 'get fan')).toBe('Sorry, this gateway only answers its owners.');
    expect(agent.agent.people.list().map((p) => [p.jid, p.role, p.source])).toEqual([
      [dave.jid, 'viewer', 'config'],
      [carol.jid, 'owner', 'claim'],
      [bob.jid, 'viewer', 'invite'],
    ]);
  });
});

describe('expiry and codes made while the agent runs', () => {
  it('refuses an expired code; a code made by `xmpp-iot-agent claim` counts at once', async () => {
    const [g, f] = await Promise.all([account('gw'), account('frank')]);
    const dir = mkdtempSync(join(tmpdir(), 'xia-claim-'));
    const yaml = agentYaml({ account: g, owners: [], extra: CLAIM, stateDir: dir });
    writeFileSync(join(dir, 'agent.yaml'), yaml);
    const second = await startAgent({ owners: [], extra: CLAIM, stateDir: dir, account: g, claimNotice: () => {} });
    const frank = await peer(f);
    try {
      const open = readClaim(dir);
      if (open?.state !== 'open') throw new Error('no code');
      // Time passes: the stored expiry moves into the past (the agent reads the file on every claim).
      writeClaim(dir, { ...open, expires: Date.now() - 1000 });
      expect(await frank.chat(second.fullJid, `claim ${open.code}`)).toMatch(/^That code expired at \d{4}-\d\d-\d\d \d\d:\d\d UTC\. At the device, run xmpp-iot-agent claim --config <agent.yaml> for a new one\.$/);
      const { stdout } = await promisify(execFile)(process.execPath, [CLI, 'claim', '--config', join(dir, 'agent.yaml')]);
      const fresh = readClaim(dir);
      if (fresh?.state !== 'open') throw new Error('no new code');
      expect(fresh.code).not.toBe(open.code);
      expect(stdout).toContain(`claim ${fresh.code}`);
      expect(await frank.chat(second.fullJid, `claim ${open.code}`)).toBe('That is not the code shown at the device.');
      expect(await frank.chat(second.fullJid, `claim ${fresh.code}`)).toMatch(/^✓ You own this gateway now\./);
      expect(await frank.chat(second.fullJid, 'fan on')).toBe('fan → on ✓');
      await until(() => second.agent.people.owners().includes(frank.jid), 'frank an owner');
    } finally {
      await frank.stop();
      await second.stop();
    }
  });
});
