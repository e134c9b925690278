// Development probe for the growth after a burst of readings (issue #13): the
// profile of bench/memory.ts as the unit runs it, a few times, with RssAnon
// sampled for a while after the burst, and optionally V8's own figures from
// inside the agent (a preloaded script answering SIGUSR2). Prints; writes nothing.
//   node dist-tools/bench/growth.js [--runs N] [--rows N] [--idle MS] [--settle MS] [--tail MS] [--stats]
//     [--regions] [--log FILE] [--node FLAG]... [--env K=V]... [--drop FLAG|KEY]... [--entry PATH]
// --stats: V8's heap figures at each sample (a preloaded script; it costs memory itself);
// --regions: which mappings of /proc/PID/smaps changed; --log: the agent's log, at debug;
// --drop: leave out one of the unit's own settings (a Node option, or an environment key).

import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { memoryOf } from './lib.js';
import { profile, weekStore } from './memory.js';
import { BUNDLE, server, shippedRuntime, type Runtime } from './setup.js';

const argv = process.argv.slice(2);
const value = (flag: string): string | undefined => (argv.indexOf(flag) >= 0 ? argv[argv.indexOf(flag) + 1] : undefined);
const values = (flag: string): string[] => argv.flatMap((a, i) => (a === flag && argv[i + 1] !== undefined ? [argv[i + 1]!] : []));
const runs = Number(value('--runs') ?? 3);
const rows = Number(value('--rows') ?? 12_500) + 1;
const idleMs = Number(value('--idle') ?? 10_000);
const settleMs = Number(value('--settle') ?? 20_000);
const tailMs = Number(value('--tail') ?? 20_000);
/** When the profile reads "after": settleMs after the burst, never before idleMs. */
const afterMs = Math.max(idleMs, settleMs);
const stats = argv.includes('--stats');

const dir = mkdtempSync(join(tmpdir(), 'xia-growth-'));
const statsFile = join(dir, 'stats.jsonl');
const preload = join(dir, 'stats.cjs');
writeFileSync(
  preload,
  `const v8 = require('v8'); const fs = require('fs');
process.on('SIGUSR2', () => {
  const m = process.memoryUsage(); const h = v8.getHeapStatistics();
  const spaces = Object.fromEntries(v8.getHeapSpaceStatistics().map((s) => [s.space_name, Math.round(s.physical_space_size / 1024)]));
  fs.appendFileSync(${JSON.stringify(statsFile)}, JSON.stringify({ heapUsed: m.heapUsed >> 10, external: m.external >> 10, arrayBuffers: m.arrayBuffers >> 10, physical: h.total_physical_size >> 10, malloced: h.malloced_memory >> 10, spaces }) + '\\n');
});\n`,
);
const unit = shippedRuntime();
const dropped = values('--drop');
const runtime: Runtime = {
  label: 'probe',
  nodeArgs: [...unit.nodeArgs.filter((a) => !dropped.includes(a)), ...values('--node'), ...(stats ? ['--require', preload] : [])],
  env: { ...Object.fromEntries(Object.entries(unit.env).filter(([k]) => !dropped.includes(k))), ...Object.fromEntries(values('--env').map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)])) },
};

/** Anonymous KiB per mapping (start address → [size KiB, anon KiB, name]), for a diff. */
function regions(pid: number): Map<string, [number, number, string]> {
  const out = new Map<string, [number, number, string]>();
  let key = '';
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (m) {
      key = m[1]!;
      out.set(key, [(parseInt(m[2]!, 16) - parseInt(m[1]!, 16)) >> 10, 0, m[3]!]);
    }
    const a = /^Anonymous:\s+(\d+) kB/.exec(line);
    if (a && out.has(key)) out.get(key)![1] = Number(a[1]);
  }
  return out;
}
let snap: Map<string, [number, number, string]> | undefined;
function diff(pid: number): void {
  const now = regions(pid);
  if (snap && argv.includes('--regions')) {
    for (const [k, [size, anon, name]] of now) {
      const was = snap.get(k)?.[1] ?? 0;
      if (Math.abs(anon - was) >= 64) console.log(`    ${k} ${size} KiB ${name || '(anon)'}: ${was} → ${anon} KiB`);
    }
    for (const [k, [size, anon, name]] of snap) if (!now.has(k) && anon >= 64) console.log(`    ${k} ${size} KiB ${name || '(anon)'}: ${anon} → gone`);
  }
  snap = now;
}

/** Private memory split as /proc/PID/smaps has it: malloc's brk heap, other anonymous mappings. */
function split(pid: number): string {
  let heap = 0;
  let anon = 0;
  let name = '';
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const m = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (m) name = m[1]!;
    const a = /^Anonymous:\s+(\d+) kB/.exec(line);
    if (a) name === '[heap]' ? (heap += Number(a[1])) : (anon += Number(a[1]));
  }
  return `brk heap ${heap} KiB, other anon ${anon} KiB`;
}

async function v8Stats(pid: number): Promise<string> {
  if (!stats) return '';
  const lines = (): string[] => (existsSync(statsFile) ? readFileSync(statsFile, 'utf8').split('\n').filter(Boolean) : []);
  const before = lines().length;
  process.kill(pid, 'SIGUSR2');
  for (let i = 0; i < 50; i++) {
    await new Promise((r) => setTimeout(r, 20));
    const now = lines();
    if (now.length > before) return `; v8 ${now[now.length - 1]}`;
  }
  return '; v8 (no answer)';
}

const T = performance.now();
const s = await server('shipped', join(dir, 'shipped'), false);
console.log(`server up in ${Math.round(performance.now() - T)} ms`);
const seed = weekStore(join(dir, 'week-r'), Array.from({ length: 8 }, (_, i) => `r${i}`));
console.log(`week store in ${Math.round(performance.now() - T)} ms`);
let t0 = 0;
try {
  for (let run = 0; run < runs; run++) {
    const r = await profile(s, {
      label: 'probe', logTo: value('--log'), extra: value('--log') ? 'log:\n  level: debug\n' : undefined, entry: value('--entry') ?? BUNDLE, runtime, rows, idleMs, settleMs, seed: seed.dir, scratch: dir,
      async beforehand(pid) {
        diff(pid);
        console.log(`  ${new Date().toISOString()} before: RssAnon ${memoryOf(pid).rssAnonKiB} KiB; ${split(pid)}${await v8Stats(pid)}`);
        t0 = performance.now();
      },
      async afterwards(pid) {
        console.log(`  burst and idle took ${Math.round(performance.now() - t0)} ms`);
        diff(pid);
        console.log(`  ${new Date().toISOString()} +${afterMs / 1000} s: RssAnon ${memoryOf(pid).rssAnonKiB} KiB; ${split(pid)}${await v8Stats(pid)}`);
        for (let t = afterMs; t < afterMs + tailMs; ) {
          await new Promise((r2) => setTimeout(r2, 10_000));
          t += 10_000;
          diff(pid);
          console.log(`  +${t / 1000} s: RssAnon ${memoryOf(pid).rssAnonKiB} KiB; ${split(pid)}${await v8Stats(pid)}`);
        }
      },
    });
    console.log(`run ${run + 1}: idle ${r.idle.rssAnonKiB} KiB; before ${r.before.rssAnonKiB} KiB → after ${r.after.rssAnonKiB} KiB: growth ${((r.after.rssAnonKiB - r.before.rssAnonKiB) / 1024).toFixed(1)} MiB, ${r.cpuUsPerReading} µs/reading`);
    appendFileSync(join(dir, 'growth.log'), JSON.stringify(r) + '\n');
  }
} finally {
  await s.stop();
  rmSync(dir, { recursive: true, force: true });
}
process.exit(0);
