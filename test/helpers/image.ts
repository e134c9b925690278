// A small synthetic Raspberry Pi OS-like disk image: MBR, a FAT boot partition
// at sector 2048 (sfdisk + mkfs.vfat), optionally with the image's own cloud-init user-data.

import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { findBinary } from '../../tools/dev/prosody.js';

export const BOOT_START = 2048;
export const imageTools = ['sfdisk', 'mkfs.vfat', 'mcopy', 'mtype'].every((t) => findBinary(t));
const env = { ...process.env, MTOOLS_SKIP_CHECK: '1' };

export function makeImage(dir: string, userData?: string): string {
  const img = join(dir, 'raspios.img');
  execFileSync('truncate', ['-s', '48M', img]);
  execFileSync('sfdisk', ['--quiet', img], { input: `label: dos\nstart=${BOOT_START}, size=90112, type=c\nstart=92160, type=83\n` });
  execFileSync('mkfs.vfat', ['-F', '16', '-n', 'bootfs', '--offset', String(BOOT_START), img, '45056'], { stdio: 'ignore' });
  if (userData !== undefined) {
    writeFileSync(join(dir, 'user-data'), userData);
    execFileSync('mcopy', ['-i', `${img}@@${BOOT_START * 512}`, join(dir, 'user-data'), '::/user-data'], { env });
  }
  return img;
}

/** A file from the boot partition, as text. */
export function readBoot(img: string, path: string): string {
  return execFileSync('mtype', ['-i', `${img}@@${BOOT_START * 512}`, `::${path}`], { encoding: 'utf8', env });
}

/** Copy a directory out of the boot partition, as the Pi would see it at /boot/firmware. */
export function extractBoot(img: string, path: string, to: string): void {
  execFileSync('mcopy', ['-s', '-n', '-i', `${img}@@${BOOT_START * 512}`, `::${path}`, to], { env });
}
