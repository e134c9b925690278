// Chatting with the agent over a real Prosody, as an owner, a viewer and a stranger.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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

describe('owner', () => {
  it('subscribes, is approved (and not asked for a subscription back), and sees the readings as status', async () => {
    await owner.send(xml('presence', { type: 'subscribe', to: agent.jid }));
    await owner.waitFor((s) => s.name === 'presence' && s.attrs.type === 'subscribed', 10_000, 'subscribed');
    const p = await owner.waitFor((s) => s.name === 'presence' && s.attrs.from === agent.fullJid && !s.attrs.type, 10_000, 'available presence');
    expect(owner.stanzas.filter((s) => s.name === 'presence' && s.attrs.type === 'subscribe')).toEqual([]);
    expect(p.getChildText('status')).toMatch(/^temperature \d+\.\d °C · fan off$/);
    expect(p.getChild('show')).toBeUndefined();
  });

  it('asks for status and gets every reading', async () => {
    const reply = await owner.chat(agent.fullJid, 'status');
    expect(reply).toMatch(/^temperature \d+\.\d °C\nfan off$/);
  });

  it('turns the fan on, gets a confirmation, and the presence follows at once', async () => {
    const before = owner.stanzas.length;
    expect(await owner.chat(agent.fullJid, 'fan on')).toBe('fan → on ✓');
    expect(agent.agent.devices.get('fan')?.value).toBe(true);
    const p = await owner.waitFor(
      (s) => owner.stanzas.indexOf(s) >= before && s.name === 'presence' && s.attrs.from === agent.fullJid && /fan on/.test(s.getChildText('status') ?? ''),
      10_000,
      'presence with fan on',
    );
    expect(p.getChildText('status')).toContain('fan on');
    expect(await owner.chat(agent.fullJid, 'set fan off')).toBe('fan → off ✓');
    expect(await owner.chat(agent.fullJid, 'get fan')).toMatch(/^fan off · \d+ s ago$/);
  });

  it('gets a clear error for a bad value, a read-only device and an unknown device', async () => {
    expect(await owner.chat(agent.fullJid, 'fan maybe')).toBe('✗ fan expects on or off, not "maybe"');
    expect(await owner.chat(agent.fullJid, 'set temperature 25')).toBe('temperature is read-only.');
    expect(await owner.chat(agent.fullJid, 'get fna')).toBe('No device "fna". Did you mean fan?');
    expect(agent.agent.devices.get('fan')?.value).toBe(false);
  });

  it('gets a suggestion for an unknown word, not silence', async () => {
    expect(await owner.chat(agent.fullJid, 'stauts')).toBe('I don\'t know "stauts". Did you mean "status"? Type help for the commands.');
    expect(await owner.chat(agent.fullJid, 'help')).toContain('set <device> <value>');
  });
});

describe('commands the server held while the gateway was offline', () => {
  it('does not actuate a chat command or a control message delayed past a minute, and says why', async () => {
    const before = agent.agent.devices.get('fan')!.value;
    const stamp = new Date(Date.now() - 10 * 60_000).toISOString();
    const delayed = (body: string) => xml('message', { type: 'chat', to: agent.fullJid }, xml('body', {}, body), xml('delay', { xmlns: 'urn:xmpp:delay', stamp }));
    await owner.send(delayed(before ? 'fan off' : 'fan on'));
    const reply = await owner.waitFor((s) => s.name === 'message' && s.attrs.from === agent.fullJid && /waited 10 min/.test(s.getChildText('body') ?? ''), 10_000, 'the refusal');
    expect(reply.getChildText('body')).toMatch(/^✗ "fan o(n|ff)" waited 10 min on the server while the gateway was offline; not applied\./);
    await owner.send(xml('message', { to: agent.fullJid }, xml('set', { xmlns: 'urn:xmpp:iot:control' }, xml('boolean', { name: 'fan', value: String(!before) })), xml('delay', { xmlns: 'urn:xmpp:delay', stamp })));
    expect(await owner.chat(agent.fullJid, 'get fan')).toMatch(before ? /^fan on/ : /^fan off/);
    expect(agent.agent.devices.get('fan')!.value).toBe(before);
  });
});

describe('viewer', () => {
  it('reads but cannot actuate', async () => {
    expect(await viewer.chat(agent.fullJid, 'get fan')).toMatch(/^fan (on|off)/);
    const before = agent.agent.devices.get('fan')?.value;
    expect(await viewer.chat(agent.fullJid, 'fan on')).toBe('Only owners can change devices; you can read them (try: get fan).');
    expect(agent.agent.devices.get('fan')?.value).toBe(before);
    expect(await viewer.chat(agent.fullJid, 'help')).not.toContain('set <device>');
  });
});

describe('stranger', () => {
  it('gets a one-line refusal and nothing moves', async () => {
    const before = agent.agent.devices.get('fan')?.value;
    expect(await stranger.chat(agent.fullJid, 'fan on')).toBe('Sorry, this gateway only answers its owners.');
    expect(agent.agent.devices.get('fan')?.value).toBe(before);
  });

  it('is refused only once in a while, so two bots cannot loop', async () => {
    const count = () => stranger.stanzas.filter((s) => s.name === 'message' && s.attrs.from === agent.fullJid).length;
    const n = count();
    await stranger.send(xml('message', { type: 'chat', to: agent.fullJid }, xml('body', {}, 'status')));
    // A ping round trip after the message proves the agent has handled it.
    await stranger.iq('get', agent.fullJid, xml('ping', { xmlns: 'urn:xmpp:ping' })).catch(() => {});
    expect(count()).toBe(n);
  });

  it('is refused a subscription', async () => {
    await stranger.send(xml('presence', { type: 'subscribe', to: agent.jid }));
    await stranger.waitFor((s) => s.name === 'presence' && s.attrs.type === 'unsubscribed' && s.attrs.from === agent.jid, 10_000, 'unsubscribed');
  });
});
