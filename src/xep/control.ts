// XEP-0325 Control: <set/> in an IQ (answered) or a message (not answered),
// typed parameters or a submitted XEP-0004 form, applied in order after all are
// validated. Replies carry both today's RFC 6120 errors (with <paramError var/>)
// and the draft's <setResponse responseCode=…/> that slixmpp's client reads.
//
// Read-only devices: not-allowed (responseCode "Locked"): the parameter exists,
// but this agent will not change it.

import type { Element } from 'ltx';
import xml from '@xmpp/xml';
import { canActuate, type Role } from '../core/authority.js';
import type { Clock } from '../core/clock.js';
import { parseValue, type DeviceState, type Devices, type Value } from '../core/devices.js';
import { isStanzaError, StanzaError, type Condition } from '../core/errors.js';
import type { Logger } from '../runtime/log.js';
import type { IqHandler, StanzaHandler } from '../xmpp/router.js';
import { PayloadError } from '../xmpp/stanza.js';
import { heldFor, MAX_COMMAND_DELAY_MS } from '../xmpp/delay.js';
import { deviceField, formElement, formValues, NS_DATA } from './forms.js';
import { clip } from '../util/text.js';

export const NS_CONTROL = 'urn:xmpp:iot:control';

const RESPONSE_CODE: Partial<Record<Condition, string>> = {
  forbidden: 'InsufficientPrivileges',
  'item-not-found': 'NotFound',
  'not-allowed': 'Locked',
  'bad-request': 'FormError',
  'feature-not-implemented': 'NotImplemented',
};

interface Param {
  name: string;
  /** Element name (boolean, int, long, double, string, …) or "form". */
  kind: string;
  raw: string;
}

interface Planned {
  id: string;
  value: Value;
}

function paramError(condition: Condition, name: string | undefined, text: string): StanzaError {
  // The parameter's name comes from the requester: quoted back short, like any input.
  return new StanzaError(condition, text, name ? { app: { name: 'paramError', xmlns: NS_CONTROL, attrs: { var: clip(name, 64) }, text } } : {});
}

function parseParams(set: Element): Param[] {
  const form = set.getChild('x', NS_DATA);
  if (form) return [...formValues(form)].map(([name, values]) => ({ name, kind: 'form', raw: values[0] ?? '' }));
  return set
    .getChildElements()
    .filter((c) => c.name !== 'node')
    .map((c) => ({ name: c.attrs.name ?? '', kind: c.name, raw: c.attrs.value ?? '' }));
}

function typed(s: DeviceState, p: Param): Value {
  const { type, id } = s.info;
  if (p.kind === 'form') return p.raw;
  const fits =
    (type === 'boolean' && p.kind === 'boolean') ||
    (type === 'number' && ['int', 'long', 'double'].includes(p.kind)) ||
    (type === 'string' && p.kind === 'string');
  if (!fits) {
    if (['color', 'date', 'dateTime', 'duration', 'time'].includes(p.kind)) {
      throw paramError('bad-request', p.name, `${id} is a ${type}; ${clip(p.kind)} parameters are not supported`);
    }
    throw paramError('bad-request', p.name, `${id} is a ${type}, not ${clip(p.kind)}`);
  }
  if ((p.kind === 'int' || p.kind === 'long') && !/^[-+]?\d+$/.test(p.raw)) throw paramError('bad-request', p.name, `${p.kind} value "${clip(p.raw)}" is not an integer`);
  if (p.kind === 'boolean' && !['true', 'false', '1', '0'].includes(p.raw)) throw paramError('bad-request', p.name, `boolean value "${clip(p.raw)}" must be true or false`);
  return p.raw;
}

/** Validate every parameter, then apply them in order. Throws StanzaError with paramError. */
async function apply(devices: Devices, set: Element, role: Role): Promise<void> {
  if (!canActuate(role)) throw new StanzaError('forbidden', 'only owners may control this gateway');
  const nodes = set.getChildren('node').map((n) => n.attrs.nodeId ?? '');
  for (const n of nodes) if (!devices.get(n)) throw new StanzaError('item-not-found', `no node "${clip(n)}"`);
  const params = parseParams(set);
  if (params.length === 0) throw new StanzaError('bad-request', 'set names no parameter');
  const plan: Planned[] = [];
  const named = new Set<string>();
  for (const p of params) {
    // One request changes each device at most once: a parameter named twice is refused, not applied twice.
    if (named.has(p.name)) throw paramError('bad-request', p.name, `"${clip(p.name)}" is named more than once; name each parameter once`);
    named.add(p.name);
    const s = devices.get(p.name);
    if (!s || (nodes.length > 0 && !nodes.includes(p.name))) throw paramError('item-not-found', p.name, `no parameter "${clip(p.name)}"`);
    if (!s.info.writable) throw paramError('not-allowed', p.name, `${p.name} is read-only`);
    try {
      plan.push({ id: p.name, value: parseValue(s.info, typed(s, p)) });
    } catch (err) {
      if (isStanzaError(err) && !err.app) throw paramError(err.condition, p.name, err.text ?? err.condition);
      throw err;
    }
  }
  const done: string[] = [];
  // As one batch: presence reports the request once, after its last change.
  await devices.batch(async () => {
    for (const step of plan) {
      try {
        await devices.set(step.id, step.value);
        done.push(step.id);
      } catch (err) {
        if (!isStanzaError(err)) throw err;
        throw paramError(err.condition, step.id, `${err.text ?? err.condition}${done.length ? ` (already applied: ${done.join(', ')})` : ''}`);
      }
    }
  });
}

function withSetResponse(err: StanzaError): PayloadError {
  const name = err.app?.name === 'paramError' ? err.app.attrs?.var : undefined;
  const code = RESPONSE_CODE[err.condition] ?? 'OtherError';
  return new PayloadError(
    err,
    xml('setResponse', { xmlns: NS_CONTROL, responseCode: code }, name ? xml('parameter', { name }) : undefined, xml('error', { var: name ?? '' }, err.text ?? err.condition)),
  );
}

export function controlSet(devices: Devices): IqHandler {
  return async ({ child, role }) => {
    try {
      await apply(devices, child, role);
    } catch (err) {
      if (isStanzaError(err)) throw withSetResponse(err);
      throw err;
    }
    return xml('setResponse', { xmlns: NS_CONTROL, responseCode: 'OK' });
  };
}

/**
 * <message><set xmlns=…control/></message>: applied for owners, never answered.
 * One the server held longer than MAX_COMMAND_DELAY_MS (by the clock's time of day) is not applied.
 */
export function controlMessage(deps: { devices: Devices; clock: Clock; log: Logger }): StanzaHandler {
  const { devices, clock, log } = deps;
  return async (stanza, role) => {
    const set = stanza.getChild('set', NS_CONTROL);
    if (!set) return;
    const held = heldFor(stanza, clock.now());
    if (held > MAX_COMMAND_DELAY_MS) return void log.warn('stale control message not applied', { from: stanza.attrs.from, heldMs: held });
    try {
      await apply(devices, set, role);
      log.info('control message applied', { from: stanza.attrs.from });
    } catch (err) {
      log.info('control message refused', { from: stanza.attrs.from, reason: isStanzaError(err) ? err.message : String(err) });
    }
  };
}

/** IQ get <getForm/>: the writable devices as a form, typed and validated (XEP-0122). */
export function controlForm(devices: Devices): IqHandler {
  return () => {
    const fields = devices
      .list()
      .filter((s) => s.info.writable)
      .map((s) => deviceField(s, s.info.id));
    return formElement({ type: 'form', title: 'Control', fields });
  };
}
