// `npm run bench`: the agent against a bare @xmpp/client agent (stock SCRAM and
// native PBKDF2) and a slixmpp agent, in one run, on two private Prosody
// instances: as it ships (Nagle on, mod_smacks defaults) and tuned
// (nagle = false). Prints a table, writes bench/results.json and BENCHMARKS.md.
// Reports; never gates.
//   --quick        a smoke run of a few minutes (figures not for committing)
//   --agents N     fleet size (default 200)
//   --no-report    write bench/results.json only, leave BENCHMARKS.md alone
//   --only a,b     run only these sections (implies --no-report): online, startup,
//                  profiles, login, control, pings, wire, fleet

import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, cpus } from 'node:os';
import { join } from 'node:path';
import StockScram from 'sasl-scram-sha-1';
import { ScramClient } from '../src/xmpp/scram.js';
import type { Element } from 'ltx';
import xml from '@xmpp/xml';
import { DEMO_CHANNELS, FirmwareSim } from '../tools/dev/firmware-sim.js';
import { ptyPair } from '../tools/dev/pty.js';
import { fleet, type FleetResult } from './fleet.js';
import { cpuSecondsOf, median, memoryOf, percentile, round, start, stop, type Memory } from './lib.js';
import { profile, weekStore, type Profile } from './memory.js';
import { pings, type PingFigures } from './pings.js';
import { startup, type Startup } from './startup.js';
import { agentCommand, bareCommand, BUNDLE, DEFAULT_RUNTIME, EIGHT, online, ROOT, server, shippedRuntime, slixCommand, UNBUNDLED, type Command, type Runtime, type Server } from './setup.js';
import { wireBytes, type WireResult } from './wire.js';
import { NATIVE_V8_FLAG, UNIT_PROFILE } from './report.js';

const argv = process.argv.slice(2);
const quick = argv.includes('--quick');
const value = (flag: string): string | undefined => (argv.indexOf(flag) >= 0 ? argv[argv.indexOf(flag) + 1] : undefined);
const fleetSize = value('--agents') ? Number(value('--agents')) : quick ? 50 : 200;
const only = value('--only')?.split(',');
const report = !argv.includes('--no-report') && !only;
const wanted = (section: string): boolean => !only || only.includes(section);
const RUNS = quick ? 3 : 5;
const IDLE_MS = quick ? 3000 : 10_000;
/** After the readings: long enough for the agent to have been quiet 8 s and given memory back. */
const SETTLE_MS = 20_000;
const hasSlix = spawnSync('/usr/bin/python3', ['-c', 'import slixmpp']).status === 0;
const say = (s: string): boolean => process.stderr.write(`[bench] ${s}\n`);
function within<T>(p: Promise<T>, ms: number, why: () => string): Promise<T> {
  return Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(why())), ms).unref())]);
}

const dir = mkdtempSync(join(tmpdir(), 'xia-bench-'));
const shippedRt = shippedRuntime();
const [shipped, tuned] = await Promise.all([server('shipped', join(dir, 'shipped'), hasSlix), server('tuned', join(dir, 'tuned'), hasSlix)]);
// A week of history (8 devices, a row a minute), copied fresh for each agent run: a store as a gateway has it.
const week = weekStore(join(dir, 'week-d'), Array.from({ length: 8 }, (_, i) => `d${i}`), ['d1', 'd3', 'd5', 'd7']);
const weekReplay = weekStore(join(dir, 'week-r'), Array.from({ length: 8 }, (_, i) => `r${i}`));
say(`a week of history: ${week.rows} rows, ${(week.bytes / 1e6).toFixed(1)} MB`);

interface Contender {
  name: string;
  jid: string;
  cmd: (s: Server, stateDir: string) => Command;
}
const agentC: Contender = { name: 'xmpp-iot-agent', jid: shipped.agent.jid, cmd: (s, stateDir) => agentCommand(s, { devices: EIGHT, stateDir }) };
const nativeC: Contender = { name: '@xmpp/client (native PBKDF2)', jid: shipped.native.jid, cmd: (s) => bareCommand(s, 'native') };
const nativeTunedC: Contender = { name: '@xmpp/client (native PBKDF2), the agent\'s runtime settings', jid: shipped.native.jid, cmd: (s) => bareCommand(s, 'native', shippedRt) };
const stockC: Contender = { name: '@xmpp/client (stock SCRAM)', jid: shipped.stock.jid, cmd: (s) => bareCommand(s, 'stock') };
const slixC: Contender = { name: 'slixmpp', jid: shipped.slix.jid, cmd: (s) => slixCommand(s) };
// What one V8 flag costs at start (the unit sets none; deploy/systemd/xmpp-iot-agent.service says why).
const v8FlagRt: Runtime = { label: '--max-semi-space-size=1', nodeArgs: [...shippedRt.nodeArgs, '--max-semi-space-size=1'], env: shippedRt.env };
const nativeV8FlagC: Contender = { name: NATIVE_V8_FLAG, jid: shipped.native.jid, cmd: (s) => bareCommand(s, 'native', v8FlagRt) };
const contenders = [agentC, nativeC, nativeTunedC, nativeV8FlagC, stockC, ...(hasSlix ? [slixC] : [])];

// 1. Time to online, CPU to online, idle memory (on the server as it ships; the agent over a week of history).
// The contenders take turns, run after run, so that a noisy neighbour hurts them alike.
const onlineFig: Record<string, { ms: number[]; cpu: number[]; idle: Memory[] }> = {};
if (wanted('online')) {
  for (let run = 0; run < RUNS; run++) {
    for (const c of contenders) {
      const f = (onlineFig[c.name] ??= { ms: [], cpu: [], idle: [] });
      const stateDir = join(mkdtempSync(join(dir, 'run-')), 'state');
      cpSync(week.dir, stateDir, { recursive: true });
      const [cmd, args, env] = c.cmd(shipped, stateDir);
      const seen = online(shipped, c.jid);
      const t0 = performance.now();
      const child = start(cmd, args, env);
      let stderr = '';
      child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      await within(seen, 60_000, () => `${c.name} did not come online: ${stderr.slice(0, 500)}`);
      f.ms.push(performance.now() - t0);
      f.cpu.push(cpuSecondsOf(child.pid!));
      if (run < 3) {
        await new Promise((r) => setTimeout(r, IDLE_MS));
        f.idle.push(memoryOf(child.pid!));
      }
      await stop(child);
      rmSync(stateDir, { recursive: true, force: true });
      await new Promise((r) => setTimeout(r, 300));
    }
  }
  for (const [name, f] of Object.entries(onlineFig)) say(`${name}: online in ${round(median(f.ms), 0)} ms, idle RssAnon ${median(f.idle.map((m) => m.rssAnonKiB))} KiB (medians)`);
}

// 2. Where the agent's time to online goes.
let startupFig: Startup | undefined;
if (wanted('startup')) {
  startupFig = await startup(shipped, { runs: RUNS, runtime: shippedRt, seed: week.dir, scratch: dir });
  say(`startup: ${JSON.stringify(startupFig.phases)}`);
}

// 3. Memory attribution and the runtime flags: each a profile (idle, a burst of 10^5 readings, idle again) over a week of history.
const profiles: Profile[] = [];
const flagRuntimes: Runtime[] = [
  { label: '--max-semi-space-size=1', nodeArgs: ['--max-semi-space-size=1'], env: {} },
  { label: '--v8-pool-size=1', nodeArgs: ['--v8-pool-size=1'], env: {} },
  { label: 'MALLOC_ARENA_MAX=2', nodeArgs: [], env: { MALLOC_ARENA_MAX: '2' } },
  { label: 'MALLOC_MMAP_THRESHOLD_=65536', nodeArgs: [], env: { MALLOC_MMAP_THRESHOLD_: '65536' } },
  { label: 'UV_THREADPOOL_SIZE=1', nodeArgs: [], env: { UV_THREADPOOL_SIZE: '1' } },
  { label: '--optimize-for-size', nodeArgs: ['--optimize-for-size'], env: {} },
  { label: '--max-semi-space-size=1 --optimize-for-size', nodeArgs: ['--max-semi-space-size=1', '--optimize-for-size'], env: {} },
  { label: '--max-opt=1', nodeArgs: ['--max-opt=1'], env: {} },
  { label: '--jitless', nodeArgs: ['--jitless'], env: {} },
];
if (wanted('profiles')) {
  // --rows N, --profile-runs N: override (development).
  const rows = (value('--rows') ? Number(value('--rows')) : quick ? 2500 : 12_500) + 1;
  const runs = value('--profile-runs') ? Number(value('--profile-runs')) : quick ? 1 : 2;
  // The unit's own configuration carries the growth goal: 5 runs of it (an odd count, a true median)
  // unless --profile-runs says otherwise. Its extra runs are spread among the others' runs, so a load
  // that drifts on a shared machine weighs on the goal as on the rest of the table.
  const goalRuns = value('--profile-runs') || quick ? runs : 5;
  const plan: { label: string; entry?: string; runtime: Runtime; seed?: string }[] = [
    { label: 'unbundled (tsc output of src/), no flags', entry: UNBUNDLED, runtime: DEFAULT_RUNTIME },
    { label: 'bundle, no flags', runtime: DEFAULT_RUNTIME },
    ...flagRuntimes.map((rt) => ({ label: `bundle, ${rt.label}`, runtime: rt })),
    { label: UNIT_PROFILE, runtime: shippedRt },
    { label: 'bundle, as the unit runs it, empty store', runtime: shippedRt, seed: 'empty' },
  ];
  const order = Array.from({ length: runs }, () => plan).flat();
  const unitRow = plan.find((p) => p.label === UNIT_PROFILE)!;
  const extra = goalRuns - runs;
  for (let i = extra; i >= 1; i--) order.splice(Math.round((i * order.length) / (extra + 1)), 0, unitRow);
  const empty = mkdtempSync(join(dir, 'empty-'));
  for (const p of order) {
    const seed = p.seed === 'empty' ? empty : weekReplay.dir;
    const r = await profile(shipped, { label: p.label, entry: p.entry ?? BUNDLE, runtime: p.runtime, rows, idleMs: IDLE_MS, settleMs: SETTLE_MS, seed, scratch: dir });
    profiles.push(r);
    say(`profile ${p.label}: idle ${r.idle.rssAnonKiB} KiB, before ${r.before.rssAnonKiB} KiB, after ${r.readings} readings ${r.after.rssAnonKiB} KiB, ${r.cpuUsPerReading} µs/reading${r.late ? ' (LATE)' : ''}`);
  }
}

// 4. CPU per login: one full SCRAM-SHA-1 client computation, the stock mechanism vs ours,
// at the RFC's 4,096 iterations and Prosody's default 10,000 (no network: the key derivation is the cost).
const loginCpu: Record<string, number> = {};
if (wanted('login')) {
  for (const iterations of [4096, 10_000]) {
    const serverFirst = (nonce: string) => `r=${nonce}srvnonce,s=${Buffer.from('salt-of-sixteen!').toString('base64')},i=${iterations}`;
    const times = async (f: () => Promise<void>): Promise<number> => {
      const v: number[] = [];
      for (let k = 0; k < RUNS; k++) {
        const c0 = process.cpuUsage();
        await f();
        const c = process.cpuUsage(c0);
        v.push((c.user + c.system) / 1e6);
      }
      return round(median(v), 4);
    };
    loginCpu[`stock, ${iterations} iterations`] = await times(async () => {
      const m = new StockScram();
      const first = String(await m.response({ username: 'user', password: 'pencil' }));
      await m.challenge(serverFirst(/r=([^,]+)/.exec(first)![1]!));
      await m.response({ username: 'user', password: 'pencil' });
    });
    loginCpu[`native, ${iterations} iterations`] = await times(async () => {
      const c = new ScramClient('sha1', 'user', 'pencil', new Map());
      const first = c.first();
      await c.final(serverFirst(/r=([^,]+)/.exec(first)![1]!));
    });
  }
}

// 5. Control round trip through the firmware simulator on a pty, on both server settings.
const rtt: Record<string, Record<string, number[]>> = {};
if (wanted('control')) for (const s of [shipped, tuned]) {
  const t: Record<string, number[]> = (rtt[s.name] = {});
  const pty = await ptyPair(mkdtempSync(join(dir, 'pty-')));
  const sim = new FirmwareSim({ path: pty.firmware, channels: DEMO_CHANNELS.map((c) => ({ ...c })) });
  await sim.start();
  const [cmd, args, env] = agentCommand(s, { devices: `  - { id: bridge, driver: serial-bridge, port: ${pty.agent} }\n` });
  const ready = s.o.seen((st) => st.name === 'presence' && st.attrs.from?.split('/')[0] === s.agent.jid && !st.attrs.type && /fan/.test(st.getChildText('status') ?? ''));
  const ctl = start(cmd, args, env);
  await ready;
  const agentFull = `${s.agent.jid}/agent`;
  const n = quick ? 50 : 200;
  const timed = async (inFlight: number, op: (i: number) => Promise<unknown>): Promise<number[]> => {
    const out: number[] = [];
    for (let i = 0; i < n; i += inFlight) {
      await Promise.all(Array.from({ length: Math.min(inFlight, n - i) }, async (_, k) => {
        const t = performance.now();
        await op(i + k);
        out.push(performance.now() - t);
      }));
    }
    return out;
  };
  const iqSet = (i: number) => s.o.session.request(xml('iq', { type: 'set', to: agentFull }, xml('set', { xmlns: 'urn:xmpp:iot:control' }, xml('boolean', { name: 'fan', value: i % 2 ? 'true' : 'false' }))));
  let chatQueue: ((st: Element) => void)[] = [];
  const onChat = (st: Element): void => {
    if (st.name === 'message' && st.attrs.from === agentFull && st.getChildText('body')) chatQueue.shift()?.(st);
  };
  s.o.session.on('stanza', onChat);
  const chat = (i: number) => new Promise<Element>((resolve) => {
    chatQueue.push(resolve);
    void s.o.session.send(xml('message', { type: 'chat', to: agentFull }, xml('body', {}, i % 2 ? 'fan on' : 'fan off')));
  });
  const ping = (to: string) => () => s.o.session.request(xml('iq', { type: 'get', to }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
  t['XEP-0325 set, 1 in flight'] = await timed(1, iqSet);
  t['XEP-0325 set, 50 in flight'] = await timed(50, iqSet);
  t['chat "fan on", 1 in flight'] = await timed(1, chat);
  t['chat "fan on", 50 in flight'] = await timed(50, chat);
  t['ping the agent (floor)'] = await timed(1, ping(agentFull));
  t['ping the server (floor)'] = await timed(1, ping(s.prosody.domain));
  chatQueue = [];
  s.o.session.off('stanza', onChat);
  await stop(ctl);
  await sim.stop();
  await pty.stop();
}

// 6. Pings, 1 and 50 in flight, on both server settings; the contenders take turns, round after round, so that
// a noisy neighbour hurts them alike; the median round counts.
const pingFig: Record<string, Record<string, PingFigures>> = {};
if (wanted('pings')) {
  const n = { sequential: quick ? 200 : 1000, window: quick ? 2000 : 10_000 };
  const rounds = quick ? 3 : 5;
  // --also-agent LABEL=PATH: another build of the agent beside this one (an A/B of a change).
  const also = value('--also-agent')?.split('=');
  const alsoC: Contender[] = also ? [{ name: `xmpp-iot-agent (${also[0]})`, jid: '', cmd: (s, stateDir) => agentCommand(s, { devices: EIGHT, stateDir, entry: join(ROOT, also[1]!) }) }] : [];
  const inPings = [agentC, ...alsoC, nativeC, stockC, ...(hasSlix ? [slixC] : [])];
  for (const s of [shipped, tuned]) {
    const all: Record<string, PingFigures[]> = {};
    for (let r = 0; r < rounds; r++) {
      for (const c of inPings) {
        const jid = s[c === nativeC ? 'native' : c === stockC ? 'stock' : c === slixC ? 'slix' : 'agent'].jid;
        const stateDir = mkdtempSync(join(dir, 'state-'));
        (all[c.name] ??= []).push(await pings(s, jid, c.cmd(s, stateDir), n));
      }
    }
    pingFig[s.name] = {};
    for (const [name, runs] of Object.entries(all)) {
      const med = (f: (p: PingFigures) => number): number => median(runs.map(f));
      const f: PingFigures = {
        sequential: { perSecond: med((p) => p.sequential.perSecond), p50: med((p) => p.sequential.p50), p99: med((p) => p.sequential.p99) },
        inFlight50: { perSecond: med((p) => p.inFlight50.perSecond), p50: med((p) => p.inFlight50.p50), p99: med((p) => p.inFlight50.p99) },
      };
      pingFig[s.name]![name] = f;
      say(`pings, ${s.name} server, ${name}: ${f.sequential.perSecond}/s sequential; ${f.inFlight50.perSecond}/s at 50 in flight, p99 ${f.inFlight50.p99} ms (median of ${rounds}; at 50: ${runs.map((p) => p.inFlight50.perSecond).join(', ')})`);
    }
  }
}

// 7. Wire bytes on the Seattle trace; CPU per 10,000 readings.
let wire: WireResult | undefined;
if (wanted('wire')) {
  // On the tuned server: every simulated minute waits for the server's answer, and Nagle would add its delay to each (not its bytes).
  wire = await wireBytes({ days: quick ? 7 : 30, owner: tuned.owner.jid, agent: tuned.agent, service: tuned.prosody.service, caFile: tuned.prosody.caFile, dir });
  say(`wire: agent ${wire.filtered.bytes} bytes vs MQTT/TLS with deadbands ${wire.mqtt.deadbandTls.bytes}`);
}

await shipped.stop();
await tuned.stop();

// 8. Fleet.
let fleetResult: FleetResult | undefined;
if (wanted('fleet')) fleetResult = await fleet(fleetSize);
rmSync(dir, { recursive: true, force: true });

const summarise = (m: Memory[]) => ({ rssAnonKiB: median(m.map((x) => x.rssAnonKiB)), vmRssKiB: median(m.map((x) => x.vmRssKiB)), rssAnonRangeKiB: [Math.min(...m.map((x) => x.rssAnonKiB)), Math.max(...m.map((x) => x.rssAnonKiB))] });
const results = {
  when: new Date().toISOString(),
  machine: { cpus: cpus().length, model: cpus()[0]?.model, node: process.version, load: readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ') },
  quick,
  runtime: { shipped: shippedRt.label },
  weekStore: { rows: week.rows, bytes: week.bytes },
  online: Object.fromEntries(Object.entries(onlineFig).map(([k, v]) => [k, { medianMs: round(median(v.ms), 0), cpuSecondsToOnline: round(median(v.cpu), 2), idle: summarise(v.idle), runs: v.ms.length }])),
  startup: startupFig,
  profiles,
  loginCpuSeconds: loginCpu,
  controlRoundTripMs: Object.fromEntries(Object.entries(rtt).map(([server, byOp]) => [server, Object.fromEntries(Object.entries(byOp).map(([k, v]) => [k, { p50: round(percentile(v, 50)), p99: round(percentile(v, 99)) }]))])),
  pings: pingFig,
  wire,
  fleet: fleetResult,
};
export type Results = typeof results;
writeFileSync(join(ROOT, 'bench/results.json'), JSON.stringify(results, null, 2) + '\n');
if (report) {
  const { writeReport } = await import('./report.js');
  writeReport(results, join(ROOT, 'BENCHMARKS.md'), join(ROOT, 'README.md'));
  process.stdout.write(readFileSync(join(ROOT, 'BENCHMARKS.md'), 'utf8'));
} else {
  say('results in bench/results.json; BENCHMARKS.md and README.md left as they were');
}
process.exit(0);
