// XEP-0323 Sensor Data (v0.4–0.6 wire format, which slixmpp 1.8's plugin also
// speaks): <req seqnr=…/> in an IQ get is answered <accepted seqnr=…/>, then a
// message carries <fields seqnr=… done='true'> with one node per device, and a
// <failure> lists devices that cannot be read. Readouts are immediate, so there
// is never anything to cancel; scheduled ('when') and historical-only requests
// are refused honestly until history is stored.

import type { Element } from 'ltx';
import xml from '@xmpp/xml';
import type { Clock } from '../core/clock.js';
import type { Devices } from '../core/devices.js';
import { isStanzaError, StanzaError } from '../core/errors.js';
import { PayloadError } from '../xmpp/stanza.js';
import { readout, type Field } from '../core/readout.js';
import type { IqHandler } from '../xmpp/router.js';

export const NS_SENSORDATA = 'urn:xmpp:iot:sensordata';

const HISTORICAL = ['historicalSecond', 'historicalMinute', 'historicalHour', 'historicalDay', 'historicalWeek', 'historicalMonth', 'historicalQuarter', 'historicalYear', 'historicalOther'];
const KINDS = ['momentary', 'peak', 'status', 'computed', 'identity', ...HISTORICAL];

export function timestamp(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function fieldElement(f: Field): Element | undefined {
  if (f.value === undefined) return undefined;
  const attrs: Record<string, string> = { name: f.name, momentary: 'true' };
  attrs[f.error ? 'error' : 'automaticReadout'] = 'true';
  if (f.stale && !f.error) attrs.warning = 'true';
  if (!f.writable) attrs.writable = 'false';
  switch (f.type) {
    case 'number':
      return xml('numeric', { ...attrs, value: (f.value as number).toFixed(f.decimals), ...(f.unit ? { unit: f.unit } : {}) });
    case 'boolean':
      return xml('boolean', { ...attrs, value: f.value ? 'true' : 'false' });
    case 'string':
      return xml('string', { ...attrs, value: String(f.value) });
  }
}

export interface SensorDataDeps {
  devices: Devices;
  clock: Clock;
  send: (stanza: Element) => Promise<void>;
}

/**
 * IQ get <req/>: validate, answer <accepted/>, then send the fields (and failures)
 * as messages. A refusal is an RFC 6120 error that also carries the draft's
 * <rejected seqnr><error>text</error></rejected>, which slixmpp's client reads.
 */
export function sensorDataRequest(deps: SensorDataDeps): IqHandler {
  const handle = request(deps);
  return (req) => {
    try {
      return handle(req);
    } catch (err) {
      const seqnr = req.child.attrs.seqnr;
      if (!isStanzaError(err) || seqnr === undefined) throw err;
      throw new PayloadError(err, xml('rejected', { xmlns: NS_SENSORDATA, seqnr }, xml('error', {}, err.text ?? err.condition)));
    }
  };
}

function request(deps: SensorDataDeps): IqHandler {
  return ({ child, from, afterReply }) => {
    const seqnr = child.attrs.seqnr ?? child.attrs.id;
    if (seqnr === undefined) throw new StanzaError('bad-request', 'req needs a seqnr');
    const flag = (k: string): boolean => child.attrs[k] === 'true' || child.attrs[k] === '1';
    if (child.attrs.when && Date.parse(child.attrs.when) > deps.clock.now() + 1000) {
      throw new StanzaError('feature-not-implemented', 'scheduled readouts are not supported; ask again at that time');
    }
    const asked = KINDS.filter(flag);
    const wantsMomentary = flag('all') || asked.length === 0 || asked.some((k) => !HISTORICAL.includes(k));
    if (!wantsMomentary) {
      throw new StanzaError('feature-not-implemented', 'historical readout needs stored history, which this version does not keep yet');
    }
    const fields = readout(deps.devices, {
      nodes: child.getChildren('node').map((n) => n.attrs.nodeId ?? ''),
      fields: child.getChildren('field').map((f) => f.attrs.name ?? ''),
    }, deps.clock.now());

    const idAttr = child.attrs.seqnr !== undefined ? 'seqnr' : 'id';
    afterReply(async () => {
      const readable = fields.filter((f) => f.value !== undefined);
      const unreadable = fields.filter((f) => f.value === undefined);
      const now = deps.clock.now();
      if (readable.length > 0 || unreadable.length === 0) {
        const msg = xml('fields', { xmlns: NS_SENSORDATA, [idAttr]: seqnr, ...(unreadable.length === 0 ? { done: 'true' } : {}) });
        for (const f of readable) {
          msg.append(xml('node', { nodeId: f.node }, xml('timestamp', { value: timestamp(f.at ?? now) }, fieldElement(f))));
        }
        await deps.send(xml('message', { to: from }, msg));
      }
      if (unreadable.length > 0) {
        const failure = xml('failure', { xmlns: NS_SENSORDATA, [idAttr]: seqnr, done: 'true' });
        for (const f of unreadable) {
          failure.append(xml('error', { nodeId: f.node, timestamp: timestamp(now) }, f.error ?? 'no reading yet'));
        }
        await deps.send(xml('message', { to: from }, failure));
      }
    });
    return xml('accepted', { xmlns: NS_SENSORDATA, [idAttr]: seqnr });
  };
}

/** IQ get <cancel/>: readouts finish at once, so there is never one to stop; confirm. */
export const sensorDataCancel: IqHandler = ({ child }) => {
  const seqnr = child.attrs.seqnr ?? child.attrs.id;
  if (seqnr === undefined) throw new StanzaError('bad-request', 'cancel needs a seqnr');
  return xml('cancelled', { xmlns: NS_SENSORDATA, ...(child.attrs.seqnr !== undefined ? { seqnr } : { id: seqnr }) });
};
