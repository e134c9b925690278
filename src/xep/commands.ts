// XEP-0050 Ad-Hoc Commands with XEP-0004 forms: "Read sensors", "Set a
// device" (two stages: pick a device, then a value typed for it) and "Agent
// status". Sessions are per requester, expire, and are bounded in number.

import { randomBytes } from 'node:crypto';
import type { Element } from 'ltx';
import xml from '@xmpp/xml';
import { canActuate, canRead, type Role } from '../core/authority.js';
import type { Clock } from '../core/clock.js';
import type { DeviceState, Devices } from '../core/devices.js';
import { StanzaError } from '../core/errors.js';
import { formatState, formatValue } from '../core/format.js';
import type { IqHandler } from '../xmpp/router.js';
import { deviceField, formElement, formValues, NS_DATA, type FormField } from './forms.js';
import { clip } from '../util/text.js';

export const NS_COMMANDS = 'http://jabber.org/protocol/commands';
export const SESSION_TTL_MS = 10 * 60_000;
export const MAX_SESSIONS = 64;

export interface StatusField {
  var: string;
  label: string;
  value: string;
}

export interface CommandDeps {
  devices: Devices;
  clock: Clock;
  /** Live agent figures for "Agent status". */
  status: () => StatusField[];
  self: () => string;
  /** More commands, defined beside what they manage (people): a form, then a result. */
  extra?: readonly FormCommand[];
}

/** A command of one form: shown on execute, its submission answered with a result. */
export interface FormCommand extends CommandDef {
  run(req: { from: string; role: Role; submitted?: Map<string, string[]> }): FormCommandStep;
}

export type FormCommandStep = { status: 'executing'; form: Element } | { status: 'completed'; form?: Element; note?: { type: 'info' | 'warn' | 'error'; text: string } };

export interface CommandDef {
  node: string;
  name: string;
  allowed: (r: Role) => boolean;
}

export const COMMANDS: readonly CommandDef[] = [
  { node: 'read-sensors', name: 'Read sensors', allowed: canRead },
  { node: 'set-device', name: 'Set a device', allowed: canActuate },
  { node: 'agent-status', name: 'Agent status', allowed: canRead },
];

interface Session {
  node: string;
  requester: string;
  device?: string;
  expires: number;
}

const appError = (condition: 'bad-request' | 'not-allowed', name: string, text?: string): StanzaError =>
  new StanzaError(condition, text, { app: { name, xmlns: NS_COMMANDS } });

export function commands(deps: CommandDeps) {
  const defs: readonly CommandDef[] = [...COMMANDS, ...(deps.extra ?? [])];
  const sessions = new Map<string, Session>();
  const expired = new Set<string>();

  const reply = (node: string, sessionid: string, status: 'executing' | 'completed' | 'canceled', ...children: (Element | undefined)[]): Element =>
    xml('command', { xmlns: NS_COMMANDS, node, sessionid, status }, ...children);

  const note = (type: 'info' | 'warn' | 'error', text: string): Element => xml('note', { type }, text);

  const expire = (now: number): void => {
    for (const [id, s] of sessions) {
      if (s.expires <= now) {
        sessions.delete(id);
        expired.add(id);
      }
    }
    if (expired.size > 1000) expired.clear();
  };

  function readSensors(sessionid: string): Element {
    const fields: FormField[] = deps.devices.list().map((s) => ({
      var: s.info.id,
      type: 'text-single',
      label: s.info.unit ? `${s.info.name} (${s.info.unit})` : s.info.name,
      values: [s.fault ? `fault: ${s.fault}` : s.value === undefined ? '' : formatValue(s.info, s.value)],
    }));
    return reply('read-sensors', sessionid, 'completed', formElement({ type: 'result', title: 'Sensor readings', fields }));
  }

  function agentStatus(sessionid: string): Element {
    const fields: FormField[] = deps.status().map((f) => ({ var: f.var, type: 'text-single', label: f.label, values: [f.value] }));
    return reply('agent-status', sessionid, 'completed', formElement({ type: 'result', title: 'Agent status', fields }));
  }

  function pickDevice(sessionid: string): Element {
    const writable = deps.devices.list().filter((s) => s.info.writable);
    if (writable.length === 0) {
      sessions.delete(sessionid);
      return reply('set-device', sessionid, 'completed', note('info', 'This gateway has no writable devices.'));
    }
    const form = formElement({
      type: 'form',
      title: 'Set a device',
      instructions: 'Choose the device to change.',
      fields: [
        {
          var: 'device',
          type: 'list-single',
          label: 'Device',
          required: true,
          values: [writable[0]!.info.id],
          options: writable.map((s) => ({ label: formatState(s), value: s.info.id })),
        },
      ],
    });
    return reply('set-device', sessionid, 'executing', xml('actions', { execute: 'next' }, xml('next')), form);
  }

  function askValue(sessionid: string, s: DeviceState): Element {
    const form = formElement({
      type: 'form',
      title: `Set ${s.info.name}`,
      instructions: s.info.type === 'number' && (s.info.min !== undefined || s.info.max !== undefined) ? `A number from ${s.info.min ?? '−∞'} to ${s.info.max ?? '∞'}.` : undefined,
      fields: [{ var: 'device', type: 'hidden', values: [s.info.id] }, deviceField(s, 'value', true)],
    });
    return reply('set-device', sessionid, 'executing', xml('actions', { execute: 'complete' }, xml('prev'), xml('complete')), form);
  }

  async function setDevice(sessionid: string, session: Session, action: string, command: Element): Promise<Element> {
    const values = formValues(command.getChild('x', NS_DATA));
    if (action === 'prev') {
      session.device = undefined;
      return pickDevice(sessionid);
    }
    if (!session.device) {
      if (action === 'execute' && !command.getChild('x', NS_DATA)) return pickDevice(sessionid);
      const id = values.get('device')?.[0];
      if (!id) throw appError('bad-request', 'bad-payload', 'choose a device');
      const s = deps.devices.require(id);
      if (!s.info.writable) throw new StanzaError('not-allowed', `${id} is read-only`);
      session.device = id;
      return askValue(sessionid, s);
    }
    const raw = values.get('value')?.[0];
    if (raw === undefined) throw appError('bad-request', 'bad-payload', 'a value is required');
    const s = deps.devices.require(session.device);
    const v = await deps.devices.set(session.device, s.info.type === 'boolean' ? (raw === '1' || raw === 'true' ? true : raw === '0' || raw === 'false' ? false : raw) : raw);
    sessions.delete(sessionid);
    return reply('set-device', sessionid, 'completed', note('info', `${s.info.name} → ${formatValue(s.info, v)} ✓`));
  }

  const execute: IqHandler = async ({ child, from, role }) => {
    const node = child.attrs.node;
    const def = defs.find((c) => c.node === node);
    if (!def) throw new StanzaError('item-not-found', `no command "${clip(node ?? '')}"`);
    if (!def.allowed(role)) throw new StanzaError('forbidden', 'only owners may run this command');
    const action = child.attrs.action ?? 'execute';
    if (!['execute', 'next', 'prev', 'complete', 'cancel'].includes(action)) throw appError('bad-request', 'malformed-action');
    const now = deps.clock.mono(); // sessions expire by elapsed time, whatever the wall clock is set to
    expire(now);

    let sessionid = child.attrs.sessionid;
    let session: Session | undefined;
    if (sessionid) {
      session = sessions.get(sessionid);
      if (!session || session.requester !== from || session.node !== node) {
        if (expired.has(sessionid)) throw appError('not-allowed', 'session-expired', 'the command session expired; start again');
        throw appError('bad-request', 'bad-sessionid');
      }
      if (action === 'cancel') {
        sessions.delete(sessionid);
        return reply(def.node, sessionid, 'canceled');
      }
    } else {
      if (action !== 'execute') throw appError('bad-request', 'bad-sessionid', 'start the command with action execute');
      sessionid = randomBytes(8).toString('hex');
    }

    if (def.node === 'read-sensors') return readSensors(sessionid);
    if (def.node === 'agent-status') return agentStatus(sessionid);
    const form = deps.extra?.find((c) => c.node === def.node);
    if (form) {
      const x = child.getChild('x', NS_DATA);
      const step = form.run({ from, role, submitted: x && action !== 'prev' ? formValues(x) : undefined });
      if (step.status === 'completed') {
        sessions.delete(sessionid);
        return reply(def.node, sessionid, 'completed', step.note ? note(step.note.type, step.note.text) : undefined, step.form);
      }
      if (!session) {
        if (sessions.size >= MAX_SESSIONS) throw new StanzaError('resource-constraint', 'too many open command sessions');
        sessions.set(sessionid, { node: def.node, requester: from, expires: now + SESSION_TTL_MS });
      } else session.expires = now + SESSION_TTL_MS;
      return reply(def.node, sessionid, 'executing', xml('actions', { execute: 'complete' }, xml('complete')), step.form);
    }
    if (!session) {
      if (sessions.size >= MAX_SESSIONS) throw new StanzaError('resource-constraint', 'too many open command sessions');
      session = { node: def.node, requester: from, expires: now + SESSION_TTL_MS };
      sessions.set(sessionid, session);
    }
    session.expires = now + SESSION_TTL_MS;
    return setDevice(sessionid, session, action, child);
  };

  return {
    execute,
    /** disco#items on the commands node: what this requester may run. */
    items(role: Role): Element[] {
      return defs.filter((c) => c.allowed(role)).map((c) => xml('item', { jid: deps.self(), node: c.node, name: c.name }));
    },
    /** disco#info on a command node, or undefined for other nodes. */
    info(node: string): Element[] | undefined {
      const def = defs.find((c) => c.node === node);
      if (!def) return undefined;
      return [
        xml('identity', { category: 'automation', type: 'command-node', name: def.name }),
        xml('feature', { var: NS_COMMANDS }),
        xml('feature', { var: NS_DATA }),
      ];
    },
  };
}

export type Commands = ReturnType<typeof commands>;
