// Interop: Debian's python3-slixmpp (1.8) as owner and as stranger reads,
// sets and runs commands against the real agent on the real Prosody.

import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { account, server, startAgent, type Account, type RunningAgent } from './helpers/peers.js';

const run = promisify(execFile);
const PYTHON = '/usr/bin/python3';
const SCRIPT = join(__dirname, 'interop', 'slix_client.py');

async function hasSlixmpp(): Promise<boolean> {
  if (!existsSync(PYTHON)) return false;
  try {
    await run(PYTHON, ['-c', 'import slixmpp']);
    return true;
  } catch {
    return false;
  }
}

const available = await hasSlixmpp();
if (!available) {
  const why = 'interop tests need /usr/bin/python3 with slixmpp: apt-get install python3-slixmpp';
  if (process.env.REQUIRE_INTEROP) throw new Error(why);
  console.warn(`skipped: ${why}`);
}

type Step = Record<string, unknown> & { step: string };

async function slix(acc: Account, target: string, role: 'owner' | 'stranger'): Promise<Record<string, Step>> {
  const s = server();
  const { stdout } = await run(PYTHON, [SCRIPT, acc.jid, acc.password, '127.0.0.1', String(s.port), s.caFile, target, role], { timeout: 120_000 });
  const steps = stdout.trim().split('\n').map((l) => JSON.parse(l) as Step);
  return Object.fromEntries(steps.map((st) => [st.step, st]));
}

describe.skipIf(!available)('slixmpp interop', () => {
  let agent: RunningAgent;
  let owner: Account;
  let stranger: Account;

  beforeAll(async () => {
    [owner, stranger] = await Promise.all([account('alice'), account('eve')]);
    agent = await startAgent({
      owners: [owner.jid],
      devices: `  - { id: temperature, driver: simulated, type: number, unit: "°C", min: 15, max: 30, initial: 21.4 }
  - { id: setpoint, driver: simulated, type: number, unit: "°C", writable: true, min: 5, max: 30, initial: 20 }
  - { id: fan, driver: simulated, type: boolean, writable: true }
  - { id: mode, driver: simulated, type: string, writable: true, initial: auto }
`,
    });
  });
  afterAll(() => agent?.stop());

  it('as owner: reads with XEP-0323, sets with XEP-0325, runs XEP-0050 commands', async () => {
    const r = await slix(owner, agent.fullJid, 'owner');
    expect(r.crash).toBeUndefined();
    expect(r.end).toBeDefined();

    const all = r.sensor_all!.events as { result: string; node?: string; fields?: { name: string; typename: string; value: string; unit?: string }[] }[];
    expect(all[0]!.result).toBe('accepted');
    expect(all.at(-1)!.result).toBe('done');
    const fields = all.filter((e) => e.result === 'fields').flatMap((e) => e.fields!.map((f) => ({ node: e.node, ...f })));
    expect(fields.map((f) => f.name)).toEqual(['temperature', 'setpoint', 'fan', 'mode']);
    expect(fields[0]).toMatchObject({ node: 'temperature', typename: 'numeric', unit: '°C' });
    expect(fields[0]!.value).toMatch(/^\d+\.\d$/);
    expect(fields.find((f) => f.name === 'mode')).toMatchObject({ typename: 'string', value: 'auto' });

    const filtered = r.sensor_filtered!.events as { result: string; fields?: { name: string }[] }[];
    expect(filtered.filter((e) => e.result === 'fields').flatMap((e) => e.fields!.map((f) => f.name))).toEqual(['fan']);
    const unknown = r.sensor_unknown!.events as { result: string; error?: string }[];
    expect(unknown.at(-1)).toMatchObject({ result: 'rejected', error: 'no device "nope"' });

    expect(r.control_ok!.code).toBe('OK');
    expect(r.control_bad!.code).toBe('FormError');
    expect(r.control_unknown!.code).toBe('NotFound');
    expect(agent.agent.devices.get('setpoint')!.value).toBe(22.5);
    expect(agent.agent.devices.get('mode')!.value).toBe('slix');

    expect((r.commands!.names as string[]).sort()).toEqual(['Agent status', 'Invite a person', 'People', 'Read sensors', 'Revoke a person', 'Set a device']); // slixmpp keeps items in a set
    expect(r.command_read).toMatchObject({ status: 'completed', values: { fan: 'on', mode: 'slix' } });
    expect(r.command_set).toMatchObject({ first: 'executing', value_type: 'boolean', status: 'completed', notes: ['fan → off ✓'] });
    expect(agent.agent.devices.get('fan')!.value).toBe(false);
    expect(r.command_cancel!.status).toBe('canceled');
  });

  it('as stranger: is refused everywhere and nothing moves', async () => {
    const before = agent.agent.devices.get('fan')!.value;
    const r = await slix(stranger, agent.fullJid, 'stranger');
    expect(r.crash).toBeUndefined();
    expect(r.sensor_refused!.condition).toBe('forbidden');
    expect(r.control_refused!.condition).toBe('forbidden');
    expect(r.command_refused!.condition).toBe('forbidden');
    expect(agent.agent.devices.get('fan')!.value).toBe(before);
  });
});
