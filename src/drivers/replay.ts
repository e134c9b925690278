// Replays a CSV trace (timestamp,value per row; a header row is skipped) as a
// device's readings, at a chosen speed-up, for demos and benchmarks.

import { readFileSync } from 'node:fs';
import type { DeviceConfig } from '../config/schema.js';
import type { Driver, DriverContext } from './driver.js';

export interface Sample {
  t: number;
  v: number;
}

/** Rows of "timestamp,value[,…]": ISO dates or numbers (seconds); `column` picks the value (1 = second field). */
export function parseTrace(text: string, column = 1): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split(/\r?\n/)) {
    const f = line.split(',');
    if (f.length <= column) continue;
    const ts = f[0]!.trim();
    const t = /^-?\d+(\.\d+)?$/.test(ts) ? Number(ts) * 1000 : Date.parse(ts);
    const v = Number(f[column]!.trim());
    if (Number.isFinite(t) && Number.isFinite(v) && f[column]!.trim() !== '') out.push({ t, v });
  }
  return out;
}

export function replay(device: DeviceConfig): Driver {
  const o = device.options;
  if (o.driver !== 'replay') throw new Error('not a replay device');
  let timer: NodeJS.Timeout | undefined;
  let ctx: DriverContext | undefined;
  let samples: Sample[] = [];
  let i = 0;

  const next = (): void => {
    if (!ctx) return;
    const s = samples[i]!;
    ctx.report(device.id, s.v);
    i++;
    if (i >= samples.length) {
      if (!o.loop) return void (samples = []); // played out: the trace (~50 bytes a row) is not kept
      i = 0;
    }
    const gap = i === 0 ? 0 : samples[i]!.t - s.t;
    timer = setTimeout(next, Math.max(0, gap / o.speed));
  };

  return {
    kind: 'replay',
    async start(c) {
      ctx = c;
      try {
        samples = parseTrace(readFileSync(o.file, 'utf8'), o.column);
      } catch (err) {
        return c.fault(device.id, `cannot read ${o.file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
      }
      if (samples.length === 0) return c.fault(device.id, `${o.file} holds no timestamp,value rows`);
      next();
    },
    async stop() {
      clearTimeout(timer);
      ctx = undefined;
    },
    async write() {
      throw new Error('a replayed trace cannot be set');
    },
  };
}
