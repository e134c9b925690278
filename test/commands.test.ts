import { describe, expect, it } from 'vitest';
import xml from '@xmpp/xml';
import { Devices } from '../src/core/devices.js';
import { commands, MAX_SESSIONS, NS_COMMANDS, SESSION_TTL_MS } from '../src/xep/commands.js';
import { clockAt } from '../src/core/clock.js';

function setup() {
  let now = 0;
  const clock = clockAt(() => now);
  const devices = new Devices({ clock });
  devices.add({ id: 'fan', name: 'fan', type: 'boolean', unit: '', writable: true, deadband: 0, decimals: 0, staleAfterMs: 1000 }, { write: async (_i, v) => v });
  const c = commands({ devices, clock, self: () => 'gw@x/y', status: () => [] });
  const run = (attrs: Record<string, string>, from = 'alice@x/a') =>
    c.execute({ stanza: xml('iq'), child: xml('command', { xmlns: NS_COMMANDS, node: 'set-device', ...attrs }), from, role: 'owner', afterReply: () => {} });
  return { c, run, advance: (ms: number) => (now += ms) };
}

describe('ad-hoc command sessions', () => {
  it('expire, and say so', async () => {
    const { run, advance } = setup();
    const first = await run({ action: 'execute' });
    advance(SESSION_TTL_MS + 1);
    await expect(run({ action: 'next', sessionid: first!.attrs.sessionid! })).rejects.toMatchObject({ condition: 'not-allowed', app: { name: 'session-expired' } });
  });

  it('are bounded in number', async () => {
    const { run } = setup();
    for (let i = 0; i < MAX_SESSIONS; i++) await run({ action: 'execute' });
    await expect(run({ action: 'execute' })).rejects.toMatchObject({ condition: 'resource-constraint' });
  });

  it('refuse an unknown action', async () => {
    const { run } = setup();
    await expect(run({ action: 'jump' })).rejects.toMatchObject({ condition: 'bad-request', app: { name: 'malformed-action' } });
  });
});
