// Chat replies: runs a parsed command against the core and answers in one
// short human message. Errors become sentences, never silence.

import { clip, type Devices } from '../core/devices.js';
import { canActuate, canRead, type Role } from '../core/authority.js';
import { isStanzaError } from '../core/errors.js';
import { ago, formatState, formatValue } from '../core/format.js';
import { closest } from '../core/words.js';
import type { Command } from './grammar.js';

export interface ChatContext {
  devices: Devices;
  role: Role;
  now: number;
}

export function helpText(devices: Devices, role: Role): string {
  const ids = devices.ids();
  const writable = devices.list().filter((d) => d.info.writable).map((d) => d.info.id);
  const lines = ['Commands:', '  status — every reading', '  get <device> — one reading'];
  if (canActuate(role)) {
    lines.push('  set <device> <value> — change a device');
    if (writable.length > 0) lines.push(`  <device> on|off — e.g. "${writable[0]} on"`);
  }
  lines.push(`Devices: ${ids.join(', ')}`);
  if (canActuate(role) && writable.length > 0) lines.push(`Writable: ${writable.join(', ')}`);
  if (!canActuate(role)) lines.push('You can read; only owners can change devices.');
  return lines.join('\n');
}

function noDevice(devices: Devices, id: string): string {
  const hint = closest(id, devices.ids());
  return hint ? `No device "${clip(id)}". Did you mean ${hint}?` : `No device "${clip(id)}". Devices: ${devices.ids().join(', ')}`;
}

function statusText(devices: Devices, now: number): string {
  return devices
    .list()
    .map((s) => {
      const h = devices.health(s.info.id, now);
      if (h === 'fault') return `${s.info.name}: fault — ${s.fault}`;
      const line = formatState(s);
      return h === 'stale' && s.at !== undefined ? `${line} (stale, ${ago(now - s.at)})` : line;
    })
    .join('\n');
}

export async function execute(cmd: Command, ctx: ChatContext): Promise<string | undefined> {
  const { devices, role, now } = ctx;
  if (!canRead(role)) return 'Sorry, this gateway only answers its owners.';
  switch (cmd.kind) {
    case 'empty':
      return undefined;
    case 'help':
      return helpText(devices, role);
    case 'status':
      return statusText(devices, now);
    case 'usage':
      return cmd.text;
    case 'unknown':
      return cmd.suggestion
        ? `I don't know "${clip(cmd.word)}". Did you mean "${cmd.suggestion}"? Type help for the commands.`
        : `I don't know "${clip(cmd.word)}". Type help for the commands.`;
    case 'history':
      return 'history is not available yet: this version keeps no stored readings. Use get <device> for the current value.';
    case 'get': {
      const s = devices.get(cmd.id);
      if (!s) return noDevice(devices, cmd.id);
      if (s.fault) return `${s.info.name}: fault — ${s.fault}`;
      if (s.value === undefined || s.at === undefined) return `${s.info.name}: no reading yet`;
      return `${formatState(s)} · ${ago(now - s.at)}`;
    }
    case 'set': {
      const s = devices.get(cmd.id);
      if (!s) return noDevice(devices, cmd.id);
      if (!canActuate(role)) return `Only owners can change devices; you can read them (try: get ${cmd.id}).`;
      try {
        const v = await devices.set(cmd.id, cmd.value);
        return `${s.info.name} → ${formatValue(s.info, v)} ✓`;
      } catch (err) {
        if (!isStanzaError(err)) throw err;
        if (err.condition === 'not-allowed') return `${s.info.name} is read-only.`;
        return `✗ ${err.text ?? err.condition}`;
      }
    }
  }
}
