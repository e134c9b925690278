import { existsSync, readFileSync } from 'node:fs';

/** The package's name and version, from the package.json above dist/ (or dist-bench/src/ for benchmarks). */
export const PRODUCT = (() => {
  const candidates = ['../package.json', '../../package.json'].map((p) => new URL(p, import.meta.url));
  const file = candidates.find((u) => existsSync(u)) ?? candidates[0]!;
  const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name: string; version: string };
  return { name: pkg.name, version: pkg.version };
})();
