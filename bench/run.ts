// `npm run bench`: the agent against a bare @xmpp/client agent (stock SCRAM and
// native PBKDF2) and a slixmpp agent, in one run, on one private Prosody.
// Prints a table, writes bench/results.json and BENCHMARKS.md. Reports; never gates.
//   --quick        a one-minute smoke run
//   --agents N     fleet size (default 200)

import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, cpus } from 'node:os';
import { join } from 'node:path';
import StockScram from 'sasl-scram-sha-1';
import { ScramClient } from '../src/xmpp/scram.js';
import type { Element } from 'ltx';
import xml from '@xmpp/xml';
import { DEMO_CHANNELS, FirmwareSim } from '../tools/dev/firmware-sim.js';
import { startProsody } from '../tools/dev/prosody.js';
import { ptyPair } from '../tools/dev/pty.js';
import { fleet } from './fleet.js';
import { cpuSecondsOf, median, memoryOf, observer, percentile, round, start, stop, subscribe, type Memory } from './lib.js';
import { wireBytes } from './wire.js';

const ROOT = new URL('../..', import.meta.url).pathname;
const quick = process.argv.includes('--quick');
const agentsArg = process.argv.indexOf('--agents');
const fleetSize = agentsArg > 0 ? Number(process.argv[agentsArg + 1]) : quick ? 50 : 200;
const RUNS = quick ? 3 : 5;
const hasSlix = spawnSync('/usr/bin/python3', ['-c', 'import slixmpp']).status === 0;
const say = (s: string): boolean => process.stderr.write(`[bench] ${s}\n`);
function within<T>(p: Promise<T>, ms: number, why: () => string): Promise<T> {
  return Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(why())), ms).unref())]);
}

const dir = mkdtempSync(join(tmpdir(), 'xia-bench-'));
const server = await startProsody({ dir: join(dir, 'prosody') });
const ca = readFileSync(server.caFile, 'utf8');
const service = server.service;
const acct = async (user: string) => ({ user, jid: await server.register(user, `pw-${user}`), password: `pw-${user}`, service, ca });
const [owner, agentAcc, stockAcc, nativeAcc, slixAcc] = await Promise.all(['owner', 'agent', 'stock', 'native', 'slix'].map(acct)) as [Awaited<ReturnType<typeof acct>>, ...Awaited<ReturnType<typeof acct>>[]];
const o = await observer(owner);
for (const a of [agentAcc!, stockAcc!, nativeAcc!, ...(hasSlix ? [slixAcc!] : [])]) await subscribe(o.session, a);

function agentYaml(devices: string, extra = ''): string {
  writeFileSync(join(dir, 'agent.password'), agentAcc!.password);
  chmodSync(join(dir, 'agent.password'), 0o600);
  return `xmpp:\n  jid: ${agentAcc!.jid}\n  resource: agent\n  password_file: ${join(dir, 'agent.password')}\n  service: ${service}\n  tls:\n    ca_file: ${server.caFile}\nowners: [${owner.jid}]\nmdns:\n  enabled: false\nstate_dir: ${join(dir, 'state')}\ndevices:\n${devices}${extra}`;
}
const EIGHT = Array.from({ length: 8 }, (_, i) => `  - { id: d${i}, driver: simulated, type: ${i % 2 ? 'boolean' : 'number'}${i % 2 ? ', writable: true' : ', unit: "°C"'} }\n`).join('');

interface Contender {
  name: string;
  jid: string;
  cmd: () => [string, string[], NodeJS.ProcessEnv?];
}
const contenders: Contender[] = [
  { name: 'xmpp-iot-agent', jid: agentAcc!.jid, cmd: () => { writeFileSync(join(dir, 'a.yaml'), agentYaml(EIGHT)); return [process.execPath, [join(ROOT, 'dist/cli.js'), 'run', '--config', join(dir, 'a.yaml')]]; } },
  { name: '@xmpp/client (stock SCRAM)', jid: stockAcc!.jid, cmd: () => [process.execPath, [join(ROOT, 'dist-tools/bench/baseline-xmpp.js'), stockAcc!.jid, stockAcc!.password, service], { ...process.env, NODE_EXTRA_CA_CERTS: server.caFile }] },
  { name: '@xmpp/client (native PBKDF2)', jid: nativeAcc!.jid, cmd: () => [process.execPath, [join(ROOT, 'dist-tools/bench/baseline-xmpp.js'), nativeAcc!.jid, nativeAcc!.password, service, '--native'], { ...process.env, NODE_EXTRA_CA_CERTS: server.caFile }] },
  ...(hasSlix ? [{ name: 'slixmpp', jid: slixAcc!.jid, cmd: (): [string, string[]] => ['/usr/bin/python3', [join(ROOT, 'bench/baseline_slix.py'), slixAcc!.jid, slixAcc!.password, '127.0.0.1', String(server.port), server.caFile]] }] : []),
];

// 1. Time to online, CPU to online, idle memory.
const online: Record<string, { ms: number[]; cpu: number[]; idle?: Memory }> = {};
for (const c of contenders) {
  online[c.name] = { ms: [], cpu: [] };
  for (let run = 0; run < RUNS; run++) {
    const [cmd, args, env] = c.cmd();
    const seen = o.seen((s) => s.name === 'presence' && s.attrs.from?.split('/')[0] === c.jid && !s.attrs.type);
    const t0 = performance.now();
    const child = start(cmd, args, env);
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    await within(seen, 60_000, () => `${c.name} did not come online: ${stderr.slice(0, 500)}`);
    online[c.name]!.ms.push(performance.now() - t0);
    online[c.name]!.cpu.push(cpuSecondsOf(child.pid!));
    if (run === 0) {
      await new Promise((r) => setTimeout(r, quick ? 3000 : 10_000));
      online[c.name]!.idle = memoryOf(child.pid!);
    }
    await stop(child);
    await new Promise((r) => setTimeout(r, 300));
  }
  say(`${c.name}: online in ${round(median(online[c.name]!.ms), 0)} ms (median of ${RUNS})`);
}

// 2. Memory after 100,000 readings (8 replayed traces of 12,500 rows, as fast as timers go).
const rows = quick ? 2500 : 12_500;
writeFileSync(join(dir, 'trace.csv'), Array.from({ length: rows }, (_, i) => `${i},${(20 + Math.sin(i / 50) * 5).toFixed(2)}`).join('\n'));
const replayDevices = Array.from({ length: 8 }, (_, i) => `  - { id: r${i}, driver: replay, file: ${join(dir, 'trace.csv')}, speed: 1000000000, loop: false, unit: "°C" }\n`).join('');
writeFileSync(join(dir, 'r.yaml'), agentYaml(replayDevices));
const loaded = start(process.execPath, [join(ROOT, 'dist/cli.js'), 'run', '--config', join(dir, 'r.yaml')]);
await o.seen((s) => s.name === 'presence' && s.attrs.from?.split('/')[0] === agentAcc!.jid && !s.attrs.type);
await new Promise((r) => setTimeout(r, (rows * 1.2) + 3000)); // ≥ 1 ms per timer tick per device
const afterReadings = memoryOf(loaded.pid!);
await stop(loaded);
say(`after ${rows * 8} readings: RssAnon ${afterReadings.rssAnonKiB} KiB`);

// 3. CPU per login: one full SCRAM-SHA-1 client computation, the stock mechanism vs ours,
// at the RFC's 4,096 iterations and Prosody's default 10,000 (no network: the key derivation is the cost).
const loginCpu: Record<string, number> = {};
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

// 4. Control round trip through the firmware simulator on a pty.
const pty = await ptyPair(dir);
const sim = new FirmwareSim({ path: pty.firmware, channels: DEMO_CHANNELS.map((c) => ({ ...c })) });
await sim.start();
writeFileSync(join(dir, 'c.yaml'), agentYaml(`  - { id: bridge, driver: serial-bridge, port: ${pty.agent} }\n`));
const ctl = start(process.execPath, [join(ROOT, 'dist/cli.js'), 'run', '--config', join(dir, 'c.yaml')]);
await o.seen((s) => s.name === 'presence' && s.attrs.from?.split('/')[0] === agentAcc!.jid && !s.attrs.type && /fan/.test(s.getChildText('status') ?? ''));
const agentFull = `${agentAcc!.jid}/agent`;
const n = quick ? 50 : 200;
async function timed(inFlight: number, op: (i: number) => Promise<unknown>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i += inFlight) {
    await Promise.all(Array.from({ length: Math.min(inFlight, n - i) }, async (_, k) => {
      const t = performance.now();
      await op(i + k);
      out.push(performance.now() - t);
    }));
  }
  return out;
}
const iqSet = (i: number) => o.session.request(xml('iq', { type: 'set', to: agentFull }, xml('set', { xmlns: 'urn:xmpp:iot:control' }, xml('boolean', { name: 'fan', value: i % 2 ? 'true' : 'false' }))));
let chatQueue: ((s: Element) => void)[] = [];
o.session.on('stanza', (s: Element) => {
  if (s.name === 'message' && s.attrs.from === agentFull && s.getChildText('body')) chatQueue.shift()?.(s);
});
const chat = (i: number) => new Promise<Element>((resolve) => {
  chatQueue.push(resolve);
  void o.session.send(xml('message', { type: 'chat', to: agentFull }, xml('body', {}, i % 2 ? 'fan on' : 'fan off')));
});
const ping = (to: string) => () => o.session.request(xml('iq', { type: 'get', to }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
const rtt: Record<string, number[]> = {
  'XEP-0325 set, 1 in flight': await timed(1, iqSet),
  'XEP-0325 set, 50 in flight': await timed(50, iqSet),
  'chat "fan on", 1 in flight': await timed(1, chat),
  'chat "fan on", 50 in flight': await timed(50, chat),
  'ping the agent (floor)': await timed(1, ping(agentFull)),
  'ping the server (floor)': await timed(1, ping(server.domain)),
};
chatQueue = [];
await stop(ctl);
await sim.stop();
await pty.stop();
const pingThroughput: Record<string, number> = {};
for (const c of contenders.slice(1)) {
  const [cmd, args, env] = c.cmd();
  const seen = o.seen((s) => s.name === 'presence' && s.attrs.from?.split('/')[0] === c.jid && !s.attrs.type);
  const child = start(cmd, args, env);
  const full = (await seen).attrs.from!;
  const t = performance.now();
  for (let i = 0; i < n; i++) await o.session.request(xml('iq', { type: 'get', to: full }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
  pingThroughput[c.name] = round(n / ((performance.now() - t) / 1000), 0);
  await stop(child);
}

// 5. Wire bytes on the Seattle trace; CPU per 10,000 readings.
const wire = await wireBytes({ days: quick ? 7 : 30, owner: owner.jid, agent: agentAcc!, service, caFile: server.caFile, dir });

await o.stop();
await server.stop();

// 6. Fleet.
const fleetResult = await fleet(fleetSize);
rmSync(dir, { recursive: true, force: true });

const results = {
  when: new Date().toISOString(),
  machine: { cpus: cpus().length, model: cpus()[0]?.model, node: process.version },
  quick,
  online: Object.fromEntries(Object.entries(online).map(([k, v]) => [k, { medianMs: round(median(v.ms), 0), cpuSecondsToOnline: round(median(v.cpu), 2), idle: v.idle }])),
  afterReadings: { readings: rows * 8, ...afterReadings },
  loginCpuSeconds: loginCpu,
  controlRoundTripMs: Object.fromEntries(Object.entries(rtt).map(([k, v]) => [k, { p50: round(percentile(v, 50)), p99: round(percentile(v, 99)) }])),
  pingThroughputPerSecond: pingThroughput,
  wire,
  fleet: fleetResult,
};
export type Results = typeof results;
writeFileSync(join(ROOT, 'bench/results.json'), JSON.stringify(results, null, 2) + '\n');
const { writeReport } = await import('./report.js');
writeReport(results, join(ROOT, 'BENCHMARKS.md'));
process.stdout.write(readFileSync(join(ROOT, 'BENCHMARKS.md'), 'utf8'));
process.exit(0);
