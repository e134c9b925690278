// Presence as an owner's roster shows it, over a real Prosody: status text,
// show for health, heartbeat, and goodbye.

import type { Element } from 'ltx';
import { describe, expect, it } from 'vitest';
import type { Value } from '../src/core/devices.js';
import { account, peer, startAgent, xml, type Peer, type RunningAgent } from './helpers/peers.js';
import { until } from './helpers/until.js';

async function subscribed(devices: string, extra = ''): Promise<{ agent: RunningAgent; owner: Peer }> {
  const o = await account('alice');
  const agent = await startAgent({ owners: [o.jid], devices, extra });
  const owner = await peer(o);
  await owner.send(xml('presence', { type: 'subscribe', to: agent.jid }));
  return { agent, owner };
}

const fromAgent = (agent: RunningAgent) => (s: { name: string; attrs: Record<string, string> }) =>
  s.name === 'presence' && s.attrs.from === agent.fullJid && !s.attrs.type;

describe('presence', () => {
  it('shows away when a reading goes stale, and the heartbeat repeats it', async () => {
    const { agent, owner } = await subscribed(
      `  - id: door
    driver: simulated
    type: string
    initial: closed
    interval: 1h
    stale_after: 300ms
`,
      'presence:\n  min_interval: 0\n  heartbeat: 1s\n',
    );
    try {
      const first = await owner.waitFor(fromAgent(agent), 10_000, 'first presence');
      expect(first.getChildText('status')).toBe('door closed');
      const away = await owner.waitFor((s) => fromAgent(agent)(s) && s.getChildText('show') === 'away', 10_000, 'away');
      expect(away.getChildText('status')).toBe('door closed');
      const n = owner.stanzas.indexOf(away);
      await owner.waitFor((s) => owner.stanzas.indexOf(s) > n && fromAgent(agent)(s), 10_000, 'heartbeat');
    } finally {
      await owner.stop();
      await agent.stop();
    }
  });

  it('holds back changes inside the deadband: ten drifting readings send no presence after the first', async () => {
    const { agent, owner } = await subscribed(
      `  - id: level
    driver: simulated
    type: number
    min: 0
    max: 100
    initial: 50
    deadband: 1000
    interval: 50ms
`,
      'presence:\n  min_interval: 0\n  heartbeat: 1h\n',
    );
    try {
      await owner.waitFor(fromAgent(agent), 10_000, 'first presence');
      // Let the value drift through many readings (each one weighed by the reporter as it comes), then check over the wire.
      const before = agent.agent.reporter.stats.presencesSent;
      const readings = agent.agent.devices.readings;
      await until(() => agent.agent.devices.readings >= readings + 10, 'ten more readings');
      expect(agent.agent.devices.get('level')!.value).not.toBe(50);
      expect(agent.agent.reporter.stats.presencesSent).toBe(before);
      // The agent's stanzas reach the owner in order: a presence sent before this ping's answer would be here by now.
      await owner.iq('get', agent.fullJid, xml('ping', { xmlns: 'urn:xmpp:ping' }));
      expect(owner.stanzas.filter(fromAgent(agent))).toHaveLength(1);
    } finally {
      await owner.stop();
      await agent.stop();
    }
  });
});

describe('alarms', () => {
  it('one message on crossing, dnd while active, one recovery message; wobbling inside the hysteresis says nothing', async () => {
    const { agent, owner } = await subscribed(
      `  - { id: temperature, driver: simulated, type: number, unit: "°C", min: -50, max: 100, initial: 25, interval: 1h }\n`,
      'presence:\n  min_interval: 0\nalarms:\n  - { device: temperature, above: 30, hysteresis: 1 }\n',
    );
    try {
      await owner.waitFor(fromAgent(agent), 10_000, 'first presence');
      const alarmsSeen = () => owner.stanzas.filter((s) => s.name === 'message' && s.attrs.from === agent.fullJid).map((s) => s.getChildText('body'));
      const d = agent.agent.devices;
      d.report('temperature', 31.2); // the same path a driver's reading takes
      await owner.waitFor((s) => fromAgent(agent)(s) && s.getChildText('show') === 'dnd', 10_000, 'dnd');
      for (const v of [30.5, 29.5, 30.8]) d.report('temperature', v);
      d.report('temperature', 28.9);
      await owner.waitFor((s) => s.name === 'message' && /back to/.test(s.getChildText('body') ?? ''), 10_000, 'recovery');
      expect(alarmsSeen()).toEqual(['⚠ temperature 31.2 °C above 30.0 °C', '✓ temperature back to 28.9 °C (alarm above 30.0 °C cleared)']);
      const last = owner.stanzas.filter(fromAgent(agent)).at(-1)!;
      await owner.waitFor((s) => owner.stanzas.indexOf(s) >= owner.stanzas.indexOf(last) && fromAgent(agent)(s) && !s.getChild('show'), 10_000, 'show cleared');
    } finally {
      await owner.stop();
      await agent.stop();
    }
  });
});

describe('safe states', () => {
  it('puts an actuator in its safe state at start and again at shutdown', async () => {
    const o = await account('alice');
    const set: Value[] = [];
    const agent = await startAgent({
      owners: [o.jid],
      devices: '  - { id: heater, driver: simulated, type: boolean, writable: true, initial: true, safe: false }\n',
      beforeStart: (a) => a.devices.onChange((c) => c.id === 'heater' && c.cause === 'command' && set.push(c.value!)),
    });
    const owner = await peer(o);
    try {
      expect(agent.agent.devices.get('heater')!.value).toBe(false); // initial true, but safe wins at start
      expect(set).toEqual([false]);
      expect(await owner.chat(agent.fullJid, 'heater on')).toBe('heater → on ✓');
      await agent.stop();
      expect(agent.agent.devices.get('heater')!.value).toBe(false);
      // Set to safe once at start and once at shutdown, the owner's command in between.
      expect(set).toEqual([false, true, false]);
    } finally {
      await owner.stop();
    }
  });
});

describe('subscriptions', () => {
  it('takes back the subscription of someone removed from viewers', async () => {
    const [v, gw] = await Promise.all([account('bob'), account('gw')]);
    const first = await startAgent({ owners: ['alice@iot.test'], viewers: [v.jid], account: gw });
    const viewer = await peer(v);
    /** The viewer's subscription to a contact, as the server's roster has it. */
    const subscriptionTo = async (jid: string): Promise<string | undefined> => {
      const roster = await viewer.xmpp.iqCaller.request(xml('iq', { type: 'get' }, xml('query', { xmlns: 'jabber:iq:roster' })), 10_000);
      return roster.getChild('query')?.getChildren('item').find((i: Element) => i.attrs.jid === jid)?.attrs.subscription;
    };
    try {
      await viewer.send(xml('presence', { type: 'subscribe', to: gw.jid }));
      await viewer.waitFor((s) => s.name === 'presence' && s.attrs.type === 'subscribed', 10_000, 'subscribed');
      await viewer.waitFor((s) => s.name === 'presence' && s.attrs.from === first.fullJid && !s.attrs.type, 10_000, 'readings');
      expect(await subscriptionTo(gw.jid)).toBe('to');
      await first.stop();
      const second = await startAgent({ owners: ['alice@iot.test'], account: gw });
      try {
        await viewer.waitFor((s) => s.name === 'presence' && s.attrs.type === 'unsubscribed' && s.attrs.from === gw.jid, 10_000, 'unsubscribed');
        // The server has taken the viewer's subscription away: no readings reach them any more.
        expect(await subscriptionTo(gw.jid)).toBe('none');
      } finally {
        await second.stop();
      }
    } finally {
      await viewer.stop();
    }
  });
});
