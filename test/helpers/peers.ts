// Test peers: real @xmpp/client connections to the suite's Prosody, and an
// agent built from a YAML config exactly as the CLI builds it.

import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { inject } from 'vitest';
import { client, type Client as StockClient } from '@xmpp/client';
import xmlFactory from '@xmpp/xml';
export const xml = xmlFactory;
import type { Element } from 'ltx';
import { Agent, type AgentOptions } from '../../src/agent.js';
import { loadConfigText } from '../../src/config/load.js';
import { createLogger, createSink, type LogSink } from '../../src/runtime/log.js';

const run = promisify(execFile);

export const server = () => inject('prosody');

export interface Account {
  user: string;
  jid: string;
  password: string;
}

export async function account(prefix: string): Promise<Account> {
  const s = server();
  const user = `${prefix}-${randomBytes(4).toString('hex')}`;
  const password = `pw-${randomBytes(8).toString('hex')}`;
  await run('prosodyctl', ['--config', s.cfg, 'register', user, s.domain, password]);
  return { user, jid: `${user}@${s.domain}`, password };
}

export interface Peer {
  jid: string;
  xmpp: StockClient;
  stanzas: Element[];
  /** Resolve with the first stanza (already received or arriving) that matches. */
  waitFor(pred: (s: Element) => boolean, timeoutMs?: number, what?: string): Promise<Element>;
  /** Send a chat message and wait for the next chat reply from `to`'s bare JID. */
  chat(to: string, body: string): Promise<string>;
  iq(type: 'get' | 'set', to: string, child: Element): Promise<Element>;
  send(s: Element): Promise<void>;
  stop(): Promise<void>;
}

/** A stock client logged in as `acc`, on the suite's server unless `on` names another (one that uses the suite's certificate). */
export async function peer(acc: Account, resource = 'test', on?: { service: string; domain: string }): Promise<Peer> {
  const s = server();
  const xmpp = client({ service: on?.service ?? `xmpp://127.0.0.1:${s.port}`, domain: on?.domain ?? s.domain, username: acc.user, password: acc.password, resource });
  xmpp.reconnect.stop();
  // The stock 2 s stream timeout is too tight when parallel test files load both cores.
  xmpp.timeout = 15_000;
  const stanzas: Element[] = [];
  const waiters = new Set<{ pred: (s: Element) => boolean; resolve: (s: Element) => void }>();
  xmpp.on('error', () => {});
  xmpp.on('stanza', (st: Element) => {
    stanzas.push(st);
    for (const w of waiters) {
      if (w.pred(st)) {
        waiters.delete(w);
        w.resolve(st);
      }
    }
  });
  await xmpp.start();
  // Like any real client: fetch the roster, then be available (or the server withholds presence).
  await xmpp.iqCaller.request(xml('iq', { type: 'get' }, xml('query', { xmlns: 'jabber:iq:roster' })), 10_000);
  await xmpp.send(xml('presence'));
  const bare = (j: string | undefined): string => (j ?? '').split('/')[0]!;
  let consumed = 0;

  const waitFor: Peer['waitFor'] = (pred, timeoutMs = 10_000, what = 'stanza') =>
    new Promise((resolve, reject) => {
      const found = stanzas.find(pred);
      if (found) return resolve(found);
      const w = {
        pred,
        resolve: (st: Element) => {
          clearTimeout(t);
          resolve(st);
        },
      };
      const t = setTimeout(() => {
        waiters.delete(w);
        reject(new Error(`timed out waiting for ${what}; got:\n${stanzas.slice(-5).map(String).join('\n')}`));
      }, timeoutMs);
      waiters.add(w);
    });

  return {
    jid: acc.jid,
    xmpp,
    stanzas,
    waitFor,
    async chat(to, body) {
      const from = consumed;
      const before = stanzas.length;
      consumed = before;
      await xmpp.send(xml('message', { type: 'chat', to }, xml('body', {}, body)));
      const reply = await waitFor(
        (st) => stanzas.indexOf(st) >= Math.max(before, from) && st.name === 'message' && bare(st.attrs.from) === bare(to) && st.getChild('body') !== undefined,
        10_000,
        `a reply to "${body}"`,
      );
      consumed = stanzas.indexOf(reply) + 1;
      return reply.getChildText('body') ?? '';
    },
    async iq(type, to, child) {
      return xmpp.iqCaller.request(xml('iq', { type, to }, child), 10_000);
    },
    send: (st) => xmpp.send(st),
    async stop() {
      await xmpp.stop().catch(() => {});
    },
  };
}



export interface RunningAgent {
  agent: Agent;
  jid: string;
  fullJid: string;
  account: Account;
  logs: string[];
  sink: LogSink;
  /** Every 'reconnecting' event of the agent's session since it was built. */
  reconnects: { attempt: number; delay: number }[];
  stop(): Promise<void>;
}

/** A YAML config for a test agent on the suite's server; `extra` is appended verbatim. */
export interface AgentSpec {
  owners: string[];
  viewers?: string[];
  /** YAML for the devices list (indented by two spaces). */
  devices?: string;
  /** YAML appended at the end (top-level keys). */
  extra?: string;
  /** YAML lines inside xmpp: (indented by two spaces). */
  xmpp?: string;
  service?: string;
  /** CA file to trust; null for none. */
  caFile?: string | null;
  /** The agent's state_dir (outbox, history); default: a fresh temporary one. */
  stateDir?: string;
  /** xmpp.reconnect.max_delay; default 1s (tests want quick retries). */
  reconnectMax?: string;
}

export function agentYaml(a: AgentSpec & { account: Account }): string {
  const s = server();
  const ca = a.caFile === undefined ? s.caFile : a.caFile;
  return `xmpp:
  jid: ${a.account.jid}
  resource: agent
  service: ${a.service ?? `xmpp://127.0.0.1:${s.port}`}
${ca ? `  tls:\n    ca_file: ${ca}\n` : ''}  reconnect:
    initial_delay: 100ms
    max_delay: ${a.reconnectMax ?? '1s'}
${a.xmpp ?? ''}mdns:
  enabled: false
state_dir: ${a.stateDir ?? mkdtempSync(join(tmpdir(), 'xia-state-'))}
owners: [${a.owners.join(', ')}]
viewers: [${(a.viewers ?? []).join(', ')}]
devices:
${
  a.devices ??
  `  - id: temperature
    driver: simulated
    type: number
    unit: "°C"
    min: 15
    max: 30
    initial: 21.4
    deadband: 0.5
  - id: fan
    driver: simulated
    type: boolean
    writable: true
`
}${a.extra ?? ''}`;
}

export async function startAgent(
  a: AgentSpec & {
    waitOnline?: boolean;
    account?: Account;
    password?: string;
    redact?: boolean;
    /** Called with the built agent before it starts (to watch what start() itself does). */
    beforeStart?: (agent: Agent) => void;
    /** Receives the claim notice (QR code and text) instead of stderr. */
    claimNotice?: (text: string) => void;
    /** The drivers of the config's devices, instead of the ones the config names. */
    driverFor?: AgentOptions['driverFor'];
  },
): Promise<RunningAgent> {
  const acc = a.account ?? (await account('gw'));
  const dir = mkdtempSync(join(tmpdir(), 'xia-agent-'));
  const yaml = agentYaml({ account: acc, ...a });
  writeFileSync(join(dir, 'agent.yaml'), yaml);
  const loaded = loadConfigText(yaml, { baseDir: dir, env: { XMPP_IOT_AGENT_PASSWORD: a.password ?? acc.password } });
  const logs: string[] = [];
  const sink = createSink('debug', (l) => logs.push(l));
  if (a.redact !== false) sink.secrets.add(acc.password);
  const agent = new Agent({ loaded, log: createLogger(sink), claimNotice: a.claimNotice, driverFor: a.driverFor });
  const reconnects: RunningAgent['reconnects'] = [];
  agent.session.on('reconnecting', (e) => reconnects.push(e));
  const online = new Promise<void>((resolve) => agent.session.once('online', () => resolve()));
  a.beforeStart?.(agent);
  await agent.start();
  if (a.waitOnline !== false) await online;
  return {
    agent,
    jid: acc.jid,
    fullJid: `${acc.jid}/agent`,
    account: acc,
    logs,
    sink,
    reconnects,
    stop: () => agent.stop(),
  };
}

export interface Cast {
  agent: RunningAgent;
  owner: Peer;
  viewer: Peer;
  stranger: Peer;
  stop(): Promise<void>;
}

/** An agent with one owner, one viewer and one stranger, all connected. */
export async function cast(): Promise<Cast> {
  const [o, v, s] = await Promise.all([account('alice'), account('bob'), account('eve')]);
  const agent = await startAgent({ owners: [o.jid], viewers: [v.jid] });
  const [owner, viewer, stranger] = await Promise.all([peer(o), peer(v), peer(s)]);
  return {
    agent,
    owner,
    viewer,
    stranger,
    async stop() {
      await Promise.all([owner.stop(), viewer.stop(), stranger.stop()]);
      await agent.stop();
    },
  };
}
