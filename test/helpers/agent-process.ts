// The shipped agent (dist/cli.js) as its own process, the way systemd runs it,
// for the fault tests: optionally under a wrapper (faketime's library, a
// network namespace), with its JSON log lines collected as they come.

import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import xml from '@xmpp/xml';
import type { Element } from 'ltx';
import type { Peer } from './peers.js';

export const CLI = join(__dirname, '..', '..', 'dist', 'cli.js');

export interface LogLine {
  time: string;
  level: string;
  ns: string;
  msg: string;
  [key: string]: unknown;
}

export interface AgentProcess {
  child: ChildProcess;
  /** Every JSON line it wrote so far, parsed. */
  lines: LogLine[];
  /** Lines that were not JSON (a crash's stack trace, say). */
  other: string[];
  exited: Promise<number | null>;
  /** A line whose msg matches (a string is a substring match), after index `from`. */
  find(msg: string | RegExp, from?: number): LogLine | undefined;
  count(msg: string | RegExp): number;
  /** SIGTERM and wait (SIGKILL after 10 s). */
  stop(): Promise<number | null>;
  kill(): Promise<void>;
}

const matches = (l: LogLine, msg: string | RegExp): boolean => (typeof msg === 'string' ? l.msg.includes(msg) : msg.test(l.msg));

/** Start `dist/cli.js run --config file`; `prefix` runs it through a wrapper (e.g. ['unshare', '-n', '--']). */
export function runAgent(file: string, opts: { password: string; env?: NodeJS.ProcessEnv; prefix?: string[] }): AgentProcess {
  const argv = [...(opts.prefix ?? []), process.execPath, CLI, 'run', '--config', file];
  const child = spawn(argv[0]!, argv.slice(1), {
    env: { ...process.env, XMPP_IOT_AGENT_PASSWORD: opts.password, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: LogLine[] = [];
  const other: string[] = [];
  let rest = '';
  child.stdout!.on('data', (d: Buffer) => {
    const parts = (rest + d.toString()).split('\n');
    rest = parts.pop()!;
    for (const p of parts) {
      try {
        lines.push(JSON.parse(p) as LogLine);
      } catch {
        other.push(p);
      }
    }
  });
  child.stderr!.on('data', (d: Buffer) => other.push(d.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return {
    child,
    lines,
    other,
    exited,
    find: (msg, from = 0) => lines.slice(from).find((l) => matches(l, msg)),
    count: (msg) => lines.filter((l) => matches(l, msg)).length,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
      const code = await exited;
      clearTimeout(t);
      return code;
    },
    async kill() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGKILL');
      await exited;
    },
  };
}

/** Write a config file (mode 600, as the loader wants) and return its path. */
export function writeConfig(dir: string, yaml: string, name = 'agent.yaml'): string {
  const file = join(dir, name);
  writeFileSync(file, yaml);
  chmodSync(file, 0o600);
  return file;
}

export const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

/** libfaketime, multithreaded flavour (Node runs threads), if installed. */
export function libfaketime(): string | undefined {
  for (const dir of ['/usr/lib/x86_64-linux-gnu/faketime', '/usr/lib/aarch64-linux-gnu/faketime', '/usr/lib/arm-linux-gnueabihf/faketime', '/usr/lib/faketime']) {
    const lib = join(dir, 'libfaketimeMT.so.1');
    if (existsSync(lib)) return lib;
  }
  return undefined;
}

/** A chat command and its answer, from an owner who is also receiving alarms (those are not answers). */
export async function ask(owner: Peer, to: string, body: string, timeoutMs = 10_000): Promise<string> {
  const from = owner.stanzas.length;
  const bare = to.split('/')[0];
  await owner.send(xml('message', { type: 'chat', to }, xml('body', {}, body)));
  const answer = (s: Element): boolean => s.name === 'message' && (s.attrs.from ?? '').split('/')[0] === bare && s.getChildText('body') !== null && !/^[⚠✓] /.test(s.getChildText('body')!);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const reply = owner.stanzas.slice(from).find(answer);
    if (reply) return reply.getChildText('body') ?? '';
    if (Date.now() > deadline) throw new Error(`no answer to "${body}" within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
