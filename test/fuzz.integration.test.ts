// Fuzzing from a real client connection: unexpected, malformed-but-well-formed,
// oversized and random stanzas never take the agent down, and every IQ request
// gets an RFC 6120 answer (never silence, never a crash).

import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Element } from 'ltx';
import { cast, xml, type Cast } from './helpers/peers.js';

let c: Cast;
beforeAll(async () => {
  c = await cast();
});
afterAll(() => c?.stop());

let n = 0;
async function ask(iq: Element): Promise<Element> {
  const id = `f${n++}`;
  iq.attrs.id = id;
  await c.owner.send(iq);
  return c.owner.waitFor((s) => s.name === 'iq' && s.attrs.id === id, 10_000, `answer to ${id}`);
}
const alive = async (): Promise<void> => {
  const r = await ask(xml('iq', { type: 'get', to: c.agent.fullJid }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
  expect(r.attrs.type).toBe('result');
};

describe('fuzzing the agent over XMPP', () => {
  it('answers random IQ payloads with a result or an RFC 6120 error, and stays up', async () => {
    const name = fc.stringMatching(/^[a-zA-Z][a-zA-Z0-9_-]{0,12}$/);
    const ns = fc.oneof(
      fc.constantFrom('urn:xmpp:iot:control', 'urn:xmpp:iot:sensordata', 'http://jabber.org/protocol/commands', 'http://jabber.org/protocol/disco#info', 'jabber:iq:version', 'urn:xmpp:ping'),
      fc.webUrl(),
    );
    const attrs = fc.dictionary(name, fc.string({ maxLength: 40 }), { maxKeys: 4 });
    const leaf = fc.tuple(name, attrs, fc.string({ maxLength: 60 })).map(([n2, a, t]) => xml(n2, a, t));
    const payload = fc.tuple(name, ns, attrs, fc.array(leaf, { maxLength: 4 })).map(([n2, x, a, kids]) => xml(n2, { ...a, xmlns: x }, ...kids));
    const samples = fc.sample(fc.tuple(fc.constantFrom('get', 'set'), payload), { numRuns: 150, seed: 7 });
    for (const [type, p] of samples) {
      const r = await ask(xml('iq', { type, to: c.agent.fullJid }, p));
      expect(['result', 'error']).toContain(r.attrs.type);
      if (r.attrs.type === 'error') expect(r.getChild('error')!.getChildElements()[0]!.getNS()).toBe('urn:ietf:params:xml:ns:xmpp-stanzas');
    }
    await alive();
  });

  it('answers IQs with no child, two children or an odd type with bad-request', async () => {
    for (const iq of [
      xml('iq', { type: 'get', to: c.agent.fullJid }),
      xml('iq', { type: 'set', to: c.agent.fullJid }, xml('a', { xmlns: 'urn:x' }), xml('b', { xmlns: 'urn:x' })),
      xml('iq', { type: 'weird', to: c.agent.fullJid }, xml('ping', { xmlns: 'urn:xmpp:ping' })),
    ]) {
      const r = await ask(iq);
      expect(r.getChild('error')!.getChildElements()[0]!.name).toBe('bad-request');
    }
    await alive();
  });

  it('survives a huge chat body, odd Unicode, odd message types and results nobody asked for', async () => {
    const before = c.agent.agent.devices.get('fan')!.value;
    await c.owner.send(xml('message', { type: 'chat', to: c.agent.fullJid }, xml('body', {}, 'fan on '.repeat(20_000))));
    await c.owner.send(xml('message', { type: 'chat', to: c.agent.fullJid }, xml('body', {}, '\u200b\u202e fan  \t on \ufffd 🌡')));
    await c.owner.send(xml('message', { type: 'headline', to: c.agent.fullJid }, xml('body', {}, 'fan on')));
    await c.owner.send(xml('message', { type: 'groupchat', to: c.agent.fullJid }, xml('body', {}, 'fan on')));
    await c.owner.send(xml('message', { type: 'error', to: c.agent.fullJid }, xml('body', {}, 'fan on')));
    await c.owner.send(xml('presence', { type: 'probe', to: c.agent.fullJid }));
    await c.owner.send(xml('iq', { type: 'result', id: 'nobody-asked', to: c.agent.fullJid }, xml('query', { xmlns: 'jabber:iq:version' })));
    await alive();
    const reply = await c.owner.waitFor((st) => st.name === 'message' && st.attrs.from === c.agent.fullJid && (st.getChildText('body') ?? '').startsWith('✗ fan expects'), 10_000, 'the reply');
    expect(reply.getChildText('body')).toBe('✗ fan expects on or off, not "on fan on fan on fan on fan on fan on fa…"'); // quoted back short
    // Nothing else acted.
    expect(c.agent.agent.devices.get('fan')!.value).toBe(before);
    expect(c.owner.stanzas.some((s) => s.attrs.id === 'nobody-asked' && s.attrs.from === c.agent.fullJid)).toBe(false);
  });
});
