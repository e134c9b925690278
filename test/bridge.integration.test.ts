// The agent and a firmware bridge over a real pseudo-terminal pair (socat), the
// firmware played by the simulator, the owner on a real Prosody: hello makes
// devices, chat sets go over the wire and wait for ACK, NAKs and silence become
// clear errors, garbage is counted and dropped, and a pulled cable shows as xa
// until it is back.

import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Element } from 'ltx';
import { FirmwareSim, type SimChannel } from '../tools/dev/firmware-sim.js';
import { ptyPair, type PtyPair } from '../tools/dev/pty.js';
import type { BridgeStats } from '../src/drivers/serial-bridge/index.js';
import { findBinary } from '../tools/dev/prosody.js';
import { account, peer, startAgent, xml, type Peer, type RunningAgent } from './helpers/peers.js';
import { until } from './helpers/until.js';

const CHANNELS = (): SimChannel[] => [
  { id: 'temperature', kind: 'n', unit: 'degC', writable: false, value: 21.4, min: 18, max: 26 },
  { id: 'fan', kind: 'b', writable: true, value: false },
  { id: 'setpoint', kind: 'n', unit: 'degC', writable: true, value: 21, min: 5, max: 30 },
];

let pty: PtyPair;
let sim: FirmwareSim;
let agent: RunningAgent;
let owner: Peer;

// The serial-bridge driver keeps BridgeStats, a superset of the DriverStats the agent's accessor is typed with.
const bridgeStats = (): BridgeStats => agent.agent.driverStats().find((d) => d.kind === 'serial-bridge')!.stats as BridgeStats;
const presences = (): Element[] => owner.stanzas.filter((s) => s.name === 'presence' && s.attrs.from === agent.fullJid && !s.attrs.type);

describe.skipIf(!findBinary('socat'))('serial bridge', () => {
  beforeAll(async () => {
    pty = await ptyPair(mkdtempSync(join(tmpdir(), 'xia-pty-')));
    sim = new FirmwareSim({ path: pty.firmware, channels: CHANNELS(), heartbeatMs: 500, dataMs: 300 });
    await sim.start();
    const o = await account('alice');
    agent = await startAgent({
      owners: [o.jid],
      devices: `  - { id: bridge, driver: serial-bridge, port: ${pty.agent}, ack_timeout: 500ms }\n`,
      extra: 'presence:\n  min_interval: 0\n',
    });
    owner = await peer(o);
    await owner.send(xml('presence', { type: 'subscribe', to: agent.jid }));
  });
  afterAll(async () => {
    await owner?.stop();
    await agent?.stop();
    await sim?.stop();
    await pty?.stop();
  });

  it('learns the channels from hello: they appear to the owner as devices', async () => {
    await until(() => agent.agent.devices.ids().length === 3, 'three devices');
    const items = await owner.iq('get', agent.fullJid, xml('query', { xmlns: 'http://jabber.org/protocol/disco#items' }));
    expect(items.getChild('query')!.getChildren('item').map((i) => i.attrs.name)).toEqual(['temperature (°C)', 'fan, writable', 'setpoint (°C), writable']);
    const p = await owner.waitFor((s) => s.name === 'presence' && s.attrs.from === agent.fullJid && /temperature \d+\.\d °C · fan off · setpoint 21\.0 °C/.test(s.getChildText('status') ?? ''), 10_000, 'presence with the bridge readings');
    expect(p.getChild('show')).toBeUndefined();
    expect(bridgeStats().firmware).toBe('xia-sim 1.0.0');
  });

  it('fan on: SET on the wire, ACK back, the owner told', async () => {
    expect(await owner.chat(agent.fullJid, 'fan on')).toBe('fan → on ✓');
    expect(sim.received.filter((f) => f.type === 'SET').at(-1)).toMatchObject({ type: 'SET', id: 'fan', value: '1' });
    expect(sim.value('fan')).toBe(true);
  });

  it('turns a NAK into a clear error, and changes nothing', async () => {
    expect(await owner.chat(agent.fullJid, 'set setpoint 40')).toBe('✗ setpoint did not accept the value: the bridge refused it (range)');
    sim.faults.nak = 'busy';
    try {
      expect(await owner.chat(agent.fullJid, 'fan off')).toBe('✗ fan did not accept the value: the bridge refused it (busy)');
    } finally {
      sim.faults.nak = undefined;
    }
    expect(sim.value('fan')).toBe(true);
    expect(agent.agent.devices.get('fan')!.value).toBe(true);
  });

  it('times out on a silent board and says so', async () => {
    sim.faults.silent = true;
    try {
      expect(await owner.chat(agent.fullJid, 'fan off')).toBe('✗ fan did not accept the value: no answer from the bridge within 500 ms');
    } finally {
      sim.faults.silent = false;
    }
  });

  it('counts and drops garbage, bad checksums and endless lines; readings carry on', async () => {
    const before = bridgeStats();
    // 99 is outside the simulator's 18–26 range: a reading of it can only come from the bad-CRC frame.
    const temperatures: number[] = [];
    const unwatch = agent.agent.devices.onChange((c) => c.id === 'temperature' && c.cause === 'reading' && temperatures.push(c.value as number));
    sim.inject(Buffer.from([0x00, 0xff, 0x13, 0x37, 0x0a]));
    sim.inject('3 D temperature=99.0*00\n'); // bad CRC (it would be 85)
    sim.inject('7 D fan=1*FF\n');
    sim.inject('z'.repeat(500) + '\n'); // endless line
    sim.inject('\u0007\u0008 noise without newline');
    sim.inject('\n');
    await until(() => bridgeStats().dropped >= before.dropped + 5, 'the drops to be counted');
    const after = bridgeStats();
    expect(after.badCrc).toBeGreaterThan(before.badCrc);
    expect(after.tooLong).toBeGreaterThan(before.tooLong);
    const n = after.frames;
    await until(() => bridgeStats().frames > n + 2 && temperatures.length > 0, 'good frames (a temperature among them) after the garbage');
    unwatch();
    expect(Math.max(...temperatures)).toBeLessThanOrEqual(26);
    expect(agent.agent.devices.health('temperature')).toBe('ok');
  });

  it('shows xa when the cable is pulled and recovers on its own when it is back', async () => {
    const seen = presences().length;
    await sim.stop();
    await pty.unplug();
    await owner.waitFor((s) => presences().indexOf(s) >= seen && s.getChildText('show') === 'xa', 15_000, 'xa');
    expect(agent.agent.devices.get('fan')!.fault).toBe('serial port gone');
    await pty.plug();
    await sim.start();
    const back = presences().length;
    await owner.waitFor((s) => presences().indexOf(s) >= back && !s.getChild('show'), 20_000, 'presence without show');
    expect(bridgeStats().reopens).toBeGreaterThan(0);
    expect(await owner.chat(agent.fullJid, 'fan off')).toBe('fan → off ✓');
  });

  it('follows a reboot with other channels: gone ones removed, new ones added', async () => {
    sim.reboot([
      { id: 'temperature', kind: 'n', unit: 'degC', writable: false, value: 20, min: 18, max: 26 },
      { id: 'pump', kind: 'b', writable: true, value: false },
    ]);
    await until(() => agent.agent.devices.get('pump') !== undefined && agent.agent.devices.get('fan') === undefined, 'pump in, fan out');
    expect(agent.agent.devices.ids().sort()).toEqual(['pump', 'temperature']);
    expect(await owner.chat(agent.fullJid, 'pump on')).toBe('pump → on ✓');
  });
});
