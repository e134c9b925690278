// Fault: the server's certificate changes under a connected gateway. A private
// Prosody with certificates from a CA of this test's own (the agent trusts the
// CA, as xmpp.tls.ca_file says), behind a TCP proxy that records what the agent
// sends and can cut the link. A renewal (same CA, new key) is picked up at the
// next connection without fuss; an expired certificate, or one for another
// name, is a clear error naming the host and the dates, retried with backoff,
// and never answered by talking without TLS; a good certificate again and the
// agent is back by itself.

import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findBinary, startProsody, type Prosody } from '../tools/dev/prosody.js';
import { runAgent, writeConfig, type AgentProcess } from './helpers/agent-process.js';
import { until } from './helpers/until.js';

const DOMAIN = 'iot.test';
const can = findBinary('openssl') && findBinary('faketime') && findBinary('prosody');

/** A CA and certificates it signs (EC keys: quick to make). */
function pki(dir: string) {
  const ssl = (args: string[], fake?: string): void => void execFileSync(fake ? 'faketime' : 'openssl', fake ? [fake, 'openssl', ...args] : args, { cwd: dir, stdio: 'ignore' });
  const key = (name: string): void => ssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-out', `${name}.key`]);
  key('ca');
  ssl(['req', '-x509', '-key', 'ca.key', '-out', 'ca.crt', '-days', '3650', '-subj', '/CN=Test site CA']);
  return {
    ca: join(dir, 'ca.crt'),
    /** A server certificate for `name`, valid `days` from now, or from a date in the past (`at`, faketime's syntax). */
    issue(file: string, o: { name?: string; days?: number; at?: string } = {}): { crt: string; key: string } {
      key(file);
      writeFileSync(join(dir, `${file}.ext`), `subjectAltName=DNS:${o.name ?? DOMAIN}\n`);
      ssl(['req', '-new', '-key', `${file}.key`, '-out', `${file}.csr`, '-subj', `/CN=${o.name ?? DOMAIN}`]);
      ssl(['x509', '-req', '-in', `${file}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${file}.crt`, '-days', String(o.days ?? 90), '-extfile', `${file}.ext`], o.at);
      return { crt: join(dir, `${file}.crt`), key: join(dir, `${file}.key`) };
    },
  };
}

/** The link between agent and server: records what the agent sends; cut() drops every connection. */
async function recordingProxy(target: number) {
  const sockets = new Set<net.Socket>();
  const sent: Buffer[] = [];
  const srv = net.createServer((client) => {
    const upstream = net.connect(target, '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => {});
      s.on('close', () => {
        sockets.delete(s);
        client.destroy();
        upstream.destroy();
      });
    }
    client.on('data', (d: Buffer) => {
      sent.push(d);
      upstream.write(d);
    });
    upstream.pipe(client);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return {
    port: (srv.address() as net.AddressInfo).port,
    /** What the agent sent since `from` (a mark), as latin1 text: TLS records are noise, XML in the clear is readable. */
    sentSince: (from: number): string => Buffer.concat(sent.slice(from)).toString('latin1'),
    mark: (): number => sent.length,
    cut(): void {
      for (const s of sockets) s.destroy();
    },
    close: () => new Promise<void>((r) => srv.close(() => r())),
  };
}

describe.skipIf(!can)('server certificate changes while the agent is connected (renewal, expiry, wrong name)', () => {
  let dir: string;
  let prosody: Prosody;
  let link: Awaited<ReturnType<typeof recordingProxy>>;
  let agent: AgentProcess;
  let certs: ReturnType<typeof pki>;
  const serverCrt = (): string => join(dir, 'prosody', `${DOMAIN}.crt`);
  const serverKey = (): string => join(dir, 'prosody', `${DOMAIN}.key`);

  /** Put a certificate in place and have Prosody take it for new connections (prosodyctl reload, SIGHUP). */
  const deploy = (c: { crt: string; key: string }): void => {
    copyFileSync(c.crt, serverCrt());
    copyFileSync(c.key, serverKey());
    execFileSync('prosodyctl', ['--config', join(dir, 'prosody', 'prosody.cfg.lua'), 'reload'], { stdio: 'ignore' });
  };
  /** The certificate the server now hands out, as a new client sees it. */
  const served = (): string =>
    execFileSync('sh', ['-c', `openssl s_client -connect 127.0.0.1:${prosody.tlsPort} -servername ${DOMAIN} </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256`], { encoding: 'utf8' }).trim().split('=')[1] ?? '';
  const fingerprint = (file: string): string => execFileSync('openssl', ['x509', '-in', file, '-noout', '-fingerprint', '-sha256'], { encoding: 'utf8' }).trim().split('=')[1]!;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'xia-cert-'));
    certs = pki(dir);
    const first = certs.issue('first');
    execFileSync('mkdir', ['-p', join(dir, 'prosody')]);
    copyFileSync(first.crt, serverCrt());
    copyFileSync(first.key, serverKey());
    prosody = await startProsody({ dir: join(dir, 'prosody'), domain: DOMAIN });
    await prosody.register('gw', 'gw-secret');
    link = await recordingProxy(prosody.port);
    const file = writeConfig(
      dir,
      `xmpp:
  jid: gw@${DOMAIN}
  resource: agent
  service: xmpp://127.0.0.1:${link.port}
  tls: { ca_file: ${certs.ca} }
  reconnect: { initial_delay: 100ms, max_delay: 1s }
owners: [alice@${DOMAIN}]
mdns: { enabled: false }
state_dir: ${join(dir, 'state')}
devices:
  - { id: temperature, driver: simulated, type: number, unit: "°C" }
`,
    );
    agent = runAgent(file, { password: 'gw-secret' });
    await until(() => agent.find(/^online/) !== undefined, 'the agent online', { timeoutMs: 15_000, got: () => agent.lines.slice(-3) });
  });

  afterAll(async () => {
    await agent?.stop();
    await link?.close();
    await prosody?.stop();
  });

  it('a renewal (same CA, new key and dates): the connection carries on, the next one verifies the new certificate and the log notes it', async () => {
    const renewed = certs.issue('renewed', { days: 365 });
    const mark = agent.lines.length;
    deploy(renewed);
    await until(() => served() === fingerprint(renewed.crt), 'Prosody serving the renewed certificate');
    expect(agent.find('disconnected', mark)).toBeUndefined();
    link.cut();
    await until(() => agent.find(/^online/, mark) !== undefined, 'online again after the link dropped', { timeoutMs: 15_000 });
    const noted = agent.find('the server presents a new certificate (renewed?)', mark);
    expect(noted?.sha256).toBe(fingerprint(renewed.crt));
    expect(agent.lines.slice(mark).filter((l) => l.level === 'error')).toEqual([]);
  }, 30_000);

  it('an expired certificate: one clear line with the host and the dates, retried with backoff, never a word without TLS', async () => {
    const expired = certs.issue('expired', { at: '2021-03-01 00:00:00', days: 30 });
    deploy(expired);
    await until(() => served() === fingerprint(expired.crt), 'Prosody serving the expired certificate');
    const mark = agent.lines.length;
    const bytes = link.mark();
    link.cut();
    await until(() => agent.lines.slice(mark).filter((l) => l.msg.startsWith('the server certificate of iot.test has expired')).length >= 3, 'three refused attempts', { timeoutMs: 15_000, got: () => agent.lines.slice(-3).map((l) => l.msg) });
    const line = agent.find('the server certificate of iot.test has expired', mark)!;
    expect(line.level).toBe('error');
    expect(line.msg).toMatch(/valid from 2021-03-01T\d\d:\d\d:\d\dZ to 2021-03-31T\d\d:\d\d:\d\dZ; this gateway's clock says 20\d\d-/);
    expect(line.msg).toContain('never without TLS');
    expect(agent.find(/^online/, mark)).toBeUndefined();
    // In the clear there is only the stream header and <starttls/>: no login, no stanza.
    const clear = link.sentSince(bytes);
    expect(clear).toContain('<starttls');
    expect(clear).not.toMatch(/<auth|<iq|<message|<presence|<response/);
  }, 30_000);

  it('a certificate for another name: the names it carries and its dates, retried; a good one again and the agent is back by itself', async () => {
    const other = certs.issue('other', { name: 'other.test' });
    deploy(other);
    await until(() => served() === fingerprint(other.crt), 'Prosody serving the other name');
    const mark = agent.lines.length;
    await until(() => agent.lines.slice(mark).filter((l) => l.msg.startsWith('the server certificate is not for iot.test')).length >= 2, 'refused for its name', { timeoutMs: 15_000, got: () => agent.lines.slice(-3).map((l) => l.msg) });
    expect(agent.find('the server certificate is not for iot.test', mark)!.msg).toMatch(/it names DNS:other\.test \(valid from 20\d\d-.* to 20\d\d-/);
    const good = certs.issue('good');
    deploy(good);
    const back = agent.lines.length;
    await until(() => agent.find(/^online/, back) !== undefined, 'online by itself with a good certificate', { timeoutMs: 15_000 });
    expect(agent.child.exitCode).toBeNull();
  }, 30_000);
});
