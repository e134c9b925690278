// XEP-0325 control set carried in a message: applied for owners, never
// answered, and not applied once the server held it too long, judged by the
// injected clock's time of day.

import xml from '@xmpp/xml';
import { describe, expect, it } from 'vitest';
import { clockAt } from '../src/core/clock.js';
import { Devices } from '../src/core/devices.js';
import { createLogger, createSink } from '../src/runtime/log.js';
import { NS_DELAY } from '../src/xmpp/delay.js';
import { controlMessage, NS_CONTROL } from '../src/xep/control.js';

const NOW = Date.UTC(2024, 5, 1, 12, 0, 0);

function setup() {
  const clock = clockAt(() => NOW);
  const devices = new Devices({ clock });
  const written: unknown[] = [];
  devices.add(
    { id: 'fan', name: 'fan', type: 'boolean', unit: '', writable: true, deadband: 0, decimals: 0, staleAfterMs: 60_000 },
    { write: async (_id, v) => (written.push(v), v) },
  );
  const logged: string[] = [];
  const log = createLogger(createSink('info', (l) => logged.push((JSON.parse(l) as { msg: string }).msg)));
  return { handle: controlMessage({ devices, clock, log }), devices, written, logged };
}

const fanOn = (heldMs?: number) =>
  xml(
    'message',
    { from: 'alice@iot.example.org/phone', to: 'kitchen@iot.example.org/rpi' },
    xml('set', { xmlns: NS_CONTROL }, xml('boolean', { name: 'fan', value: 'true' })),
    heldMs === undefined ? undefined : xml('delay', { xmlns: NS_DELAY, stamp: new Date(NOW - heldMs).toISOString() }),
  );

describe('control message', () => {
  it("applies an owner's set at once", async () => {
    const { handle, devices, written } = setup();
    await handle(fanOn(), 'owner');
    expect(written).toEqual([true]);
    expect(devices.get('fan')?.value).toBe(true);
  });

  it('applies a set the server held for up to a minute, measured on the injected clock', async () => {
    const { handle, written } = setup();
    await handle(fanOn(60_000), 'owner');
    expect(written).toEqual([true]);
  });

  it('does not apply a set the server held for longer than a minute', async () => {
    const { handle, written, logged } = setup();
    await handle(fanOn(60_001), 'owner');
    expect(written).toEqual([]);
    expect(logged).toEqual(['stale control message not applied']);
  });

  it('refuses a viewer and moves nothing', async () => {
    const { handle, written, logged } = setup();
    await handle(fanOn(), 'viewer');
    expect(written).toEqual([]);
    expect(logged).toEqual(['control message refused']);
  });
});
