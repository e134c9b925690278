// XEP-0050 ad-hoc commands with XEP-0004 forms, as Gajim or Psi would run
// them, over a real Prosody.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Element } from 'ltx';
import { cast, xml, type Cast } from './helpers/peers.js';

const NS = 'http://jabber.org/protocol/commands';
const DATA = 'jabber:x:data';
let c: Cast;

beforeAll(async () => {
  c = await cast();
});
afterAll(() => c?.stop());

const command = (attrs: Record<string, string>, ...children: Element[]): Element => xml('command', { xmlns: NS, ...attrs }, ...children);
const submit = (fields: Record<string, string>): Element =>
  xml('x', { xmlns: DATA, type: 'submit' }, ...Object.entries(fields).map(([k, v]) => xml('field', { var: k }, xml('value', {}, v))));
const fieldValue = (x: Element | undefined, name: string): string | undefined =>
  x?.getChildren('field').find((f) => f.attrs.var === name)?.getChildText('value') ?? undefined;

async function raw(p: Cast['owner'], iq: Element): Promise<Element> {
  const id = `c${Math.random().toString(36).slice(2)}`;
  iq.attrs.id = id;
  await p.send(iq);
  return p.waitFor((s) => s.name === 'iq' && s.attrs.id === id, 10_000, `reply ${id}`);
}
const errorOf = (r: Element): string[] => (r.getChild('error')?.getChildElements() ?? []).map((e) => e.name).filter((n) => n !== 'text');

describe('XEP-0050 ad-hoc commands', () => {
  it('lists the commands each role may run', async () => {
    const list = async (p: Cast['owner']) =>
      (await p.iq('get', c.agent.fullJid, xml('query', { xmlns: 'http://jabber.org/protocol/disco#items', node: NS }))).getChild('query')!.getChildren('item').map((i) => i.attrs.name);
    expect(await list(c.owner)).toEqual(['Read sensors', 'Set a device', 'Agent status', 'People', 'Invite a person', 'Revoke a person']);
    expect(await list(c.viewer)).toEqual(['Read sensors', 'Agent status']);
    const info = await c.owner.iq('get', c.agent.fullJid, xml('query', { xmlns: 'http://jabber.org/protocol/disco#info', node: 'set-device' }));
    expect(info.getChild('query')!.getChild('identity')!.attrs).toMatchObject({ category: 'automation', type: 'command-node' });
  });

  it('reads sensors in one step', async () => {
    const res = await c.viewer.iq('set', c.agent.fullJid, command({ node: 'read-sensors', action: 'execute' }));
    const cmd = res.getChild('command', NS)!;
    expect(cmd.attrs.status).toBe('completed');
    const x = cmd.getChild('x', DATA)!;
    expect(x.attrs.type).toBe('result');
    expect(fieldValue(x, 'temperature')).toMatch(/^\d+\.\d °C$/);
    expect(fieldValue(x, 'fan')).toMatch(/^(on|off)$/);
  });

  it('sets a device in two stages: pick the device, then a value typed for it', async () => {
    const first = (await c.owner.iq('set', c.agent.fullJid, command({ node: 'set-device', action: 'execute' }))).getChild('command', NS)!;
    expect(first.attrs.status).toBe('executing');
    const sessionid = first.attrs.sessionid!;
    const pick = first.getChild('x', DATA)!.getChildren('field').find((f) => f.attrs.var === 'device')!;
    expect(pick.attrs.type).toBe('list-single');
    expect(pick.getChildren('option').map((o) => o.getChildText('value'))).toEqual(['fan']);

    const second = (await c.owner.iq('set', c.agent.fullJid, command({ node: 'set-device', sessionid, action: 'next' }, submit({ device: 'fan' })))).getChild('command', NS)!;
    const value = second.getChild('x', DATA)!.getChildren('field').find((f) => f.attrs.var === 'value')!;
    expect(value.attrs.type).toBe('boolean');
    expect(second.getChild('actions')!.attrs.execute).toBe('complete');

    const done = (await c.owner.iq('set', c.agent.fullJid, command({ node: 'set-device', sessionid, action: 'complete' }, submit({ device: 'fan', value: '1' })))).getChild('command', NS)!;
    expect(done.attrs.status).toBe('completed');
    expect(done.getChildText('note')).toBe('fan → on ✓');
    expect(c.agent.agent.devices.get('fan')!.value).toBe(true);
  });

  it('cancels, and then the session is gone', async () => {
    const first = (await c.owner.iq('set', c.agent.fullJid, command({ node: 'set-device', action: 'execute' }))).getChild('command', NS)!;
    const sessionid = first.attrs.sessionid!;
    const cancelled = (await c.owner.iq('set', c.agent.fullJid, command({ node: 'set-device', sessionid, action: 'cancel' }))).getChild('command', NS)!;
    expect(cancelled.attrs.status).toBe('canceled');
    const again = await raw(c.owner, xml('iq', { type: 'set', to: c.agent.fullJid }, command({ node: 'set-device', sessionid, action: 'next' }, submit({ device: 'fan' }))));
    expect(errorOf(again)).toEqual(['bad-request', 'bad-sessionid']);
  });

  it('keeps sessions to their requester', async () => {
    const first = (await c.owner.iq('set', c.agent.fullJid, command({ node: 'set-device', action: 'execute' }))).getChild('command', NS)!;
    const stolen = await raw(c.viewer, xml('iq', { type: 'set', to: c.agent.fullJid }, command({ node: 'agent-status', sessionid: first.attrs.sessionid!, action: 'next' })));
    expect(errorOf(stolen)).toEqual(['bad-request', 'bad-sessionid']);
  });

  it('refuses set-device to viewers and everything to strangers; nothing moves', async () => {
    const before = c.agent.agent.devices.get('fan')!.value;
    const viewer = await raw(c.viewer, xml('iq', { type: 'set', to: c.agent.fullJid }, command({ node: 'set-device', action: 'execute' })));
    expect(errorOf(viewer)).toEqual(['forbidden']);
    const stranger = await raw(c.stranger, xml('iq', { type: 'set', to: c.agent.fullJid }, command({ node: 'read-sensors', action: 'execute' })));
    expect(errorOf(stranger)).toEqual(['forbidden']);
    expect(c.agent.agent.devices.get('fan')!.value).toBe(before);
  });

  it('answers a bad value with bad-request and keeps the session', async () => {
    const first = (await c.owner.iq('set', c.agent.fullJid, command({ node: 'set-device', action: 'execute' }))).getChild('command', NS)!;
    const sessionid = first.attrs.sessionid!;
    await c.owner.iq('set', c.agent.fullJid, command({ node: 'set-device', sessionid, action: 'next' }, submit({ device: 'fan' })));
    const bad = await raw(c.owner, xml('iq', { type: 'set', to: c.agent.fullJid }, command({ node: 'set-device', sessionid, action: 'complete' }, submit({ value: 'maybe' }))));
    expect(errorOf(bad)).toEqual(['bad-request']);
    const ok = (await c.owner.iq('set', c.agent.fullJid, command({ node: 'set-device', sessionid, action: 'complete' }, submit({ value: '0' })))).getChild('command', NS)!;
    expect(ok.attrs.status).toBe('completed');
  });

  it('reports agent status', async () => {
    const res = (await c.owner.iq('set', c.agent.fullJid, command({ node: 'agent-status', action: 'execute' }))).getChild('command', NS)!;
    const x = res.getChild('x', DATA)!;
    expect(fieldValue(x, 'connection')).toBe('online');
    expect(Number(fieldValue(x, 'readings'))).toBeGreaterThan(0);
    expect(fieldValue(x, 'reconnects')).toBe('0');
    expect(fieldValue(x, 'dropped')).toBe('0');
    expect(fieldValue(x, 'uptime')).toMatch(/^0 h \d+ min \d+ s$/);
  });
});
