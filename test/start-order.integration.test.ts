// The session connects first, while the store opens and the drivers start
// (BENCHMARKS.md: the round trips overlap that work). Played in the worst order
// on purpose: a driver that starts only once the session is online, so that
// every component after it starts with a session already up.

import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Element } from 'ltx';
import { describe, expect, it } from 'vitest';
import type { Agent } from '../src/agent.js';
import { createDriver } from '../src/drivers/index.js';
import type { Driver } from '../src/drivers/driver.js';
import { openStore } from '../src/store/db.js';
import { account, peer, startAgent, xml } from './helpers/peers.js';
import { until } from './helpers/until.js';

const SD = 'urn:xmpp:iot:sensordata';

describe('start order', () => {
  it('online before a slow driver has started: the store is open, a request waits for the driver, the first presence carries its reading, the last run\'s alarm arrives once', async () => {
    const o = await account('alice');
    const stateDir = mkdtempSync(join(tmpdir(), 'xia-state-'));
    const last = openStore({ dir: stateDir });
    last.outbox.add({ to: o.jid, body: 'alarm from the last run', kind: 'alarm' });
    last.close();
    const owner = await peer(o);
    const seen: { storeOpen?: boolean; driverStarted?: boolean } = {};
    let driverStarted = false;
    let online!: Promise<void>;
    const presences: Element[] = [];
    let readout: Promise<Element> | undefined;
    const watch = (agent: Agent): void => {
      online = new Promise((resolve) => agent.session.once('online', () => resolve()));
      agent.session.once('online', (jid) => {
        // A request the moment it is online, before its driver has started: answered once it has, with its reading.
        const req = xml('iq', { type: 'get', to: jid, id: 'early' }, xml('req', { xmlns: SD, seqnr: '7', momentary: 'true' }));
        readout = owner.send(req).then(() => owner.waitFor((s) => s.name === 'message' && s.getChild('fields', SD)?.attrs.seqnr === '7', 10_000, 'the early readout'));
        seen.driverStarted = driverStarted;
        try {
          seen.storeOpen = agent.store.outbox.stats().queued === 1;
        } catch {
          seen.storeOpen = false;
        }
      });
      const send = agent.session.send.bind(agent.session);
      agent.session.send = (s, r) => {
        if (s.name === 'presence' && !s.attrs.type && !s.attrs.to) presences.push(s);
        return send(s, r);
      };
    };
    const slow = (device: Parameters<typeof createDriver>[0]): Driver => {
      const inner = createDriver(device);
      return Object.assign(Object.create(inner) as Driver, {
        start: async (ctx: Parameters<Driver['start']>[0]) => {
          await online;
          await new Promise((r) => setTimeout(r, 50)); // and slow besides
          await inner.start(ctx);
          driverStarted = true;
        },
      });
    };
    const agent = await startAgent({
      owners: [o.jid],
      stateDir,
      devices: '  - { id: temperature, driver: simulated, type: number, unit: "°C", initial: 21.4 }\n',
      beforeStart: watch,
      driverFor: slow,
    });
    try {
      expect(seen).toEqual({ storeOpen: true, driverStarted: false });
      await until(() => presences.length > 0, 'the first presence');
      expect(presences[0]!.getChildText('status')).toContain('21.4');
      const fields = await readout!;
      expect(fields.toString()).toContain('21.4');
      expect(owner.stanzas.find((s) => s.name === 'iq' && s.attrs.id === 'early')?.attrs.type).toBe('result');
      const alarm = await owner.waitFor((s) => s.name === 'message' && s.getChildText('body') === 'alarm from the last run', 10_000, 'the queued alarm');
      expect(alarm).toBeDefined();
      await until(() => agent.agent.store.outbox.stats().queued === 0, 'the outbox emptied');
      expect(owner.stanzas.filter((s) => s.name === 'message' && s.getChildText('body') === 'alarm from the last run')).toHaveLength(1);
    } finally {
      await owner.stop();
      await agent.stop();
    }
  });
});
