// Deployment artefacts, built and checked for real: the systemd unit
// (systemd-analyze), the .deb (dpkg-deb, lintian, and a real install and purge
// when XIA_SYSTEM_TESTS=1 on a root CI machine).

import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { unitEnvironment, unitRuntime } from '../bench/lib.js';
import { buildDeb } from '../tools/deploy/deb.js';
import { findBinary } from '../tools/dev/prosody.js';
import { extractBoot, imageTools, makeImage } from './helpers/image.js';
import { account, agentYaml, peer, xml } from './helpers/peers.js';

const ROOT = join(__dirname, '..');
const UNIT = join(ROOT, 'deploy/systemd/xmpp-iot-agent.service');
const sh = (cmd: string, args: string[]): string => execFileSync(cmd, args, { encoding: 'utf8' });
const NODE_MAJOR = Number(process.versions.node.split('.')[0]);
// better-sqlite3's addon speaks this Node major's ABI only; the C libraries' versions come from the toolchain.
const DEPENDS = new RegExp(`^nodejs \\(>= ${NODE_MAJOR}\\), nodejs \\(<< ${NODE_MAJOR + 1}\\), adduser, libc6 \\(>= 2\\.\\d+\\), libstdc\\+\\+6$`);
const ELF_MACHINE = { arm64: 183, armhf: 40, amd64: 62 } as const;
const elfMachine = (file: string): number => readFileSync(file).readUInt16LE(18);
// Building for the Pi cross-compiles better-sqlite3 (and node-dht-sensor) with Debian's cross compiler.
const crossCompiler = findBinary('aarch64-linux-gnu-g++');
if (!crossCompiler && !process.env.CI) console.warn('arm64 package test skipped: apt-get install g++-aarch64-linux-gnu');

describe.skipIf(!findBinary('systemd-analyze'))('systemd unit', () => {
  it('passes systemd-analyze verify', () => {
    // verify insists that ExecStart exists on this machine; point it at one that does.
    const dir = mkdtempSync(join(tmpdir(), 'xia-unit-'));
    writeFileSync(join(dir, 'xmpp-iot-agent.service'), readFileSync(UNIT, 'utf8').replace('/usr/bin/xmpp-iot-agent', '/bin/true'));
    const r = spawnSync('systemd-analyze', ['verify', join(dir, 'xmpp-iot-agent.service')], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('is hardened (exposure below 2.0) and never restarts on a bad config or a refused login', () => {
    const dir = mkdtempSync(join(tmpdir(), 'xia-unit-'));
    writeFileSync(join(dir, 'xmpp-iot-agent.service'), readFileSync(UNIT, 'utf8').replace('/usr/bin/xmpp-iot-agent', '/bin/true'));
    const out = spawnSync('systemd-analyze', ['security', '--offline=yes', join(dir, 'xmpp-iot-agent.service')], { encoding: 'utf8' }).stdout;
    const level = Number(/Overall exposure level for .*: (\d+\.\d)/.exec(out)?.[1]);
    expect(level).toBeLessThan(2);
    const unit = readFileSync(UNIT, 'utf8');
    for (const line of ['Type=notify', 'NotifyAccess=all', 'WatchdogSec=30', 'User=xmpp-iot-agent', 'SupplementaryGroups=dialout gpio', 'ProtectSystem=strict', 'StateDirectory=xmpp-iot-agent', 'NoNewPrivileges=yes', 'Restart=on-failure', 'RestartPreventExitStatus=73 77 78', 'LoadCredential=password:/etc/xmpp-iot-agent/password', 'Environment=XMPP_IOT_AGENT_PASSWORD_FILE=%d/password']) {
      expect(unit).toContain(line);
    }
  });
});

describe('the unit as the bench and the soak read it', () => {
  it('takes Environment= as systemd does: quoted assignments keep their spaces, %-specifiers are left out', () => {
    const dir = mkdtempSync(join(tmpdir(), 'xia-unit-'));
    const file = join(dir, 'x.service');
    writeFileSync(file, '[Service]\nEnvironment="NODE_OPTIONS=--a=1 --b" PLAIN=x\nEnvironment=SECRET=%d/password\nEnvironment=NODE_ENV=production\nExecStart=/usr/bin/node --c /usr/bin/agent run\n');
    expect(unitEnvironment(file)).toEqual({ NODE_OPTIONS: '--a=1 --b', PLAIN: 'x', NODE_ENV: 'production' });
    expect(unitRuntime(file)).toEqual({ nodeOptions: ['--a=1', '--b', '--c'], env: { PLAIN: 'x' } });
    // The shipped unit: exactly what node is given (a stray quote would make node refuse NODE_OPTIONS).
    expect(unitRuntime(UNIT).nodeOptions).toEqual(['--v8-pool-size=1']);
    // and the environment the bench runs the agent with, as the unit does (NODE_ENV and the password's are not runtime settings).
    expect(unitRuntime(UNIT).env).toEqual({ MALLOC_MMAP_THRESHOLD_: '65536' });
  });
});

describe.skipIf(!findBinary('dpkg-deb'))('Debian package', () => {
  let deb: string;
  let extracted: string;

  beforeAll(() => {
    deb = buildDeb({ root: ROOT, outDir: mkdtempSync(join(tmpdir(), 'xia-debout-')), log: () => {} });
    extracted = mkdtempSync(join(tmpdir(), 'xia-debx-'));
    sh('dpkg-deb', ['-x', deb, extracted]);
  }, 120_000);

  it('is named and described as Debian expects', () => {
    const arch = sh('dpkg', ['--print-architecture']).trim();
    // serialport's native addon makes it architecture-specific.
    expect(deb).toMatch(new RegExp(`xmpp-iot-agent_\\d+\\.\\d+\\.\\d+_${arch}\\.deb$`));
    const field = (f: string) => sh('dpkg-deb', ['-f', deb, f]).trim();
    expect(field('Package')).toBe('xmpp-iot-agent');
    expect(field('Architecture')).toBe(arch);
    expect(field('Depends')).toMatch(DEPENDS);
    expect(sh('dpkg-deb', ['--ctrl-tarfile', deb]).length).toBeGreaterThan(0);
  });

  it('holds the bundled agent with its source map, only the native addons as dependencies, the unit, the config as a conffile', () => {
    const files = sh('dpkg-deb', ['-c', deb]);
    for (const path of [
      './usr/lib/xmpp-iot-agent/dist/cli.js',
      './usr/lib/xmpp-iot-agent/dist/cli.js.map',
      './usr/lib/xmpp-iot-agent/node_modules/serialport/',
      './usr/lib/xmpp-iot-agent/node_modules/better-sqlite3/build/Release/better_sqlite3.node',
      './usr/bin/xmpp-iot-agent -> ../lib/xmpp-iot-agent/dist/cli.js',
      './lib/systemd/system/xmpp-iot-agent.service',
      './etc/xmpp-iot-agent/agent.yaml',
      './usr/share/doc/xmpp-iot-agent/copyright',
      './usr/share/man/man1/xmpp-iot-agent.1.gz',
    ]) {
      expect(files).toContain(path);
    }
    expect(files).not.toMatch(/node_modules\/(vitest|typescript|@types)\//);
    // What the bundle holds is not installed a second time beside it.
    expect(files).not.toMatch(/node_modules\/(@xmpp|ltx|yaml|multicast-dns)\//);
    // Development tools (demo, private Prosody, firmware simulator, this builder) are not runtime code.
    expect(files).not.toMatch(/demo\.js|prosody\.js|firmware-sim\.js|deb\.js|native\.js/);
    // Of node-gyp's build trees only the addons the agent loads; no test addon, no objects, no npm dotfiles.
    expect(files).not.toMatch(/\/build\/Release\/(obj|test_extension)|\.a$|\/\.npmignore$|\/\.eslintrc/m);
    const conffiles = mkdtempSync(join(tmpdir(), 'xia-ctl-'));
    sh('dpkg-deb', ['-e', deb, conffiles]);
    expect(readFileSync(join(conffiles, 'conffiles'), 'utf8')).toBe('/etc/xmpp-iot-agent/agent.yaml\n');
    for (const script of ['postinst', 'prerm', 'postrm']) {
      expect(statSync(join(conffiles, script)).mode & 0o111).toBeTruthy();
      expect(spawnSync('sh', ['-n', join(conffiles, script)]).status).toBe(0);
    }
    // Maintainer scripts may set the config's mode, never its content.
    expect(readFileSync(join(conffiles, 'postinst'), 'utf8')).not.toMatch(/>\s*"?\$CONF\/agent\.yaml|sed -i/);
  });

  it('runs from the package alone: the shipped JavaScript starts with only production dependencies', () => {
    const cli = join(extracted, 'usr/lib/xmpp-iot-agent/dist/cli.js');
    expect(sh(process.execPath, [cli, '--version'])).toMatch(/^xmpp-iot-agent \d+\.\d+\.\d+/);
    const check = spawnSync(process.execPath, [cli, 'check-config', join(extracted, 'etc/xmpp-iot-agent/agent.yaml')], { encoding: 'utf8', env: { PATH: process.env.PATH } });
    // The example is valid but for the password file, which the user writes.
    expect(check.stderr.trim().split('\n').slice(1)).toEqual(['  xmpp.password_file: cannot read /etc/xmpp-iot-agent/password: ENOENT']);
  });

  it('ships a better-sqlite3 addon for this machine that loads and runs SQL', () => {
    const modules = join(extracted, 'usr/lib/xmpp-iot-agent/node_modules');
    const addon = join(modules, 'better-sqlite3/build/Release/better_sqlite3.node');
    expect(elfMachine(addon)).toBe(ELF_MACHINE[sh('dpkg', ['--print-architecture']).trim() as keyof typeof ELF_MACHINE]);
    const sql = `const db = new (require(process.argv[1]))(':memory:'); db.exec('create table t (x)'); db.prepare('insert into t values (?)').run(42); console.log(db.prepare('select x from t').get().x)`;
    expect(sh(process.execPath, ['-e', sql, join(modules, 'better-sqlite3')]).trim()).toBe('42');
  });

  it.skipIf(!crossCompiler && !process.env.CI)('builds for the Pi (arm64) on any machine: arm64 addons only, better-sqlite3 cross-compiled, lintian-clean', () => {
    // The first build compiles better-sqlite3 for arm64 (about 2 minutes on 2 cores); later ones reuse node_modules/.cache.
    const pi = buildDeb({ root: ROOT, outDir: mkdtempSync(join(tmpdir(), 'xia-debarm-')), arch: 'arm64', log: () => {} });
    expect(pi).toMatch(/_arm64\.deb$/);
    expect(sh('dpkg-deb', ['-f', pi, 'Depends']).trim()).toMatch(DEPENDS);
    const natives = sh('dpkg-deb', ['-c', pi]).split('\n').filter((l) => l.endsWith('.node')).map((l) => l.split(/\s+/).at(-1)).sort();
    expect(natives).toEqual([
      './usr/lib/xmpp-iot-agent/node_modules/@serialport/bindings-cpp/prebuilds/linux-arm64/@serialport+bindings-cpp.armv8.glibc.node',
      './usr/lib/xmpp-iot-agent/node_modules/better-sqlite3/build/Release/better_sqlite3.node',
      './usr/lib/xmpp-iot-agent/node_modules/node-dht-sensor/build/Release/node_dht_sensor.node',
    ]);
    const x = mkdtempSync(join(tmpdir(), 'xia-debarmx-'));
    sh('dpkg-deb', ['-x', pi, x]);
    for (const n of natives) expect(elfMachine(join(x, n!)), n).toBe(ELF_MACHINE.arm64);
    // Built against this Node's headers: the ABI its Depends promise.
    expect(readFileSync(join(x, natives[1]!)).includes(`node_register_module_v${process.versions.modules}`)).toBe(true);
    if (findBinary('lintian')) expect(spawnSync('lintian', ['--allow-root', pi], { encoding: 'utf8' }).stdout.trim()).toBe('');
  }, 300_000);

  it.skipIf(!findBinary('lintian'))('is lintian-clean', () => {
    const r = spawnSync('lintian', ['--allow-root', deb], { encoding: 'utf8' });
    expect(r.stdout.trim()).toBe('');
  });

  it.skipIf(!process.env.XIA_SYSTEM_TESTS || process.getuid?.() !== 0)('installs, keeps an edited config across reinstall, and purges cleanly', () => {
    const conf = '/etc/xmpp-iot-agent/agent.yaml';
    spawnSync('dpkg', ['--purge', '--force-depends', 'xmpp-iot-agent']); // a clean start on a reused machine
    try {
      sh('dpkg', ['-i', '--force-depends', deb]);
      expect(sh('getent', ['passwd', 'xmpp-iot-agent'])).toContain('/var/lib/xmpp-iot-agent');
      expect(statSync(conf).mode & 0o777).toBe(0o640);
      expect(sh('/usr/bin/xmpp-iot-agent', ['--version'])).toMatch(/^xmpp-iot-agent /);
      writeFileSync(conf, readFileSync(conf, 'utf8') + '# edited by the owner\n');
      sh('dpkg', ['-i', '--force-depends', '--force-confold', deb]);
      expect(readFileSync(conf, 'utf8')).toContain('# edited by the owner');
    } finally {
      spawnSync('dpkg', ['--purge', '--force-depends', 'xmpp-iot-agent']);
    }
    expect(existsSync('/usr/bin/xmpp-iot-agent')).toBe(false);
    expect(spawnSync('getent', ['passwd', 'xmpp-iot-agent']).status).not.toBe(0);
    expect(existsSync('/etc/xmpp-iot-agent')).toBe(false);
  });

  it.skipIf(!process.env.XIA_SYSTEM_TESTS || process.getuid?.() !== 0 || !imageTools)(
    'first boot: image → install.sh → the installed agent comes online for its owner',
    async () => {
      const [gw, o] = await Promise.all([account('gw'), account('alice')]);
      const work = mkdtempSync(join(tmpdir(), 'xia-boot-'));
      writeFileSync(join(work, 'pw'), gw.password);
      chmodSync(join(work, 'pw'), 0o600);
      // The state lives where the package puts it (the unit's StateDirectory; postinst creates it for the service user).
      writeFileSync(join(work, 'agent.yaml'), agentYaml({ account: gw, owners: [o.jid], stateDir: '/var/lib/xmpp-iot-agent' }).replace(/^xmpp:\n/, 'xmpp:\n  password_file: pw\n'));
      const img = makeImage(work, '#cloud-config\n');
      const made = spawnSync(process.execPath, [join(ROOT, 'dist/cli.js'), 'image', '--image', img, '--config', join(work, 'agent.yaml'), '--deb', deb], { encoding: 'utf8' });
      expect(made.status, made.stderr).toBe(0);

      // What the Pi finds at /boot/firmware, and cloud-init's runcmd, with systemctl recorded.
      const boot = join(work, 'firmware');
      mkdirSync(boot);
      extractBoot(img, '/xmpp-iot-agent', boot);
      const bin = join(work, 'bin');
      mkdirSync(bin);
      writeFileSync(join(bin, 'systemctl'), `#!/bin/sh\necho "$@" >> ${work}/systemctl.log\n`);
      chmodSync(join(bin, 'systemctl'), 0o755);
      let agent: ReturnType<typeof spawn> | undefined;
      const owner = await peer(o);
      try {
        const run = spawnSync('sh', [join(boot, 'xmpp-iot-agent/install.sh')], { encoding: 'utf8', env: { ...process.env, PATH: `${bin}:${process.env.PATH}` } });
        expect(run.status, run.stderr).toBe(0);
        expect(readFileSync(join(work, 'systemctl.log'), 'utf8')).toContain('restart xmpp-iot-agent.service');
        expect(existsSync(join(boot, 'xmpp-iot-agent/password'))).toBe(false);
        expect(statSync('/etc/xmpp-iot-agent/password').mode & 0o777).toBe(0o640);
        expect(readFileSync('/etc/xmpp-iot-agent/agent.yaml', 'utf8')).toContain('password_file: /etc/xmpp-iot-agent/password');

        // Start it as the unit would: the service user, the installed binary, the installed config.
        agent = spawn('runuser', ['-u', 'xmpp-iot-agent', '--', '/usr/bin/xmpp-iot-agent', 'run', '--config', '/etc/xmpp-iot-agent/agent.yaml'], { stdio: 'ignore' });
        await owner.send(xml('presence', { type: 'subscribe', to: gw.jid }));
        const p = await owner.waitFor((st) => st.name === 'presence' && st.attrs.from === `${gw.jid}/agent` && !st.attrs.type, 20_000, 'the gateway online');
        expect(p.getChildText('status')).toMatch(/^temperature .* · fan off$/);
        expect(await owner.chat(`${gw.jid}/agent`, 'fan on')).toBe('fan → on ✓');
        expect(statSync('/var/lib/xmpp-iot-agent/agent.db').uid).not.toBe(0); // written by the service user
      } finally {
        agent?.kill('SIGTERM');
        await owner.stop();
        spawnSync('dpkg', ['--purge', '--force-depends', 'xmpp-iot-agent']);
      }
      // Purge takes what first boot put in /etc too (password, CA).
      expect(existsSync('/etc/xmpp-iot-agent')).toBe(false);
    },
    60_000,
  );
});

describe.skipIf(!findBinary('prosodyctl'))('example Prosody site config', () => {
  it('passes prosodyctl check config', () => {
    const dir = mkdtempSync(join(tmpdir(), 'xia-site-'));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-keyout', join(dir, 'k.pem'), '-out', join(dir, 'c.pem'), '-subj', '/CN=iot.example.org'], { stdio: 'ignore' });
    const cfg = readFileSync(join(ROOT, 'deploy/prosody/iot.cfg.lua'), 'utf8')
      .replace('/etc/prosody/certs/iot.example.org.crt', join(dir, 'c.pem'))
      .replace('/etc/prosody/certs/iot.example.org.key', join(dir, 'k.pem'));
    const local = `run_as_root = true\ndata_path = ${JSON.stringify(dir)}\npidfile = ${JSON.stringify(join(dir, 'p.pid'))}\ncertificates = ${JSON.stringify(dir)}\n${cfg}`;
    writeFileSync(join(dir, 'site.cfg.lua'), local);
    const r = spawnSync('prosodyctl', ['--config', join(dir, 'site.cfg.lua'), 'check', 'config'], { encoding: 'utf8' });
    expect(r.stdout).toContain('All checks passed');
    expect(cfg).toContain('c2s_require_encryption = true');
    expect(cfg).toContain('allow_registration = false');
  });
});
