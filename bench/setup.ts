// What every section of the bench shares: a private Prosody (as it ships, or
// tuned), its accounts, an owner who is subscribed to each of them, and the
// command lines that start the agent and the baselines against it.

import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startProsody, type Prosody } from '../tools/dev/prosody.js';
import { observer, subscribe, unitRuntime } from './lib.js';

export const ROOT = new URL('../..', import.meta.url).pathname;
export const UNIT = join(ROOT, 'deploy/systemd/xmpp-iot-agent.service');
export const BUNDLE = join(ROOT, 'dist/cli.js');
/** The tsc output of src/, run the same way: what the agent was before the bundle. */
export const UNBUNDLED = join(ROOT, 'dist-tools/src/cli.js');

export interface Account {
  user: string;
  jid: string;
  password: string;
  service: string;
  ca: string;
}
export type Observer = Awaited<ReturnType<typeof observer>>;

export interface Server {
  /** 'shipped': Nagle on, mod_smacks defaults (Prosody as Debian ships it); 'tuned': nagle = false. */
  name: 'shipped' | 'tuned';
  prosody: Prosody;
  dir: string;
  owner: Account;
  agent: Account;
  stock: Account;
  native: Account;
  slix: Account;
  o: Observer;
  stop(): Promise<void>;
}

export async function server(name: Server['name'], dir: string, hasSlix: boolean): Promise<Server> {
  mkdirSync(dir, { recursive: true });
  const prosody = await startProsody({ dir: join(dir, 'prosody'), nagle: name === 'shipped' });
  const ca = readFileSync(prosody.caFile, 'utf8');
  const acct = async (user: string): Promise<Account> => ({ user, jid: await prosody.register(user, `pw-${user}`), password: `pw-${user}`, service: prosody.service, ca });
  const [owner, agent, stock, native, slix] = await Promise.all(['owner', 'agent', 'stock', 'native', 'slix'].map(acct)) as [Account, Account, Account, Account, Account];
  const o = await observer(owner);
  for (const a of [agent, stock, native, ...(hasSlix ? [slix] : [])]) await subscribe(o.session, a);
  writeFileSync(join(dir, 'agent.password'), agent.password);
  chmodSync(join(dir, 'agent.password'), 0o600);
  return {
    name, prosody, dir, owner, agent, stock, native, slix, o,
    async stop() {
      await o.stop();
      await prosody.stop();
    },
  };
}

/** How a process is started: which node flags and environment on top of the bench's own. */
export interface Runtime {
  label: string;
  nodeArgs: string[];
  env: Record<string, string>;
}
export const DEFAULT_RUNTIME: Runtime = { label: 'no flags', nodeArgs: [], env: {} };
/** The runtime settings of deploy/systemd/xmpp-iot-agent.service, read from the unit itself. */
export function shippedRuntime(): Runtime {
  const u = unitRuntime(UNIT);
  const all = [...u.nodeOptions, ...Object.entries(u.env).map(([k, v]) => `${k}=${v}`)];
  return { label: all.join(' ') || 'no flags', nodeArgs: u.nodeOptions, env: u.env };
}

export type Command = [string, string[], NodeJS.ProcessEnv];
const withRuntime = (rt: Runtime, script: string, args: string[], env: NodeJS.ProcessEnv = process.env): Command => [process.execPath, [...rt.nodeArgs, script, ...args], { ...env, ...rt.env }];

export const EIGHT = Array.from({ length: 8 }, (_, i) => `  - { id: d${i}, driver: simulated, type: ${i % 2 ? 'boolean' : 'number'}${i % 2 ? ', writable: true' : ', unit: "°C"'} }\n`).join('');

let configs = 0;
/** An agent config against this server (mDNS off: nothing leaves loopback), written to a file of its own. */
export function agentConfig(s: Server, o: { devices: string; stateDir?: string; extra?: string }): string {
  const file = join(s.dir, `agent-${++configs}.yaml`);
  writeFileSync(
    file,
    `xmpp:\n  jid: ${s.agent.jid}\n  resource: agent\n  password_file: ${join(s.dir, 'agent.password')}\n  service: ${s.prosody.service}\n  tls:\n    ca_file: ${s.prosody.caFile}\nowners: [${s.owner.jid}]\nmdns:\n  enabled: false\nstate_dir: ${o.stateDir ?? join(s.dir, `state-${configs}`)}\ndevices:\n${o.devices}${o.extra ?? ''}`,
  );
  return file;
}

export function agentCommand(s: Server, o: { devices: string; stateDir?: string; extra?: string; entry?: string; runtime?: Runtime }): Command {
  return withRuntime(o.runtime ?? shippedRuntime(), o.entry ?? BUNDLE, ['run', '--config', agentConfig(s, o)]);
}

export function bareCommand(s: Server, which: 'stock' | 'native', runtime: Runtime = DEFAULT_RUNTIME): Command {
  const a = s[which];
  return withRuntime(runtime, join(ROOT, 'dist-tools/bench/baseline-xmpp.js'), [a.jid, a.password, s.prosody.service, ...(which === 'native' ? ['--native'] : [])], { ...process.env, NODE_EXTRA_CA_CERTS: s.prosody.caFile });
}

export function slixCommand(s: Server): Command {
  return ['/usr/bin/python3', [join(ROOT, 'bench/baseline_slix.py'), s.slix.jid, s.slix.password, '127.0.0.1', String(s.prosody.port), s.prosody.caFile], process.env];
}

/** The owner sees this account's available presence. */
export const online = (s: Server, jid: string) => s.o.seen((st) => st.name === 'presence' && st.attrs.from?.split('/')[0] === jid && !st.attrs.type);
