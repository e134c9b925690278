// The native addons inside the Debian package, for the package's architecture.
//
// Dependencies that ship prebuilt addons (serialport) keep only the target's.
// Dependencies that compile theirs at `npm install` (better-sqlite3, the
// optional node-dht-sensor) are staged with their install scripts off and get
// their addon here, so that a Pi never needs a compiler:
// - for this machine's architecture, the one the project's own `npm ci` built;
// - for another, one built with Debian's cross compiler (g++-aarch64-linux-gnu,
//   g++-arm-linux-gnueabihf) against this Node's headers, and cached under
//   node_modules/.cache so the next build reuses it.
// Every addon is then checked: the right ELF machine, the right Node ABI, and on
// this machine's architecture it is loaded for real.

import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { delimiter, dirname, join, resolve } from 'node:path';

/** What a Debian architecture means to node-gyp, the GNU toolchain, ELF and serialport's prebuilds (glibc only). */
const ARCHES: Record<string, { gyp: string; triplet: string; elf: { bits: 32 | 64; machine: number }; prebuilds: { dir: string; files: RegExp } }> = {
  arm64: { gyp: 'arm64', triplet: 'aarch64-linux-gnu', elf: { bits: 64, machine: 183 }, prebuilds: { dir: 'linux-arm64', files: /armv8\.glibc\.node$|^[^.]+\.glibc\.node$/ } },
  armhf: { gyp: 'arm', triplet: 'arm-linux-gnueabihf', elf: { bits: 32, machine: 40 }, prebuilds: { dir: 'linux-arm', files: /armv[67]\.glibc\.node$/ } },
  amd64: { gyp: 'x64', triplet: 'x86_64-linux-gnu', elf: { bits: 64, machine: 62 }, prebuilds: { dir: 'linux-x64', files: /glibc\.node$/ } },
};

/**
 * Dependencies whose install script compiles an addon (their npm tarballs hold
 * no prebuilt one): the file it builds, whether it is tied to one Node major
 * (V8 API) or not (N-API), and a JavaScript expression on the loaded module `m`
 * that proves it works.
 */
const COMPILED: Record<string, { addon: string; abi: 'node' | 'napi'; smoke: string }> = {
  'better-sqlite3': { addon: 'better_sqlite3.node', abi: 'node', smoke: `new m(':memory:').prepare('select sqlite_version() as v').get().v` },
  'node-dht-sensor': { addon: 'node_dht_sensor.node', abi: 'napi', smoke: 'typeof m.read' },
};

interface LockEntry { version?: string; hasInstallScript?: boolean; optional?: boolean }

export interface NativeOptions {
  /** The project (its node_modules holds this machine's built addons and the cache). */
  root: string;
  /** The staged /usr/lib/xmpp-iot-agent, installed with `npm ci --ignore-scripts`; its package-lock.json still there. */
  lib: string;
  /** Debian architecture of the package, and of this machine. */
  arch: string;
  host: string;
  log: (line: string) => void;
}

export interface NativeResult {
  /** The package's Architecture: the target, or `all` when no native code is left. */
  arch: string;
  /** Dependencies that the shipped addons add: the Node major their ABI needs, the C libraries. */
  nodeDepends: string[];
  libDepends: string[];
}

export function knownArch(arch: string): boolean {
  return arch in ARCHES;
}

/** Give every dependency with an install script its native part for `arch`, keep nothing else, and check it. */
export function stageNative(o: NativeOptions): NativeResult {
  const target = ARCHES[o.arch];
  if (!target) throw new Error(`unknown architecture ${o.arch}: one of ${Object.keys(ARCHES).join(', ')}`);
  const lock = JSON.parse(readFileSync(join(o.lib, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockEntry> };
  const built: { dir: string; name: string }[] = [];
  for (const [loc, entry] of Object.entries(lock.packages)) {
    const dir = join(o.lib, loc);
    if (!loc || !entry.hasInstallScript || !existsSync(dir)) continue;
    const { name, version } = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name: string; version: string };
    if (COMPILED[name]) {
      const failed = provideAddon(o, loc, name, version);
      if (!failed) built.push({ dir, name });
      else if (entry.optional) {
        o.log(`leaving out the optional ${name}: ${failed}`);
        rmSync(dir, { recursive: true, force: true });
      } else throw new Error(`${name} for ${o.arch}: ${failed}`);
    } else if (!existsSync(join(dir, 'prebuilds', target.prebuilds.dir))) {
      // An install script we skipped and know nothing about: shipping without it would be a guess.
      throw new Error(`${loc} has an install script and no ${target.prebuilds.dir} prebuild: teach tools/deploy/native.ts how to build it`);
    }
  }

  const native = pruneNative(join(o.lib, 'node_modules'), o.arch);
  for (const { dir, name } of built) {
    const addon = join(dir, 'build', 'Release', COMPILED[name]!.addon);
    const bytes = readFileSync(addon);
    rmSync(join(dir, 'build'), { recursive: true, force: true }); // node-gyp's tree, test-only addons included
    mkdirSync(dirname(addon), { recursive: true });
    writeFileSync(addon, bytes);
    execFileSync(stripFor(o.arch, o.host), ['--strip-unneeded', addon]);
    chmodSync(addon, 0o644);
    check(o, name, addon);
  }

  const addons = listAddons(join(o.lib, 'node_modules'));
  const glibc = addons.map(glibcNeeded).reduce((a, b) => (compareVersions(a, b) >= 0 ? a : b), '0');
  const major = Number(process.versions.node.split('.')[0]);
  const tied = built.some(({ name }) => COMPILED[name]!.abi === 'node');
  return {
    arch: native ? o.arch : 'all',
    nodeDepends: tied ? [`nodejs (>= ${major})`, `nodejs (<< ${major + 1})`] : ['nodejs (>= 20)'],
    libDepends: native ? [glibc === '0' ? 'libc6' : `libc6 (>= ${glibc})`, 'libstdc++6'] : [],
  };
}

/**
 * Put `name`'s addon in the staged package: this machine's own build, a cached
 * build, or a fresh (cross) compile. Returns why not, when it cannot.
 */
function provideAddon(o: NativeOptions, loc: string, name: string, version: string): string | undefined {
  const spec = COMPILED[name]!;
  const target = ARCHES[o.arch]!;
  const dest = join(o.lib, loc, 'build', 'Release', spec.addon);
  const abi = spec.abi === 'node' ? `node-abi${process.versions.modules}` : 'napi';
  const cached = join(o.root, 'node_modules', '.cache', 'xmpp-iot-agent', 'addons', `${name}@${version}-${o.arch}-${abi}`, spec.addon);
  const sources: [string, string][] = [[cached, 'the cached build']];
  const own = join(o.root, loc);
  if (o.arch === o.host && existsSync(join(own, 'package.json')) && (JSON.parse(readFileSync(join(own, 'package.json'), 'utf8')) as { version: string }).version === version) {
    sources.unshift([join(own, 'build', 'Release', spec.addon), "the project's own build"]);
  }
  for (const [from, what] of sources) {
    if (usable(from, o.arch, spec.abi)) {
      o.log(`${name} ${version} for ${o.arch}: ${what}`);
      mkdirSync(dirname(dest), { recursive: true });
      copyFileSync(from, dest);
      return undefined;
    }
  }

  const gxx = `${target.triplet}-g++`;
  if (!onPath(gxx)) return `compiling it needs ${gxx}: apt-get install ${o.arch === o.host ? 'g++' : `g++-${target.triplet}`} make python3`;
  const headers = nodeHeaders();
  if (!existsSync(headers.file)) return `compiling it needs Node's headers (${headers.file}): NodeSource's nodejs ships them; with Debian's nodejs, apt-get install libnode-dev`;
  if (headers.abi !== process.versions.modules) return `${headers.file} is for Node ABI ${headers.abi}, this Node's is ${process.versions.modules}`;
  o.log(`${name} ${version} for ${o.arch}: compiling with ${gxx} (a minute or two; cached for the next build)`);
  const t = Date.now();
  const r = spawnSync(process.execPath, [nodeGyp(), 'rebuild', '--release', `--arch=${target.gyp}`, `--nodedir=${headers.dir}`, '-j', 'max'], {
    cwd: join(o.lib, loc),
    env: { ...process.env, CC: `${target.triplet}-gcc`, CXX: gxx, LINK: gxx },
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  });
  if (r.status !== 0) return `node-gyp failed:\n${`${r.stdout}${r.stderr}`.trim().split('\n').slice(-15).join('\n')}`;
  if (!usable(dest, o.arch, spec.abi)) return `node-gyp built no ${o.arch} ${spec.addon} for Node ABI ${process.versions.modules}`;
  o.log(`${name} compiled in ${Math.round((Date.now() - t) / 1000)} s`);
  mkdirSync(dirname(cached), { recursive: true });
  copyFileSync(dest, `${cached}.${process.pid}`);
  renameSync(`${cached}.${process.pid}`, cached); // whole or not at all, even if two builds race
  return undefined;
}

/** The addon is an ELF shared object for `arch`, built for this Node's ABI (or N-API). */
function usable(file: string, arch: string, abi: 'node' | 'napi'): boolean {
  if (!existsSync(file)) return false;
  const bytes = readFileSync(file);
  const want = ARCHES[arch]!.elf;
  const elf = bytes.subarray(0, 4).toString('latin1') === '\x7fELF' && bytes[4] === (want.bits === 64 ? 2 : 1) && bytes.readUInt16LE(18) === want.machine;
  const entry = abi === 'node' ? `node_register_module_v${process.versions.modules}` : 'napi_register_module_v1';
  return elf && bytes.includes(entry);
}

/** The staged addon is the right kind, and on this machine's architecture it loads and works. */
function check(o: NativeOptions, name: string, addon: string): void {
  const spec = COMPILED[name]!;
  if (!usable(addon, o.arch, spec.abi)) throw new Error(`${addon} is not a ${o.arch} addon for this Node (ABI ${process.versions.modules})`);
  if (o.arch !== o.host) return;
  const r = spawnSync(process.execPath, ['-e', `const m = require(process.argv[1]); console.log(${spec.smoke})`, join(o.lib, 'node_modules', name)], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`the staged ${name} does not load: ${r.stderr.trim()}`);
  o.log(`${name} loads from the package: ${r.stdout.trim()}`);
}

/** Keep only the prebuilt addons for `arch`; report whether any native code remains. */
function pruneNative(dir: string, arch: string): boolean {
  let native = false;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory() && entry.name === 'prebuilds') {
      const want = ARCHES[arch]!.prebuilds;
      for (const platform of readdirSync(p)) {
        if (platform !== want.dir) rmSync(join(p, platform), { recursive: true, force: true });
        else for (const f of readdirSync(join(p, platform))) if (!want.files.test(f)) rmSync(join(p, platform, f));
      }
      native = true;
    } else if (entry.isDirectory()) {
      if (pruneNative(p, arch)) native = true;
    } else if (entry.isFile() && entry.name.endsWith('.node')) {
      native = true;
    }
  }
  return native;
}

function listAddons(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.node'))
    .map((e) => join(e.parentPath, e.name));
}

/** The newest GLIBC_x.y symbol version an ELF object needs ('0' for none). */
function glibcNeeded(file: string): string {
  const text = readFileSync(file).toString('latin1');
  return [...text.matchAll(/GLIBC_(\d+\.\d+(?:\.\d+)?)\0/g)].map((m) => m[1]!).reduce((a, b) => (compareVersions(a, b) >= 0 ? a : b), '0');
}

function compareVersions(a: string, b: string): number {
  const x = a.split('.').map(Number);
  const y = b.split('.').map(Number);
  for (let i = 0; i < Math.max(x.length, y.length); i++) if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) - (y[i] ?? 0);
  return 0;
}

function onPath(cmd: string): boolean {
  return (process.env.PATH ?? '').split(delimiter).some((d) => d && existsSync(join(d, cmd)));
}

/** The strip that understands `arch`'s objects: this machine's own, or the cross binutils'. */
function stripFor(arch: string, host: string): string {
  if (arch === host) return 'strip';
  const strip = `${ARCHES[arch]!.triplet}-strip`;
  if (!onPath(strip)) throw new Error(`${strip} is missing: apt-get install binutils-${ARCHES[arch]!.triplet}`);
  return strip;
}

/** npm's own node-gyp (npm names it to install scripts; otherwise it sits beside npm). */
function nodeGyp(): string {
  const candidates = [process.env.npm_config_node_gyp, join(execFileSync('npm', ['root', '-g'], { encoding: 'utf8' }).trim(), 'npm/node_modules/node-gyp/bin/node-gyp.js')];
  const found = candidates.find((c) => c && existsSync(c));
  if (!found) throw new Error('node-gyp is missing: it comes with npm');
  return found;
}

/** This Node's C headers (node-gyp would otherwise download them, which a build machine may not be able to). */
function nodeHeaders(): { dir: string; file: string; abi: string | undefined } {
  const dir = resolve(dirname(process.execPath), '..');
  const file = join(dir, 'include', 'node', 'node_version.h');
  const abi = existsSync(file) ? /#define NODE_MODULE_VERSION (\d+)/.exec(readFileSync(file, 'utf8'))?.[1] : undefined;
  return { dir, file, abi };
}
