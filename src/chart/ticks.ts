// Where the axes of a chart get their marks: round values (1, 2, 2.5 or 5
// times a power of ten) on the value axis, and round local times (on the
// hour, at midnight) on the time axis in the gateway's time zone. Pure.

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

export interface ValueTicks {
  lo: number;
  hi: number;
  step: number;
  values: number[];
  /** Decimals that show every tick exactly. */
  decimals: number;
}

/** About `target` round ticks covering [lo, hi]; the axis runs from the first to the last. */
export function valueTicks(lo: number, hi: number, target = 5): ValueTicks {
  if (!(hi > lo)) {
    const pad = Math.abs(lo) > 0 ? Math.abs(lo) * 0.05 : 1;
    lo -= pad;
    hi += pad;
  }
  const raw = (hi - lo) / target;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const first = Math.floor(lo / step + 1e-9) * step;
  const last = Math.ceil(hi / step - 1e-9) * step;
  const values: number[] = [];
  for (let v = first; v <= last + step / 2; v += step) values.push(Math.abs(v) < step / 1e6 ? 0 : v);
  const decimals = Math.max(0, Math.min(6, -Math.floor(Math.log10(step) + 1e-9) + (step / mag === 2.5 ? 1 : 0)));
  return { lo: first, hi: last, step, values, decimals };
}

const formats = new Map<string, Intl.DateTimeFormat>();

/** Offsets of a time zone from UTC at a moment, in ms (Intl, one formatter per zone for the process). */
export function zoneOffset(timeZone: string): (t: number) => number {
  let fmt = formats.get(timeZone);
  if (!fmt) formats.set(timeZone, (fmt = makeFormat(timeZone)));
  const f = fmt;
  return (t: number): number => {
    const parts: Record<string, number> = {};
    for (const p of f.formatToParts(t)) if (p.type !== 'literal') parts[p.type] = Number(p.value);
    const local = Date.UTC(parts.year!, parts.month! - 1, parts.day!, parts.hour!, parts.minute!, parts.second!);
    return local - Math.floor(t / 1000) * 1000;
  };
}

function makeFormat(timeZone: string): Intl.DateTimeFormat {
  return new Intl.DateTimeFormat('en-US', {
    timeZone,
    hourCycle: 'h23',
    year: 'numeric',
    month: 'numeric',
    day: 'numeric',
    hour: 'numeric',
    minute: 'numeric',
    second: 'numeric',
  });
}

export interface TimeTick {
  t: number;
  /** The first line: "14:00", or "Tue 3" when ticks are whole days. */
  label: string;
  /** A second line, where the date turns or at the first tick: "Tue 3 Dec", or the month for day ticks. */
  date?: string;
}

const STEPS = [1, 2, 5, 10, 15, 30].map((m) => m * MINUTE).concat([1, 2, 3, 6, 12].map((h) => h * HOUR), [1, 2, 7].map((d) => d * DAY));
const WEEKDAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const pad = (n: number): string => String(n).padStart(2, '0');

/**
 * Round local times between from and to, at most `max` of them: every 1, 2, 5 … minutes,
 * 1, 2, 3, 6, 12 hours, or 1, 2, 7 days (at local midnight).
 */
export function timeTicks(from: number, to: number, timeZone: string, max = 8): TimeTick[] {
  const offset = zoneOffset(timeZone);
  const span = to - from;
  const step = STEPS.find((s) => span / s <= max) ?? Math.ceil(span / max / DAY) * DAY;
  const ticks: TimeTick[] = [];
  // Walk in local time ("wall clock" ms), convert each mark back with the offset at that moment.
  const localFrom = from + offset(from);
  let local = Math.ceil(localFrom / step) * step;
  if (step === 7 * DAY) local = Math.ceil((localFrom - 4 * DAY) / step) * step + 4 * DAY; // weeks start on Monday (1970-01-05)
  let lastDay = '';
  for (let guard = 0; guard < 1000; guard++, local += step) {
    let t = local - offset(local - offset(from));
    t = local - offset(t);
    if (t > to) break;
    if (t < from) continue;
    const d = new Date(local);
    const day = `${WEEKDAYS[d.getUTCDay()]} ${d.getUTCDate()}`;
    const month = MONTHS[d.getUTCMonth()]!;
    if (step >= DAY) {
      const m = `${month} ${d.getUTCFullYear()}`;
      ticks.push({ t, label: day, date: m !== lastDay ? month : undefined });
      lastDay = m;
    } else {
      const date = `${day} ${month}`;
      ticks.push({ t, label: `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`, date: date !== lastDay ? date : undefined });
      lastDay = date;
    }
  }
  return ticks;
}

/** The zone as people read it beside the axis: "Europe/Berlin, UTC+1". */
export function zoneLabel(timeZone: string, at: number): string {
  const off = zoneOffset(timeZone)(at) / MINUTE;
  const sign = off < 0 ? '−' : '+';
  const h = Math.floor(Math.abs(off) / 60);
  const m = Math.abs(off) % 60;
  const utc = off === 0 ? 'UTC' : `UTC${sign}${h}${m ? `:${pad(m)}` : ''}`;
  return timeZone === 'UTC' || timeZone === 'Etc/UTC' ? 'UTC' : `${timeZone}, ${utc}`;
}
