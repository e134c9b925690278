// Fuzzing from a real client connection: unexpected, malformed-but-well-formed,
// oversized and random stanzas never take the agent down, and every IQ request
// gets an RFC 6120 answer (never silence, never a crash). The last test sends
// 10,000 of them, nested and with junk in every attribute.

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
/** Malformed stanzas sent from the owner's connection in the last test (README quotes this figure). */
const STANZAS = 10_000;
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

  it(`takes ${STANZAS.toLocaleString('en')} malformed stanzas from a real client connection, answers every IQ, and then answers normally`, async () => {
    const to = c.agent.fullJid;
    const word = fc.stringMatching(/^[a-wA-Z][a-zA-Z0-9_.-]{0,10}$/); // no ':' (an undeclared prefix is not well-formed), no xml… or xmlns
    // Malformed for XMPP, still well-formed XML: characters XML 1.0 forbids would make the server close the stream, not reach the agent.
    const xmlSafe = (t: string): string => t.replace(/[^\t\n\r\u0020-\ud7ff\ue000-\ufffd]/gu, '');
    const junk = fc.oneof(fc.string({ maxLength: 80, unit: 'binary' }).map(xmlSafe), fc.constantFrom('', ' ', 'NaN', '-1', '1e309', '0x10', 'true', '2026-13-45T99:99:99Z', '\u202e\u200b', 'fan', '<b>', '&amp;'));
    const ns = fc.constantFrom('urn:xmpp:iot:control', 'urn:xmpp:iot:sensordata', 'http://jabber.org/protocol/commands', 'http://jabber.org/protocol/disco#info', 'http://jabber.org/protocol/disco#items', 'jabber:iq:version', 'urn:xmpp:ping', 'jabber:x:data', 'urn:xmpp:delay', 'urn:xmpp:mam:2', 'jabber:iq:roster', 'urn:x-nobody');
    const attrs = fc.dictionary(fc.oneof(word, fc.constantFrom('seqnr', 'momentary', 'from', 'to', 'when', 'node', 'action', 'sessionid', 'name', 'value', 'var', 'stamp', 'type')), junk, { maxKeys: 5 });
    const leaf = fc.tuple(fc.oneof(word, fc.constantFrom('boolean', 'double', 'int', 'node', 'field', 'value', 'x', 'delay', 'set', 'req')), attrs, junk).map(([n2, a, t]) => xml(n2, a, t));
    const tree: fc.Arbitrary<Element> = fc.letrec<{ el: Element }>((tie) => ({
      el: fc.tuple(fc.oneof(word, fc.constantFrom('set', 'req', 'command', 'query', 'ping', 'x')), ns, attrs, fc.array(fc.oneof({ maxDepth: 3 }, leaf, tie('el')), { maxLength: 4 })).map(([n2, x, a, kids]) => xml(n2, { ...a, xmlns: x }, ...kids)),
    })).el;
    const iq = fc.tuple(fc.constantFrom('get', 'set', 'weird', 'GET'), fc.array(tree, { minLength: 0, maxLength: 3 })).map(([type, kids]) => ({ kind: 'iq' as const, el: xml('iq', { type, to }, ...kids) }));
    const unasked = fc.tuple(fc.constantFrom('result', 'error'), fc.array(tree, { maxLength: 2 })).map(([type, kids]) => ({ kind: 'other' as const, el: xml('iq', { type, to, id: 'nobody-asked' }, ...kids) }));
    const message = fc.tuple(fc.constantFrom('chat', 'normal', 'headline', 'groupchat', 'error', 'weird', undefined), fc.option(junk), fc.array(tree, { maxLength: 3 })).map(([type, body, kids]) => ({
      kind: 'other' as const,
      el: xml('message', { to, ...(type ? { type } : {}) }, ...(body !== null ? [xml('body', {}, body)] : []), ...kids),
    }));
    const presence = fc.tuple(fc.constantFrom(undefined, 'unavailable', 'probe', 'error', 'weird', 'subscribed'), fc.array(tree, { maxLength: 2 })).map(([type, kids]) => ({
      kind: 'other' as const,
      el: xml('presence', { to, ...(type ? { type } : {}) }, xml('show', {}, 'xa'), ...kids),
    }));
    const stanzas = fc.sample(fc.oneof({ arbitrary: iq, weight: 4 }, { arbitrary: message, weight: 3 }, { arbitrary: presence, weight: 1 }, { arbitrary: unasked, weight: 1 }), { numRuns: STANZAS, seed: 10_000 });
    const fan = c.agent.agent.devices.get('fan')!.value;
    let iqs = 0;
    const answers = { result: 0, error: 0, fromAgent: 0 };
    // In batches: send a hundred, then wait for the answers to the IQs among them.
    for (let i = 0; i < stanzas.length; i += 100) {
      const ids: string[] = [];
      const sent = new Map<string, Element>();
      for (const s of stanzas.slice(i, i + 100)) {
        if (s.kind === 'iq') {
          s.el.attrs.id = `z${n++}`;
          ids.push(s.el.attrs.id);
          sent.set(s.el.attrs.id, s.el);
        }
        await c.owner.send(s.el);
      }
      for (const id of ids) {
        const r = await c.owner.waitFor((st) => st.name === 'iq' && st.attrs.id === id, 20_000, `answer to ${sent.get(id)?.toString().slice(0, 600)}`);
        expect(['result', 'error']).toContain(r.attrs.type);
        if (r.attrs.type === 'error') expect(r.getChild('error')!.getChildElements()[0]!.getNS()).toBe('urn:ietf:params:xml:ns:xmpp-stanzas');
        answers[r.attrs.type as 'result' | 'error']++;
        if (r.attrs.from === to) answers.fromAgent++;
      }
      iqs += ids.length;
    }
    expect(iqs).toBeGreaterThan(STANZAS / 3);
    expect(answers.fromAgent).toBe(iqs);
    await alive();
    // Results nobody asked for are never answered; the agent is still itself.
    expect(c.owner.stanzas.some((s) => s.attrs.id === 'nobody-asked' && s.attrs.from === c.agent.fullJid)).toBe(false);
    expect(await c.owner.chat(c.agent.fullJid, 'fan on')).toBe('fan → on ✓');
    if (fan !== undefined) await c.owner.chat(c.agent.fullJid, `fan ${fan ? 'on' : 'off'}`);
    console.log(`stanza fuzz: ${STANZAS} stanzas, ${iqs} of them IQ requests, ${answers.fromAgent} answered by the agent (${answers.result} results, ${answers.error} RFC 6120 errors), then the agent answered normally`);
  }, 300_000);
});
