// The memory compactor in the shipped agent (dist/cli.js) as its own process,
// with the systemd unit's runtime settings: a firmware bridge on a real
// pseudo-terminal (socat), the board played by the simulator, the owner on the
// suite's Prosody. Idle after it comes online, the agent collects nothing;
// after a burst of 100,000 readings it collects once the loop is quiet again,
// and holds less afterwards; and it goes on answering. The policy itself is
// tested on fake timers (test/compactor.test.ts); this is the wiring.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Element } from 'ltx';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { unitRuntime } from '../bench/lib.js';
import { encode } from '../src/drivers/serial-bridge/protocol.js';
import { LOOK_EVERY_MS, QUIET_LOOKS } from '../src/runtime/compactor.js';
import { FirmwareSim, type SimChannel } from '../tools/dev/firmware-sim.js';
import { findBinary } from '../tools/dev/prosody.js';
import { ptyPair, type PtyPair } from '../tools/dev/pty.js';
import { ask, runAgent, writeConfig, type AgentProcess, type LogLine } from './helpers/agent-process.js';
import { account, peer, server, xml, type Account, type Peer } from './helpers/peers.js';
import { until } from './helpers/until.js';

const UNIT = join(__dirname, '..', 'deploy', 'systemd', 'xmpp-iot-agent.service');
/** Samples of all 8 channels: 3 lines each, 100,008 readings (the bench's burst). */
const ROWS = 12_501;
/**
 * Idle this long after the owner sees it online: enough looks (one every 2 s, four quiet in a row)
 * for a collection that needs no growth, and past the shrink V8's own memory reducer gives the
 * start's heap about 8 s in (a shrink just after the burst would lower the floor under what it grew).
 */
const IDLE_MS = (QUIET_LOOKS + 2) * LOOK_EVERY_MS + 1000;
const COLLECTED = 'collected after a burst';

const CHANNELS = (): SimChannel[] => Array.from({ length: 8 }, (_, i) => ({ id: `c${i}`, kind: 'n' as const, unit: 'degC', writable: false, value: 20, min: 0, max: 100 }));

describe.skipIf(!findBinary('socat'))('memory compactor in the running agent (a burst of readings over a real pty)', () => {
  let dir: string;
  let pty: PtyPair;
  let sim: FirmwareSim;
  let gw: Account;
  let owner: Peer;
  let agent: AgentProcess;
  const fromAgent = (s: Element): boolean => s.name === 'presence' && (s.attrs.from ?? '').split('/')[0] === gw.jid && !s.attrs.type;
  const collections = (lines: LogLine[]): LogLine[] => lines.filter((l) => l.msg === COLLECTED);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'xia-compactor-'));
    pty = await ptyPair(dir);
    // No periodic data: the board says hello (one sample of each channel), then only heartbeats until the burst.
    sim = new FirmwareSim({ path: pty.firmware, channels: CHANNELS(), dataMs: 3_600_000 });
    await sim.start();
    gw = await account('gw');
    const o = await account('alice');
    owner = await peer(o);
    await owner.send(xml('presence', { type: 'subscribe', to: gw.jid }));
    const file = writeConfig(
      dir,
      `xmpp:
  jid: ${gw.jid}
  resource: agent
  service: xmpp://127.0.0.1:${server().port}
  tls: { ca_file: ${server().caFile} }
  reconnect: { initial_delay: 100ms, max_delay: 1s }
owners: [${o.jid}]
mdns: { enabled: false }
state_dir: ${join(dir, 'state')}
log: { level: debug }
presence: { min_interval: 1s }
devices:
  - { id: bridge, driver: serial-bridge, port: ${pty.agent} }
`,
    );
    const unit = unitRuntime(UNIT);
    agent = runAgent(file, { password: gw.password, env: { ...unit.env, NODE_OPTIONS: unit.nodeOptions.join(' ') } });
  });

  afterAll(async () => {
    await agent?.stop();
    await owner?.stop();
    await sim?.stop();
    await pty?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('collects nothing while idle, collects once the burst is over, holds less after it, and still answers', async () => {
    const tail = (): unknown => [agent.find('shutting down'), ...agent.lines.slice(-3), ...agent.other.slice(-3)];
    const gone = (): boolean => agent.child.exitCode !== null || agent.child.signalCode !== null;
    // The compactor starts once the agent has started; the owner seeing all 8 channels means the bridge is up too.
    await until(() => agent.find(/^started$/) !== undefined || gone(), 'the agent started', { timeoutMs: 15_000, got: tail });
    expect(gone(), JSON.stringify(tail())).toBe(false);
    await owner.waitFor((s) => fromAgent(s) && /\bc7\b/.test(s.getChildText('status') ?? ''), 20_000, 'presence with the 8 bridge channels');

    // Idle: the compactor started when the agent came online (before the owner saw it), and nothing has
    // grown since, so however many quiet looks, nothing to collect.
    await new Promise((r) => setTimeout(r, IDLE_MS));
    const mark = agent.lines.length;
    expect(collections(agent.lines.slice(0, mark))).toEqual([]);

    // The burst, as fast as the agent takes it (a pause every 100 samples lets the pty drain); the last sample is 99 everywhere.
    const ch = sim.channels;
    for (let k = 0; k < ROWS; k++) {
      const v = (j: number): string => (k === ROWS - 1 ? '99' : (20 + 5 * Math.sin((k + j * 10) / 50)).toFixed(1));
      for (let j = 0; j < 8; j += 3) sim.inject(encode((k * 3 + j / 3) & 0xff, 'D', ...ch.slice(j, j + 3).map((c, i) => `${c.id}=${v(j + i)}`)));
      if (k % 100 === 99) await new Promise((r) => setTimeout(r, 1));
    }
    const last = (s: Element): boolean => fromAgent(s) && (s.getChildText('status')?.match(/\b99\b/g)?.length ?? 0) >= 8;
    await owner.waitFor(last, 30_000, 'presence with the last sample of the burst');

    await until(() => agent.find(COLLECTED, mark) !== undefined || gone(), `"${COLLECTED}" after the burst`, { timeoutMs: 60_000, got: tail });
    expect(gone(), JSON.stringify(tail())).toBe(false);
    const c = agent.find(COLLECTED, mark)!;
    console.log(`compactor after ${(ROWS * 8).toLocaleString('en')} readings: held ${c.heldKiB} KiB, ${c.afterKiB} KiB after the collection (${c.ms} ms)`);
    expect(c).toMatchObject({ level: 'debug', ns: 'agent:memory', heldKiB: expect.any(Number), afterKiB: expect.any(Number), ms: expect.any(Number) });
    expect(c.afterKiB as number).toBeLessThan(c.heldKiB as number);
    expect(agent.find('cannot ask V8 for a collection')).toBeUndefined();

    // Still running, and still answering, with the burst's last reading.
    expect(gone()).toBe(false);
    expect(await ask(owner, `${gw.jid}/agent`, 'get c0')).toMatch(/^c0 99\.0 °C/);
  }, 180_000);
});
