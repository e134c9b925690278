import { describe, expect, it } from 'vitest';
import xml from '@xmpp/xml';
import type { Element } from 'ltx';
import { Devices } from '../src/core/devices.js';
import { NS_SENSORDATA, sensorDataRequest } from '../src/xep/sensordata.js';

describe('XEP-0323 readout', () => {
  it('sends readable devices as fields, then a failure naming those with no reading, done on the last', async () => {
    const devices = new Devices({ clock: { now: () => 1_700_000_000_000 } });
    const base = { unit: '', writable: false, deadband: 0, decimals: 1, staleAfterMs: 60_000 };
    devices.add({ ...base, id: 'a', name: 'a', type: 'number' });
    devices.add({ ...base, id: 'b', name: 'b', type: 'number' });
    devices.report('a', 1.25);
    const sent: Element[] = [];
    const after: (() => Promise<void> | void)[] = [];
    const handler = sensorDataRequest({ devices, clock: { now: () => 1_700_000_000_000 }, send: async (s) => void sent.push(s) });
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
