import { readFileSync } from 'node:fs';

/** The package's name and version, read once from package.json beside dist/ or src/. */
export const PRODUCT = (() => {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { name: string; version: string };
  return { name: pkg.name, version: pkg.version };
})();
