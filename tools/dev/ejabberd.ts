// A private two-node ejabberd cluster on loopback, for the cluster tests and
// the fleet benchmark: one domain served by node A on 127.0.0.1 and node B on
// 127.0.0.2, each with its own config, spool (Mnesia) and log directory, one
// shared Erlang cookie, a fresh self-signed certificate, TLS required,
// XEP-0198 and an XEP-0313 archive of every message, no s2s, nothing bound
// beyond its loopback address.
//
// How it is put together (facts of ejabberd 23.01 on Debian 12):
// - ejabberdctl runs without epmd when ERL_DIST_PORT is set, but Erlang then
//   assumes every node listens on that same port: so each node binds its own
//   loopback address (-kernel inet_dist_use_interface) on the one port.
// - Run as root, ejabberdctl switches to the ejabberd user: the directories
//   are handed to that user.
// - `join_cluster` wipes the joining node's own Mnesia schema and copies the
//   other node's tables, so B joins A once, right after both started empty.
// - A node restarted while its peer runs loads its tables from the peer; a
//   node that went down first and is restarted alone waits silently for the
//   peer's tables (startNode({ force: true }) loads them with
//   mnesia:force_load_table instead).

import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, existsSync, mkdirSync, openSync, closeSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { findBinary, makeCertificate } from './prosody.js';

const run = promisify(execFile);

export class EjabberdMissingError extends Error {}

export interface EjabberdNode {
  /** A or B. */
  label: string;
  /** The Erlang node name, e.g. xiaa@127.0.0.1. */
  name: string;
  /** The loopback address it binds (c2s and Erlang distribution). */
  ip: string;
  /** STARTTLS service (xmpp://ip:port) and direct TLS service (xmpps://ip:port). */
  service: string;
  directService: string;
  dir: string;
  logFile: string;
  /** The node's BEAM process, while it runs. */
  pid(): number | undefined;
  readonly running: boolean;
}

export interface EjabberdCluster {
  domain: string;
  caFile: string;
  /** STARTTLS and direct TLS ports, the same on both addresses. */
  port: number;
  tlsPort: number;
  nodes: [EjabberdNode, EjabberdNode];
  /** One account (through node A; Mnesia replicates it). */
  register(user: string, password: string): Promise<string>;
  /** Many accounts in one import (XEP-0227 file through `ejabberdctl import_piefxis`): seconds instead of one VM start per account. */
  registerMany(accounts: { user: string; password: string }[]): Promise<void>;
  /** Run an ejabberdctl command against a node; its stdout. */
  ctl(node: EjabberdNode, ...args: string[]): Promise<string>;
  /** SIGKILL the node's VM: a crash or a power cut; its users' sessions die with it. */
  kill(node: EjabberdNode): Promise<void>;
  /** An orderly stop (`ejabberdctl stop`): sessions are closed and contacts told. */
  drain(node: EjabberdNode): Promise<void>;
  /** Start a stopped node again on its own spool; it rejoins the cluster. force: its peer is down, load the tables anyway. */
  restart(node: EjabberdNode, opts?: { force?: boolean }): Promise<void>;
  /** The running nodes, as node A sees them (`list_cluster` and Mnesia's running nodes). */
  runningNodes(via?: EjabberdNode): Promise<string[]>;
  stop(): Promise<void>;
}

export interface ClusterOptions {
  /** Working directory (config, spool, logs, certificate). */
  dir: string;
  domain?: string;
  /** XEP-0198 resumption time; default 300 s. */
  resumeTimeoutS?: number;
  /** ejabberd's log level; default warning. */
  logLevel?: 'info' | 'warning' | 'error';
}

/** Every VM this process started; none outlives it. */
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of running) c.kill('SIGKILL');
});

/** Why the cluster cannot run here, or undefined when it can. */
export function ejabberdUnavailable(): string | undefined {
  if (!findBinary('ejabberdctl') || !findBinary('erl')) return 'ejabberd is not installed: apt-get install -y ejabberd';
  const root = typeof process.getuid === 'function' && process.getuid() === 0;
  // ejabberdctl refuses anyone but root (it switches to the ejabberd user) and that user.
  if (!root) return 'the ejabberd cluster needs root (ejabberdctl runs the nodes as the ejabberd user)';
  return undefined;
}

function freeOnBoth(ips: string[], avoid: Set<number>): Promise<number> {
  const tryPort = async (): Promise<number> => {
    const port = await new Promise<number>((resolve, reject) => {
      const s = net.createServer();
      s.once('error', reject);
      s.listen(0, ips[0], () => {
        const p = (s.address() as net.AddressInfo).port;
        s.close(() => resolve(p));
      });
    });
    if (avoid.has(port)) return tryPort();
    for (const ip of ips.slice(1)) {
      const ok = await new Promise<boolean>((resolve) => {
        const s = net.createServer();
        s.once('error', () => resolve(false));
        s.listen(port, ip, () => s.close(() => resolve(true)));
      });
      if (!ok) return tryPort();
    }
    avoid.add(port);
    return port;
  };
  return tryPort();
}

function nodeConfig(o: { domain: string; ip: string; port: number; tlsPort: number; cert: string; key: string; resumeTimeoutS: number; logLevel: string }): string {
  return `# Private ejabberd node for xmpp-iot-agent tests and benchmarks (generated).
loglevel: ${o.logLevel}
log_rotate_count: 0
hide_sensitive_log_data: true
hosts:
  - ${JSON.stringify(o.domain)}
certfiles:
  - ${JSON.stringify(o.cert)}
  - ${JSON.stringify(o.key)}
listen:
  - port: ${o.port}
    ip: ${JSON.stringify(o.ip)}
    module: ejabberd_c2s
    max_stanza_size: 262144
    access: c2s
    # ejabberd's listen queue is 5 by default: a fleet logging in at once overflows it and the kernel drops SYNs.
    backlog: 1024
    starttls_required: true
  - port: ${o.tlsPort}
    ip: ${JSON.stringify(o.ip)}
    module: ejabberd_c2s
    max_stanza_size: 262144
    access: c2s
    # ejabberd's listen queue is 5 by default: a fleet logging in at once overflows it and the kernel drops SYNs.
    backlog: 1024
    tls: true
# No federation: no s2s listener, and none out.
s2s_access: none
auth_method: internal
auth_password_format: scram
disable_sasl_mechanisms: ["digest-md5", "X-OAUTH2"]
acl:
  local:
    user_regexp: ""
access_rules:
  local:
    allow: local
  c2s:
    allow: all
modules:
  mod_roster: {}
  mod_disco: {}
  mod_caps: {}
  mod_ping: {}
  mod_version: {}
  mod_offline: {}
  mod_stream_mgmt:
    resume_timeout: ${o.resumeTimeoutS}
  # Every message archived (ejabberd's own default is never): the agent's exactly-once check reads it.
  mod_mam:
    db_type: mnesia
    default: always
`;
}

export async function startCluster(opts: ClusterOptions): Promise<EjabberdCluster> {
  const why = ejabberdUnavailable();
  if (why) throw new EjabberdMissingError(why);
  const ctlBin = findBinary('ejabberdctl')!;
  const domain = opts.domain ?? 'iot.test';
  const dir = opts.dir;
  mkdirSync(dir, { recursive: true });
  const { cert, key } = await makeCertificate(dir, domain);
  const ips = ['127.0.0.1', '127.0.0.2'];
  const taken = new Set<number>();
  const distPort = await freeOnBoth(ips, taken);
  const port = await freeOnBoth(ips, taken);
  const tlsPort = await freeOnBoth(ips, taken);
  const cookie = randomBytes(12).toString('hex');
  const owner = (() => {
    try {
      const line = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith('ejabberd:'));
      const [, , uid, gid] = line?.split(':') ?? [];
      return uid && gid ? { uid: Number(uid), gid: Number(gid) } : undefined;
    } catch {
      return undefined;
    }
  })();
  // The nodes run as the ejabberd user: every directory above ours must let it through.
  for (let p = dirname(dir); owner && p !== dirname(p); p = dirname(p)) {
    if ((statSync(p).mode & 0o001) === 0) throw new Error(`${p} is not traversable by the ejabberd user (chmod o+x it, or put the cluster elsewhere)`);
  }
  const handOver = (path: string): void => {
    if (!owner) return;
    chownSync(path, owner.uid, owner.gid);
    if (statSync(path).isDirectory()) for (const f of readdirSync(path)) handOver(join(path, f));
  };

  interface State extends EjabberdNode {
    ctlCfg: string;
    yml: string;
    spool: string;
    logs: string;
    pidFile: string;
    child?: ChildProcess;
  }
  const make = (label: string, ip: string): State => {
    const nodeDir = join(dir, `node-${label.toLowerCase()}`);
    const spool = join(nodeDir, 'spool');
    const logs = join(nodeDir, 'logs');
    mkdirSync(spool, { recursive: true });
    mkdirSync(logs, { recursive: true });
    const yml = join(nodeDir, 'ejabberd.yml');
    const ctlCfg = join(nodeDir, 'ejabberdctl.cfg');
    const pidFile = join(nodeDir, 'ejabberd.pid');
    const name = `xia${label.toLowerCase()}@${ip}`;
    writeFileSync(yml, nodeConfig({ domain, ip, port, tlsPort, cert, key, resumeTimeoutS: opts.resumeTimeoutS ?? 300, logLevel: opts.logLevel ?? 'warning' }));
    const erlIp = `{${ip.split('.').join(',')}}`;
    writeFileSync(
      ctlCfg,
      [
        `ERLANG_NODE=${name}`,
        `ERL_DIST_PORT=${distPort}`,
        // Each node's distribution listener on its own address (every node uses ERL_DIST_PORT).
        `ERL_OPTIONS="-setcookie ${cookie} -kernel inet_dist_use_interface ${erlIp} -env ERL_CRASH_DUMP_BYTES 0"`,
        `EJABBERD_PID_PATH=${pidFile}`,
        `EJABBERD_BYPASS_WARNINGS=true`,
        '',
      ].join('\n'),
    );
    let node!: State;
    node = {
      label,
      name,
      ip,
      service: `xmpp://${ip}:${port}`,
      directService: `xmpps://${ip}:${tlsPort}`,
      dir: nodeDir,
      logFile: join(logs, 'ejabberd.log'),
      ctlCfg,
      yml,
      spool,
      logs,
      pidFile,
      pid: () => {
        if (!node.child || node.child.exitCode !== null || node.child.signalCode !== null) return undefined;
        try {
          return Number(readFileSync(pidFile, 'utf8').trim()) || undefined;
        } catch {
          return undefined;
        }
      },
      get running() {
        return node.child !== undefined && node.child.exitCode === null && node.child.signalCode === null;
      },
    };
    return node;
  };
  const a = make('A', ips[0]!);
  const b = make('B', ips[1]!);
  handOver(dir);

  const args = (n: State): string[] => ['--ctl-config', n.ctlCfg, '--config', n.yml, '--spool', n.spool, '--logs', n.logs];
  const ctl = async (n: EjabberdNode, ...rest: string[]): Promise<string> => {
    const s = n as State;
    const { stdout } = await run(ctlBin, [...args(s), ...rest], { timeout: 60_000 });
    return stdout;
  };
  const tail = (n: State): string => {
    const f = n.logFile;
    const out = join(n.dir, 'stdout.log');
    const lines = (p: string): string => (existsSync(p) ? readFileSync(p, 'utf8').split('\n').slice(-20).join('\n') : '');
    return `${lines(f)}\n${lines(out)}`;
  };
  const listening = (ip: string, p: number): Promise<boolean> =>
    new Promise((resolve) => {
      const s = net.connect(p, ip);
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
  const launch = async (n: State, force = false): Promise<void> => {
    const out = openSync(join(n.dir, 'stdout.log'), 'a');
    const c = spawn(ctlBin, [...args(n), 'foreground'], { stdio: ['ignore', out, out] });
    closeSync(out);
    n.child = c;
    running.add(c);
    c.on('exit', () => running.delete(c));
    c.on('error', () => {});
    const deadline = Date.now() + 60_000;
    const started = Date.now();
    let forced = !force;
    while (Date.now() < deadline) {
      if (c.exitCode !== null) break;
      if (await listening(n.ip, tlsPort)) {
        await ctl(n, 'status');
        return;
      }
      // Restarted alone after its peer: it waits for the peer's copy of every table unless told to load its own.
      if (!forced && Date.now() - started > 3000 && existsSync(n.pidFile)) {
        forced = true;
        await forceLoad(n).catch(() => {});
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`ejabberd node ${n.name} did not start (exit ${c.exitCode}).\n${tail(n)}`);
  };
  const forceLoad = async (n: State): Promise<void> => {
    // There is no ejabberdctl command for it: a hidden Erlang node with the cluster's cookie asks.
    const erl = findBinary('erl')!;
    const probe = `xiaprobe${randomBytes(3).toString('hex')}@${n.ip}`;
    const code = `R = rpc:call('${n.name}', lists, map, [fun(T) -> mnesia:force_load_table(T) end, rpc:call('${n.name}', mnesia, system_info, [tables])]), io:format("~p~n", [R]), halt().`;
    await run(erl, ['-name', probe, '-setcookie', cookie, '-hidden', '-noshell', '-erl_epmd_port', String(distPort), '-start_epmd', 'false', '-dist_listen', 'false', '-eval', code], { timeout: 30_000 });
  };
  const halt = async (n: State, how: 'kill' | 'drain'): Promise<void> => {
    const c = n.child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise<void>((r) => c.once('exit', () => r()));
    if (how === 'kill') {
      const pid = n.pid();
      if (pid) process.kill(pid, 'SIGKILL');
      else c.kill('SIGKILL');
    } else {
      await ctl(n, 'stop').catch(() => c.kill('SIGTERM'));
    }
    const t = setTimeout(() => {
      const pid = n.pid();
      if (pid) process.kill(pid, 'SIGKILL');
      c.kill('SIGKILL');
    }, 20_000);
    await exited;
    clearTimeout(t);
    n.child = undefined;
  };
  const runningNodes = async (via: EjabberdNode = a): Promise<string[]> => {
    const out = await ctl(via, 'list_cluster');
    return out.split('\n').map((l) => l.trim().replace(/^'|'$/g, '')).filter(Boolean);
  };

  try {
    await launch(a);
    await launch(b);
    await ctl(b, 'join_cluster', a.name);
    // join_cluster restarts ejabberd on B with A's tables: wait until it serves again.
    const deadline = Date.now() + 60_000;
    for (;;) {
      const nodes = await runningNodes(a).catch((): string[] => []);
      if (nodes.includes(b.name) && (await listening(b.ip, tlsPort)) && (await ctl(b, 'status').then(() => true, () => false))) break;
      if (Date.now() > deadline) throw new Error(`node B did not join the cluster; A sees ${JSON.stringify(nodes)}\n${tail(b)}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  } catch (err) {
    await halt(b, 'kill');
    await halt(a, 'kill');
    throw err;
  }

  return {
    domain,
    caFile: cert,
    port,
    tlsPort,
    nodes: [a, b],
    async register(user, password) {
      await ctl(a, 'register', user, domain, password);
      return `${user}@${domain}`;
    },
    async registerMany(accounts) {
      const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');
      const file = join(dir, `accounts-${randomBytes(3).toString('hex')}.xml`);
      writeFileSync(
        file,
        `<?xml version='1.0' encoding='UTF-8'?>\n<server-data xmlns='urn:xmpp:pie:0'>\n<host jid='${esc(domain)}'>\n${accounts
          .map((x) => `<user name="${esc(x.user)}" password="${esc(x.password)}"/>`)
          .join('\n')}\n</host>\n</server-data>\n`,
      );
      handOver(file);
      await ctl(a, 'import_piefxis', file);
    },
    ctl,
    kill: (n) => halt(n as State, 'kill'),
    drain: (n) => halt(n as State, 'drain'),
    async restart(n, o) {
      const s = n as State;
      if (s.running) return;
      await launch(s, o?.force ?? false);
    },
    runningNodes,
    async stop() {
      // B first, then A: an orderly stop of a whole cluster, so that a restart of A alone would not wait for B.
      await halt(b, 'drain').catch(() => halt(b, 'kill'));
      await halt(a, 'drain').catch(() => halt(a, 'kill'));
    },
  };
}
