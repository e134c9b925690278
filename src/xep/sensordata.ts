// XEP-0323 Sensor Data (v0.4–0.6 wire format, which slixmpp 1.8's plugin also
// speaks): <req seqnr=…/> in an IQ get is answered <accepted seqnr=…/>, then
// messages carry <fields seqnr=…> with one node per device, a <failure> lists
// devices that cannot be read, and the last message says done='true'.
// Readouts are immediate, so there is never anything to cancel; scheduled
// ('when') requests are refused honestly.
//
// Historical readouts (historicalSecond … historicalOther) come from the
// stored history when the agent has one (deps.history), between the req's
// 'from' and 'to' (xs:dateTime; default the last 24 h, never further back
// than the retention): one <timestamp> per stored reading, oldest first, at
// most HISTORY_MAX_PER_NODE per node, evenly downsampled beyond that. They go
// first, in as many <fields> messages as keep each under MESSAGE_BUDGET_BYTES,
// then the momentary fields if those were asked for too. A 'momentary' or
// 'all' request without a historical kind is answered from the current values
// only; without a history, a historical-only request is feature-not-implemented.

import type { Element } from 'ltx';
import xml from '@xmpp/xml';
import type { Clock } from '../core/clock.js';
import type { DeviceInfo, Devices } from '../core/devices.js';
import { clip } from '../util/text.js';
import { DAY, downsample, type HistoryPoint, type HistoryReader } from '../core/history.js';
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
  /** Stored readings for historical readouts; without it those are feature-not-implemented. */
  history?: HistoryReader;
  /** How far back the history goes: 'from' earlier than that is moved up to it. */
  historyRetentionMs?: number;
}

/**
 * Timestamps per node in one historical readout. A week of one reading a
 * minute is 10,080; a client asking for all of it gets this many, evenly
 * spread over the period (oldest and newest always included), not a flood.
 */
export const HISTORY_MAX_PER_NODE = 1000;
/**
 * Size of one <fields> message with historical values. Servers close the
 * stream on a stanza over their limit (Prosody: 256 KiB, many ejabberd
 * configurations: 64 KiB), so a long history goes out as several messages.
 */
export const MESSAGE_BUDGET_BYTES = 32 * 1024;
const DEFAULT_HISTORY_MS = DAY;

/** One stored reading as a field flagged with the historical kind asked for. */
function historicalElement(info: DeviceInfo, p: HistoryPoint, kind: string): Element | undefined {
  const flags = { [kind]: 'true', automaticReadout: 'true' };
  if (typeof p.value === 'number') {
    if (!Number.isFinite(p.value)) return undefined;
    return xml('numeric', { name: info.id, value: p.value.toFixed(info.decimals), ...(info.unit ? { unit: info.unit } : {}), ...flags });
  }
  if (typeof p.value === 'boolean') return xml('boolean', { name: info.id, value: p.value ? 'true' : 'false', ...flags });
  return xml('string', { name: info.id, value: p.value, ...flags });
}

/** An xs:dateTime attribute (UTC when it names no zone) as ms, or bad-request. */
function dateTime(name: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined) return fallback;
  const m = /^(-?\d{4,}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?)(Z|[+-]\d{2}:\d{2})?$/.exec(raw.trim());
  const ms = m ? Date.parse(m[1]! + (m[2] ?? 'Z')) : Number.NaN;
  if (!Number.isFinite(ms)) throw new StanzaError('bad-request', `${name} must be an xs:dateTime such as 2024-05-01T00:00:00Z, not "${clip(raw)}"`);
  return ms;
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
    const now = deps.clock.now();
    if (child.attrs.when && Date.parse(child.attrs.when) > now + 1000) {
      throw new StanzaError('feature-not-implemented', 'scheduled readouts are not supported; ask again at that time');
    }
    const asked = KINDS.filter(flag);
    const historical = asked.filter((k) => HISTORICAL.includes(k));
    const wantsMomentary = flag('all') || asked.length === 0 || asked.some((k) => !HISTORICAL.includes(k));
    if (!wantsMomentary && !deps.history) {
      throw new StanzaError('feature-not-implemented', 'historical readout needs stored history, which this gateway does not keep');
    }
    // Validates the node and field names, and picks the devices, the same way for both kinds.
    const fields = readout(deps.devices, {
      nodes: child.getChildren('node').map((n) => n.attrs.nodeId ?? ''),
      fields: child.getChildren('field').map((f) => f.attrs.name ?? ''),
    }, deps.clock.mono());
    const history = historical.length > 0 ? deps.history : undefined;
    let range: { from: number; to: number } | undefined;
    if (history) {
      const to = dateTime('to', child.attrs.to, now);
      const start = dateTime('from', child.attrs.from, to - DEFAULT_HISTORY_MS);
      if (start > to) throw new StanzaError('bad-request', 'from is later than to');
      // Nothing older is kept; cutting here keeps answers the same whenever the hourly prune last ran.
      const oldest = deps.historyRetentionMs !== undefined ? now - deps.historyRetentionMs : -Infinity;
      range = { from: Math.max(start, oldest), to };
    }
    // One specific kind is echoed back; several (or historicalOther) are historicalOther.
    const kind = historical.length === 1 ? historical[0]! : 'historicalOther';

    const idAttr = child.attrs.seqnr !== undefined ? 'seqnr' : 'id';
    afterReply(async () => {
      const payloads: Element[] = [];
      const failures: Element[] = [];
      const at = deps.clock.now();
      const fail = (node: string, text: string): void => void failures.push(xml('error', { nodeId: node, timestamp: timestamp(at) }, text));
      const fieldsPayload = (): Element => xml('fields', { xmlns: NS_SENSORDATA, [idAttr]: seqnr });

      if (history && range) {
        let current: Element | undefined;
        let size = 0;
        for (const f of fields) {
          const info = deps.devices.get(f.node)?.info;
          if (!info) continue;
          let points: readonly HistoryPoint[];
          try {
            points = history.query(info.id, range.from, range.to);
          } catch (err) {
            fail(f.node, `stored history could not be read: ${err instanceof Error ? err.message : String(err)}`);
            continue;
          }
          for (const p of downsample(points, HISTORY_MAX_PER_NODE)) {
            const field = historicalElement(info, p, kind);
            if (!field) continue;
            const ts = xml('timestamp', { value: timestamp(p.t) }, field);
            const bytes = Buffer.byteLength(ts.toString());
            if (!current || (size > 0 && size + bytes > MESSAGE_BUDGET_BYTES)) {
              current = fieldsPayload();
              payloads.push(current);
              size = 0;
            }
            const last = current.children.at(-1);
            const node = typeof last === 'object' && last.attrs.nodeId === f.node ? last : current.cnode(xml('node', { nodeId: f.node }));
            node.append(ts);
            size += bytes;
          }
        }
      }

      if (wantsMomentary) {
        const readable = fields.filter((f) => f.value !== undefined);
        for (const f of fields) if (f.value === undefined) fail(f.node, f.error ?? 'no reading yet');
        if (readable.length > 0) {
          const msg = fieldsPayload();
          for (const f of readable) {
            msg.append(xml('node', { nodeId: f.node }, xml('timestamp', { value: timestamp(f.at ?? at) }, fieldElement(f))));
          }
          payloads.push(msg);
        }
      }

      if (failures.length > 0) payloads.push(xml('failure', { xmlns: NS_SENSORDATA, [idAttr]: seqnr }, ...failures));
      // Nothing to say (no stored readings in the period) is still an answer: an empty, done <fields/>.
      if (payloads.length === 0) payloads.push(fieldsPayload());
      payloads.at(-1)!.attrs.done = 'true';
      for (const p of payloads) await deps.send(xml('message', { to: from }, p));
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
