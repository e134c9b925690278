// Small helpers for the benchmarks: percentiles, /proc figures, processes.

import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { Element } from 'ltx';
import xml from '@xmpp/xml';
import { silentLogger } from '../src/runtime/log.js';
import { Session } from '../src/xmpp/session.js';
import { DEFAULT_STREAM_MANAGEMENT } from '../src/config/durability.js';

export function percentile(values: number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

export const median = (v: number[]): number => percentile(v, 50);
export const round = (n: number, d = 1): number => Math.round(n * 10 ** d) / 10 ** d;

export interface Memory {
  vmRssKiB: number;
  rssAnonKiB: number;
}

export function memoryOf(pid: number): Memory {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string): number => Number(/\s(\d+) kB/.exec(status.split('\n').find((l) => l.startsWith(`${name}:`)) ?? '')?.[1] ?? NaN);
  return { vmRssKiB: field('VmRSS'), rssAnonKiB: field('RssAnon') };
}

/** CPU seconds (user + system) a process has used so far. */
export function cpuSecondsOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
}

export function start(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): ChildProcess {
  const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  child.on('error', () => {});
  // Keep the last lines it wrote, and show them if it dies on its own: a benchmark must not hide a crash.
  let tail = '';
  const keep = (d: Buffer): void => void (tail = (tail + d.toString()).slice(-4000));
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  child.on('exit', (code, signal) => {
    if (code !== 0 && code !== null && signal === null) process.stderr.write(`[bench] ${cmd} ${args.join(' ')} exited ${code}:\n${tail}\n`);
  });
  return child;
}

export async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), 5000);
  await gone;
  clearTimeout(t);
}

/**
 * An owner-side session (our own client code) that records stanzas. Without XEP-0198 unless asked:
 * it is the load generator, and its own acks would be measured with whatever it talks to.
 */
export async function observer(o: { jid: string; password: string; service: string; ca: string; sm?: boolean }): Promise<{ session: Session; seen: (pred: (s: Element) => boolean) => Promise<Element>; stop(): Promise<void> }> {
  const session = new Session({ jid: o.jid, resource: 'bench', password: o.password, service: o.service, ca: o.ca, allowPlaintext: false, reconnect: { initialDelayMs: 500, maxDelayMs: 2000 }, log: silentLogger, streamManagement: { ...DEFAULT_STREAM_MANAGEMENT, enabled: o.sm ?? false } });
  const waiters = new Set<{ pred: (s: Element) => boolean; resolve: (s: Element) => void }>();
  session.on('stanza', (s: Element) => {
    for (const w of waiters) if (w.pred(s)) {
      waiters.delete(w);
      w.resolve(s);
    }
  });
  const online = new Promise<void>((r) => session.once('online', () => r()));
  session.start();
  await online;
  await session.request(xml('iq', { type: 'get' }, xml('query', { xmlns: 'jabber:iq:roster' })));
  await session.send(xml('presence'));
  return {
    session,
    seen: (pred) => new Promise((resolve) => waiters.add({ pred, resolve })),
    stop: () => session.stop(),
  };
}

/** Make `owner` subscribed to `account`'s presence, approving from the account's side once. */
export async function subscribe(owner: Session, account: { jid: string; password: string; service: string; ca: string }): Promise<void> {
  const side = await observer(account);
  const approved = side.seen((s) => s.name === 'presence' && s.attrs.type === 'subscribe');
  await owner.send(xml('presence', { type: 'subscribe', to: account.jid }));
  const req = await approved;
  await side.session.send(xml('presence', { type: 'subscribed', to: req.attrs.from!.split('/')[0] }));
  await new Promise((r) => setTimeout(r, 200));
  await side.stop();
}

export interface Load {
  perSecond: number;
  p50: number;
  p99: number;
}

/** `total` requests made by `op`, `inFlight` of them outstanding at any time (a window, not batches). */
export async function load(total: number, inFlight: number, op: () => Promise<unknown>): Promise<Load> {
  const ms: number[] = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next++ < total) {
        const t = performance.now();
        await op();
        ms.push(performance.now() - t);
      }
    }),
  );
  return { perSecond: round(total / ((performance.now() - t0) / 1000), 0), p50: round(percentile(ms, 50)), p99: round(percentile(ms, 99)) };
}

/** Wait until a process has used no more CPU for `quietMs` (a burst of work is over), at most `maxMs`. */
export async function settled(pid: number, quietMs: number, maxMs: number): Promise<void> {
  const end = Date.now() + maxMs;
  let last = cpuSecondsOf(pid);
  while (Date.now() < end) {
    await new Promise((r) => setTimeout(r, quietMs));
    const now = cpuSecondsOf(pid);
    if (now - last <= 0.02) return;
    last = now;
  }
}

/**
 * The Environment= settings of a systemd unit, read as systemd reads them: each line holds
 * assignments separated by spaces, and double quotes around an assignment keep its spaces
 * (Environment="NODE_OPTIONS=--a --b" OTHER=x). Settings that point into systemd's own
 * directories (%d, %t…) are left out: they mean nothing outside the service.
 */
export function unitEnvironment(unitFile: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of readFileSync(unitFile, 'utf8').split('\n')) {
    const m = /^Environment=(.*)$/.exec(line.trim());
    if (!m) continue;
    for (const [, quoted, bare] of m[1]!.matchAll(/"((?:[^"\\]|\\.)*)"|(\S+)/g)) {
      const word = quoted !== undefined ? quoted.replace(/\\(.)/g, '$1') : bare!;
      const eq = word.indexOf('=');
      if (eq <= 0 || word.includes('%')) continue;
      env[word.slice(0, eq)] = word.slice(eq + 1);
    }
  }
  return env;
}

/**
 * The runtime settings the systemd unit gives the agent: NODE_OPTIONS and the other Environment=
 * lines (node flags, malloc and libuv settings), so that the bench runs the agent as it ships.
 */
export function unitRuntime(unitFile: string): { nodeOptions: string[]; env: Record<string, string> } {
  const env = unitEnvironment(unitFile);
  delete env.NODE_ENV;
  const nodeOptions = (env.NODE_OPTIONS ?? '').split(/\s+/).filter(Boolean);
  delete env.NODE_OPTIONS;
  // V8 flags that NODE_OPTIONS refuses go on the command line: ExecStart=/usr/bin/node FLAGS /usr/bin/xmpp-iot-agent …
  const exec = /^ExecStart=\S*\/node((?:\s+--\S+)*)\s/m.exec(readFileSync(unitFile, 'utf8'));
  if (exec) nodeOptions.push(...exec[1]!.split(/\s+/).filter(Boolean));
  return { nodeOptions, env };
}
