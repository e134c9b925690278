#!/usr/bin/env node
// Installs or checks what `npm test` and `npm run demo` need, before anything
// else runs. Node built-ins only: this runs before node_modules exists.
//   node scripts/ensure.mjs deps      npm packages (npm ci when node_modules is missing or stale)
//   node scripts/ensure.mjs prosody   Prosody, openssl and socat (apt-get when root; otherwise says what to run)
//   node scripts/ensure.mjs interop   python3-slixmpp for the interop tests (likewise)
//   node scripts/ensure.mjs firmware  avr-gcc, arduino-mk and simavr to build and emulate the firmware (likewise)
//   node scripts/ensure.mjs cross     the arm64 cross compiler that builds the Pi package's native addons (likewise)
//   node scripts/ensure.mjs ejabberd  ejabberd for the 2-node cluster tests and benchmark (likewise)

import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const say = (msg) => process.stderr.write(`[ensure] ${msg}\n`);

function onPath(bin) {
  return (process.env.PATH ?? '').split(':').concat(['/usr/bin', '/usr/sbin']).some((d) => d && existsSync(join(d, bin)));
}

function deps() {
  const modules = join(root, 'node_modules');
  const lock = join(root, 'package-lock.json');
  const marker = join(modules, '.package-lock.json');
  const stale = !existsSync(marker) || (existsSync(lock) && statSync(lock).mtimeMs > statSync(marker).mtimeMs + 1000);
  if (!existsSync(modules) || stale) {
    // better-sqlite3 compiles its addon when no prebuilt one can be fetched: make sure the compiler is there first.
    debianPackages([
      [() => onPath('make'), 'make'],
      [() => onPath('g++'), 'g++'],
      [() => onPath('python3'), 'python3'],
    ]);
    say('installing npm packages (npm ci)');
    const r = spawnSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: root, stdio: 'inherit' });
    if (r.status !== 0) {
      say('npm ci failed; see above');
      process.exit(1);
    }
  }
}

function pythonHas(module) {
  return spawnSync('/usr/bin/python3', ['-c', `import ${module}`], { stdio: 'ignore' }).status === 0;
}

// `optional`: the tests that need these skip (with a message) when they are absent.
function debianPackages(needs, optional = false) {
  const missing = [...new Set(needs.filter(([ok]) => !ok()).map(([, pkg]) => pkg))];
  if (missing.length === 0) return;
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (!isRoot || !onPath('apt-get')) {
    say(`missing: ${missing.join(', ')}. Install with: sudo apt-get install -y ${missing.join(' ')}`);
    if (optional) return say('continuing: the tests that need them will be skipped');
    process.exit(1);
  }
  say(`installing ${missing.join(', ')} with apt-get`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  try {
    execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
    execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], { stdio: 'inherit', env });
  } catch (err) {
    say(`apt-get could not install ${missing.join(', ')}`);
    if (!optional) process.exit(1);
    say('continuing: the tests that need them will be skipped');
  }
  // Debian starts the system-wide Prosody on install; ours are private, so leave the system one alone.
}

for (const what of process.argv.slice(2)) {
  if (what === 'deps') deps();
  else if (what === 'prosody')
    debianPackages([
      [() => onPath('prosody') && onPath('prosodyctl'), 'prosody'],
      [() => onPath('openssl'), 'openssl'],
      [() => onPath('socat'), 'socat'],
    ]);
  else if (what === 'interop') debianPackages([[() => pythonHas('slixmpp'), 'python3-slixmpp']], true);
  else if (what === 'firmware')
    debianPackages([
      [() => onPath('avr-gcc'), 'gcc-avr'],
      [() => existsSync('/usr/lib/avr/include/avr/io.h'), 'avr-libc'],
      [() => existsSync('/usr/share/arduino/hardware/arduino/avr/cores'), 'arduino-core-avr'],
      [() => existsSync('/usr/share/arduino/Arduino.mk'), 'arduino-mk'],
      [() => existsSync('/usr/include/simavr/parts/uart_pty.h'), 'libsimavr-dev'],
      [() => onPath('simavr'), 'simavr'],
      [() => existsSync('/usr/include/libelf.h'), 'libelf-dev'],
    ], true);
  else if (what === 'ejabberd')
    // Debian starts the system-wide ejabberd on install where systemd runs; ours are private nodes on their own ports.
    debianPackages([[() => onPath('ejabberdctl') && onPath('erl'), 'ejabberd']], true);
  else if (what === 'cross')
    debianPackages([[() => onPath('aarch64-linux-gnu-g++'), 'g++-aarch64-linux-gnu']], true);
  else {
    say(`unknown target ${what}`);
    process.exit(2);
  }
}
