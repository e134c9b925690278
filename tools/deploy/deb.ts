// `npm run package:deb`: a Debian package of the built agent with its
// production dependencies, the systemd unit, an example config (a conffile, so
// dpkg never overwrites an edited one) and maintainer scripts.

import { execFileSync } from 'node:child_process';
import { chmodSync, closeSync, copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { gzipSync } from 'node:zlib';
import { join, resolve } from 'node:path';
import { knownArch, stageNative } from './native.js';

const NAME = 'xmpp-iot-agent';

function changelog(version: string): string {
  // A native package's changelog; the date is fixed so the build is reproducible.
  return `${NAME} (${version}) unstable; urgency=medium\n\n  * Release ${version}; see README.md.\n\n -- xmpp-iot-agent developers <maintainers@xmpp-iot-agent.invalid>  Wed, 25 Nov 2026 12:00:00 +0000\n`;
}

function sizeKb(dir: string): number {
  let total = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) total += sizeKb(p) * 1024;
    else if (entry.isFile()) total += statSync(p).size;
  }
  return Math.ceil(total / 1024);
}

/** Linters' and npm's own dotfiles, which some tarballs carry and lintian rejects in a binary package. */
const DEV_DOTFILES = /^\.(npmignore|eslintrc(\.\w+)?|jshintrc|gitignore|gitattributes|travis\.yml)$/;

/**
 * npm tarballs are careless: drop their development dotfiles; scripts (#!)
 * executable, native objects as they are, everything else 0644.
 */
function normaliseFiles(dir: string): void {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) normaliseFiles(p);
    else if (entry.isFile() && DEV_DOTFILES.test(entry.name)) rmSync(p);
    else if (entry.isFile() && entry.name.endsWith('.node')) chmodSync(p, 0o644);
    else if (entry.isFile()) {
      const head = Buffer.alloc(2);
      const fd = openSync(p, 'r');
      readSync(fd, head, 0, 2, 0);
      closeSync(fd);
      chmodSync(p, head.toString() === '#!' ? 0o755 : 0o644);
    }
  }
}

export interface DebOptions {
  /** Project root (holds package.json, dist/, deploy/). */
  root: string;
  outDir: string;
  /** Debian architecture to build for (arm64, armhf, amd64); default: this machine's. */
  arch?: string;
  log?: (line: string) => void;
}

export function buildDeb(opts: DebOptions): string {
  const log = opts.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const root = resolve(opts.root);
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string; description: string };
  if (!existsSync(join(root, 'dist', 'cli.js'))) throw new Error('dist/cli.js is missing: run npm run build first');

  const stage = mkdtempSync(join(tmpdir(), 'xia-deb-'));
  try {
    const lib = join(stage, 'usr/lib', NAME);
    mkdirSync(lib, { recursive: true });
    // The bundle with its source maps: node --enable-source-maps on the Pi maps a stack trace back to src/.
    cpSync(join(root, 'dist'), join(lib, 'dist'), { recursive: true });
    copyFileSync(join(root, 'package.json'), join(lib, 'package.json'));
    copyFileSync(join(root, 'package-lock.json'), join(lib, 'package-lock.json'));
    const host = execFileSync('dpkg', ['--print-architecture']).toString().trim();
    const target = opts.arch ?? host;
    if (!knownArch(target)) throw new Error(`unknown architecture ${target}: arm64, armhf or amd64`);
    // No install scripts: they would compile for this machine. stageNative gives each addon its target's build.
    log(`installing production dependencies for ${target}`);
    execFileSync('npm', ['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: lib, stdio: ['ignore', 'ignore', 'inherit'] });
    const native = stageNative({ root, lib, arch: target, host, log });
    rmSync(join(lib, 'package-lock.json'));
    chmodSync(join(lib, 'dist', 'cli.js'), 0o755);

    mkdirSync(join(stage, 'usr/bin'), { recursive: true });
    symlinkSync(`../lib/${NAME}/dist/cli.js`, join(stage, 'usr/bin', NAME));
    mkdirSync(join(stage, 'lib/systemd/system'), { recursive: true });
    copyFileSync(join(root, 'deploy/systemd', `${NAME}.service`), join(stage, 'lib/systemd/system', `${NAME}.service`));
    mkdirSync(join(stage, 'etc', NAME), { recursive: true });
    copyFileSync(join(root, 'agent.example.yaml'), join(stage, 'etc', NAME, 'agent.yaml'));
    const doc = join(stage, 'usr/share/doc', NAME);
    mkdirSync(doc, { recursive: true });
    copyFileSync(join(root, 'README.md'), join(doc, 'README.md'));
    copyFileSync(join(root, 'agent.example.yaml'), join(doc, 'agent.example.yaml'));
    copyFileSync(join(root, 'deploy/debian/copyright'), join(doc, 'copyright'));
    writeFileSync(join(doc, 'changelog.gz'), gzipSync(changelog(pkg.version), { level: 9 }));
    const man = join(stage, 'usr/share/man/man1');
    mkdirSync(man, { recursive: true });
    writeFileSync(join(man, `${NAME}.1.gz`), gzipSync(readFileSync(join(root, 'deploy/debian', `${NAME}.1`)), { level: 9 }));

    const arch = native.arch;
    normaliseFiles(join(lib, 'node_modules'));
    const installed = sizeKb(stage);
    const debian = join(stage, 'DEBIAN');
    mkdirSync(debian);
    writeFileSync(
      join(debian, 'control'),
      `Package: ${NAME}
Version: ${pkg.version}
Architecture: ${arch}
Maintainer: xmpp-iot-agent developers <maintainers@xmpp-iot-agent.invalid>
Installed-Size: ${installed}
Depends: ${[...native.nodeDepends, 'adduser', ...native.libDepends].join(', ')}
Section: net
Priority: optional
Description: XMPP agent for Raspberry Pi gateways
 Reads sensors, shows their readings as XMPP presence, and lets owners
 control devices by chat, XEP-0325 or ad-hoc commands. Runs as the
 xmpp-iot-agent system user under a hardened systemd unit.
`,
    );
    writeFileSync(join(debian, 'conffiles'), `/etc/${NAME}/agent.yaml\n`);
    for (const script of ['postinst', 'prerm', 'postrm']) {
      copyFileSync(join(root, 'deploy/debian', script), join(debian, script));
      chmodSync(join(debian, script), 0o755);
    }

    mkdirSync(opts.outDir, { recursive: true });
    const out = join(resolve(opts.outDir), `${NAME}_${pkg.version}_${arch}.deb`);
    execFileSync('dpkg-deb', ['--root-owner-group', '-Zxz', '--build', stage, out], { stdio: ['ignore', 'ignore', 'inherit'] });
    log(`built ${out}`);
    return out;
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const root = resolve(new URL('../../..', import.meta.url).pathname); // dist-tools/tools/deploy/ → the checkout
  const a = process.argv.indexOf('--arch');
  const out = buildDeb({ root, outDir: join(root, 'build'), arch: a > 0 ? process.argv[a + 1] : undefined });
  process.stdout.write(`${out}\n`);
}
