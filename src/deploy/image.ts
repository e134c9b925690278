// `xmpp-iot-agent image`: prepares a Raspberry Pi OS image file so that its
// first boot installs and starts the agent with a given config. It writes into
// the image's boot (FAT) partition with mtools at the partition's offset, so no
// root and no loop mounts are needed:
//
//   /xmpp-iot-agent/  agent.yaml, password, ca.pem (if any), the .deb, install.sh
//                     and claim.json for a gateway to be claimed (no owners, claim.enabled)
//   /xmpp-iot-agent-claim.png, .txt  that gateway's claim QR code, and its message as text
//   /user-data        cloud-init (merged with the image's own): hostname, runcmd install.sh
//   /network-config   only with --wifi: netplan v2 for NetworkManager
//
// install.sh installs Node.js (when older than 20) and the .deb, puts the files
// in /etc/xmpp-iot-agent, deletes the password from the boot partition, and
// starts the service.

import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, posix } from 'node:path';
import { withYaml } from '../config/yaml.js';
import { loadConfigFile } from '../config/load.js';
import { DEFAULT_STATE_DIR } from '../config/durability.js';
import { claimImageFiles } from './claim.js';

export const BOOT_DIR = '/boot/firmware';
const FAT_TYPES = new Set([0x01, 0x04, 0x06, 0x0b, 0x0c, 0x0e]);

export class ImageError extends Error {}

export interface ImageOptions {
  image: string;
  config: string;
  deb: string;
  hostname?: string;
  wifi?: { ssid: string; password: string; country: string };
  log?: (line: string) => void;
}

/** Byte offset of the first FAT partition in an MBR disk image. */
export function bootPartitionOffset(image: string): number {
  const fd = openSync(image, 'r');
  const mbr = Buffer.alloc(512);
  try {
    readSync(fd, mbr, 0, 512, 0);
  } finally {
    closeSync(fd);
  }
  if (mbr[510] !== 0x55 || mbr[511] !== 0xaa) throw new ImageError(`${image} has no MBR partition table (is it a Raspberry Pi OS .img, uncompressed?)`);
  for (let i = 0; i < 4; i++) {
    const entry = 446 + 16 * i;
    const type = mbr[entry + 4]!;
    const lba = mbr.readUInt32LE(entry + 8);
    if (FAT_TYPES.has(type) && lba > 0) return lba * 512;
  }
  throw new ImageError(`${image} has no FAT boot partition`);
}

function mtools(tool: string, args: string[], input?: string): string {
  const r = spawnSync(tool, args, { encoding: 'utf8', input, env: { ...process.env, MTOOLS_SKIP_CHECK: '1' } });
  if (r.error && (r.error as NodeJS.ErrnoException).code === 'ENOENT') throw new ImageError(`${tool} is missing: apt-get install -y mtools`);
  if (r.status !== 0) throw new ImageError(`${tool} ${args.join(' ')}: ${r.stderr.trim()}`);
  return r.stdout;
}

const shQuote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

export function installScript(hasCa: boolean, stateDir: string = DEFAULT_STATE_DIR): string {
  return `#!/bin/sh
# Written by "xmpp-iot-agent image"; run once by cloud-init at first boot.
set -eu
SRC=$(cd "$(dirname "$0")" && pwd)
# Whatever happens below, the password does not stay on the FAT partition: it goes to /etc first.
install -d -m 0700 /etc/xmpp-iot-agent
if [ -f "$SRC/password" ]; then install -m 0600 "$SRC/password" /etc/xmpp-iot-agent/password; rm -f "$SRC/password"; fi
export DEBIAN_FRONTEND=noninteractive
# At first boot the network may still be coming up.
for i in 1 2 3 4 5 6 7 8 9 10; do apt-get update && break || sleep 15; done
if ! command -v node >/dev/null || [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 20 ]; then
  apt-get install -y nodejs
fi
dpkg -i --force-confold "$SRC/xmpp-iot-agent.deb" || apt-get install -y -f
chgrp xmpp-iot-agent /etc/xmpp-iot-agent /etc/xmpp-iot-agent/password
chmod 0750 /etc/xmpp-iot-agent
chmod 0640 /etc/xmpp-iot-agent/password
install -m 0640 -g xmpp-iot-agent "$SRC/agent.yaml" /etc/xmpp-iot-agent/agent.yaml
${hasCa ? 'install -m 0644 "$SRC/ca.pem" /etc/xmpp-iot-agent/ca.pem\n' : ''}# A gateway to be claimed: its code goes to the state dir, where the agent and "xmpp-iot-agent claim" find it.
if [ -f "$SRC/claim.json" ]; then
  install -d -m 0750 -o xmpp-iot-agent -g xmpp-iot-agent ${shQuote(stateDir)}
  install -m 0600 -o xmpp-iot-agent -g xmpp-iot-agent "$SRC/claim.json" ${shQuote(stateDir + '/claim.json')}
  rm -f "$SRC/claim.json"
fi
# The package may have started the service already, with its example config: restart it with this one.
systemctl enable xmpp-iot-agent.service
systemctl restart xmpp-iot-agent.service
`;
}

/** The user's config as the gateway will read it: secrets and CA from /etc/xmpp-iot-agent. */
export function gatewayConfig(text: string, hasCa: boolean): string {
  return withYaml(({ parseDocument }) => {
    const doc = parseDocument(text);
    doc.deleteIn(['xmpp', 'password']);
    doc.setIn(['xmpp', 'password_file'], '/etc/xmpp-iot-agent/password');
    if (hasCa) doc.setIn(['xmpp', 'tls', 'ca_file'], '/etc/xmpp-iot-agent/ca.pem');
    return doc.toString();
  });
}

/** Merge our first-boot steps into the image's own cloud-init user-data. */
export function mergeUserData(existing: string | undefined, hostname: string | undefined): string {
  return withYaml(({ parseDocument }) => {
    const doc = parseDocument(existing && existing.trim() ? existing : '{}');
    if (hostname) {
      doc.set('hostname', hostname);
      doc.set('manage_etc_hosts', true);
    }
    const step = ['sh', `${BOOT_DIR}/xmpp-iot-agent/install.sh`];
    const runcmd = (doc.get('runcmd', true) as { toJSON(): unknown } | undefined)?.toJSON();
    const list = Array.isArray(runcmd) ? runcmd.filter((c) => JSON.stringify(c) !== JSON.stringify(step)) : [];
    doc.set('runcmd', [...list, step]);
    return `#cloud-config\n${doc.toString().replace(/^#cloud-config\n/, '')}`;
  });
}

export function networkConfig(wifi: { ssid: string; password: string; country: string }): string {
  return withYaml(({ stringify }) => stringify({
    network: {
      version: 2,
      wifis: {
        renderer: 'NetworkManager',
        wlan0: { dhcp4: true, optional: true, 'regulatory-domain': wifi.country, 'access-points': { [wifi.ssid]: { password: wifi.password } } },
      },
    },
  }));
}

export function writeImage(o: ImageOptions): string[] {
  const log = o.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const loaded = loadConfigFile(o.config); // a bad config is refused before the image is touched
  const offset = bootPartitionOffset(o.image);
  const target = `${o.image}@@${offset}`;
  const work = mkdtempSync(join(tmpdir(), 'xia-image-'));
  const written: string[] = [];
  try {
    const put = (name: string, content: string | Buffer): void => {
      const local = join(work, basename(name));
      writeFileSync(local, content, { mode: 0o600 });
      mtools('mcopy', ['-o', '-i', target, local, `::${name}`]);
      written.push(name);
    };
    const exists = (name: string): boolean => spawnSync('mdir', ['-i', target, `::${name}`], { stdio: 'ignore' }).status === 0;

    const existingUserData = exists('/user-data') ? mtools('mtype', ['-i', target, '::/user-data']) : undefined;
    if (existingUserData === undefined) {
      log('warning: this image has no cloud-init user-data; images without cloud-init (Raspberry Pi OS before 2025) need the manual steps in README');
    }
    if (!exists('/xmpp-iot-agent')) mtools('mmd', ['-i', target, '::/xmpp-iot-agent']);
    const hasCa = loaded.ca !== undefined;
    put('/xmpp-iot-agent/agent.yaml', gatewayConfig(readFileSync(o.config, 'utf8'), hasCa));
    put('/xmpp-iot-agent/password', `${loaded.password}\n`);
    if (hasCa) put('/xmpp-iot-agent/ca.pem', loaded.ca!);
    // state_dir as the gateway resolves it: relative to its config in /etc/xmpp-iot-agent.
    const rawStateDir: unknown = withYaml(({ parseDocument }) => parseDocument(readFileSync(o.config, 'utf8')).get('state_dir'));
    const stateDir = posix.resolve('/etc/xmpp-iot-agent', typeof rawStateDir === 'string' ? rawStateDir : DEFAULT_STATE_DIR);
    put('/xmpp-iot-agent/install.sh', installScript(hasCa, stateDir));
    put('/xmpp-iot-agent/xmpp-iot-agent.deb', readFileSync(o.deb));
    put('/user-data', mergeUserData(existingUserData, o.hostname));
    if (o.wifi) put('/network-config', networkConfig(o.wifi));
    const claim = claimImageFiles(loaded.config);
    if (claim) {
      put('/xmpp-iot-agent/claim.json', claim.json);
      if (claim.png) put('/xmpp-iot-agent-claim.png', claim.png);
      put('/xmpp-iot-agent-claim.txt', claim.text);
    }
    for (const f of written) log(`wrote ${f}`);
    return written;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** The newest package built by `npm run package:deb`, if any. */
export function defaultDeb(root: string): string | undefined {
  const r = spawnSync('sh', ['-c', `ls -t "${join(root, 'build')}"/xmpp-iot-agent_*.deb 2>/dev/null | head -n 1`], { encoding: 'utf8' });
  const path = r.stdout.trim();
  return path || undefined;
}

