// A private Prosody on loopback for tests, the demo and benchmarks: own config,
// own data directory, free ports, a fresh self-signed certificate, TLS required.

import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync, readFileSync, openSync, closeSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface ProsodyOptions {
  /** Working directory (config, data, certificate, log). */
  dir: string;
  domain?: string;
  /** Preferred STARTTLS port; a free one is picked when it is taken. */
  port?: number;
  /** Load mod_smacks (XEP-0198); default true. */
  smacks?: boolean;
  /** Load mod_mam (XEP-0313 message archive, every message archived); default true. */
  mam?: boolean;
  /**
   * XEP-0363 HTTP File Upload: Prosody 0.12's mod_http_file_share as the component
   * upload.<domain>, served over HTTPS on a free loopback port with the server's certificate
   * (which names IP 127.0.0.1, the host of the URLs it hands out). Limits in bytes.
   */
  upload?: { sizeLimit?: number; dailyQuota?: number };
  /**
   * Nagle's algorithm on the server's sockets. Default false (`network_settings = { nagle = false }`,
   * the tuned server the tests use); true leaves Prosody as it ships, where a small write waits
   * for the peer's ACK of the previous one.
   */
  nagle?: boolean;
}

export interface Prosody {
  domain: string;
  host: string;
  /** STARTTLS port (xmpp://) */
  port: number;
  /** Direct TLS port (xmpps://) */
  tlsPort: number;
  caFile: string;
  dir: string;
  logFile: string;
  service: string;
  register(user: string, password: string): Promise<string>;
  stop(): Promise<void>;
  /** Stop and start again on the same ports and data (for reconnect tests); hard: SIGKILL, as a crash or power cut would. */
  restart(opts?: { hard?: boolean }): Promise<void>;
  pid(): number | undefined;
  /** The upload component, when started with `upload`: its JID and the HTTPS base URL. */
  upload?: { jid: string; url: string };
}

export class ProsodyMissingError extends Error {}

/** Every Prosody this process started; none outlives it, even when it dies of an error. */
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of running) c.kill('SIGTERM');
});

export function findBinary(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(':').concat(['/usr/bin', '/usr/sbin'])) {
    const p = join(dir, name);
    if (dir && existsSync(p)) return p;
  }
  return undefined;
}

export function freePort(preferred = 0): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', (err: NodeJS.ErrnoException) => {
      if (preferred !== 0 && err.code === 'EADDRINUSE') resolve(freePort(0));
      else reject(err);
    });
    srv.listen(preferred, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

async function waitForPort(port: number, child: ChildProcess, logFile: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) break;
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  const log = existsSync(logFile) ? readFileSync(logFile, 'utf8').split('\n').slice(-15).join('\n') : '';
  throw new Error(`Prosody did not start listening on ${port} (exit ${child.exitCode}).\n${log}`);
}

export async function makeCertificate(dir: string, domain: string): Promise<{ cert: string; key: string }> {
  const cert = join(dir, `${domain}.crt`);
  const key = join(dir, `${domain}.key`);
  if (existsSync(cert) && existsSync(key)) return { cert, key };
  if (!findBinary('openssl')) throw new ProsodyMissingError('openssl is not installed (needed to make a test certificate): apt-get install -y openssl');
  await run('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-sha256', '-days', '3650',
    '-keyout', key, '-out', cert, '-subj', `/CN=${domain}`,
    // IP:127.0.0.1 for the HTTPS URLs of the upload component (a client checks them against the URL's host).
    '-addext', `subjectAltName=DNS:${domain},DNS:*.${domain},IP:127.0.0.1`,
  ]);
  return { cert, key };
}

/**
 * The upload component: HTTPS only, on loopback, with URLs on 127.0.0.1 (there is no DNS for
 * upload.<domain>). Ports are global options, so they go before the first VirtualHost.
 */
function uploadText(o: { domain: string; httpsPort: number; upload: NonNullable<ProsodyOptions['upload']> }): { global: string; component: string } {
  const { sizeLimit, dailyQuota } = o.upload;
  return {
    global: `http_ports = { }
https_ports = { ${o.httpsPort} }
http_interfaces = { "127.0.0.1" }
https_interfaces = { "127.0.0.1" }
`,
    component: `
Component ${JSON.stringify(`upload.${o.domain}`)} "http_file_share"
  http_host = "127.0.0.1"
${sizeLimit !== undefined ? `  http_file_share_size_limit = ${sizeLimit}\n` : ''}${dailyQuota !== undefined ? `  http_file_share_daily_quota = ${dailyQuota}\n` : ''}`,
  };
}

function configText(o: { dir: string; domain: string; port: number; tlsPort: number; cert: string; key: string; logFile: string; smacks: boolean; mam: boolean; upload?: { global: string; component: string }; nagle: boolean }): string {
  const root = typeof process.getuid === 'function' && process.getuid() === 0;
  return `-- Private Prosody for xmpp-iot-agent tests and demo (generated).
${root ? 'run_as_root = true\n' : ''}daemonize = false
pidfile = ${JSON.stringify(join(o.dir, 'prosody.pid'))}
data_path = ${JSON.stringify(join(o.dir, 'data'))}
certificates = ${JSON.stringify(join(o.dir, 'certs'))}
log = { { levels = { min = "info" }, to = "file", filename = ${JSON.stringify(o.logFile)} } }
interfaces = { "127.0.0.1" }
c2s_ports = { ${o.port} }
c2s_direct_tls_ports = { ${o.tlsPort} }
s2s_ports = { }
modules_enabled = { "roster", "saslauth", "tls", "disco", "ping", "presence", "message", "iq", "offline", "version", "time", "uptime"${o.smacks ? ', "smacks"' : ''}${o.mam ? ', "mam"' : ''} }
modules_disabled = { "s2s" }
-- No "limits": Debian's default (10 kb/s per client) would throttle tests.
c2s_require_encryption = true
allow_registration = false
authentication = "internal_hashed"
storage = "internal"
${o.nagle ? '-- network_settings left as shipped: Nagle on.\n' : 'network_settings = { nagle = false }\n'}${o.mam ? 'default_archive_policy = true\narchive_expires_after = "1w"\n' : ''}${o.upload?.global ?? ''}
ssl = { certificate = ${JSON.stringify(o.cert)}, key = ${JSON.stringify(o.key)} }

VirtualHost ${JSON.stringify(o.domain)}
  ssl = { certificate = ${JSON.stringify(o.cert)}, key = ${JSON.stringify(o.key)} }
${o.upload?.component ?? ''}`;
}

export async function startProsody(opts: ProsodyOptions): Promise<Prosody> {
  const prosodyBin = findBinary('prosody');
  const ctl = findBinary('prosodyctl');
  if (!prosodyBin || !ctl) {
    throw new ProsodyMissingError('Prosody is not installed. Install it with: sudo apt-get install -y prosody');
  }
  const domain = opts.domain ?? 'iot.test';
  const dir = opts.dir;
  mkdirSync(join(dir, 'data'), { recursive: true });
  mkdirSync(join(dir, 'certs'), { recursive: true });
  const { cert, key } = await makeCertificate(dir, domain);
  const port = await freePort(opts.port ?? 0);
  let tlsPort = await freePort(0);
  while (tlsPort === port) tlsPort = await freePort(0);
  const logFile = join(dir, 'prosody.log');
  const cfg = join(dir, 'prosody.cfg.lua');
  let httpsPort = 0;
  while (opts.upload && (httpsPort === 0 || httpsPort === port || httpsPort === tlsPort)) httpsPort = await freePort(0);
  const upload = opts.upload ? uploadText({ domain, httpsPort, upload: opts.upload }) : undefined;
  writeFileSync(cfg, configText({ dir, domain, port, tlsPort, cert, key, logFile, smacks: opts.smacks ?? true, mam: opts.mam ?? true, upload, nagle: opts.nagle ?? false }));

  let child: ChildProcess | undefined;
  const launch = async (): Promise<void> => {
    const out = openSync(join(dir, 'prosody.stdout'), 'a');
    const c = spawn(prosodyBin, ['-F', '--config', cfg], { stdio: ['ignore', out, out] });
    child = c;
    closeSync(out);
    running.add(c);
    c.on('exit', () => running.delete(c));
    c.on('error', () => {});
    await waitForPort(port, child, logFile);
    if (httpsPort) await waitForPort(httpsPort, child, logFile);
  };
  const halt = async (hard = false): Promise<void> => {
    const c = child;
    child = undefined;
    if (!c || c.exitCode !== null) return;
    const exited = new Promise<void>((r) => c.once('exit', () => r()));
    c.kill(hard ? 'SIGKILL' : 'SIGTERM');
    const t = setTimeout(() => c.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(t);
  };
  await launch();

  return {
    domain,
    host: '127.0.0.1',
    port,
    tlsPort,
    caFile: cert,
    dir,
    logFile,
    service: `xmpp://127.0.0.1:${port}`,
    async register(user, password) {
      await run(ctl, ['--config', cfg, 'register', user, domain, password]);
      return `${user}@${domain}`;
    },
    stop: () => halt(),
    async restart(o) {
      await halt(o?.hard);
      await launch();
    },
    pid: () => child?.pid,
    ...(opts.upload ? { upload: { jid: `upload.${domain}`, url: `https://127.0.0.1:${httpsPort}/` } } : {}),
  };
}
