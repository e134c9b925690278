// A short soak on every test run: the same program as `npm run soak`, for one
// minute (two of each fault: graceful and killed server restarts, network
// cuts, serial pulls), must end with every alarm received exactly once.

import { execFileSync, spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(__dirname, '..');

describe('soak', () => {
  it('loses and duplicates no alarm across server restarts, network cuts and serial pulls', async () => {
    execFileSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(ROOT, 'tsconfig.tools.json')], { cwd: ROOT });
    const child = spawn(process.execPath, [join(ROOT, 'dist-tools/bench/soak.js'), '--minutes', '1', '--no-report'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const code = await new Promise<number | null>((r) => child.once('exit', r));
    const json = out.slice(out.indexOf('{'), out.lastIndexOf('}') + 1);
    expect(code, err.slice(-3000)).toBe(0);
    const r = JSON.parse(json) as { alarms: { sent: number; lost: number; duplicates: number; outboxLeft: number }; faults: Record<string, number> };
    expect(r.alarms.sent).toBeGreaterThan(20);
    expect(r.alarms).toMatchObject({ lost: 0, duplicates: 0, outboxLeft: 0 });
    expect(Object.values(r.faults).every((n) => n >= 1)).toBe(true);
  }, 240_000);
});
