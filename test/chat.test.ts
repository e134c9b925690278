import { describe, expect, it } from 'vitest';
import { HISTORY_USAGE, parse } from '../src/chat/grammar.js';
import { execute } from '../src/chat/commands.js';
import { Devices } from '../src/core/devices.js';
import { clockAt } from '../src/core/clock.js';

const ids = ['temperature', 'fan'];

describe('chat grammar', () => {
  it.each([
    ['help', { kind: 'help' }],
    ['Status', { kind: 'status' }],
    ['get temperature', { kind: 'get', id: 'temperature' }],
    ['temperature', { kind: 'get', id: 'temperature' }],
    ['set fan on', { kind: 'set', id: 'fan', value: 'on' }],
    ['fan off', { kind: 'set', id: 'fan', value: 'off' }],
    ['FAN   On', { kind: 'set', id: 'fan', value: 'On' }],
    ['get', { kind: 'usage', text: 'Usage: get <device>' }],
    ['set fan', { kind: 'usage', text: 'Usage: set <device> <value>' }],
    ['   ', { kind: 'empty' }],
    ['hepl', { kind: 'unknown', word: 'hepl', suggestion: 'help' }],
    ['launch rockets', { kind: 'unknown', word: 'launch', suggestion: undefined }],
    ['history temperature', { kind: 'history', id: 'temperature', windowMs: 86_400_000 }],
    ['history fan 30m', { kind: 'history', id: 'fan', windowMs: 1_800_000 }],
    ['History FAN 2 w', { kind: 'history', id: 'fan', windowMs: 14 * 86_400_000 }],
    ['history', { kind: 'usage', text: HISTORY_USAGE }],
    ['history fan yesterday', { kind: 'usage', text: HISTORY_USAGE }],
    ['histroy fan', { kind: 'unknown', word: 'histroy', suggestion: 'history' }],
  ])('%j', (text, expected) => {
    expect(parse(text, ids)).toEqual(expected);
  });
});

describe('chat replies', () => {
  const devices = new Devices({ clock: clockAt(() => 10_000) });
  devices.add({ id: 'fan', name: 'fan', type: 'boolean', unit: '', writable: true, deadband: 0, decimals: 0, staleAfterMs: 60_000 }, { write: async (_i, v) => v });
  devices.report('fan', false, 5_000);

  it('answers get with the value and its age', async () => {
    expect(await execute({ kind: 'get', id: 'fan' }, { devices, role: 'viewer', now: 10_000 })).toBe('fan off · 5 s ago');
  });

  it('refuses strangers whatever they ask', async () => {
    for (const cmd of [{ kind: 'help' } as const, { kind: 'set', id: 'fan', value: 'on' } as const]) {
      expect(await execute(cmd, { devices, role: 'stranger', now: 0 })).toBe('Sorry, this gateway only answers its owners.');
    }
    expect(devices.get('fan')!.value).toBe(false);
  });

  it('tells honestly that no history is kept when it has no reader, and still names unknown devices', async () => {
    expect(await execute({ kind: 'history', id: 'fan', windowMs: 3_600_000 }, { devices, role: 'owner', now: 0 })).toBe(
      'history is not kept on this gateway. Use get fan for the current value.',
    );
    expect(await execute({ kind: 'history', id: 'fna', windowMs: 3_600_000 }, { devices, role: 'viewer', now: 0 })).toBe('No device "fna". Did you mean fan?');
  });
});
