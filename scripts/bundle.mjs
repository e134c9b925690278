#!/usr/bin/env node
// `npm run build`: the agent as it ships, one minified ESM bundle (dist/cli.js)
// plus a chunk for each part loaded only when configured (the serial bridge,
// LAN advertising, the hardware drivers). Measured on the agent (see
// BENCHMARKS.md): ~218 files loaded one by one, 94 of them CommonJS, made
// Node's loader hot enough to be optimised on worker threads whose freed
// memory glibc kept (~7 MiB); one bundle removes that. Non-ASCII characters
// are escaped so V8 keeps the source one byte per character. Native addons
// stay outside (better-sqlite3, serialport's bindings, node-dht-sensor) and
// are resolved from node_modules at run time. Each YAML library is a CommonJS
// file of its own (chunks/js-yaml.cjs for the config, chunks/yaml.cjs for the
// image tool), loaded for the call and then let go (src/config/yaml.ts).

import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
rmSync(`${root}dist`, { recursive: true, force: true });

// The build's time (src/runtime/build-time.ts): a wall clock before it is clearly wrong (a Pi without
// a real-time clock). Reproducible: SOURCE_DATE_EPOCH, else the last commit's time, else now.
function buildTime() {
  const epoch = Number(process.env.SOURCE_DATE_EPOCH);
  if (Number.isFinite(epoch) && epoch > 0) return new Date(epoch * 1000).toISOString();
  try {
    const iso = execFileSync('git', ['log', '-1', '--format=%cI'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    if (iso) return new Date(iso).toISOString();
  } catch {
    // not a git checkout
  }
  return new Date().toISOString();
}

// src/config/yaml.ts in the bundle: require() a library's own file for the call, then drop it from
// require's cache so that nothing keeps it (an ES module would stay loaded for the life of the process).
// The importing code may end up in dist/ or in dist/chunks/; the libraries are in dist/chunks/.
const RELEASED_YAML = `import{createRequire}from'node:module';
function released(name,use){const req=createRequire(import.meta.url);const file=req.resolve(/\\/chunks\\/[^/]*$/.test(import.meta.url)?'./'+name:'./chunks/'+name);try{return use(req(file))}finally{delete req.cache[file]}}
export function withYaml(use){return released('yaml.cjs',use)}
export function withYamlLoader(use){return released('js-yaml.cjs',use)}`;
const releasedYaml = {
  name: 'released-yaml',
  setup(b) {
    b.onResolve({ filter: /\/yaml\.js$/ }, (args) => (join(args.resolveDir, args.path) === `${root}src/config/yaml.js` ? { path: 'released-yaml', namespace: 'released-yaml' } : undefined));
    b.onLoad({ filter: /.*/, namespace: 'released-yaml' }, () => ({ contents: RELEASED_YAML, loader: 'js' }));
  },
};

const common = { absWorkingDir: root, bundle: true, platform: 'node', target: 'node20', minify: true, charset: 'ascii', sourcemap: 'linked', legalComments: 'linked', metafile: true, logLevel: 'warning' };
const yamlLib = await build({ ...common, entryPoints: { 'chunks/yaml': 'yaml', 'chunks/js-yaml': 'js-yaml' }, outdir: 'dist', outExtension: { '.js': '.cjs' }, format: 'cjs' });

const result = await build({
  absWorkingDir: root,
  entryPoints: { cli: 'src/cli.ts' },
  outdir: 'dist',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  minify: true,
  charset: 'ascii',
  // Stack traces stay readable: node --enable-source-maps dist/cli.js … maps them back to src/.
  sourcemap: 'linked',
  legalComments: 'linked',
  external: ['better-sqlite3', 'serialport', '@serialport/*', 'node-dht-sensor'],
  // Some bundled CommonJS packages call require() for Node built-ins; ESM output has none, so give them one.
  banner: { js: "import{createRequire as __cr}from'node:module';const require=__cr(import.meta.url);" },
  chunkNames: 'chunks/[name]-[hash]',
  define: { __XIA_BUILD_TIME__: JSON.stringify(buildTime()) },
  plugins: [releasedYaml],
  metafile: true,
  logLevel: 'warning',
});

const outputs = [...Object.entries(result.metafile.outputs), ...Object.entries(yamlLib.metafile.outputs)].filter(([f]) => /\.c?js$/.test(f));
const total = outputs.reduce((n, [, o]) => n + o.bytes, 0);
process.stderr.write(`[bundle] dist/: ${outputs.length} files, ${(total / 1024).toFixed(0)} KiB of JavaScript\n`);
