// IQs against the agent over a real Prosody: disco, ping, version, and the
// RFC 6120 errors for everything else.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Element } from 'ltx';
import { capsVer } from '../src/xep/caps.js';
import { cast, xml, type Cast, type Peer, type RunningAgent } from './helpers/peers.js';

let c: Cast;
let agent: RunningAgent;
let owner: Peer;
let viewer: Peer;
let stranger: Peer;

beforeAll(async () => {
  c = await cast();
  ({ agent, owner, viewer, stranger } = c);
});

afterAll(() => c?.stop());

const STANZAS = 'urn:ietf:params:xml:ns:xmpp-stanzas';
const FEATURES = [
  'http://jabber.org/protocol/commands',
  'http://jabber.org/protocol/disco#info',
  'http://jabber.org/protocol/disco#items',
  'jabber:iq:version',
  'urn:xmpp:iot:control',
  'urn:xmpp:iot:sensordata',
  'urn:xmpp:ping',
];

/** Send raw and return the reply with the same id (result or error). */
async function raw(p: Peer, iq: Element): Promise<Element> {
  const id = `t${Math.random().toString(36).slice(2)}`;
  iq.attrs.id = id;
  await p.send(iq);
  return p.waitFor((s) => s.name === 'iq' && s.attrs.id === id, 10_000, `reply to ${id}`);
}

function condition(reply: Element): string | undefined {
  return reply.getChild('error')?.getChildElements().find((c) => c.getNS() === STANZAS && c.name !== 'text')?.name;
}

describe('XEP-0030 service discovery', () => {
  it('answers disco#info with a client/bot identity and exactly the features it implements', async () => {
    const res = await owner.iq('get', agent.fullJid, xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' }));
    const q = res.getChild('query')!;
    expect(q.getChild('identity')?.attrs).toMatchObject({ category: 'client', type: 'bot' });
    const features = q.getChildren('feature').map((f) => f.attrs.var);
    expect(features).toEqual(FEATURES);
  });

  it('sends XEP-0115 caps in presence whose ver matches what disco#info on node#ver says', async () => {
    await owner.send(xml('presence', { type: 'subscribe', to: agent.jid }));
    const p = await owner.waitFor((s) => s.name === 'presence' && s.attrs.from === agent.fullJid && !s.attrs.type, 10_000, 'presence');
    const c = p.getChild('c', 'http://jabber.org/protocol/caps')!;
    expect(c.attrs.hash).toBe('sha-1');
    const res = await owner.iq('get', agent.fullJid, xml('query', { xmlns: 'http://jabber.org/protocol/disco#info', node: `${c.attrs.node}#${c.attrs.ver}` }));
    const q = res.getChild('query')!;
    expect(q.attrs.node).toBe(`${c.attrs.node}#${c.attrs.ver}`);
    const identities = q.getChildren('identity').map((i) => ({ category: i.attrs.category!, type: i.attrs.type!, name: i.attrs.name }));
    expect(capsVer(identities, q.getChildren('feature').map((f) => f.attrs.var!))).toBe(c.attrs.ver);
    expect(q.getChildren('feature').map((f) => f.attrs.var)).toEqual(FEATURES);
  });

  it('lists devices as items, and each device node answers info', async () => {
    const res = await viewer.iq('get', agent.fullJid, xml('query', { xmlns: 'http://jabber.org/protocol/disco#items' }));
    const items = res.getChild('query')!.getChildren('item').map((i) => i.attrs);
    expect(items).toEqual([
      { jid: agent.fullJid, node: 'temperature', name: 'temperature (°C)' },
      { jid: agent.fullJid, node: 'fan', name: 'fan, writable' },
    ]);
    const info = await owner.iq('get', agent.fullJid, xml('query', { xmlns: 'http://jabber.org/protocol/disco#info', node: 'fan' }));
    expect(info.getChild('query')?.attrs.node).toBe('fan');
  });

  it('answers item-not-found for an unknown node', async () => {
    const reply = await raw(owner, xml('iq', { type: 'get', to: agent.fullJid }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#info', node: 'nope' })));
    expect(reply.attrs.type).toBe('error');
    expect(condition(reply)).toBe('item-not-found');
  });
});

describe('XEP-0199 ping and XEP-0092 version', () => {
  it('answers ping with an empty result', async () => {
    const reply = await raw(owner, xml('iq', { type: 'get', to: agent.fullJid }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
    expect(reply.attrs.type).toBe('result');
    expect(reply.getChildElements()).toHaveLength(0);
  });

  it('tells its name and version', async () => {
    const res = await owner.iq('get', agent.fullJid, xml('query', { xmlns: 'jabber:iq:version' }));
    expect(res.getChild('query')!.getChildText('name')).toBe('xmpp-iot-agent');
    expect(res.getChild('query')!.getChildText('version')).toMatch(/^\d+\.\d+\.\d+/);
  });
});

describe('RFC 6120 errors', () => {
  it('answers service-unavailable to an unknown get or set', async () => {
    const get = await raw(owner, xml('iq', { type: 'get', to: agent.fullJid }, xml('query', { xmlns: 'urn:example:unknown' })));
    expect(get.attrs.type).toBe('error');
    expect(condition(get)).toBe('service-unavailable');
    expect(get.getChild('error')!.attrs.type).toBe('cancel');
    const set = await raw(owner, xml('iq', { type: 'set', to: agent.fullJid }, xml('thing', { xmlns: 'urn:example:unknown' })));
    expect(condition(set)).toBe('service-unavailable');
  });

  it('answers bad-request to an IQ with two children', async () => {
    const reply = await raw(
      owner,
      xml('iq', { type: 'get', to: agent.fullJid }, xml('ping', { xmlns: 'urn:xmpp:ping' }), xml('query', { xmlns: 'jabber:iq:version' })),
    );
    expect(condition(reply)).toBe('bad-request');
    expect(reply.getChild('error')!.attrs.type).toBe('modify');
  });

  it('answers forbidden to a stranger, whatever the request', async () => {
    for (const child of [xml('query', { xmlns: 'http://jabber.org/protocol/disco#items' }), xml('ping', { xmlns: 'urn:xmpp:ping' })]) {
      const reply = await raw(stranger, xml('iq', { type: 'get', to: agent.fullJid }, child));
      expect(condition(reply)).toBe('forbidden');
      expect(reply.getChild('error')!.attrs.type).toBe('auth');
    }
  });

  it('never answers an IQ result or error, and keeps working', async () => {
    await owner.send(xml('iq', { type: 'result', id: 'unasked', to: agent.fullJid }));
    await owner.send(xml('iq', { type: 'error', id: 'unasked2', to: agent.fullJid }, xml('error', { type: 'cancel' })));
    const reply = await raw(owner, xml('iq', { type: 'get', to: agent.fullJid }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
    expect(reply.attrs.type).toBe('result');
    expect(owner.stanzas.some((s) => s.attrs.id === 'unasked' || s.attrs.id === 'unasked2')).toBe(false);
  });

  it('user input echoed unclipped: a huge name in disco, sensor data, control and ad-hoc comes back at most 40 characters long', async () => {
    const long = `x${'y'.repeat(5000)}`;
    const to = agent.fullJid;
    const requests: Element[] = [
      xml('iq', { type: 'get', to }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#info', node: long })),
      xml('iq', { type: 'get', to }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#items', node: long })),
      xml('iq', { type: 'get', to }, xml('req', { xmlns: 'urn:xmpp:iot:sensordata', seqnr: '1', momentary: 'true' }, xml('node', { nodeId: long }))),
      xml('iq', { type: 'set', to }, xml('set', { xmlns: 'urn:xmpp:iot:control' }, xml('node', { nodeId: long }), xml('boolean', { name: 'fan', value: 'true' }))),
      xml('iq', { type: 'set', to }, xml('set', { xmlns: 'urn:xmpp:iot:control' }, xml('boolean', { name: long, value: 'true' }))),
      xml('iq', { type: 'set', to }, xml('set', { xmlns: 'urn:xmpp:iot:control' }, xml('int', { name: 'fan', value: long }))),
      xml('iq', { type: 'set', to }, xml('command', { xmlns: 'http://jabber.org/protocol/commands', node: long, action: 'execute' })),
    ];
    for (const iq of requests) {
      const reply = await raw(owner, iq);
      expect(reply.attrs.type).toBe('error');
      const text = reply.getChild('error')?.getChildText('text', STANZAS) ?? '';
      expect(text.length).toBeGreaterThan(0);
      expect(text).not.toContain('y'.repeat(41));
      // Nor anywhere else in the reply (payloads beside the error, attributes).
      expect(reply.toString().length).toBeLessThan(1500);
    }
  });
});

