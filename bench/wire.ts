// Wire bytes on a real trace: the hourly Seattle normals (vega-datasets),
// interpolated to one sample a minute and fed through a real agent (real
// session, real Prosody) on a fake clock, with deadbands 0.2 °C / 0.5 hPa /
// 0.2 m/s, against the same agent publishing every sample and a naive MQTT
// 3.1.1 publisher (one topic per sensor, every sample; bytes computed from the framing).

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Agent } from '../src/agent.js';
import { loadConfigText } from '../src/config/load.js';
import { silentLogger } from '../src/runtime/log.js';
import { round } from './lib.js';
import { clockAt } from '../src/core/clock.js';

interface Sample {
  t: number;
  temperature: number;
  pressure: number;
  wind: number;
}
const SENSORS = ['temperature', 'pressure', 'wind'] as const;

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

/** One MQTT 3.1.1 PUBLISH, QoS 0: fixed header, remaining length, topic, payload. */
export function mqttPublishBytes(topic: string, payload: string): number {
  const remaining = 2 + Buffer.byteLength(topic) + Buffer.byteLength(payload);
  const varint = remaining < 128 ? 1 : remaining < 16384 ? 2 : 3;
  return 1 + varint + remaining;
}

export async function wireBytes(o: { days: number; owner: string; agent: { jid: string; password: string }; service: string; caFile: string; dir: string }) {
  const samples = seattle(o.days);

  async function variant(deadbands: Record<(typeof SENSORS)[number], number>, decimals: number) {
    let now = samples[0]!.t;
    const clock = clockAt(() => now);
    const yaml = `xmpp:\n  jid: ${o.agent.jid}\n  resource: wire\n  service: ${o.service}\n  tls:\n    ca_file: ${o.caFile}\nowners: [${o.owner}]\nmdns:\n  enabled: false\npresence:\n  min_interval: 0\n  heartbeat: 1h\ndevices:\n${[
      ['temperature', '°C'],
      ['pressure', 'hPa'],
      ['wind', 'm/s'],
    ]
      .map(([id, unit]) => `  - { id: ${id}, driver: simulated, type: number, unit: "${unit}", min: -1000, max: 2000, initial: 0, interval: 20d, stale_after: 20d, decimals: ${decimals}, deadband: ${deadbands[id as 'wind']} }\n`)
      .join('')}`;
    const agent = new Agent({ loaded: loadConfigText(yaml, { baseDir: o.dir, env: { XMPP_IOT_AGENT_PASSWORD: o.agent.password } }), log: silentLogger, clock });
    const up = new Promise((r) => agent.session.once('online', r));
    await agent.start();
    await up;
    const seen = new Map<string, number>();
    agent.reporter.decorate(() => {
      for (const s of agent.devices.list()) seen.set(s.info.id, s.value as number);
    });
    for (const id of SENSORS) agent.devices.report(id, samples[0]![id]);
    await new Promise((r) => setTimeout(r, 300));
    const bytes0 = agent.session.bytesWritten();
    const presences0 = agent.reporter.stats.presencesSent;
    const maxError = { temperature: 0, pressure: 0, wind: 0 };
    const cpu0 = process.cpuUsage();
    for (let i = 1; i < samples.length; i++) {
      const s = samples[i]!;
      now = s.t;
      for (const id of SENSORS) agent.devices.report(id, s[id]);
      for (const id of SENSORS) maxError[id] = Math.max(maxError[id], Math.abs(s[id] - (seen.get(id) ?? 0)));
      if (i % 500 === 0) await new Promise((r) => setImmediate(r)); // let the socket drain
    }
    const cpu = process.cpuUsage(cpu0);
    await new Promise((r) => setTimeout(r, 1000));
    const result = {
      bytes: agent.session.bytesWritten() - bytes0,
      presences: agent.reporter.stats.presencesSent - presences0,
      maxError: { temperature: round(maxError.temperature, 2), pressure: round(maxError.pressure, 2), wind: round(maxError.wind, 2) },
      cpuSecondsPer10kReadings: round(((cpu.user + cpu.system) / 1e6 / ((samples.length - 1) * 3)) * 10_000, 3),
    };
    await agent.stop();
    return result;
  }

  const filtered = await variant({ temperature: 0.2, pressure: 0.5, wind: 0.2 }, 1);
  const everySample = await variant({ temperature: 0, pressure: 0, wind: 0 }, 3);
  let mqtt = 0;
  for (const s of samples) for (const id of SENSORS) mqtt += mqttPublishBytes(`gateway/seattle/${id}`, s[id].toFixed(1));
  return { days: o.days, samplesPerSensor: samples.length, filtered, everySample, mqttEverySampleBytes: mqtt };
}
