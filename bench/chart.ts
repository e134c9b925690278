// `npm run bench:chart`: what one chart costs. Renders the Seattle trace
// (vega-datasets' hourly normals, one reading a minute as the history stores
// them) as the agent would answer "history temperature 24h" and "… 7d":
// 1. in this process: the time to render and encode, the PNG's size, memory
//    before and after (run with --expose-gc);
// 2. in the built agent as its own process, on a private Prosody with
//    mod_http_file_share, the week of readings in its store: its private
//    memory (RssAnon) idle, then after the first and later charts, and the
//    time from the owner's "chart …" to the image message.
//   --docs         also write the README's examples to docs/chart-*.png
//   --runs N       renders per case (default 20)
//   --render-only  skip part 2

import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Element } from 'ltx';
import xml from '@xmpp/xml';
import type { HistoryPoint } from '../src/core/history.js';
import { zoneOffset } from '../src/chart/ticks.js';
import { openStore } from '../src/store/db.js';
import { startProsody } from '../tools/dev/prosody.js';
import { memoryOf, observer, round, start, stop } from './lib.js';

const ROOT = new URL('../..', import.meta.url).pathname;
const ZONE = 'America/Los_Angeles';
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const runsArg = process.argv.indexOf('--runs');
const RUNS = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 20;
const docs = process.argv.includes('--docs');
const renderOnly = process.argv.includes('--render-only');
const gc = (globalThis as { gc?: () => void }).gc;

// The trace's times are Seattle's wall clock; as instants they are that much later in UTC.
const local = zoneOffset(ZONE);
const at = (iso: string): number => {
  const wall = Date.parse(`${iso}Z`);
  return wall - local(wall);
};

interface Sample {
  t: number;
  temperature: number;
  pressure: number;
}

/** The hourly normals between two instants, interpolated to a reading a minute (as bench/wire.ts does, for a window of the year). */
function seattle(from: number, to: number): Sample[] {
  const entry = createRequire(import.meta.url).resolve('vega-datasets');
  const hours = readFileSync(join(dirname(entry), '..', 'data', 'seattle-weather-hourly-normals.csv'), 'utf8')
    .trim()
    .split('\n')
    .slice(1)
    .map((l) => l.split(','))
    .map(([d, p, t]) => ({ t: at(d!), pressure: Number(p), temperature: Number(t) }))
    .filter((h) => h.t >= from - HOUR && h.t <= to + HOUR);
  const out: Sample[] = [];
  for (let h = 0; h + 1 < hours.length; h++) {
    const a = hours[h]!;
    const b = hours[h + 1]!;
    for (let m = 0; m < 60; m++) {
      const f = m / 60;
      out.push({ t: a.t + m * MINUTE, temperature: a.temperature + (b.temperature - a.temperature) * f, pressure: a.pressure + (b.pressure - a.pressure) * f });
    }
  }
  return out;
}

function window(field: 'temperature' | 'pressure', to: number, span: number, drop?: [number, number]): HistoryPoint[] {
  return trace.filter((s) => s.t > to - span && s.t <= to && !(drop && s.t >= drop[0] && s.t < drop[1])).map((s) => ({ t: s.t, value: Math.round(s[field] * 10) / 10 }));
}

/** A fan that a thermostat switches on above 22 °C and off below 21 °C: its changes, as the history stores a switch. */
function fan(to: number, span: number): { points: HistoryPoint[]; before: boolean } {
  let on = false;
  let before = false;
  const points: HistoryPoint[] = [];
  for (const s of trace) {
    if (s.t > to) break;
    const next: boolean = on ? s.temperature > 21 : s.temperature > 22;
    if (next === on) continue;
    on = next;
    if (s.t <= to - span) before = on;
    else points.push({ t: s.t, value: on });
  }
  return { points, before };
}

const dayEnd = at('2010-07-16T18:00:00');
const trace = seattle(dayEnd - 8 * DAY, dayEnd);
const cases = [
  {
    file: 'chart-temperature-24h.png',
    req: {
      device: { name: 'temperature', type: 'number' as const, unit: '°C', decimals: 1 },
      from: dayEnd - DAY,
      to: dayEnd,
      // The gateway was off the network for two and a half hours that night.
      points: window('temperature', dayEnd, DAY, [at('2010-07-16T02:10:00'), at('2010-07-16T04:40:00')]),
      gapMs: 2 * MINUTE,
      thresholds: [{ side: 'above' as const, value: 24 }, { side: 'below' as const, value: 13 }],
      timeZone: ZONE,
    },
  },
  {
    file: 'chart-pressure-7d.png',
    req: {
      device: { name: 'pressure', type: 'number' as const, unit: 'hPa', decimals: 1 },
      from: dayEnd - 7 * DAY,
      to: dayEnd,
      points: window('pressure', dayEnd, 7 * DAY),
      gapMs: 2 * MINUTE,
      thresholds: [],
      timeZone: ZONE,
    },
  },
  {
    file: 'chart-fan-24h.png',
    req: {
      device: { name: 'fan', type: 'boolean' as const, unit: '', decimals: 1 },
      from: dayEnd - DAY,
      to: dayEnd,
      ...fan(dayEnd, DAY),
      gapMs: 2 * MINUTE,
      timeZone: ZONE,
    },
  },
];
const week = window('temperature', dayEnd, 7 * DAY);
trace.length = 0;
gc?.();
gc?.();

const anon = (): number => round(memoryOf(process.pid).rssAnonKiB / 1024);
const before = anon();
// The renderer is loaded as the agent loads it: on the first chart.
const t0 = performance.now();
const { chartPng } = await import('../src/chart/render.js');
const loadMs = performance.now() - t0;
const results: Record<string, unknown>[] = [];
let peak = before;
for (const c of cases) {
  const times: number[] = [];
  let png: Buffer = Buffer.alloc(0);
  for (let i = 0; i < RUNS; i++) {
    const s = performance.now();
    png = chartPng(c.req);
    times.push(performance.now() - s);
    peak = Math.max(peak, anon());
  }
  const first = times[0]!;
  times.sort((a, b) => a - b);
  results.push({ chart: c.file.replace(/^chart-|\.png$/g, ''), readings: c.req.points.length, firstMs: round(first), medianMs: round(times[Math.floor(times.length / 2)]!), pngKiB: round(png.length / 1024) });
  if (docs) {
    mkdirSync(join(ROOT, 'docs'), { recursive: true });
    writeFileSync(join(ROOT, 'docs', c.file), png);
  }
}
gc?.();
console.table(results);
console.log(`renderer loaded in ${round(loadMs)} ms; this process's RssAnon: ${before} MiB before, ${peak} MiB at most while drawing ${RUNS} of each, ${anon()} MiB after${gc ? ' a full collection' : ''}`);
if (docs) console.log(`wrote ${cases.map((c) => `docs/${c.file}`).join(', ')}`);

if (!renderOnly) await inAgent(week);

/**
 * Part 2: the built agent, a week of readings in its store, an owner asking five times for the
 * day and the week; once with charts off (the text answers alone: reading the rows costs memory
 * too) and once with charts on, so the difference is what the images cost.
 */
async function inAgent(readings: HistoryPoint[]): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'xia-bench-chart-'));
  const server = await startProsody({ dir: join(dir, 'prosody'), upload: {} });
  try {
    const [agentJid, ownerJid] = [await server.register('agent', 'pw-agent'), await server.register('owner', 'pw-owner')];
    // The week ends now: the store keeps seven days.
    const shift = Date.now() - 60_000 - readings.at(-1)!.t;
    const store = openStore({ dir: join(dir, 'state') });
    for (const r of readings) store.history.record('temperature', r.t + shift, r.value);
    store.history.flush();
    store.close();
    const owner = await observer({ jid: ownerJid, password: 'pw-owner', service: server.service, ca: readFileSync(server.caFile, 'utf8') });
    const settle = (ms: number) => new Promise((r) => setTimeout(r, ms));
    const fromAgent = (s: Element): boolean => s.name === 'message' && s.attrs.from?.split('/')[0] === agentJid;
    const table: Record<string, Record<string, unknown>> = {};
    for (const charts of [false, true]) {
      const yaml = `xmpp:\n  jid: ${agentJid}\n  resource: agent\n  service: ${server.service}\n  tls:\n    ca_file: ${server.caFile}\nowners: [${ownerJid}]\nmdns:\n  enabled: false\nstate_dir: ${join(dir, 'state')}\ncharts:\n  enabled: ${charts}\n  time_zone: ${ZONE}\ndevices:\n  - { id: temperature, driver: simulated, type: number, unit: "°C", initial: 20, interval: 1h }\nalarms:\n  - { device: temperature, above: 24, below: 13 }\n`;
      writeFileSync(join(dir, 'agent.yaml'), yaml);
      const child = start(process.execPath, [join(ROOT, 'dist/cli.js'), 'run', '--config', join(dir, 'agent.yaml')], { ...process.env, XMPP_IOT_AGENT_PASSWORD: 'pw-agent' });
      // Online when it answers a ping.
      for (let i = 0; i < 100; i++) {
        const ok = await owner.session.request(xml('iq', { type: 'get', to: `${agentJid}/agent` }, xml('ping', { xmlns: 'urn:xmpp:ping' })), 2000).then(() => true, () => false);
        if (ok) break;
        await settle(200);
      }
      await settle(10_000);
      const col = charts ? 'charts on' : 'charts off (text only)';
      const row = (step: string, extra: Record<string, unknown> = {}): void => {
        table[step] = { ...table[step], [`${col}: RssAnon MiB`]: round(memoryOf(child.pid!).rssAnonKiB / 1024), ...extra };
      };
      row('idle, online');
      for (const [i, cmd] of ['chart temperature 24h', 'chart temperature 7d', 'chart temperature 24h', 'chart temperature 7d', 'chart temperature 24h'].entries()) {
        const answered = owner.seen((s) => fromAgent(s) && (charts ? s.getChild('x', 'jabber:x:oob') !== undefined : (s.getChildText('body') ?? '').startsWith('temperature, last')));
        const t0 = performance.now();
        await owner.session.send(xml('message', { type: 'chat', to: `${agentJid}/agent` }, xml('body', {}, cmd)));
        await answered;
        const ms = Math.round(performance.now() - t0);
        await settle(3000);
        row(`${i + 1}. "${cmd}"`, charts ? { 'answer ms (image)': ms } : { 'answer ms (text)': ms });
      }
      await settle(10_000);
      row('10 s later');
      await stop(child);
    }
    console.table(table);
    await owner.stop();
  } finally {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
