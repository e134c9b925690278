// Holes an outside attack found, each reproduced from a real client
// connection on the suite's Prosody: the gateway's own account, a parameter
// repeated in one XEP-0325 set, a fresh delay stamp ahead of the server's,
// and forged replies to the agent's own IQ requests.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Element } from 'ltx';
import { account, peer, startAgent, xml, type Peer, type RunningAgent } from './helpers/peers.js';

const STANZAS = 'urn:ietf:params:xml:ns:xmpp-stanzas';
const CONTROL = 'urn:xmpp:iot:control';

let agent: RunningAgent;
let owner: Peer;
let intruder: Peer;
let stranger: Peer;

beforeAll(async () => {
  const [o, s] = await Promise.all([account('alice'), account('eve')]);
  agent = await startAgent({
    owners: [o.jid],
    // Every device reads only at start (interval: 1h): a simulated reading every 5 s would add to the count
    // of readings a test takes to show that nothing moved.
    devices: `  - { id: temperature, driver: simulated, type: number, unit: "°C", min: 15, max: 30, initial: 21.4, interval: 1h }
  - { id: fan, driver: simulated, type: boolean, writable: true, interval: 1h }
  - { id: light, driver: simulated, type: boolean, writable: true, interval: 1h }
`,
  });
  // A second resource of the gateway's own account: whoever read one SD card has this.
  [owner, intruder, stranger] = await Promise.all([peer(o), peer(agent.account, 'intruder'), peer(s)]);
  await owner.send(xml('presence', { type: 'subscribe', to: agent.jid }));
  await owner.waitFor((st) => st.name === 'presence' && st.attrs.from === agent.fullJid && !st.attrs.type, 10_000, 'the first presence');
});

afterAll(async () => {
  await Promise.all([owner?.stop(), intruder?.stop(), stranger?.stop()]);
  await agent?.stop();
});

async function raw(p: Peer, iq: Element): Promise<Element> {
  const id = `t${Math.random().toString(36).slice(2)}`;
  iq.attrs.id = id;
  await p.send(iq);
  return p.waitFor((s) => s.name === 'iq' && s.attrs.id === id, 10_000, `reply to ${id}`);
}
const condition = (reply: Element): string | undefined => reply.getChild('error')?.getChildElements().find((c) => c.getNS() === STANZAS && c.name !== 'text')?.name;
const fan = (): unknown => agent.agent.devices.get('fan')?.value;

describe("the gateway's own account", () => {
  it('a second resource of the own account cannot actuate or read: chat is refused, IQs are forbidden, the fan does not move', async () => {
    const before = fan();
    const reply = await intruder.chat(agent.fullJid, before ? 'fan off' : 'fan on');
    expect(reply).toBe('Sorry, this gateway only answers its owners.');
    const set = await raw(intruder, xml('iq', { type: 'set', to: agent.fullJid }, xml('set', { xmlns: CONTROL }, xml('boolean', { name: 'fan', value: String(!before) }))));
    expect(condition(set)).toBe('forbidden');
    const read = await raw(intruder, xml('iq', { type: 'get', to: agent.fullJid }, xml('req', { xmlns: 'urn:xmpp:iot:sensordata', seqnr: '1', momentary: 'true' })));
    expect(condition(read)).toBe('forbidden');
    const adhoc = await raw(intruder, xml('iq', { type: 'set', to: agent.fullJid }, xml('command', { xmlns: 'http://jabber.org/protocol/commands', node: 'set-device', action: 'execute' })));
    expect(condition(adhoc)).toBe('forbidden');
    // The owner's ping comes back after all of the intruder's requests were handled.
    expect((await raw(owner, xml('iq', { type: 'get', to: agent.fullJid }, xml('ping', { xmlns: 'urn:xmpp:ping' })))).attrs.type).toBe('result');
    expect(fan()).toBe(before);
  });
});

describe('one request, one change per device', () => {
  it('refuses a control set that names the fan 41 times (bad-request naming the parameter) and moves nothing', async () => {
    const before = fan();
    const params = Array.from({ length: 41 }, (_, i) => xml('boolean', { name: 'fan', value: String(i % 2 === 0 ? !before : before) }));
    const writes = agent.agent.devices.readings;
    const reply = await raw(owner, xml('iq', { type: 'set', to: agent.fullJid }, xml('set', { xmlns: CONTROL }, ...params)));
    expect(reply.attrs.type).toBe('error');
    expect(condition(reply)).toBe('bad-request');
    expect(reply.getChild('error')?.getChild('paramError', CONTROL)?.attrs.var).toBe('fan');
    expect(fan()).toBe(before);
    expect(agent.agent.devices.readings).toBe(writes);
  });

  it('sends one presence for a set that changes two devices', async () => {
    const mark = owner.stanzas.length;
    const sent = agent.agent.reporter.stats.presencesSent;
    const target = !agent.agent.devices.get('fan')?.value;
    const reply = await raw(owner, xml('iq', { type: 'set', to: agent.fullJid }, xml('set', { xmlns: CONTROL }, xml('boolean', { name: 'fan', value: String(target) }), xml('boolean', { name: 'light', value: String(target) }))));
    expect(reply.attrs.type).toBe('result');
    const word = target ? 'on' : 'off';
    await owner.waitFor((s) => owner.stanzas.indexOf(s) >= mark && s.name === 'presence' && (s.getChildText('status') ?? '').includes(`light ${word}`), 10_000, 'the presence after the set');
    // A later ping's reply proves that the agent sent everything the set caused.
    await raw(owner, xml('iq', { type: 'get', to: agent.fullJid }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
    const presences = owner.stanzas.slice(mark).filter((s) => s.name === 'presence' && s.attrs.from === agent.fullJid);
    expect(presences).toHaveLength(1);
    expect(agent.agent.reporter.stats.presencesSent).toBe(sent + 1);
    expect(presences[0]!.getChildText('status')).toContain(`fan ${word}`);
  });
});

describe('held commands', () => {
  it('the oldest delay stamp counts: a fresh stamp put ahead of an old one does not make a held command actuate', async () => {
    const before = fan();
    const fresh = new Date().toISOString();
    const old = new Date(Date.now() - 10 * 60_000).toISOString();
    const mark = owner.stanzas.length;
    await owner.send(
      xml('message', { type: 'chat', to: agent.fullJid }, xml('body', {}, before ? 'fan off' : 'fan on'), xml('delay', { xmlns: 'urn:xmpp:delay', stamp: fresh }), xml('delay', { xmlns: 'urn:xmpp:delay', stamp: old, from: 'iot.test' })),
    );
    const reply = await owner.waitFor((s) => owner.stanzas.indexOf(s) >= mark && s.name === 'message' && s.getChild('body') !== undefined, 10_000, 'the refusal');
    expect(reply.getChildText('body')).toMatch(/waited 10 min on the server .* not applied/);
    expect(fan()).toBe(before);
  });
});

describe("the agent's own IQ requests", () => {
  it('takes a reply only from the entity the request went to: a forged result with the right id is ignored', async () => {
    const asked = agent.agent.session.request(xml('iq', { type: 'get', to: owner.xmpp.jid!.toString() }, xml('ping', { xmlns: 'urn:xmpp:ping' })), 10_000);
    const request = await owner.waitFor((s) => s.name === 'iq' && s.attrs.type === 'get' && s.getChild('ping', 'urn:xmpp:ping') !== undefined, 10_000, "the agent's ping");
    const id = request.attrs.id!;
    // Unguessable: at least 96 bits of randomness, not a short counter.
    expect(id.length).toBeGreaterThanOrEqual(16);
    // A stranger who learned the id answers first, with an error that would make the request fail.
    await stranger.send(xml('iq', { type: 'error', to: agent.fullJid, id }, xml('error', { type: 'cancel' }, xml('item-not-found', { xmlns: STANZAS }))));
    await raw(stranger, xml('iq', { type: 'get', to: agent.fullJid }, xml('ping', { xmlns: 'urn:xmpp:ping' }))).catch(() => undefined);
    // Then the real addressee answers.
    await owner.send(xml('iq', { type: 'result', to: agent.fullJid, id }));
    const reply = await asked;
    expect(reply.attrs.from).toBe(owner.xmpp.jid!.toString());
  });
});
