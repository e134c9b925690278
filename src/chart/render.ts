// A device's history as a PNG chart: the time axis in the gateway's time zone,
// the value axis with the unit, min/avg/max in the header, the alarm
// thresholds as dashed lines, gaps (no reading for longer than the device's
// staleness) hatched, and switches as on/off bands. Our own drawing over
// src/util/png.ts, no image library; loaded only when a chart is asked for
// (a dynamic import: its own chunk of the bundle). Pure: data in, pixels out.
//
// Over 300 lines on purpose: the layout (margins, header, axes) and the three
// ways of drawing a series share one coordinate frame computed here.

import { encodePng } from '../util/png.js';
import { formatWindow, numberStats, onTime, type HistoryPoint } from '../core/history.js';
import { Canvas, type Color } from './canvas.js';
import { timeTicks, valueTicks, zoneLabel } from './ticks.js';

export interface ChartDevice {
  name: string;
  type: 'number' | 'boolean';
  unit: string;
  decimals: number;
}

export interface ChartRequest {
  device: ChartDevice;
  from: number;
  to: number;
  /** Readings in [from, to], oldest first. */
  points: readonly HistoryPoint[];
  /** Switches: the state carried into the window (the last reading before it). */
  before?: boolean;
  /** Readings further apart than this leave a gap (no line across it); so does a last reading older than this. */
  gapMs: number;
  /** The device's alarm thresholds. */
  thresholds?: readonly { side: 'above' | 'below'; value: number }[];
  /** IANA zone for the time axis, e.g. "Europe/Berlin". */
  timeZone: string;
  width?: number;
  height?: number;
}

export const CHART_WIDTH = 800;
export const CHART_HEIGHT = 400;

const WHITE: Color = [255, 255, 255];
const INK: Color = [33, 37, 41];
const MUTED: Color = [96, 104, 112];
const GRID: Color = [230, 233, 237];
const AXIS: Color = [160, 168, 176];
export const LINE: Color = [24, 100, 186];
export const ENVELOPE: Color = [184, 210, 238];
export const ALARM: Color = [205, 45, 35];
const GAP_FILL: Color = [246, 246, 247];
const GAP_HATCH: Color = [221, 223, 226];
const ON: Color = [242, 158, 28];
const ON_LINE: Color = [196, 110, 0];
const OFF: Color = [150, 158, 166];

const PAD = 16;
const LABEL = 1.6;

interface Frame {
  left: number;
  right: number;
  top: number;
  bottom: number;
  x(t: number): number;
}

// The canvas of the last PNG, drawn on again by the next one of the same size: charts come one at
// a time (services/charts.ts), and 1.3 MB reused beats 1.3 MB more garbage per chart on a Pi.
let spare: Canvas | undefined;

export function chartPng(req: ChartRequest): Buffer {
  const width = req.width ?? CHART_WIDTH;
  const height = req.height ?? CHART_HEIGHT;
  if (spare?.width !== width || spare.height !== height) spare = new Canvas(width, height, WHITE);
  return encodePng(renderChart(req, spare.clear(WHITE)));
}

/** The chart's pixels, on a new canvas or the one given (cleared). */
export function renderChart(req: ChartRequest, onto?: Canvas): Canvas {
  const width = onto?.width ?? req.width ?? CHART_WIDTH;
  const height = onto?.height ?? req.height ?? CHART_HEIGHT;
  const c = onto ?? new Canvas(width, height, WHITE);
  const { device, from, to } = req;
  const stats = device.type === 'number' ? numberStats(req.points) : undefined;
  // Numbers as people write them: a real minus sign, as on the axis.
  const v = (n: number, d = device.decimals): string => n.toFixed(d).replace(/^-/, '−');
  const unit = device.unit ? ` ${device.unit}` : '';

  // Header: the device and the window on the left, the figures on the right.
  const baseline = PAD + 15;
  let summary: string;
  if (device.type === 'number') {
    summary = stats ? `min ${v(stats.min)} · avg ${v(stats.mean)} · max ${v(stats.max)}${unit}` : 'no readings';
  } else {
    const on = onTime(req.points, from, to, 1, req.before);
    summary = on.fraction === undefined ? 'no readings' : `on ${Math.round(on.fraction * 100)} % of the time · ${on.changes} change${on.changes === 1 ? '' : 's'}`;
  }
  const span = `last ${formatWindow(to - from)}`;
  // A long name is shortened so that it never runs into the figures.
  const room = width - 2 * PAD - Canvas.textWidth(summary, 1.8) - Canvas.textWidth(span, 1.8) - 40;
  const title = fit(device.name, 2.5, room);
  const nameWidth = c.text(title, PAD, baseline, { size: 2.5, color: INK, weight: 1.05 });
  c.text(span, PAD + nameWidth + 14, baseline, { size: 1.8, color: MUTED });
  c.text(summary, width - PAD, baseline, { size: 1.8, color: INK, align: 'right' });

  // The value axis decides the plot's left edge (its labels' width).
  const near = (t: number): boolean => {
    if (!stats) return true;
    const span = Math.max(stats.max - stats.min, Math.abs(stats.max) * 0.02, 10 ** -device.decimals);
    return t >= stats.min - span && t <= stats.max + span;
  };
  const shown = (req.thresholds ?? []).filter((th) => near(th.value));
  const values = stats ? [stats.min, stats.max, ...shown.map((th) => th.value)] : shown.map((th) => th.value);
  const lo = values.length ? Math.min(...values) : 0;
  const hi = values.length ? Math.max(...values) : 1;
  const margin = (hi - lo) * 0.06;
  const ticks = valueTicks(lo - margin, hi + margin);
  const tickText = ticks.values.map((t) => t.toFixed(ticks.decimals).replace(/^-/, '−'));
  const labelWidth = device.type === 'number' ? Math.max(Canvas.textWidth(device.unit, LABEL), ...tickText.map((t) => Canvas.textWidth(t, LABEL))) : Canvas.textWidth('off', LABEL);

  const left = Math.round(PAD + labelWidth + 10);
  const right = width - PAD;
  const top = 64;
  const bottom = height - 48;
  const f: Frame = { left, right, top, bottom, x: (t) => left + ((t - from) / (to - from)) * (right - left) };

  // Time axis: grid, marks, labels, and the zone at the right.
  const zone = zoneLabel(req.timeZone, to);
  const zoneLeft = right - Canvas.textWidth(zone, 1.4);
  c.text(zone, right, bottom + 36, { size: 1.4, color: MUTED, align: 'right' });
  for (const tick of timeTicks(from, to, req.timeZone)) {
    const x = Math.round(f.x(tick.t));
    c.fillRect(x, top, 1, bottom - top, GRID);
    c.fillRect(x, bottom, 1, 5, AXIS);
    const half = Canvas.textWidth(tick.label, LABEL) / 2;
    const at = Math.min(width - PAD - half, Math.max(PAD + half, x));
    c.text(tick.label, at, bottom + 18, { size: LABEL, color: INK, align: 'center' });
    if (tick.date) {
      const w = Canvas.textWidth(tick.date, 1.4);
      const dx = Math.min(Math.max(PAD, x - w / 2), width - PAD - w);
      if (dx + w < zoneLeft - 12) c.text(tick.date, dx, bottom + 36, { size: 1.4, color: MUTED });
    }
  }

  if (device.type === 'number') {
    const y = (val: number): number => bottom - ((val - ticks.lo) / (ticks.hi - ticks.lo)) * (bottom - top);
    ticks.values.forEach((t, i) => {
      const py = Math.round(y(t));
      if (i > 0) c.fillRect(left, py, right - left, 1, GRID);
      c.text(tickText[i]!, left - 10, py + 4.8, { size: LABEL, color: INK, align: 'right' });
    });
    if (device.unit) c.text(device.unit, left - 10, top - 14, { size: LABEL, color: INK, align: 'right' });
    gaps(c, f, req);
    plotLine(c, f, req, y);
    thresholds(c, f, req, shown, y, unit, v);
  } else {
    c.text('on', left - 10, top + 14, { size: LABEL, color: INK, align: 'right' });
    c.text('off', left - 10, bottom - 2, { size: LABEL, color: INK, align: 'right' });
    bands(c, f, req);
  }
  // The frame's two axes, over everything plotted.
  c.fillRect(left, bottom, right - left + 1, 1, AXIS);
  c.fillRect(left, top, 1, bottom - top, AXIS);
  if (!stats && device.type === 'number') c.text('no readings in this window', (left + right) / 2, (top + bottom) / 2, { size: 2, color: MUTED, align: 'center' });
  return c;
}

/** The text, cut with "…" to fit in `room` pixels at this size. */
function fit(text: string, size: number, room: number): string {
  if (Canvas.textWidth(text, size) <= room) return text;
  const chars = [...text];
  while (chars.length > 1 && Canvas.textWidth(`${chars.join('')}…`, size) > room) chars.pop();
  return `${chars.join('')}…`;
}

/** Stretches with no reading, hatched: between readings further apart than gapMs, before the first and after the last. */
function gapsOf(req: ChartRequest): [number, number][] {
  const out: [number, number][] = [];
  let prev = req.from;
  for (const p of req.points) {
    if (p.t < req.from || p.t > req.to) continue;
    if (p.t - prev > req.gapMs) out.push([prev, p.t]);
    prev = p.t;
  }
  if (req.to - prev > req.gapMs) out.push([prev, req.to]);
  return out;
}

function hatch(c: Canvas, x0: number, x1: number, top: number, bottom: number, label: boolean): void {
  const xa = Math.round(x0);
  const xb = Math.round(x1);
  if (xb <= xa) return;
  c.fillRect(xa, top, xb - xa, bottom - top, GAP_FILL);
  for (let py = Math.round(top); py < bottom; py++) {
    for (let px = xa; px < xb; px++) if ((px + py) % 9 === 0) c.fillRect(px, py, 1, 1, GAP_HATCH);
  }
  if (label && xb - xa > Canvas.textWidth('no data', 1.5) + 12) c.text('no data', (xa + xb) / 2, (top + bottom) / 2 + 5, { size: 1.5, color: MUTED, align: 'center' });
}

function gaps(c: Canvas, f: Frame, req: ChartRequest): void {
  for (const [a, b] of gapsOf(req)) hatch(c, f.x(a), f.x(b), f.top, f.bottom, true);
}

/** Readings per pixel column: the spread as a light band, the mean as the line, broken at gaps. */
function plotLine(c: Canvas, f: Frame, req: ChartRequest, y: (v: number) => number): void {
  const cols = Math.max(1, Math.round(f.right - f.left));
  const min = new Float64Array(cols).fill(Infinity);
  const max = new Float64Array(cols).fill(-Infinity);
  const sum = new Float64Array(cols);
  const tsum = new Float64Array(cols);
  const count = new Uint32Array(cols);
  const firstT = new Float64Array(cols);
  const lastT = new Float64Array(cols);
  const span = req.to - req.from;
  for (const p of req.points) {
    if (typeof p.value !== 'number' || !Number.isFinite(p.value) || p.t < req.from || p.t > req.to) continue;
    const i = Math.min(cols - 1, Math.floor(((p.t - req.from) / span) * cols));
    if (count[i] === 0) firstT[i] = p.t;
    lastT[i] = p.t;
    min[i] = Math.min(min[i]!, p.value);
    max[i] = Math.max(max[i]!, p.value);
    sum[i]! += p.value;
    tsum[i]! += p.t;
    count[i]!++;
  }
  // The spread first, so the line lies on it.
  for (let i = 0; i < cols; i++) {
    if (count[i] === 0) continue;
    const ya = y(max[i]!);
    const yb = y(min[i]!);
    if (yb - ya >= 1) c.fillRect(f.left + i, ya, 1, Math.max(1, yb - ya), ENVELOPE);
  }
  const runs: [number, number][][] = [];
  let run: [number, number][] = [];
  let last = -Infinity;
  for (let i = 0; i < cols; i++) {
    if (count[i] === 0) continue;
    if (firstT[i]! - last > req.gapMs && run.length > 0) {
      runs.push(run);
      run = [];
    }
    run.push([f.x(tsum[i]! / count[i]!), y(sum[i]! / count[i]!)]);
    last = lastT[i]!;
  }
  if (run.length > 0) runs.push(run);
  for (const r of runs) {
    if (r.length === 1) c.segment(r[0]![0], r[0]![1], r[0]![0], r[0]![1], 5);
    for (let k = 1; k < r.length; k++) c.segment(r[k - 1]![0], r[k - 1]![1], r[k]![0], r[k]![1], 2.2);
  }
  c.paint(LINE);
}

function thresholds(
  c: Canvas,
  f: Frame,
  req: ChartRequest,
  shown: readonly { side: 'above' | 'below'; value: number }[],
  y: (v: number) => number,
  unit: string,
  v: (n: number) => string,
): void {
  // Where the readings are, in pixels, between two x positions: a label goes where it hides none of them.
  const span = req.to - req.from;
  const readings = (xa: number, xb: number): [number, number] | undefined => {
    let lo = Infinity;
    let hi = -Infinity;
    for (const p of req.points) {
      if (typeof p.value !== 'number') continue;
      const x = f.x(p.t);
      if (x < xa - 2 || x > xb + 2) continue;
      lo = Math.min(lo, y(p.value));
      hi = Math.max(hi, y(p.value));
    }
    return span > 0 && lo <= hi ? [lo, hi] : undefined;
  };
  const placed: Box[] = [];
  for (const th of shown) {
    const py = Math.round(y(th.value));
    c.dashed(f.left + 1, py, f.right - f.left - 1, ALARM);
    const text = `alarm ${th.side} ${v(th.value)}${unit}`;
    const w = Canvas.textWidth(text, LABEL_SIZE);
    const boxes = (['right', 'left'] as const).flatMap((end) =>
      [py - 7, py + 16].map((baseline): Box => {
        const x0 = end === 'right' ? f.right - 10 - w : f.left + 6;
        return { x0: x0 - 4, x1: x0 + w + 4, y0: baseline - 6 * LABEL_SIZE - 3, y1: baseline + 3, baseline, end };
      }),
    );
    const inside = boxes.filter((b) => b.y0 >= f.top && b.y1 <= f.bottom);
    const clear = (b: Box): boolean => {
      const r = readings(b.x0, b.x1);
      const overData = r !== undefined && r[0] - 3 < b.y1 && r[1] + 3 > b.y0;
      return !overData && !placed.some((o) => o.x0 < b.x1 && o.x1 > b.x0 && o.y0 < b.y1 && o.y1 > b.y0);
    };
    const box = inside.find(clear) ?? inside[0] ?? boxes[0]!;
    placed.push(box);
    label(c, text, box, ALARM);
  }
  // Thresholds far off the readings' scale are named at the edge they lie beyond.
  const off = (req.thresholds ?? []).filter((th) => !shown.includes(th));
  let row = 0;
  for (const th of off) {
    const above = y(th.value) < f.top;
    const text = `${above ? '↑' : '↓'} alarm ${th.side} ${v(th.value)}${unit}`;
    const w = Canvas.textWidth(text, LABEL_SIZE);
    const baseline = above ? f.top + 16 + row * 16 : f.bottom - 8 - row * 16;
    label(c, text, { x0: f.right - 10 - w - 4, x1: f.right - 6, y0: baseline - 12, y1: baseline + 3, baseline, end: 'right' }, ALARM);
    row++;
  }
}

const LABEL_SIZE = 1.5;

interface Box {
  x0: number;
  x1: number;
  y0: number;
  y1: number;
  baseline: number;
  end: 'left' | 'right';
}

/** A small label on a light halo (over grid lines, never over readings: see thresholds()). */
function label(c: Canvas, text: string, box: Box, color: Color): void {
  c.fillRect(box.x0, box.y0, box.x1 - box.x0, box.y1 - box.y0, WHITE, 0.85);
  c.text(text, box.x0 + 4, box.baseline, { size: LABEL_SIZE, color });
}

/** Switches: on as a filled band to the top, off as a line at the bottom, unknown hatched. */
function bands(c: Canvas, f: Frame, req: ChartRequest): void {
  const states: { a: number; b: number; on: boolean | undefined }[] = [];
  let state = req.before;
  let since = req.from;
  for (const p of req.points) {
    if (typeof p.value !== 'boolean' || p.t < req.from || p.t > req.to) continue;
    if (p.t > since) states.push({ a: since, b: p.t, on: state });
    state = p.value;
    since = p.t;
  }
  if (req.to > since) states.push({ a: since, b: req.to, on: state });
  const high = f.top + 6;
  const low = f.bottom - 3;
  for (const s of states) {
    const xa = f.x(s.a);
    const xb = f.x(s.b);
    if (s.on === undefined) hatch(c, xa, xb, f.top, f.bottom, true);
    else if (s.on) c.fillRect(xa, high, Math.max(1, xb - xa), low - high, ON, 0.55);
  }
  // The state as a step line over the bands: dark amber while on, grey while off.
  for (const on of [false, true]) {
    let prev: { x: number; y: number } | undefined;
    for (const s of states) {
      if (s.on === undefined) {
        prev = undefined;
        continue;
      }
      const py = s.on ? high : low;
      const xa = f.x(s.a);
      const xb = f.x(s.b);
      if (prev && s.on === on) c.segment(prev.x, prev.y, xa, py, 2.2);
      if (s.on === on) c.segment(xa, py, xb, py, 2.2);
      prev = { x: xb, y: py };
    }
    c.paint(on ? ON_LINE : OFF);
  }
}
