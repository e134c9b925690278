// The faults of the Pi itself, for the soak (bench/soak.ts): a wall clock NTP
// sets by hours (libfaketime, steered through a file), an SD card that fills
// up or goes read-only (a loop-mounted ext4 image, root only), a site CA whose
// server certificate gets renewed, and what /proc says the agent wrote to the
// card. Each returns undefined (or does nothing) where this machine cannot do
// it, and the soak says so.

import { execFileSync } from 'node:child_process';
import { closeSync, copyFileSync, existsSync, mkdirSync, openSync, readFileSync, statfsSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { basename, join } from 'node:path';

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
const sh = (cmd: string, args: string[]): string => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

/** The agent's wall clock, set while it runs (NTP's jumps); the monotonic clock is left alone, as NTP leaves it. */
export function clockControl(dir: string): { env: NodeJS.ProcessEnv; set(offsetS: number): void } | undefined {
  const lib = ['/usr/lib/x86_64-linux-gnu/faketime', '/usr/lib/aarch64-linux-gnu/faketime', '/usr/lib/arm-linux-gnueabihf/faketime']
    .map((d) => join(d, 'libfaketimeMT.so.1'))
    .find((f) => existsSync(f));
  if (!lib) return undefined;
  const file = join(dir, 'faketime');
  const set = (offsetS: number): void => writeFileSync(file, `${offsetS >= 0 ? '+' : ''}${Math.round(offsetS)}\n`);
  set(0);
  return { env: { LD_PRELOAD: lib, FAKETIME_TIMESTAMP_FILE: file, FAKETIME_DONT_FAKE_MONOTONIC: '1', FAKETIME_CACHE_DURATION: '1', NO_FAKE_STAT: '1' }, set };
}

/** The state dir on an ext4 image of its own (a card the soak can fill and break). Root only. */
export function sdCard(dir: string, mountpoint: string, sizeMiB = 64) {
  if (!isRoot || !existsSync('/dev/loop-control')) return undefined;
  const image = join(dir, 'card.img');
  sh('truncate', ['-s', `${sizeMiB}M`, image]);
  sh('mkfs.ext4', ['-q', '-F', '-m', '0', image]);
  mkdirSync(mountpoint, { recursive: true });
  sh('mount', ['-o', 'loop,errors=remount-ro', image, mountpoint]);
  const loops: string[] = [];
  return {
    /**
     * Fill it to the last block, as a card does; returns a function that frees the space again. All but the last MiB
     * is reserved with fallocate, which sends no data to the card: its block device's count of bytes written
     * (deviceBytesWritten) stays the agent's, not tens of MiB of filler per fault.
     */
    fill(): () => void {
      const filler = join(mountpoint, 'filler');
      const s = statfsSync(mountpoint);
      const bulk = s.bavail * s.bsize - (1 << 20);
      if (bulk > 0) {
        try {
          sh('fallocate', ['-l', String(bulk), filler]);
        } catch {
          // no fallocate: the writes below fill it all
        }
      }
      const fd = openSync(filler, 'a');
      const chunk = Buffer.alloc(1 << 20);
      try {
        for (;;) writeSync(fd, chunk);
      } catch {
        try {
          for (;;) writeSync(fd, chunk.subarray(0, 4096));
        } catch {
          // full
        }
      } finally {
        closeSync(fd);
      }
      return () => unlinkSync(filler);
    },
    /** What ext4 does after an I/O error (errors=remount-ro); returns what a reboot would do: unmount, fsck, mount again. */
    breakIt(): () => void {
      const device = basename(sh('findmnt', ['-n', '-o', 'SOURCE', mountpoint]).trim());
      writeFileSync(`/sys/fs/ext4/${device}/trigger_fs_error`, 'soak\n');
      return () => {
        sh('umount', ['-l', mountpoint]);
        // The old filesystem lives on while the agent holds its files: the image gets a loop device of its own.
        const loop = sh('losetup', ['-f', '--show', image]).trim();
        loops.push(loop);
        try {
          sh('e2fsck', ['-f', '-y', loop]);
        } catch (err) {
          if ((err as { status?: number }).status !== 1) throw err;
        }
        sh('mount', ['-o', 'errors=remount-ro', loop, mountpoint]);
      };
    },
    /** Bytes the card's block device has been sent so far (/sys/block/…/stat: journal and metadata included), as the card itself counts them. */
    deviceBytesWritten(): number {
      const device = basename(sh('findmnt', ['-n', '-o', 'SOURCE', mountpoint]).trim());
      const fields = readFileSync(`/sys/block/${device}/stat`, 'utf8').trim().split(/\s+/);
      return Number(fields[6]) * 512;
    },
    close(): void {
      try {
        sh('umount', ['-l', mountpoint]);
      } catch {
        // already gone
      }
      for (const l of loops) {
        try {
          sh('losetup', ['-d', l]);
        } catch {
          // busy until the last file closes; autoclear takes it then
        }
      }
    },
  };
}

/** A CA for the soak's Prosody: its certificate can be renewed under the running agent (same CA, new key). */
export function siteCa(dir: string, domain: string, prosodyDir: string) {
  mkdirSync(prosodyDir, { recursive: true });
  const ssl = (args: string[]): void => void execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  ssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-out', 'ca.key']);
  ssl(['req', '-x509', '-key', 'ca.key', '-out', 'ca.crt', '-days', '3650', '-subj', '/CN=Soak site CA']);
  writeFileSync(join(dir, 'server.ext'), `subjectAltName=DNS:${domain},DNS:*.${domain}\n`);
  let n = 0;
  const issue = (): void => {
    const name = `server-${n++}`;
    ssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-out', `${name}.key`]);
    ssl(['req', '-new', '-key', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${domain}`]);
    ssl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.crt`, '-days', '90', '-extfile', 'server.ext']);
    copyFileSync(join(dir, `${name}.crt`), join(prosodyDir, `${domain}.crt`));
    copyFileSync(join(dir, `${name}.key`), join(prosodyDir, `${domain}.key`));
  };
  issue(); // before Prosody starts: it takes these instead of making a self-signed one
  return {
    caFile: join(dir, 'ca.crt'),
    /** A renewed certificate, taken by Prosody for new connections (prosodyctl reload); live ones carry on. */
    renew(): void {
      issue();
      sh('prosodyctl', ['--config', join(prosodyDir, 'prosody.cfg.lua'), 'reload']);
    },
  };
}

/**
 * Bytes the process caused to be written to storage (/proc/PID/io write_bytes: the block layer, so a tmpfs counts 0).
 * An upper bound, not what the card gets: the kernel charges each page-cache folio the process dirties in full,
 * and on kernels whose ext4 caches files in large folios (6.16 and later) a 4 KiB write into a file read in
 * before can be charged 100 KiB and more. The card's own count is sdCard().deviceBytesWritten().
 */
export function writeBytesOf(pid: number): number {
  const io = readFileSync(`/proc/${pid}/io`, 'utf8');
  return Number(/^write_bytes:\s*(\d+)/m.exec(io)?.[1] ?? NaN);
}

export { unitEnvironment } from './lib.js';
