// Chat replies: runs a parsed command against the core and answers in one
// short human message. Errors become sentences, never silence.

import type { DeviceState, Devices } from '../core/devices.js';
import { clip } from '../util/text.js';
import { canActuate, canRead, type Role } from '../core/authority.js';
import { isStanzaError } from '../core/errors.js';
import { ago, formatState, formatValue } from '../core/format.js';
import { closest } from '../core/words.js';
import { bucketMeans, formatWindow, numberStats, onTime, runs, sparkline, thousands, type HistoryPoint, type HistoryReader } from '../core/history.js';
import type { Command } from './grammar.js';

export interface ChatContext {
  devices: Devices;
  role: Role;
  now: number;
  /** Stored readings; without it, history says honestly that none are kept. */
  history?: HistoryReader;
  /** How far back the history goes; longer windows are cut to it. */
  historyRetentionMs?: number;
  /** What is wrong with the gateway itself (a full or read-only card, a clock not set), one line each, for `status`. */
  notices?: () => readonly string[];
}

/** Buckets of a history sparkline: one per hour of the default day. */
export const SPARK_BUCKETS = 24;
/** Earlier text values listed after the current one. */
const EARLIER_RUNS = 3;

export function helpText(devices: Devices, role: Role, opts: { history?: boolean } = {}): string {
  const ids = devices.ids();
  const writable = devices.list().filter((d) => d.info.writable).map((d) => d.info.id);
  const lines = ['Commands:', '  status — every reading', '  get <device> — one reading'];
  if (opts.history) {
    const example = devices.list().find((d) => d.info.type === 'number')?.info.id ?? ids[0] ?? 'temperature';
    lines.push(`  history <device> [window] — past readings, e.g. "history ${example} 6h"`);
    lines.push('  chart <device> [window] — the same as a picture, where the server takes uploads');
  }
  if (canActuate(role)) {
    lines.push('  set <device> <value> — change a device');
    if (writable.length > 0) lines.push(`  <device> on|off — e.g. "${writable[0]} on"`);
    lines.push('  owners — who may read and control this gateway', '  invite <address> [viewer|owner] — let someone in', '  revoke <address> — take someone out');
  }
  lines.push(`Devices: ${ids.join(', ')}`);
  if (canActuate(role) && writable.length > 0) lines.push(`Writable: ${writable.join(', ')}`);
  if (!canActuate(role)) lines.push('You can read; only owners can change devices.');
  return lines.join('\n');
}

function noDevice(devices: Devices, id: string): string {
  const hint = closest(id, devices.ids());
  return hint ? `No device "${clip(id)}". Did you mean ${hint}?` : `No device "${clip(id)}". Devices: ${devices.ids().join(', ')}`;
}

function statusText(devices: Devices, notices: readonly string[]): string {
  const lines = devices
    .list()
    .map((s) => {
      const h = devices.health(s.info.id);
      if (h === 'fault') return `${s.info.name}: fault — ${s.fault}`;
      const line = formatState(s);
      return h === 'stale' ? `${line} (stale, ${ago(devices.age(s.info.id) ?? 0)})` : line;
    });
  return [...lines, ...notices.map((n) => `⚠ ${n}`)].join('\n');
}

export async function execute(cmd: Command, ctx: ChatContext): Promise<string | undefined> {
  const { devices, role, now } = ctx;
  if (!canRead(role)) return 'Sorry, this gateway only answers its owners.';
  switch (cmd.kind) {
    case 'empty':
      return undefined;
    case 'help':
      return helpText(devices, role, { history: ctx.history !== undefined });
    case 'status':
      return statusText(devices, ctx.notices?.() ?? []);
    case 'usage':
      return cmd.text;
    case 'unknown':
      return cmd.suggestion
        ? `I don't know "${clip(cmd.word)}". Did you mean "${cmd.suggestion}"? Type help for the commands.`
        : `I don't know "${clip(cmd.word)}". Type help for the commands.`;
    case 'history': {
      const s = devices.get(cmd.id);
      if (!s) return noDevice(devices, cmd.id);
      if (!ctx.history) return `history is not kept on this gateway. Use get ${cmd.id} for the current value.`;
      try {
        return historyText(s, ctx.history, cmd.windowMs, ctx.historyRetentionMs, now);
      } catch (err) {
        return `${s.info.name}: the history could not be read (${clip(err instanceof Error ? err.message : String(err), 80)}).`;
      }
    }
    case 'get': {
      const s = devices.get(cmd.id);
      if (!s) return noDevice(devices, cmd.id);
      if (s.fault) return `${s.info.name}: fault — ${s.fault}`;
      if (s.value === undefined || s.at === undefined) return `${s.info.name}: no reading yet`;
      return `${formatState(s)} · ${ago(devices.age(s.info.id) ?? 0)}`;
    }
    case 'set': {
      const s = devices.get(cmd.id);
      if (!s) return noDevice(devices, cmd.id);
      if (!canActuate(role)) return `Only owners can change devices; you can read them (try: get ${cmd.id}).`;
      try {
        const v = await devices.set(cmd.id, cmd.value);
        return `${s.info.name} → ${formatValue(s.info, v)} ✓`;
      } catch (err) {
        if (!isStanzaError(err)) throw err;
        if (err.condition === 'not-allowed') return `${s.info.name} is read-only.`;
        return `✗ ${err.text ?? err.condition}`;
      }
    }
  }
}

/**
 * One message about a device's past: a sparkline and min/avg/max for numbers,
 * time switched on for switches, the latest values for text.
 */
function historyText(s: DeviceState, history: HistoryReader, asked: number, retentionMs: number | undefined, now: number): string {
  const { info } = s;
  const windowMs = retentionMs !== undefined ? Math.min(asked, retentionMs) : asked;
  const cut = windowMs < asked ? ` (only ${formatWindow(windowMs)} are kept)` : '';
  const from = now - windowMs;
  const head = `${info.name}, last ${formatWindow(windowMs)}${cut}:`;
  const none = `${info.name}: no readings stored in the last ${formatWindow(windowMs)}${cut}.`;
  const points = history.query(info.id, from, now);
  // Switches and text are recorded when they change: the state going into the window is the last reading before it.
  const before = (): HistoryPoint | undefined => {
    if (from <= 0) return undefined;
    const back = retentionMs ?? windowMs;
    return history
      .query(info.id, Math.max(0, from - back), from - 1)
      .filter((p) => typeof p.value === info.type)
      .at(-1);
  };

  switch (info.type) {
    case 'number': {
      const stats = numberStats(points);
      if (!stats) return none;
      const line = sparkline(bucketMeans(points, from, now, SPARK_BUCKETS));
      const v = (n: number): string => formatValue(info, n);
      const readings = `${thousands(stats.count)} reading${stats.count === 1 ? '' : 's'}`;
      return `${head} ${line} min ${v(stats.min)} · avg ${v(stats.mean)} · max ${v(stats.max)} (${readings})`;
    }
    case 'boolean': {
      const prior = before()?.value;
      const on = onTime(points, from, now, SPARK_BUCKETS, typeof prior === 'boolean' ? prior : undefined);
      if (on.fraction === undefined) {
        if (on.count === 0) return none;
        // A single reading at this very moment: no time has passed in any state.
        const last = points.filter((p) => typeof p.value === 'boolean').at(-1)!;
        return `${head} ${formatValue(info, last.value)} since ${ago(now - last.t)}, no changes`;
      }
      const changes = `${on.changes} change${on.changes === 1 ? '' : 's'}`;
      return `${head} ${sparkline(on.buckets, { min: 0, max: 1 })} on ${Math.round(on.fraction * 100)} % of the time, ${changes}`;
    }
    case 'string': {
      const all = runs(points, before());
      const [current, ...earlier] = all;
      if (!current) return none;
      const latest = `${clip(formatValue(info, current.value), 24)} since ${ago(now - current.since)}`;
      if (earlier.length === 0) return `${head} ${latest}, no changes`;
      const shown = earlier.slice(0, EARLIER_RUNS).map((r) => `${clip(formatValue(info, r.value), 24)} ${ago(now - r.since)}`);
      const more = earlier.length > EARLIER_RUNS ? ', …' : '';
      const changes = `${earlier.length} change${earlier.length === 1 ? '' : 's'}`;
      return `${head} ${latest}; before: ${shown.join(', ')}${more} (${changes})`;
    }
  }
}
