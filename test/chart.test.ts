// The chart renderer, checked on its pixels: the PNG decodes to the asked
// size, the plotted line follows the data (its highest point is where the
// maximum reading is), gaps in the readings leave no line and are hatched,
// alarm thresholds are lines at their value, switches are bands; and the
// axes' round values and local times, and the font's coverage of units.

import { describe, expect, it } from 'vitest';
import { chartPng, ALARM, ENVELOPE, LINE, type ChartRequest } from '../src/chart/render.js';
import { timeTicks, valueTicks, zoneLabel } from '../src/chart/ticks.js';
import { glyph, hasGlyph } from '../src/chart/font.js';
import { Canvas } from '../src/chart/canvas.js';
import { decodePng, pixelAt, pixelsOf, pixelsWhere, type Decoded } from './helpers/png.js';
import { HOUR, MINUTE, type HistoryPoint } from '../src/core/history.js';

const TO = Date.parse('2026-07-16T18:00:00Z');
const FROM = TO - 24 * HOUR;
const T_MAX = FROM + 15 * HOUR + 20 * MINUTE;

/** A reading a minute: a slow wave around 20, one peak of 27 at T_MAX, and two hours missing. */
function series(gap?: [number, number]): HistoryPoint[] {
  const out: HistoryPoint[] = [];
  for (let t = FROM + MINUTE; t <= TO - 2 * MINUTE; t += MINUTE) {
    if (gap && t >= gap[0] && t < gap[1]) continue;
    const value = t === T_MAX ? 27 : 20 + 3 * Math.sin(((t - FROM) / (24 * HOUR)) * 2 * Math.PI);
    out.push({ t, value });
  }
  return out;
}

function render(over: Partial<ChartRequest> = {}): Decoded {
  const req: ChartRequest = {
    device: { name: 'temperature', type: 'number', unit: '°C', decimals: 1 },
    from: FROM,
    to: TO,
    points: series(),
    gapMs: 2 * MINUTE,
    thresholds: [],
    timeZone: 'UTC',
    ...over,
  };
  return decodePng(chartPng(req));
}

/** The data's pixels: the line and the band of the spread behind it. */
const data = (img: Decoded) => pixelsOf(img, [LINE, ENVELOPE]);

/** Where a time falls, from where the first and last readings were drawn. */
function columnOf(img: Decoded, points: readonly HistoryPoint[], t: number): number {
  const px = data(img);
  const x0 = Math.min(...px.map((p) => p.x));
  const x1 = Math.max(...px.map((p) => p.x));
  const t0 = points[0]!.t;
  const t1 = points.at(-1)!.t;
  return x0 + ((t - t0) / (t1 - t0)) * (x1 - x0);
}

describe('chart', () => {
  it('is an 800 × 400 PNG on a white background', () => {
    const img = render();
    expect([img.width, img.height]).toEqual([800, 400]);
    expect(pixelAt(img, 2, 2)).toEqual([255, 255, 255]);
  });

  it('draws the highest point of its line in the column of the maximum reading', () => {
    const points = series();
    const img = render({ points });
    const px = data(img);
    const top = Math.min(...px.map((p) => p.y));
    const highest = px.filter((p) => p.y === top).map((p) => p.x);
    const expected = columnOf(img, points, T_MAX);
    for (const x of highest) expect(Math.abs(x - expected)).toBeLessThanOrEqual(2);
    // The wave's trough (a quarter of a day before its end) is the lowest part of the line.
    const bottom = Math.max(...px.map((p) => p.y));
    const lowest = px.filter((p) => p.y === bottom).map((p) => p.x);
    const trough = columnOf(img, points, FROM + 18 * HOUR);
    expect(Math.abs(lowest[0]! - trough)).toBeLessThan(30);
  });

  it('leaves a gap where readings are missing, hatched, and says "no data"', () => {
    const gap: [number, number] = [FROM + 6 * HOUR, FROM + 8 * HOUR];
    const points = series(gap);
    const img = render({ points });
    const a = Math.round(columnOf(img, points, gap[0])) + 3;
    const b = Math.round(columnOf(img, points, gap[1])) - 3;
    expect(b - a).toBeGreaterThan(40);
    expect(pixelsOf(img, [LINE, ENVELOPE], { x0: a, x1: b, y0: 0, y1: img.height })).toHaveLength(0);
    expect(pixelsOf(img, [[221, 223, 226]], { x0: a, x1: b, y0: 100, y1: 300 }).length).toBeGreaterThan(100);
    // And the line goes on on both sides.
    expect(pixelsOf(img, [LINE], { x0: a - 12, x1: a - 4, y0: 0, y1: img.height }).length).toBeGreaterThan(0);
    expect(pixelsOf(img, [LINE], { x0: b + 4, x1: b + 12, y0: 0, y1: img.height }).length).toBeGreaterThan(0);
  });

  it('hatches the time since the last reading when it is older than the gap', () => {
    const points = series().filter((p) => p.t < TO - 3 * HOUR);
    const img = render({ points });
    const last = Math.max(...data(img).map((p) => p.x));
    // About an eighth of the plot (3 of 24 hours) to the right of the last reading is hatched.
    expect(pixelsOf(img, [[221, 223, 226]], { x0: last + 4, x1: 780, y0: 100, y1: 300 }).length).toBeGreaterThan(100);
  });

  it('draws each alarm threshold as a line at its value, above and below the readings', () => {
    const img = render({ thresholds: [{ side: 'above', value: 28 }, { side: 'below', value: 15 }] });
    const rows = new Map<number, number>();
    for (const p of pixelsOf(img, [ALARM])) rows.set(p.y, (rows.get(p.y) ?? 0) + 1);
    // Dashed lines: rows with hundreds of alarm-coloured pixels (the labels add only a few).
    const lines = [...rows].filter(([, n]) => n > 300).map(([y]) => y);
    const px = data(img);
    const top = Math.min(...px.map((p) => p.y));
    const bottom = Math.max(...px.map((p) => p.y));
    expect(lines.some((y) => y < top)).toBe(true);
    expect(lines.some((y) => y > bottom)).toBe(true);
  });

  it('names a threshold far off the readings at the edge instead of squashing them', () => {
    const far = render({ thresholds: [{ side: 'above', value: 500 }] });
    const near = render();
    // The line spans as many rows as without the threshold.
    const span = (img: Decoded): number => {
      const ys = data(img).map((p) => p.y);
      return Math.max(...ys) - Math.min(...ys);
    };
    expect(span(far)).toBe(span(near));
    expect(pixelsOf(far, [ALARM]).length).toBeGreaterThan(20);
  });

  it('shows a switch as bands: on where it was on, nothing where it was off', () => {
    const points = [
      { t: FROM + 2 * HOUR, value: true },
      { t: FROM + 6 * HOUR, value: false },
      { t: FROM + 20 * HOUR, value: true },
    ];
    const img = render({ device: { name: 'fan', type: 'boolean', unit: '', decimals: 1 }, points, before: false });
    // The band is ON laid lightly over white: amber, red above green above blue.
    const amber = ([r, g, b]: readonly [number, number, number]): boolean => r > 230 && g > 170 && g < 225 && b < 160;
    const band = (x: number) => pixelsWhere(img, amber, { x0: x, x1: x + 1, y0: 0, y1: img.height }).length;
    // The plot's frame: the time axis is the long row of axis colour near the bottom.
    const axis = pixelsOf(img, [[160, 168, 176]], { x0: 0, x1: img.width, y0: 300, y1: 380 });
    const counts = new Map<number, number>();
    for (const p of axis) counts.set(p.y, (counts.get(p.y) ?? 0) + 1);
    const y = [...counts].sort((a, b) => b[1] - a[1])[0]![0];
    const row = axis.filter((p) => p.y === y).map((p) => p.x);
    const left = Math.min(...row);
    const right = Math.max(...row);
    expect(right - left).toBeGreaterThan(600);
    const x = (t: number): number => Math.round(left + ((t - FROM) / (TO - FROM)) * (right - left));
    expect(band(x(FROM + 4 * HOUR))).toBeGreaterThan(200);
    expect(band(x(FROM + 12 * HOUR))).toBe(0);
    expect(band(x(FROM + 22 * HOUR))).toBeGreaterThan(200);
  });

  it('shortens a device name that would run into the figures', () => {
    const long = render({ device: { name: 'temperature in the north-east corner of the greenhouse by the door', type: 'number', unit: '°C', decimals: 1 } });
    const short = render();
    // The header's right-hand figures are drawn the same, untouched by the name.
    const figures = (img: Decoded) => pixelsOf(img, [[33, 37, 41]], { x0: 480, x1: 800, y0: 0, y1: 40 }).length;
    expect(figures(long)).toBe(figures(short));
  });

  it('costs less than a second to draw and stays under a few hundred KiB for a week of minutes', () => {
    const points: HistoryPoint[] = [];
    for (let t = TO - 7 * 24 * HOUR; t <= TO; t += MINUTE) points.push({ t, value: Math.sin(t / HOUR) });
    const t0 = performance.now();
    const png = chartPng({ device: { name: 'x', type: 'number', unit: 'hPa', decimals: 1 }, from: TO - 7 * 24 * HOUR, to: TO, points, gapMs: 2 * MINUTE, timeZone: 'Europe/Berlin' });
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(png.length).toBeLessThan(300 * 1024);
  });
});

describe('axes', () => {
  it('marks round values that cover the range', () => {
    expect(valueTicks(13.8, 23.5)).toMatchObject({ lo: 12, hi: 24, step: 2, decimals: 0 });
    expect(valueTicks(0.12, 0.31).values.map((v) => v.toFixed(2))).toEqual(['0.10', '0.15', '0.20', '0.25', '0.30', '0.35']);
    expect(valueTicks(1016.9, 1019.1)).toMatchObject({ step: 0.5, decimals: 1 });
    expect(valueTicks(10, 21)).toMatchObject({ step: 2.5, decimals: 1 });
    // A flat series still gets an axis around its value.
    const flat = valueTicks(21, 21);
    expect(flat.lo).toBeLessThan(21);
    expect(flat.hi).toBeGreaterThan(21);
  });

  it("marks round local times in the gateway's zone, with the date where it turns", () => {
    const from = Date.parse('2010-07-15T20:00:00Z'); // 13:00 in Seattle (UTC−7)
    const ticks = timeTicks(from, from + 24 * HOUR, 'America/Los_Angeles');
    expect(ticks[0]).toEqual({ t: Date.parse('2010-07-15T22:00:00Z'), label: '15:00', date: 'Thu 15 Jul' });
    const midnight = ticks.find((t) => t.label === '00:00')!;
    expect(midnight).toEqual({ t: Date.parse('2010-07-16T07:00:00Z'), label: '00:00', date: 'Fri 16 Jul' });
    expect(ticks.filter((t) => t.date !== undefined)).toHaveLength(2);
    expect(ticks.length).toBeLessThanOrEqual(8);
  });

  it('keeps local hours across a change to summer time', () => {
    // Berlin goes from UTC+1 to UTC+2 at 01:00 UTC on 29 March 2026.
    const from = Date.parse('2026-03-28T12:00:00Z');
    const labels = timeTicks(from, from + 24 * HOUR, 'Europe/Berlin').map((t) => [new Date(t.t).toISOString().slice(11, 16), t.label]);
    expect(labels).toContainEqual(['23:00', '00:00']);
    expect(labels).toContainEqual(['01:00', '03:00']);
    expect(labels).toContainEqual(['04:00', '06:00']);
  });

  it('marks days for a week, and names the zone with its offset', () => {
    const to = Date.parse('2026-12-01T18:00:00Z');
    const ticks = timeTicks(to - 7 * 24 * HOUR, to, 'Europe/Berlin');
    expect(ticks.map((t) => t.label)).toEqual(['Wed 25', 'Thu 26', 'Fri 27', 'Sat 28', 'Sun 29', 'Mon 30', 'Tue 1']);
    expect(ticks[0]!.date).toBe('Nov');
    expect(ticks.at(-1)!.date).toBe('Dec');
    expect(zoneLabel('Europe/Berlin', to)).toBe('Europe/Berlin, UTC+1');
    expect(zoneLabel('Asia/Kolkata', to)).toBe('Asia/Kolkata, UTC+5:30');
    expect(zoneLabel('UTC', to)).toBe('UTC');
  });
});

describe('font', () => {
  it('has every character of the units and words a chart shows', () => {
    const text = 'abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789 °C °F % hPa kPa µg/m³ m² ppm lx kWh m/s dB Ω · – − ↑ ↓ ( ) , . : +';
    expect([...text].filter((ch) => !hasGlyph(ch))).toEqual([]);
  });

  it('draws accented letters as the base letter with its accent, so device names keep their spelling', () => {
    expect([...'Küche Température Señal Straße Ångström çà ž'].filter((ch) => !hasGlyph(ch))).toEqual([]);
    // The accent adds strokes above the letter and no width.
    expect(Canvas.textWidth('ü', 2)).toBe(Canvas.textWidth('u', 2));
    expect(glyph('ü').strokes.length).toBe(glyph('u').strokes.length + 2);
    // The same in decomposed form (u + combining diaeresis), as some editors save it.
    expect(Canvas.textWidth('Ku\u0308che', 2)).toBe(Canvas.textWidth('Küche', 2));
  });

  it('measures what it draws, and draws an unknown character as a question mark', () => {
    expect(Canvas.textWidth('°C', 2)).toBe((3 + 1 + 5) * 2);
    expect(Canvas.textWidth('€', 1)).toBe(Canvas.textWidth('?', 1));
  });
});
