// Wire bytes on a real trace: the hourly Seattle normals (vega-datasets),
// interpolated to one sample a minute and fed through a real agent (real
// session, real Prosody) on a virtual clock, with deadbands 0.2 °C / 0.5 hPa /
// 0.2 m/s, against the same agent publishing every sample and an MQTT 3.1.1
// publisher over TLS 1.3 with the same deadbands (bytes computed from the
// framing, one topic per sensor).
//
// The virtual clock runs every timer the agent takes from its clock (presence
// heartbeat, keepalive, history) at its simulated time, so the month's
// keepalives are on the wire too; each step waits for the server's answers to
// what it sent (a pong, the echo of our own presence) before time moves on.
// XEP-0198's "ask for an ack 30 s after the first unacknowledged stanza" runs
// on real timers inside the session, so the harness asks at that simulated
// moment instead (sm.requestAck, the same request).

import { readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { Element } from 'ltx';
import { parse } from 'ltx';
import { Agent } from '../src/agent.js';
import { loadConfigText } from '../src/config/load.js';
import { createLogger, createSink } from '../src/runtime/log.js';
import type { Clock, TimerHandle } from '../src/core/clock.js';
import { DEFAULT_STREAM_MANAGEMENT } from '../src/config/durability.js';
import { tcpSocketOf } from '../src/xmpp/tls.js';
import type { Client } from '@xmpp/client-core';
import { round } from './lib.js';

interface Sample {
  t: number;
  temperature: number;
  pressure: number;
  wind: number;
}
const SENSORS = ['temperature', 'pressure', 'wind'] as const;
type Sensor = (typeof SENSORS)[number];
const DEADBANDS: Record<Sensor, number> = { temperature: 0.2, pressure: 0.5, wind: 0.2 };
const NO_DEADBAND: Record<Sensor, number> = { temperature: 0, pressure: 0, wind: 0 };
/** TLS 1.3 record overhead per write: 5-byte header, 1 byte inner content type, 16-byte AEAD tag. */
export const TLS13_RECORD = 22;
const KEEPALIVE_S = 60;
/** The agent's real liveness check (xmpp.keepalive.check, its default); whitespace keepalives between. */
const CHECK_S = 300;

export function seattle(days: number): Sample[] {
  // The package exports only its JS entry; the CSV sits beside it in the package.
  const entry = createRequire(import.meta.url).resolve('vega-datasets');
  const file = join(dirname(entry), '..', 'data', 'seattle-weather-hourly-normals.csv');
  const hours = readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .slice(1)
    .map((l) => l.split(','))
    .map(([d, p, t, w]) => ({ t: Date.parse(`${d}Z`), pressure: Number(p), temperature: Number(t), wind: Number(w) }));
  const out: Sample[] = [];
  for (let h = 0; h + 1 < hours.length && out.length < days * 1440; h++) {
    const a = hours[h]!;
    const b = hours[h + 1]!;
    for (let m = 0; m < 60; m++) {
      const f = m / 60;
      out.push({ t: a.t + m * 60_000, temperature: a.temperature + (b.temperature - a.temperature) * f, pressure: a.pressure + (b.pressure - a.pressure) * f, wind: a.wind + (b.wind - a.wind) * f });
    }
  }
  return out;
}

const varint = (n: number): number => (n < 128 ? 1 : n < 16_384 ? 2 : n < 2_097_152 ? 3 : 4);
const utf8 = (s: string): number => 2 + Buffer.byteLength(s);
/** One MQTT 3.1.1 control packet of this remaining length: fixed header byte, remaining length, the rest. */
const packet = (remaining: number): number => 1 + varint(remaining) + remaining;
/** PUBLISH: topic, a packet identifier at QoS 1, payload. */
export function mqttPublishBytes(topic: string, payload: string, qos: 0 | 1 = 0): number {
  return packet(utf8(topic) + (qos ? 2 : 0) + Buffer.byteLength(payload));
}
/** CONNECT with a client id, user name and password (clean session, keepalive). */
export const mqttConnectBytes = (clientId: string, user: string, password: string): number => packet(10 + utf8(clientId) + utf8(user) + utf8(password));

export interface MqttFigures {
  qos: 0 | 1;
  /** Bytes the publisher writes (CONNECT, PUBLISH, PINGREQ), each packet one TLS 1.3 record. */
  bytes: number;
  /** Bytes the broker writes to it (CONNACK, PUBACK, PINGRESP), each one record. */
  bytesIn: number;
  publishes: number;
  pings: number;
  maxError: Record<Sensor, number>;
  breakdown: Record<string, number>;
}

/**
 * An MQTT 3.1.1 publisher over TLS 1.3: one topic per sensor, a PUBLISH when the value moved by its
 * deadband and shows differently at 1 decimal (the agent's rule), PINGREQ when nothing was sent for a
 * keepalive period (MQTT-3.1.2-23), every packet its own TLS record (as a client that writes each packet).
 */
export function mqtt(samples: Sample[], deadbands: Record<Sensor, number>, qos: 0 | 1, tls = true, keepaliveS = KEEPALIVE_S): MqttFigures {
  const rec = tls ? TLS13_RECORD : 0;
  const topic = (id: Sensor): string => `gateway/seattle/${id}`;
  const b = { 'CONNECT': 0, 'PUBLISH: fixed header and topic': 0, 'PUBLISH: packet id (QoS 1)': 0, 'PUBLISH: payload (the value)': 0, 'PINGREQ keepalive': 0, 'TLS 1.3 records': 0 };
  b.CONNECT = mqttConnectBytes('gateway-seattle', 'gateway-seattle', 'a-password-of-24-chars!!');
  b['TLS 1.3 records'] += rec;
  let bytesIn = packet(2) + rec; // CONNACK
  let publishes = 0;
  let pings = 0;
  const last = new Map<Sensor, number>();
  const maxError = { temperature: 0, pressure: 0, wind: 0 };
  let lastSent = samples[0]?.t ?? 0;
  for (const s of samples) {
    let sent = false;
    for (const id of SENSORS) {
      const v = s[id];
      const before = last.get(id);
      const every = deadbands[id] === 0;
      if (before === undefined || every || (v.toFixed(1) !== before.toFixed(1) && Math.abs(v - before) >= deadbands[id])) {
        const payload = v.toFixed(every ? 3 : 1);
        const whole = mqttPublishBytes(topic(id), payload, qos);
        b['PUBLISH: payload (the value)'] += Buffer.byteLength(payload);
        b['PUBLISH: packet id (QoS 1)'] += qos ? 2 : 0;
        b['PUBLISH: fixed header and topic'] += whole - Buffer.byteLength(payload) - (qos ? 2 : 0);
        b['TLS 1.3 records'] += rec;
        if (qos) bytesIn += packet(2) + rec; // PUBACK
        last.set(id, Number(payload));
        publishes++;
        sent = true;
      }
      maxError[id] = Math.max(maxError[id], Math.abs(v - (last.get(id) ?? 0)));
    }
    if (sent) lastSent = s.t;
    else if (s.t - lastSent >= keepaliveS * 1000) {
      b['PINGREQ keepalive'] += packet(0);
      b['TLS 1.3 records'] += rec;
      bytesIn += packet(0) + rec; // PINGRESP
      pings++;
      lastSent = s.t;
    }
  }
  const bytes = Object.values(b).reduce((x, y) => x + y, 0);
  return { qos, bytes, bytesIn, publishes, pings, maxError: { temperature: round(maxError.temperature, 2), pressure: round(maxError.pressure, 2), wind: round(maxError.wind, 2) }, breakdown: b };
}

/** The agent's timers on a simulated time of day: they fire when advance() passes them, in order. */
function virtualClock(start: number): Clock & { advance(to: number): void } {
  let now = start;
  let seq = 0;
  const timers = new Map<number, { at: number; fn: () => void; every?: number }>();
  const add = (fn: () => void, ms: number, every?: number): TimerHandle => {
    timers.set(++seq, { at: now + Math.max(0, ms), fn, every });
    return seq as unknown as TimerHandle;
  };
  const clear = (t: TimerHandle | undefined): void => void timers.delete(t as unknown as number);
  return {
    now: () => now,
    mono: () => now - start, // simulated time passes for durations too
    setTimeout: (fn, ms) => add(fn, ms),
    setInterval: (fn, ms) => add(fn, ms, Math.max(1, ms)),
    clearTimeout: clear,
    clearInterval: clear,
    advance(to: number) {
      for (;;) {
        let id: number | undefined;
        let next: { at: number; fn: () => void; every?: number } | undefined;
        for (const [k, t] of timers) if (t.at <= to && (!next || t.at < next.at)) [id, next] = [k, t];
        if (!next) break;
        now = next.at;
        if (next.every) next.at += next.every;
        else timers.delete(id!);
        next.fn();
      }
      now = to;
    },
  };
}

/** Where an element's bytes go, by what it is. */
function classify(el: Element, xmlBytes: number, into: Record<string, number>): void {
  const add = (k: string, n: number): void => void (into[k] = (into[k] ?? 0) + n);
  if (el.name === 'presence') {
    const caps = el.getChild('c', 'http://jabber.org/protocol/caps');
    const status = el.getChildText('status') ?? '';
    const show = el.getChild('show');
    const delay = el.getChild('delay', 'urn:xmpp:delay');
    const capsBytes = caps ? Buffer.byteLength(caps.toString()) : 0;
    const statusBytes = Buffer.byteLength(status);
    const showBytes = show ? Buffer.byteLength(show.toString()) : 0;
    const delayBytes = delay ? Buffer.byteLength(delay.toString()) : 0;
    add('presence: caps <c/> (XEP-0115)', capsBytes);
    add('presence: status text', statusBytes);
    add('presence: <show/>', showBytes);
    if (delayBytes) add('presence: <delay/> (re-sent)', delayBytes);
    add('presence: XML framing (<presence>, <status>, attributes)', xmlBytes - capsBytes - statusBytes - showBytes - delayBytes);
  } else if (el.name === 'r' && el.getNS() === 'urn:xmpp:sm:3') add('XEP-0198 <r/> (our ack requests)', xmlBytes);
  else if (el.name === 'a' && el.getNS() === 'urn:xmpp:sm:3') add('XEP-0198 <a/> (answers to the server\'s <r/>)', xmlBytes);
  else if (el.name === 'iq' && el.getChild('ping', 'urn:xmpp:ping')) add('keepalive: XEP-0199 ping', xmlBytes);
  else add(`other: <${el.name}/>`, xmlBytes);
}

export interface AgentWire {
  /** Bytes the agent wrote after it was online (TLS included), over the period. */
  bytes: number;
  /** Bytes the server wrote to it over the period. */
  bytesIn: number;
  /** Bytes written from connect to online (stream, STARTTLS, TLS handshake, SASL, bind, XEP-0198). */
  loginBytes: number;
  presences: number;
  writes: number;
  /** Whitespace keepalives among them (not in the XML trace). */
  spaces: number;
  maxError: Record<Sensor, number>;
  cpuSecondsPer10kReadings: number;
  /** Bytes by what they carried; 'TLS records' is the measured total less the XML written. */
  breakdown: Record<string, number>;
  sm: { acksRequested: number; acksSent: number };
}

export interface WireResult {
  days: number;
  samplesPerSensor: number;
  keepaliveS: number;
  /** The agent's real liveness check period; MQTT's PINGREQ checks every keepalive period. */
  checkS: number;
  filtered: AgentWire;
  /** The same with keepalives half as often (both sides). */
  filteredSlowKeepalive: AgentWire;
  everySample: AgentWire;
  mqtt: { deadbandTls: MqttFigures; deadbandTlsSlowKeepalive: MqttFigures; deadbandTlsQos0: MqttFigures; everySampleTls: MqttFigures; everySampleNoTls: MqttFigures };
}

export async function wireBytes(o: { days: number; owner: string; agent: { jid: string; password: string }; service: string; caFile: string; dir: string }): Promise<WireResult> {
  const samples = seattle(o.days);

  async function variant(deadbands: Record<Sensor, number>, decimals: number, label: string, keepaliveS = KEEPALIVE_S): Promise<AgentWire> {
    const clock = virtualClock(samples[0]!.t);
    const yaml = `xmpp:\n  jid: ${o.agent.jid}\n  resource: wire\n  service: ${o.service}\n  tls:\n    ca_file: ${o.caFile}\n  keepalive:\n    interval: ${keepaliveS}s\n    check: ${CHECK_S}s\nowners: [${o.owner}]\nmdns:\n  enabled: false\nstate_dir: ${join(o.dir, `wire-${label}`)}\nlog:\n  level: debug\n  xml: true\npresence:\n  min_interval: 0\n  heartbeat: 1h\ndevices:\n${[
      ['temperature', '°C'],
      ['pressure', 'hPa'],
      ['wind', 'm/s'],
    ]
      .map(([id, unit]) => `  - { id: ${id}, driver: simulated, type: number, unit: "${unit}", min: -1000, max: 2000, initial: 0, interval: 20d, stale_after: 20d, decimals: ${decimals}, deadband: ${deadbands[id as Sensor]} }\n`)
      .join('')}`;
    // Every element the session writes, from its XML trace (Session's traceXml; SASL is never traced).
    let counting = false;
    let writes = 0;
    let xmlOut = 0;
    const breakdown: Record<string, number> = {};
    const sink = createSink('debug', (line) => {
      if (!counting || !line.includes('"msg":"out"')) return;
      const x = (JSON.parse(line) as { xml: string }).xml;
      const n = Buffer.byteLength(x);
      writes++;
      xmlOut += n;
      classify(parse(x), n, breakdown);
    });
    const log = createLogger(sink);
    const agent = new Agent({ loaded: loadConfigText(yaml, { baseDir: o.dir, env: { XMPP_IOT_AGENT_PASSWORD: o.agent.password } }), log, clock });
    // The TCP socket itself: after STARTTLS, session.bytesWritten() counts the TLS socket's plaintext, not the records.
    const raw = (): net.Socket | undefined => {
      const s = tcpSocketOf((agent.session as unknown as { entity: Client }).entity);
      const parent = (s as { _parent?: unknown } | undefined)?._parent;
      return s instanceof tls.TLSSocket && parent instanceof net.Socket ? parent : s;
    };
    const bytesWritten = (): number => raw()?.bytesWritten ?? 0;
    const bytesRead = (): number => raw()?.bytesRead ?? 0;
    let loginBytes = 0;
    const up = new Promise((r) => agent.session.once('online', r)).then(() => (loginBytes = bytesWritten()));
    await agent.start();
    await up;
    const seen = new Map<string, number>();
    agent.reporter.decorate(() => {
      for (const s of agent.devices.list()) seen.set(s.info.id, s.value as number);
    });
    for (const id of SENSORS) agent.devices.report(id, samples[0]![id]);
    await new Promise((r) => setTimeout(r, 300));
    const sm = agent.session.sm;
    // The session keeps the system clock (the agent does not hand it its own); its stream management reads simulated time too.
    (sm as unknown as { now: () => number }).now = clock.now;
    const bytes0 = bytesWritten();
    const in0 = bytesRead();
    const presences0 = agent.reporter.stats.presencesSent;
    const spaces0 = agent.session.stats.whitespaceKeepalives;
    const sm0 = { acksRequested: sm.stats.acksRequested, acksSent: sm.stats.acksSent };
    const maxError = { temperature: 0, pressure: 0, wind: 0 };
    counting = true;
    let firstUnacked: number | undefined;
    const cpu0 = process.cpuUsage();
    for (let i = 1; i < samples.length; i++) {
      const s = samples[i]!;
      const out0 = sm.stats.outbound;
      const inb0 = sm.stats.inbound;
      clock.advance(s.t);
      for (const id of SENSORS) agent.devices.report(id, s[id]);
      for (const id of SENSORS) maxError[id] = Math.max(maxError[id], Math.abs(s[id] - (seen.get(id) ?? 0)));
      // The session's own 30 s ack request, at simulated time.
      if (sm.stats.queue === 0) firstUnacked = undefined;
      else if (firstUnacked === undefined) firstUnacked = s.t;
      else if (s.t - firstUnacked >= DEFAULT_STREAM_MANAGEMENT.requestDelayMs) {
        sm.requestAck();
        firstUnacked = undefined;
      }
      // Each stanza we sent draws one back (the pong, the echo of our presence), each <r/> an <a/>: wait for them, briefly.
      const sent = sm.stats.outbound - out0;
      // And for what we wrote to leave the TLS socket: a whitespace keepalive draws no answer, and simulated minutes
      // passing faster than the socket drains would let TLS put many spaces in one record, which no real minute does.
      const flushing = (): boolean => (tcpSocketOf((agent.session as unknown as { entity: Client }).entity)?.writableLength ?? 0) > 0 || (raw()?.writableLength ?? 0) > 0;
      const waiting = (): boolean => sm.stats.inbound - inb0 < sent || sm.stats.acksReceived < sm.stats.acksRequested || flushing();
      if (waiting()) {
        const until = performance.now() + 200;
        while (waiting() && performance.now() < until) await new Promise((r) => setImmediate(r));
      } else if (i % 500 === 0) await new Promise((r) => setImmediate(r));
    }
    const cpu = process.cpuUsage(cpu0);
    await new Promise((r) => setTimeout(r, 1000));
    counting = false;
    const bytes = bytesWritten() - bytes0;
    // Whitespace keepalives are no element, so the XML trace misses them: one byte each, counted by the session.
    const spaces = agent.session.stats.whitespaceKeepalives - spaces0;
    breakdown['keepalive: whitespace (RFC 6120 §4.6.1)'] = spaces;
    breakdown['TLS records (measured total less the XML)'] = bytes - xmlOut - spaces;
    const result: AgentWire = {
      bytes,
      bytesIn: bytesRead() - in0,
      loginBytes,
      presences: agent.reporter.stats.presencesSent - presences0,
      writes: writes + spaces,
      spaces,
      maxError: { temperature: round(maxError.temperature, 2), pressure: round(maxError.pressure, 2), wind: round(maxError.wind, 2) },
      cpuSecondsPer10kReadings: round(((cpu.user + cpu.system) / 1e6 / ((samples.length - 1) * 3)) * 10_000, 3),
      breakdown,
      sm: { acksRequested: sm.stats.acksRequested - sm0.acksRequested, acksSent: sm.stats.acksSent - sm0.acksSent },
    };
    await agent.stop();
    return result;
  }

  const filtered = await variant(DEADBANDS, 1, 'deadbands');
  const filteredSlowKeepalive = await variant(DEADBANDS, 1, 'deadbands-slow', 2 * KEEPALIVE_S);
  const everySample = await variant(NO_DEADBAND, 3, 'every');
  return {
    days: o.days,
    samplesPerSensor: samples.length,
    keepaliveS: KEEPALIVE_S,
    checkS: CHECK_S,
    filtered,
    filteredSlowKeepalive,
    everySample,
    mqtt: {
      deadbandTls: mqtt(samples, DEADBANDS, 1),
      deadbandTlsSlowKeepalive: mqtt(samples, DEADBANDS, 1, true, 2 * KEEPALIVE_S),
      deadbandTlsQos0: mqtt(samples, DEADBANDS, 0),
      everySampleTls: mqtt(samples, NO_DEADBAND, 1),
      everySampleNoTls: mqtt(samples, NO_DEADBAND, 0, false),
    },
  };
}
