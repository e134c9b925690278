// Presence as an owner's roster shows it, over a real Prosody: status text,
// show for health, heartbeat, and goodbye.

import { describe, expect, it } from 'vitest';
import { account, peer, startAgent, xml, type Peer, type RunningAgent } from './helpers/peers.js';

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

  it('holds back changes inside the deadband', async () => {
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
      // Let the value drift through many readings, then check over the wire.
      const before = agent.agent.reporter.stats.presencesSent;
      await new Promise((r) => setTimeout(r, 500));
      expect(agent.agent.devices.get('level')!.value).not.toBe(50);
      expect(agent.agent.reporter.stats.presencesSent).toBe(before);
      expect(owner.stanzas.filter(fromAgent(agent))).toHaveLength(1);
    } finally {
      await owner.stop();
      await agent.stop();
    }
  });
});
