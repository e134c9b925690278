import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The package's name and version, from the nearest package.json above this module (dist/, or a tools build). */
export const PRODUCT = (() => {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const file = join(dir, 'package.json');
    if (existsSync(file)) {
      const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name: string; version: string };
      return { name: pkg.name, version: pkg.version };
    }
    const up = dirname(dir);
    if (up === dir) return { name: 'xmpp-iot-agent', version: '0.0.0' };
    dir = up;
  }
})();
