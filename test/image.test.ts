// `xmpp-iot-agent image` on a small synthetic Raspberry Pi OS-like image
// (MBR + FAT boot partition, made here with sfdisk and mkfs.vfat), reading back
// with mtools what first boot will find.

import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { beforeEach, describe, expect, it } from 'vitest';
import { bootPartitionOffset } from '../src/deploy/image.js';
import { BOOT_START, imageTools, makeImage as makeImageAt, readBoot } from './helpers/image.js';

const CLI = join(__dirname, '..', 'dist', 'cli.js');
if (!imageTools) console.warn('image tests skipped: apt-get install -y fdisk dosfstools mtools');

let dir: string;
let img: string;
const START = BOOT_START;
const USER_DATA = '#cloud-config\n# the image\'s own settings\nusers:\n  - name: pi\n    groups: sudo\nruncmd:\n  - [echo, first]\n';
const makeImage = (withUserData: boolean): void => {
  img = makeImageAt(dir, withUserData ? USER_DATA : undefined);
};
const read = (path: string): string => readBoot(img, path);

function cli(args: string[]) {
  const env = { ...process.env };
  delete env.XMPP_IOT_AGENT_PASSWORD;
  return spawnSync(process.execPath, [CLI, 'image', ...args], { encoding: 'utf8', env });
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'xia-img-'));
  writeFileSync(join(dir, 'pw'), 'gateway-secret\n');
  chmodSync(join(dir, 'pw'), 0o600);
  writeFileSync(join(dir, 'ca.pem'), '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
  writeFileSync(join(dir, 'wifi'), 'wifi-secret\n');
  writeFileSync(join(dir, 'pkg.deb'), Buffer.from('!<arch>\nfake package for the test\n'));
  writeFileSync(
    join(dir, 'agent.yaml'),
    `# my gateway
xmpp:
  jid: kitchen@iot.example.org
  password_file: pw
  tls:
    ca_file: ca.pem
owners: [alice@iot.example.org]
devices:
  - { id: fan, driver: simulated, type: boolean, writable: true }
`,
  );
});

describe.skipIf(!imageTools)('image', () => {
  it('finds the boot partition from the MBR', () => {
    makeImage(false);
    expect(bootPartitionOffset(img)).toBe(START * 512);
  });

  it('writes config, secret, CA, package and first-boot steps; merges the image\'s cloud-init', () => {
    makeImage(true);
    const r = cli(['--image', img, '--config', join(dir, 'agent.yaml'), '--deb', join(dir, 'pkg.deb'), '--hostname', 'rpi-kitchen', '--wifi', 'Home Net', '--wifi-password-file', join(dir, 'wifi'), '--wifi-country', 'DE']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('ready');

    const config = read('/xmpp-iot-agent/agent.yaml');
    expect(config).toContain('# my gateway'); // comments kept
    expect(parse(config)).toMatchObject({ xmpp: { jid: 'kitchen@iot.example.org', password_file: '/etc/xmpp-iot-agent/password', tls: { ca_file: '/etc/xmpp-iot-agent/ca.pem' } } });
    expect(read('/xmpp-iot-agent/password')).toBe('gateway-secret\n');
    expect(read('/xmpp-iot-agent/ca.pem')).toContain('BEGIN CERTIFICATE');
    expect(read('/xmpp-iot-agent/xmpp-iot-agent.deb')).toBe('!<arch>\nfake package for the test\n');

    const script = read('/xmpp-iot-agent/install.sh');
    writeFileSync(join(dir, 'install.sh'), script);
    expect(spawnSync('sh', ['-n', join(dir, 'install.sh')]).status).toBe(0);
    expect(script).toContain('rm -f "$SRC/password"');
    expect(script).toContain('systemctl enable xmpp-iot-agent.service');
    // Restarted, not just started: the package may already run it with its example config.
    expect(script.indexOf('systemctl restart xmpp-iot-agent.service')).toBeGreaterThan(script.indexOf('/etc/xmpp-iot-agent/agent.yaml'));

    const userData = read('/user-data');
    expect(userData.startsWith('#cloud-config\n')).toBe(true);
    expect(parse(userData)).toEqual({
      users: [{ name: 'pi', groups: 'sudo' }],
      runcmd: [['echo', 'first'], ['sh', '/boot/firmware/xmpp-iot-agent/install.sh']],
      hostname: 'rpi-kitchen',
      manage_etc_hosts: true,
    });
    expect(parse(read('/network-config'))).toEqual({
      network: { version: 2, wifis: { renderer: 'NetworkManager', wlan0: { dhcp4: true, optional: true, 'regulatory-domain': 'DE', 'access-points': { 'Home Net': { password: 'wifi-secret' } } } } },
    });
  });

  it('is idempotent: writing twice leaves one install step', () => {
    makeImage(true);
    const args = ['--image', img, '--config', join(dir, 'agent.yaml'), '--deb', join(dir, 'pkg.deb')];
    expect(cli(args).status).toBe(0);
    expect(cli(args).status).toBe(0);
    expect((parse(read('/user-data')) as { runcmd: unknown[] }).runcmd).toHaveLength(2);
  });

  it('refuses a bad config before touching the image, and an image without a partition table', () => {
    makeImage(false);
    const before = readFileSync(img);
    writeFileSync(join(dir, 'bad.yaml'), 'xmpp:\n  jid: nope\n');
    const bad = cli(['--image', img, '--config', join(dir, 'bad.yaml'), '--deb', join(dir, 'pkg.deb')]);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toContain('xmpp.jid: expected a bare JID');
    expect(readFileSync(img).equals(before)).toBe(true);

    writeFileSync(join(dir, 'blank.img'), Buffer.alloc(4096));
    const blank = cli(['--image', join(dir, 'blank.img'), '--config', join(dir, 'agent.yaml'), '--deb', join(dir, 'pkg.deb')]);
    expect(blank.status).toBe(1);
    expect(blank.stderr).toContain('has no MBR partition table');
  });

  it('insists on a Wi-Fi country', () => {
    makeImage(false);
    const r = cli(['--image', img, '--config', join(dir, 'agent.yaml'), '--deb', join(dir, 'pkg.deb'), '--wifi', 'Home', '--wifi-password-file', join(dir, 'wifi')]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('--wifi needs --wifi-country');
  });
});
