// XEP-0323 sensor data and XEP-0325 control from a stock @xmpp/client, over a
// real Prosody: one capability model, every device reachable.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Element } from 'ltx';
import { account, peer, startAgent, xml, type Peer, type RunningAgent } from './helpers/peers.js';

const SD = 'urn:xmpp:iot:sensordata';
const CTL = 'urn:xmpp:iot:control';
// The temperature reads only when a test reports it (interval: 1h): the simulated driver's reading every 5 s
// would clear the fault one test sets while that test's readout is on the wire.
const DEVICES = `  - { id: temperature, driver: simulated, type: number, unit: "°C", min: 15, max: 30, initial: 21.4, decimals: 2, interval: 1h }
  - { id: setpoint, driver: simulated, type: number, unit: "°C", writable: true, min: 5, max: 30, initial: 20, interval: 1h }
  - { id: fan, driver: simulated, type: boolean, writable: true }
  - { id: mode, driver: simulated, type: string, writable: true, initial: auto }
  - { id: humidity, driver: simulated, type: number, unit: "%" }
`;

let agent: RunningAgent;
let owner: Peer;
let viewer: Peer;
let stranger: Peer;

beforeAll(async () => {
  const [o, v, s] = await Promise.all([account('alice'), account('bob'), account('eve')]);
  agent = await startAgent({ owners: [o.jid], viewers: [v.jid], devices: DEVICES, extra: 'history:\n  interval: 1ms\n' });
  [owner, viewer, stranger] = await Promise.all([peer(o), peer(v), peer(s)]);
});
afterAll(async () => {
  await Promise.all([owner?.stop(), viewer?.stop(), stranger?.stop()]);
  await agent?.stop();
});

let seq = 100;
async function raw(p: Peer, iq: Element): Promise<Element> {
  const id = `i${seq++}`;
  iq.attrs.id = id;
  await p.send(iq);
  return p.waitFor((s) => s.name === 'iq' && s.attrs.id === id, 10_000, `reply ${id}`);
}
const conditionOf = (r: Element): string | undefined =>
  r.getChild('error')?.getChildElements().find((e) => e.getNS() === 'urn:ietf:params:xml:ns:xmpp-stanzas' && e.name !== 'text')?.name;

/** A readout: the IQ reply, then the fields/failure messages up to done. */
async function readout(p: Peer, attrs: Record<string, string>, ...children: Element[]): Promise<{ reply: Element; messages: Element[]; seqnr: string }> {
  const seqnr = String(seq++);
  const reply = await raw(p, xml('iq', { type: 'get', to: agent.fullJid }, xml('req', { xmlns: SD, seqnr, ...attrs }, ...children)));
  if (reply.attrs.type !== 'result') return { reply, messages: [], seqnr };
  const ofSeq = (s: Element) => s.name === 'message' && (s.getChild('fields', SD) ?? s.getChild('failure', SD))?.attrs.seqnr === seqnr;
  await p.waitFor((s) => ofSeq(s) && (s.getChild('fields', SD) ?? s.getChild('failure', SD))!.attrs.done === 'true', 10_000, `done for ${seqnr}`);
  return { reply, messages: p.stanzas.filter(ofSeq), seqnr };
}

function fieldsOf(messages: Element[]): Record<string, Element> {
  const out: Record<string, Element> = {};
  for (const m of messages) {
    for (const node of m.getChild('fields', SD)?.getChildren('node') ?? []) {
      for (const f of node.getChild('timestamp')!.getChildElements()) out[`${node.attrs.nodeId}/${f.attrs.name}`] = f;
    }
  }
  return out;
}

describe('XEP-0323 sensor data', () => {
  it('reads every device, typed, with units and decimals kept', async () => {
    const { reply, messages, seqnr } = await readout(viewer, { momentary: 'true' });
    expect(reply.getChild('accepted', SD)?.attrs.seqnr).toBe(seqnr);
    const f = fieldsOf(messages);
    expect(Object.keys(f)).toEqual(['temperature/temperature', 'setpoint/setpoint', 'fan/fan', 'mode/mode', 'humidity/humidity']);
    expect(f['temperature/temperature']!.name).toBe('numeric');
    expect(f['temperature/temperature']!.attrs).toMatchObject({ unit: '°C', momentary: 'true', automaticReadout: 'true', writable: 'false' });
    expect(f['temperature/temperature']!.attrs.value).toMatch(/^\d+\.\d\d$/);
    expect(f['fan/fan']!.name).toBe('boolean');
    expect(f['fan/fan']!.attrs.value).toMatch(/^(true|false)$/);
    expect(f['mode/mode']!.attrs).toMatchObject({ value: 'auto' });
    const ts = messages[0]!.getChild('fields', SD)!.getChild('node')!.getChild('timestamp')!.attrs.value!;
    expect(Date.parse(ts)).not.toBeNaN();
  });

  it('reads named nodes and fields only', async () => {
    const { messages } = await readout(owner, { momentary: 'true' }, xml('node', { nodeId: 'fan' }), xml('field', { name: 'fan' }));
    expect(Object.keys(fieldsOf(messages))).toEqual(['fan/fan']);
  });

  it('marks a faulty device with the error flag and lists unreadable ones as a failure', async () => {
    agent.agent.devices.fault('temperature', 'probe unplugged');
    try {
      const { messages } = await readout(owner, { momentary: 'true' }, xml('node', { nodeId: 'temperature' }));
      const f = fieldsOf(messages)['temperature/temperature']!;
      expect(f.attrs.error).toBe('true');
      expect(f.attrs.automaticReadout).toBeUndefined();
    } finally {
      agent.agent.devices.report('temperature', 21);
    }
  });

  it('rejects an unknown node with item-not-found, and carries the draft <rejected/> too', async () => {
    const { reply } = await readout(owner, { momentary: 'true' }, xml('node', { nodeId: 'nope' }));
    expect(reply.attrs.type).toBe('error');
    expect(conditionOf(reply)).toBe('item-not-found');
    expect(reply.getChild('rejected', SD)?.getChildText('error')).toBe('no device "nope"');
  });

  it('reads the stored history (historical readout) from the SQLite store, and refuses strangers', async () => {
    const since = new Date().toISOString();
    for (const v of [10, 12.5, 15]) {
      // About time passing: the recorder keeps one reading per 1 ms interval, so each needs its own millisecond.
      await new Promise((r) => setTimeout(r, 5));
      agent.agent.devices.report('setpoint', v);
    }
    const { reply, messages } = await readout(owner, { historicalOther: 'true', from: since }, xml('node', { nodeId: 'setpoint' }));
    expect(reply.attrs.type).toBe('result');
    const points = messages.flatMap((m) => m.getChild('fields', SD)?.getChildren('node') ?? []).flatMap((n) => n.getChildren('timestamp'));
    const values = points.map((t) => t.getChildElements()[0]!);
    expect(values.map((v) => Number(v.attrs.value))).toEqual([10, 12.5, 15]);
    expect(values.every((v) => v.attrs.historicalOther === 'true' && v.attrs.momentary === undefined)).toBe(true);
    // And the same history answers a chat; the hour also holds the first reading, 20, stored as the driver started.
    expect(await owner.chat(agent.fullJid, 'history setpoint 1h')).toMatch(/^setpoint, last 1 h: \S+ min 10\.0 °C · avg 14\.4 °C · max 20\.0 °C \(4 readings\)$/);
    const refused = await readout(stranger, { momentary: 'true' });
    expect(conditionOf(refused.reply)).toBe('forbidden');
    expect(stranger.stanzas.some((s) => s.getChild('fields', SD))).toBe(false);
  });

  it('confirms a cancel', async () => {
    const r = await raw(owner, xml('iq', { type: 'get', to: agent.fullJid }, xml('cancel', { xmlns: SD, seqnr: '7' })));
    expect(r.getChild('cancelled', SD)?.attrs.seqnr).toBe('7');
  });
});

describe('XEP-0325 control', () => {
  const set = (...params: Element[]) => xml('iq', { type: 'set', to: agent.fullJid }, xml('set', { xmlns: CTL }, ...params));

  it('sets typed parameters in order and answers setResponse', async () => {
    const r = await raw(owner, set(xml('boolean', { name: 'fan', value: 'true' }), xml('double', { name: 'setpoint', value: '22.5' }), xml('string', { name: 'mode', value: 'eco' })));
    expect(r.attrs.type).toBe('result');
    expect(r.getChild('setResponse', CTL)?.attrs.responseCode).toBe('OK');
    const d = agent.agent.devices;
    expect([d.get('fan')!.value, d.get('setpoint')!.value, d.get('mode')!.value]).toEqual([true, 22.5, 'eco']);
    const int = await raw(owner, set(xml('int', { name: 'setpoint', value: '21' })));
    expect(int.attrs.type).toBe('result');
    expect(d.get('setpoint')!.value).toBe(21);
  });

  it('names the bad parameter, and applies nothing when one is bad', async () => {
    const d = agent.agent.devices;
    const before = d.get('fan')!.value;
    const r = await raw(owner, set(xml('boolean', { name: 'fan', value: before ? 'false' : 'true' }), xml('double', { name: 'setpoint', value: '99' })));
    expect(conditionOf(r)).toBe('bad-request');
    const pe = r.getChild('error')!.getChild('paramError', CTL)!;
    expect(pe.attrs.var).toBe('setpoint');
    expect(pe.text()).toBe('setpoint accepts 5 to 30 °C, not 99');
    expect(r.getChild('setResponse', CTL)?.attrs.responseCode).toBe('FormError');
    expect(d.get('fan')!.value).toBe(before);
  });

  it('answers item-not-found, not-allowed and a type mismatch clearly', async () => {
    const unknown = await raw(owner, set(xml('boolean', { name: 'pump', value: 'true' })));
    expect(conditionOf(unknown)).toBe('item-not-found');
    expect(unknown.getChild('error')!.getChild('paramError', CTL)!.attrs.var).toBe('pump');
    const ro = await raw(owner, set(xml('double', { name: 'temperature', value: '20' })));
    expect(conditionOf(ro)).toBe('not-allowed');
    expect(ro.getChild('setResponse', CTL)?.attrs.responseCode).toBe('Locked');
    const mismatch = await raw(owner, set(xml('int', { name: 'fan', value: '1' })));
    expect(conditionOf(mismatch)).toBe('bad-request');
    expect(mismatch.getChild('error')!.getChild('paramError', CTL)!.text()).toBe('fan is a boolean, not int');
  });

  it('refuses viewers and strangers; nothing moves', async () => {
    const d = agent.agent.devices;
    const before = d.get('fan')!.value;
    const v = await raw(viewer, set(xml('boolean', { name: 'fan', value: String(!before) })));
    expect(conditionOf(v)).toBe('forbidden');
    expect(v.getChild('setResponse', CTL)?.attrs.responseCode).toBe('InsufficientPrivileges');
    const s = await raw(stranger, set(xml('boolean', { name: 'fan', value: String(!before) })));
    expect(conditionOf(s)).toBe('forbidden');
    await viewer.send(xml('message', { to: agent.fullJid }, xml('set', { xmlns: CTL }, xml('boolean', { name: 'fan', value: String(!before) }))));
    await stranger.send(xml('message', { to: agent.fullJid }, xml('set', { xmlns: CTL }, xml('boolean', { name: 'fan', value: String(!before) }))));
    await raw(owner, xml('iq', { type: 'get', to: agent.fullJid }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
    expect(d.get('fan')!.value).toBe(before);
  });

  it('applies a set in a message from an owner without answering it', async () => {
    const n = owner.stanzas.length;
    await owner.send(xml('message', { to: agent.fullJid }, xml('set', { xmlns: CTL }, xml('string', { name: 'mode', value: 'away' }))));
    await raw(owner, xml('iq', { type: 'get', to: agent.fullJid }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
    expect(agent.agent.devices.get('mode')!.value).toBe('away');
    expect(owner.stanzas.slice(n).filter((s) => s.name === 'message' && s.attrs.from === agent.fullJid)).toHaveLength(0);
  });

  it('offers the writable devices as a typed form, and accepts it submitted', async () => {
    const r = await owner.iq('get', agent.fullJid, xml('getForm', { xmlns: CTL }));
    const x = r.getChild('x', 'jabber:x:data')!;
    const fields = Object.fromEntries(x.getChildren('field').map((f) => [f.attrs.var, f]));
    expect(Object.keys(fields)).toEqual(['setpoint', 'fan', 'mode']);
    expect(fields.fan!.attrs.type).toBe('boolean');
    expect(fields.setpoint!.getChild('validate', 'http://jabber.org/protocol/xdata-validate')!.getChild('range')!.attrs).toEqual({ min: '5', max: '30' });
    const submitted = await raw(
      owner,
      xml('iq', { type: 'set', to: agent.fullJid }, xml('set', { xmlns: CTL }, xml('x', { xmlns: 'jabber:x:data', type: 'submit' }, xml('field', { var: 'setpoint' }, xml('value', {}, '18'))))),
    );
    expect(submitted.attrs.type).toBe('result');
    expect(agent.agent.devices.get('setpoint')!.value).toBe(18);
  });

  it('reports a change made through XEP-0325 in chat and presence alike', async () => {
    await raw(owner, set(xml('string', { name: 'mode', value: 'party' })));
    expect(await owner.chat(agent.fullJid, 'get mode')).toMatch(/^mode party/);
  });
});
