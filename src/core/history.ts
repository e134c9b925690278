// Stored readings as chat and XEP-0323 see them: a narrow read-only view of
// the history (so neither depends on SQLite), time windows, and the pure
// arithmetic behind a reply: buckets, sparklines, time switched on, runs of
// text values, and even downsampling. No I/O.

import type { Value } from './devices.js';

export interface HistoryPoint {
  t: number;
  value: Value;
}

/** What readers of the history need; src/store/history.ts's History is one. */
export interface HistoryReader {
  /** Readings of one device with fromMs <= t <= toMs, oldest first. */
  query(device: string, fromMs: number, toMs: number): readonly HistoryPoint[];
}

export const MINUTE = 60_000;
export const HOUR = 60 * MINUTE;
export const DAY = 24 * HOUR;
export const WEEK = 7 * DAY;

export const DEFAULT_WINDOW_MS = DAY;

const UNITS: readonly [RegExp, number][] = [
  [/^(m|mins?|minutes?)$/, MINUTE],
  [/^(h|hrs?|hours?)$/, HOUR],
  [/^(d|days?)$/, DAY],
  [/^(w|wks?|weeks?)$/, WEEK],
];

/** "30m", "6h", "24h", "7d", "2w" (also "6 hours") as milliseconds; undefined for anything else, zero included. */
export function parseWindow(text: string): number | undefined {
  const m = /^(\d{1,4})\s*([a-z]+)$/.exec(text.trim().toLowerCase());
  if (!m) return undefined;
  const n = Number(m[1]);
  const unit = UNITS.find(([re]) => re.test(m[2]!))?.[1];
  return unit === undefined || n === 0 ? undefined : n * unit;
}

/** A window as a person reads it: "30 min", "24 h", "7 d" (whole days from two days up). */
export function formatWindow(ms: number): string {
  if (ms % DAY === 0 && ms >= 2 * DAY) return `${ms / DAY} d`;
  if (ms % HOUR === 0) return `${ms / HOUR} h`;
  if (ms % MINUTE === 0) return `${ms / MINUTE} min`;
  return `${Math.round(ms / 1000)} s`;
}

/** 1440 → "1,440": fixed, whatever the Pi's locale. */
export function thousands(n: number): string {
  return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

export const BLOCKS = '▁▂▃▄▅▆▇█';
/** A bucket with no readings. */
export const GAP = '·';

/** Which of n equal buckets over [from, to] a time falls in; to itself belongs to the last. */
function bucketOf(t: number, from: number, to: number, n: number): number {
  if (to <= from) return n - 1;
  return Math.min(n - 1, Math.max(0, Math.floor(((t - from) * n) / (to - from))));
}

/** The mean of the finite numbers in each of n equal buckets over [from, to]; undefined where there were none. */
export function bucketMeans(points: readonly HistoryPoint[], from: number, to: number, n: number): (number | undefined)[] {
  const sum = new Array<number>(n).fill(0);
  const count = new Array<number>(n).fill(0);
  for (const p of points) {
    if (typeof p.value !== 'number' || !Number.isFinite(p.value) || p.t < from || p.t > to) continue;
    const i = bucketOf(p.t, from, to, n);
    sum[i]! += p.value;
    count[i]!++;
  }
  return sum.map((s, i) => (count[i]! > 0 ? s / count[i]! : undefined));
}

/**
 * One block per value, ▁ for the lowest and █ for the highest, GAP for
 * undefined. Scaled to the values' own range unless a fixed one is given
 * (fractions use 0..1); a flat line sits in the middle.
 */
export function sparkline(values: readonly (number | undefined)[], scale?: { min: number; max: number }): string {
  const defined = values.filter((v): v is number => v !== undefined);
  const lo = scale?.min ?? Math.min(...defined);
  const hi = scale?.max ?? Math.max(...defined);
  const top = BLOCKS.length - 1;
  return values
    .map((v) => {
      if (v === undefined) return GAP;
      if (!(hi > lo)) return BLOCKS[Math.floor(top / 2)]!;
      const level = Math.round(((Math.min(hi, Math.max(lo, v)) - lo) / (hi - lo)) * top);
      return BLOCKS[level]!;
    })
    .join('');
}

export interface NumberStats {
  min: number;
  max: number;
  mean: number;
  count: number;
}

/** Over the finite numbers among the points; undefined when there are none. */
export function numberStats(points: readonly HistoryPoint[]): NumberStats | undefined {
  let min = Infinity;
  let max = -Infinity;
  let sum = 0;
  let count = 0;
  for (const p of points) {
    if (typeof p.value !== 'number' || !Number.isFinite(p.value)) continue;
    min = Math.min(min, p.value);
    max = Math.max(max, p.value);
    sum += p.value;
    count++;
  }
  return count === 0 ? undefined : { min, max, mean: sum / count, count };
}

export interface OnTime {
  /** Per bucket, the fraction of the known time the device was on; undefined where its state is unknown. */
  buckets: (number | undefined)[];
  /** Over the whole window, of the time its state is known; undefined when it is known for no time at all. */
  fraction: number | undefined;
  /** Switches from one state to the other, the one from `before` into the window included. */
  changes: number;
  /** Boolean readings in the window. */
  count: number;
}

/**
 * How long a switch was on. Switches are recorded when they change, so a
 * reading holds until the next one, and the last one until `to`; `before`
 * (the last reading older than the window) covers the start. Time before
 * the first known state is unknown and shows as a gap.
 */
export function onTime(points: readonly HistoryPoint[], from: number, to: number, n: number, before?: boolean): OnTime {
  const on = new Array<number>(n).fill(0);
  const known = new Array<number>(n).fill(0);
  const width = (to - from) / n;
  const span = (a: number, b: number, state: boolean): void => {
    for (let i = bucketOf(a, from, to, n); i < n; i++) {
      const lo = Math.max(a, from + i * width);
      const hi = Math.min(b, from + (i + 1) * width);
      if (lo >= b) break;
      if (hi <= lo) continue;
      known[i]! += hi - lo;
      if (state) on[i]! += hi - lo;
    }
  };
  let state = before;
  let since = from;
  let changes = 0;
  let count = 0;
  for (const p of points) {
    if (typeof p.value !== 'boolean' || p.t < from || p.t > to) continue;
    if (state !== undefined) span(since, p.t, state);
    if (state !== undefined && state !== p.value) changes++;
    state = p.value;
    since = p.t;
    count++;
  }
  if (state !== undefined) span(since, to, state);
  const knownMs = known.reduce((a, b) => a + b, 0);
  const onMs = on.reduce((a, b) => a + b, 0);
  return {
    buckets: known.map((k, i) => (k > 0 ? on[i]! / k : undefined)),
    fraction: knownMs > 0 ? onMs / knownMs : undefined,
    changes,
    count,
  };
}

export interface Run {
  value: string;
  /** When this value was first seen, in the window or (for the value carried in) before it. */
  since: number;
}

/** Consecutive equal text values merged, newest first; `before` is the reading older than the window. */
export function runs(points: readonly HistoryPoint[], before?: HistoryPoint): Run[] {
  const out: Run[] = [];
  for (const p of before ? [before, ...points] : points) {
    if (typeof p.value !== 'string') continue;
    if (out.at(-1)?.value !== p.value) out.push({ value: p.value, since: p.t });
  }
  return out.reverse();
}

/**
 * At most `max` of the items, evenly spread over them, first and last
 * always among them (the newest reading is the one a reader wants most).
 */
export function downsample<T>(items: readonly T[], max: number): T[] {
  if (items.length <= max) return [...items];
  if (max <= 0) return [];
  if (max === 1) return [items[items.length - 1]!];
  const step = (items.length - 1) / (max - 1);
  return Array.from({ length: max }, (_, i) => items[Math.round(i * step)]!);
}
