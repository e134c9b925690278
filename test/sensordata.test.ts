import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import xml from '@xmpp/xml';
import type { Element } from 'ltx';
import { Devices } from '../src/core/devices.js';
import { DAY, HOUR, MINUTE, type HistoryReader } from '../src/core/history.js';
import { openStore, type Store } from '../src/store/db.js';
import { HISTORY_MAX_PER_NODE, MESSAGE_BUDGET_BYTES, NS_SENSORDATA, sensorDataRequest, timestamp, type SensorDataDeps } from '../src/xep/sensordata.js';
import { clockAt } from '../src/core/clock.js';

describe('XEP-0323 readout', () => {
  it('sends readable devices as fields, then a failure naming those with no reading, done on the last', async () => {
    const devices = new Devices({ clock: clockAt(() => 1_700_000_000_000) });
    const base = { unit: '', writable: false, deadband: 0, decimals: 1, staleAfterMs: 60_000 };
    devices.add({ ...base, id: 'a', name: 'a', type: 'number' });
    devices.add({ ...base, id: 'b', name: 'b', type: 'number' });
    devices.report('a', 1.25);
    const sent: Element[] = [];
    const after: (() => Promise<void> | void)[] = [];
    const handler = sensorDataRequest({ devices, clock: clockAt(() => 1_700_000_000_000), send: async (s) => void sent.push(s) });
    const accepted = await handler({ stanza: xml('iq'), child: xml('req', { xmlns: NS_SENSORDATA, seqnr: '9', momentary: 'true' }), from: 'x@y/z', role: 'owner', afterReply: (f) => after.push(f) });
    expect(accepted!.toString()).toBe('<accepted xmlns="urn:xmpp:iot:sensordata" seqnr="9"/>');
    expect(sent).toHaveLength(0); // nothing before the IQ reply
    for (const f of after) await f();
    expect(sent.map((s) => s.toString())).toEqual([
      '<message to="x@y/z"><fields xmlns="urn:xmpp:iot:sensordata" seqnr="9"><node nodeId="a"><timestamp value="2023-11-14T22:13:20Z"><numeric name="a" momentary="true" automaticReadout="true" writable="false" value="1.3"/></timestamp></node></fields></message>',
      '<message to="x@y/z"><failure xmlns="urn:xmpp:iot:sensordata" seqnr="9" done="true"><error nodeId="b" timestamp="2023-11-14T22:13:20Z">no reading yet</error></failure></message>',
    ]);
  });
});

describe('XEP-0323 historical readout', () => {
  const NOW = 1_700_000_000_000; // 2023-11-14T22:13:20Z
  const clock = clockAt(() => NOW);
  const base = { writable: false, deadband: 0, decimals: 1, staleAfterMs: 60_000 };
  const devices = new Devices({ clock });
  devices.add({ ...base, id: 'temp', name: 'temp', type: 'number', unit: '°C' });
  devices.add({ ...base, id: 'door', name: 'door', type: 'boolean', unit: '', decimals: 0 });
  devices.add({ ...base, id: 'mode', name: 'mode', type: 'string', unit: '' });
  devices.report('temp', 21.04);
  const stores: Store[] = [];
  afterEach(() => {
    for (const s of stores.splice(0)) s.close();
  });

  function store(): Store {
    const s = openStore({ dir: mkdtempSync(join(tmpdir(), 'xia-sensordata-')), now: clock.now, onError: (e) => { throw e; } });
    stores.push(s);
    for (const [ago, v] of [[25, 1], [24, 2], [2, 3.25], [1, 4], [0, 5]] as const) s.history.record('temp', NOW - ago * HOUR, v);
    s.history.record('temp', NOW + 1, 99); // not yet
    s.history.record('door', NOW - 3 * HOUR, true);
    s.history.record('door', NOW - 2 * HOUR, false);
    s.history.record('mode', NOW - 30 * MINUTE, 'eco');
    s.history.flush();
    return s;
  }

  /** Runs a req the way the router does: the IQ answer first, then the follow-up messages. */
  async function request(deps: Omit<SensorDataDeps, 'send' | 'devices' | 'clock'>, attrs: Record<string, string>, ...children: Element[]) {
    const sent: Element[] = [];
    const after: (() => Promise<void> | void)[] = [];
    const handler = sensorDataRequest({ devices, clock, send: async (s) => void sent.push(s), ...deps });
    const accepted = await handler({ stanza: xml('iq'), child: xml('req', { xmlns: NS_SENSORDATA, seqnr: '5', ...attrs }, ...children), from: 'x@y/z', role: 'owner', afterReply: (f) => after.push(f) });
    expect(sent).toHaveLength(0);
    for (const f of after) await f();
    return { accepted: accepted!.toString(), messages: sent.map((m) => m.toString()), stanzas: sent };
  }
  const stamps = (m: Element): string[] => m.getChild('fields')!.getChildren('node').flatMap((n) => n.getChildren('timestamp').map((t) => `${n.attrs.nodeId} ${t.attrs.value}`));

  it('still refuses historical-only requests when the gateway keeps no history', async () => {
    await expect(request({}, { historicalDay: 'true' })).rejects.toMatchObject({ condition: 'feature-not-implemented' });
  });

  it('sends the last 24 h of stored readings, one timestamp each, oldest first, flagged historicalOther', async () => {
    const r = await request({ history: store().history }, { historicalOther: 'true' });
    expect(r.accepted).toBe('<accepted xmlns="urn:xmpp:iot:sensordata" seqnr="5"/>');
    expect(r.messages).toEqual([
      '<message to="x@y/z"><fields xmlns="urn:xmpp:iot:sensordata" seqnr="5" done="true">' +
        '<node nodeId="temp">' +
        '<timestamp value="2023-11-13T22:13:20Z"><numeric name="temp" value="2.0" unit="°C" historicalOther="true" automaticReadout="true"/></timestamp>' +
        '<timestamp value="2023-11-14T20:13:20Z"><numeric name="temp" value="3.3" unit="°C" historicalOther="true" automaticReadout="true"/></timestamp>' +
        '<timestamp value="2023-11-14T21:13:20Z"><numeric name="temp" value="4.0" unit="°C" historicalOther="true" automaticReadout="true"/></timestamp>' +
        '<timestamp value="2023-11-14T22:13:20Z"><numeric name="temp" value="5.0" unit="°C" historicalOther="true" automaticReadout="true"/></timestamp>' +
        '</node>' +
        '<node nodeId="door">' +
        '<timestamp value="2023-11-14T19:13:20Z"><boolean name="door" value="true" historicalOther="true" automaticReadout="true"/></timestamp>' +
        '<timestamp value="2023-11-14T20:13:20Z"><boolean name="door" value="false" historicalOther="true" automaticReadout="true"/></timestamp>' +
        '</node>' +
        '<node nodeId="mode">' +
        '<timestamp value="2023-11-14T21:43:20Z"><string name="mode" value="eco" historicalOther="true" automaticReadout="true"/></timestamp>' +
        '</node>' +
        '</fields></message>',
    ]);
  });

  it('echoes one specific historical kind, and uses historicalOther for several', async () => {
    const s = store();
    const hour = await request({ history: s.history }, { historicalHour: 'true' }, xml('node', { nodeId: 'mode' }));
    expect(hour.messages[0]).toContain('<string name="mode" value="eco" historicalHour="true" automaticReadout="true"/>');
    const two = await request({ history: s.history }, { historicalHour: '1', historicalDay: 'true' }, xml('node', { nodeId: 'mode' }));
    expect(two.messages[0]).toContain('<string name="mode" value="eco" historicalOther="true" automaticReadout="true"/>');
    expect(two.messages[0]).not.toMatch(/historical(Hour|Day)/);
  });

  it('honours from and to (inclusive, UTC when no zone is given) and the node and field filters', async () => {
    const s = store();
    const between = await request({ history: s.history }, { historicalOther: 'true', from: '2023-11-14T20:13:20Z', to: '2023-11-14T22:13:19' }, xml('node', { nodeId: 'temp' }));
    expect(stamps(between.stanzas[0]!)).toEqual(['temp 2023-11-14T20:13:20Z', 'temp 2023-11-14T21:13:20Z']);
    const offset = await request({ history: s.history }, { historicalOther: 'true', from: '2023-11-14T21:00:00+01:00' }, xml('field', { name: 'door' }));
    expect(stamps(offset.stanzas[0]!)).toEqual(['door 2023-11-14T20:13:20Z']);
    // Only from: up to now, so the reading from the future stays out; only to: the 24 h before it.
    const since = await request({ history: s.history }, { historicalOther: 'true', from: '2023-11-12T00:00:00Z' }, xml('node', { nodeId: 'temp' }));
    expect(stamps(since.stanzas[0]!)).toHaveLength(5);
    const until = await request({ history: s.history }, { historicalOther: 'true', to: '2023-11-14T20:13:20Z' }, xml('node', { nodeId: 'temp' }));
    expect(stamps(until.stanzas[0]!)).toEqual(['temp 2023-11-13T21:13:20Z', 'temp 2023-11-13T22:13:20Z', 'temp 2023-11-14T20:13:20Z']);
  });

  it('refuses a bad period and unknown nodes before accepting', async () => {
    const history = store().history;
    await expect(request({ history }, { historicalOther: 'true', from: 'yesterday' })).rejects.toMatchObject({ condition: 'bad-request' });
    await expect(request({ history }, { historicalOther: 'true', from: '2023-11-14T22:00:00Z', to: '2023-11-14T21:00:00Z' })).rejects.toMatchObject({ condition: 'bad-request' });
    await expect(request({ history }, { historicalOther: 'true' }, xml('node', { nodeId: 'nope' }))).rejects.toMatchObject({ condition: 'item-not-found' });
  });

  it('goes no further back than the retention', async () => {
    const r = await request({ history: store().history, historyRetentionMs: 90 * MINUTE }, { historicalOther: 'true' }, xml('node', { nodeId: 'temp' }));
    expect(stamps(r.stanzas[0]!)).toEqual(['temp 2023-11-14T21:13:20Z', 'temp 2023-11-14T22:13:20Z']);
  });

  it('answers a period without readings with an empty, done fields', async () => {
    const r = await request({ history: store().history }, { historicalOther: 'true', from: '2023-01-01T00:00:00Z', to: '2023-01-02T00:00:00Z' });
    expect(r.messages).toEqual(['<message to="x@y/z"><fields xmlns="urn:xmpp:iot:sensordata" seqnr="5" done="true"/></message>']);
  });

  it('sends momentary and historical together: the history first, the current values last', async () => {
    const r = await request({ history: store().history }, { momentary: 'true', historicalDay: 'true' }, xml('node', { nodeId: 'temp' }), xml('node', { nodeId: 'door' }));
    expect(r.messages).toHaveLength(3);
    expect(stamps(r.stanzas[0]!)).toHaveLength(6);
    expect(r.messages[0]).not.toContain('done=');
    expect(r.messages[1]).toBe('<message to="x@y/z"><fields xmlns="urn:xmpp:iot:sensordata" seqnr="5"><node nodeId="temp"><timestamp value="2023-11-14T22:13:20Z"><numeric name="temp" momentary="true" automaticReadout="true" writable="false" value="21.0" unit="°C"/></timestamp></node></fields></message>');
    expect(r.messages[2]).toBe('<message to="x@y/z"><failure xmlns="urn:xmpp:iot:sensordata" seqnr="5" done="true"><error nodeId="door" timestamp="2023-11-14T22:13:20Z">no reading yet</error></failure></message>');
  });

  it(`caps a node at ${HISTORY_MAX_PER_NODE} timestamps, evenly spread, in messages no larger than the budget`, async () => {
    const s = store();
    const from = NOW - 5 * DAY;
    for (let i = 0; i < 3000; i++) s.history.record('temp', from + i * MINUTE, i);
    const r = await request({ history: s.history }, { historicalOther: 'true', from: timestamp(from), to: timestamp(from + 2999 * MINUTE) }, xml('node', { nodeId: 'temp' }));
    expect(r.messages.length).toBeGreaterThan(1);
    for (const m of r.messages) expect(Buffer.byteLength(m)).toBeLessThan(MESSAGE_BUDGET_BYTES + 1024);
    expect(r.messages.map((m) => m.includes('done="true"'))).toEqual(r.messages.map((_, i) => i === r.messages.length - 1));
    const values = r.stanzas.flatMap((m) => m.getChild('fields')!.getChildren('node').flatMap((n) => n.getChildren('timestamp').map((t) => Number(t.getChild('numeric')!.attrs.value))));
    expect(values).toHaveLength(HISTORY_MAX_PER_NODE);
    expect(values[0]).toBe(0);
    expect(values.at(-1)).toBe(2999);
    expect(values.every((v, i) => i === 0 || v - values[i - 1]! >= 2 && v - values[i - 1]! <= 4)).toBe(true);
  });

  it('reports a history that cannot be read as a failure for that node', async () => {
    const broken: HistoryReader = { query: () => { throw new Error('disk I/O error'); } };
    const r = await request({ history: broken }, { historicalOther: 'true' }, xml('node', { nodeId: 'mode' }));
    expect(r.messages).toEqual(['<message to="x@y/z"><failure xmlns="urn:xmpp:iot:sensordata" seqnr="5" done="true"><error nodeId="mode" timestamp="2023-11-14T22:13:20Z">stored history could not be read: disk I/O error</error></failure></message>']);
  });
});
