// The command line as a user runs it: check-config, and `run` as a separate
// process with a clean environment (so the CA comes only from xmpp.tls.ca_file),
// stopped by SIGTERM.

import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { account, agentYaml, peer, xml } from './helpers/peers.js';
import { until } from './helpers/until.js';

const CLI = join(__dirname, '..', 'dist', 'cli.js');
const run = promisify(execFile);

function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = { ...process.env, ...extra };
  delete env.NODE_EXTRA_CA_CERTS;
  delete env.XMPP_IOT_AGENT_PASSWORD;
  return env;
}

async function cli(args: string[], env = cleanEnv()): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args], { env });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'xia-cli-'));
}

describe('check-config', () => {
  it('prints every problem as path: message and exits 1', async () => {
    const dir = tmp();
    const file = join(dir, 'agent.yaml');
    writeFileSync(
      file,
      `xmpp:
  jid: not-a-jid
  pasword: x
owners: []
devices:
  - id: fan
    driver: relay
    type: bool
`,
    );
    const r = await cli(['check-config', file]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('xmpp.jid: expected a bare JID such as gateway@iot.example.org, got "not-a-jid"');
    expect(r.stderr).toContain('xmpp.pasword: unknown key (did you mean "password"?)');
    expect(r.stderr).toContain('owners: must name at least one bare JID');
    expect(r.stderr).toContain('devices[0].driver: expected one of simulated, serial-bridge, dht, ds18b20, gpio, replay, got "relay"');
    expect(r.stderr).toContain('devices[0].type: expected one of number, boolean, string, got "bool"');
  });

  it('accepts a good config, warns about a password file others can read', async () => {
    const dir = tmp();
    writeFileSync(join(dir, 'password'), 'secret\n');
    chmodSync(join(dir, 'password'), 0o644);
    writeFileSync(
      join(dir, 'agent.yaml'),
      `xmpp:
  jid: gw@iot.example.org
  password_file: password
owners: [alice@iot.example.org]
devices:
  - id: fan
    driver: simulated
    type: boolean
    writable: true
`,
    );
    const r = await cli(['check-config', join(dir, 'agent.yaml')]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('ok — gw@iot.example.org/');
    expect(r.stderr).toContain('is readable by every user (mode 644); run: chmod 640');
    expect(r.stdout + r.stderr).not.toContain('secret');
  });

  it('run refuses a bad config with exit 78 (EX_CONFIG) before touching the network', async () => {
    const dir = tmp();
    writeFileSync(join(dir, 'agent.yaml'), 'xmpp:\n  jid: gw@iot.test\n  password: x\nowners: [a@iot.test]\ndevices: []\n');
    const r = await cli(['run', '--config', join(dir, 'agent.yaml')]);
    expect(r.code).toBe(78);
    expect(r.stderr).toContain('devices: must list at least one device');
    expect(r.stdout).toBe('');
  });

  it('names a YAML syntax error with its line', async () => {
    const dir = tmp();
    writeFileSync(join(dir, 'agent.yaml'), 'xmpp:\n  jid: [unclosed\n');
    const r = await cli(['check-config', join(dir, 'agent.yaml')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/\(yaml line \d+\)/);
  });
});

describe('run', () => {
  async function startCli(yaml: string, password: string): Promise<{ child: ChildProcess; lines: Record<string, unknown>[]; wait(msg: string): Promise<Record<string, unknown>> }> {
    const dir = tmp();
    writeFileSync(join(dir, 'password'), password);
    chmodSync(join(dir, 'password'), 0o600);
    writeFileSync(join(dir, 'agent.yaml'), yaml.replace(/^xmpp:\n/, 'xmpp:\n  password_file: password\n'));
    const child = spawn(process.execPath, [CLI, 'run', '--config', join(dir, 'agent.yaml')], { env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    const lines: Record<string, unknown>[] = [];
    const waiters: { msg: string; resolve: (l: Record<string, unknown>) => void }[] = [];
    let buf = '';
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = JSON.parse(buf.slice(0, nl)) as Record<string, unknown>;
        buf = buf.slice(nl + 1);
        lines.push(line);
        for (const w of waiters.filter((w) => w.msg === line.msg)) w.resolve(line);
      }
    });
    const wait = (msg: string): Promise<Record<string, unknown>> =>
      new Promise((resolve, reject) => {
        const found = lines.find((l) => l.msg === msg);
        if (found) return resolve(found);
        const t = setTimeout(() => reject(new Error(`no "${msg}" log line; got ${JSON.stringify(lines.slice(-5))}`)), 10_000);
        waiters.push({ msg, resolve: (l) => (clearTimeout(t), resolve(l)) });
      });
    return { child, lines, wait };
  }

  it('trusts the server through xmpp.tls.ca_file alone, and says goodbye on SIGTERM', async () => {
    const [gw, o] = await Promise.all([account('gw'), account('alice')]);
    const agent = await startCli(agentYaml({ account: gw, owners: [o.jid] }), gw.password);
    await agent.wait('online');
    const owner = await peer(o);
    try {
      await owner.send(xml('presence', { type: 'subscribe', to: gw.jid }));
      await owner.waitFor((s) => s.name === 'presence' && s.attrs.from === `${gw.jid}/agent` && !s.attrs.type, 10_000, 'available presence');
      const exited = new Promise<number | null>((r) => agent.child.once('exit', (code) => r(code)));
      agent.child.kill('SIGTERM');
      await owner.waitFor((s) => s.name === 'presence' && s.attrs.from === `${gw.jid}/agent` && s.attrs.type === 'unavailable', 10_000, 'unavailable presence');
      expect(await exited).toBe(0);
      expect(agent.lines.map((l) => l.msg)).toContain('stopped');
      expect(JSON.stringify(agent.lines)).not.toContain(gw.password);
    } finally {
      agent.child.kill('SIGKILL');
      await owner.stop();
    }
  });

  it('without the CA it does not trust the self-signed server, and says why', async () => {
    const gw = await account('gw');
    const agent = await startCli(agentYaml({ account: gw, owners: ['alice@iot.test'], caFile: null }), gw.password);
    try {
      // One line that says why: the certificate is not trusted, self-signed, and what to set.
      await until(() => agent.lines.some((l) => /certificate of iot\.test is not trusted/.test(String(l.msg))), 'the untrusted-certificate line', { timeoutMs: 10_000 });
      const line = agent.lines.find((l) => /certificate of iot\.test is not trusted/.test(String(l.msg)));
      expect(JSON.stringify(line)).toMatch(/self.signed|SELF_SIGNED/i);
      expect(line?.msg).toContain('xmpp.tls.ca_file');
      expect(agent.lines.some((l) => l.msg === 'online')).toBe(false);
    } finally {
      agent.child.kill('SIGKILL');
    }
  });

  it('exits 77 (EX_NOPERM) with a clear message when the password is wrong', async () => {
    const gw = await account('gw');
    const agent = await startCli(agentYaml({ account: gw, owners: ['alice@iot.test'] }), 'not-the-password');
    const exited = await new Promise<number | null>((r) => agent.child.once('exit', (code) => r(code)));
    expect(exited).toBe(77);
    const failed = agent.lines.find((l) => l.msg === 'login failed');
    expect(failed).toMatchObject({ reason: 'not-authorized' });
  });
});

describe('errors before anything runs', () => {
  it('an early error exits with the documented code: an unreadable Wi-Fi password file is a usage error naming the option, not a crash', async () => {
    const dir = tmp();
    const r = await cli(['image', '--image', join(dir, 'raspios.img'), '--config', join(dir, 'agent.yaml'), '--deb', join(dir, 'x.deb'), '--wifi', 'barn', '--wifi-password-file', join(dir, 'missing'), '--wifi-country', 'DE']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`--wifi-password-file: cannot read ${join(dir, 'missing')} (ENOENT)`);
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
  });
});
