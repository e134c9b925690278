import { describe, expect, it } from 'vitest';
import { simulated } from '../src/drivers/simulated.js';
import type { DeviceConfig } from '../src/config/schema.js';
import { silentLogger } from '../src/runtime/log.js';
import { until } from './helpers/until.js';

const base: DeviceConfig = { id: 't', name: 't', driver: 'simulated', type: 'number', unit: '', writable: false, deadband: 0, decimals: 1, intervalMs: 10, staleAfterMs: 1000, options: { driver: 'simulated' } };

describe('simulated driver', () => {
  it('drifts a number on each interval and never leaves its range', async () => {
    const values: number[] = [];
    let flip = 0;
    const d = simulated({ ...base, min: 10, max: 11, initial: 10.99 }, { random: () => (flip++ % 3 === 0 ? 0 : 1) });
    await d.start({ report: (_id, v) => values.push(v as number), fault: () => {}, add: () => {}, remove: () => {}, taken: () => false, log: silentLogger });
    await until(() => values.length > 3, 'readings on the 10 ms interval');
    await d.stop();
    expect(new Set(values).size).toBeGreaterThan(1);
    for (const v of values) expect(v).toBeGreaterThanOrEqual(10), expect(v).toBeLessThanOrEqual(11);
  });

  it('holds what was set: every reading after a write reports the written value', async () => {
    const seen: unknown[] = [];
    const d = simulated({ ...base, type: 'boolean', writable: true });
    await d.start({ report: (_id, v) => seen.push(v), fault: () => {}, add: () => {}, remove: () => {}, taken: () => false, log: silentLogger });
    expect(seen[0]).toBe(false);
    expect(await d.write('t', true)).toBe(true);
    const written = seen.length;
    await until(() => seen.length >= written + 2, 'two readings after the write');
    await d.stop();
    expect(seen.slice(written)).toEqual(seen.slice(written).map(() => true));
  });
});
