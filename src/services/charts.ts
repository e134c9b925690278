// History as chart images. "history <device> [window]" (or "chart …") is
// answered with the sparkline text and then, in a message of its own whose
// body is exactly the URL (XEP-0066 oob, so clients show it inline), a PNG
// uploaded to the server (XEP-0363). When the server offers no upload, the
// text alone is the answer, as before; when the upload fails, the text says
// why in one more line. A raised alarm may be followed by a chart of that
// device's last hour: the alarm is the durable outbox message, the chart a
// best-effort extra. The renderer is a dynamic import (its own chunk of the
// bundle, loaded at the first chart); one chart is drawn at a time.

import type { Element } from 'ltx';
import type { Clock } from '../core/clock.js';
import type { AlarmRule } from '../core/alarms.js';
import type { Devices } from '../core/devices.js';
import { formatWindow, HOUR, type HistoryPoint, type HistoryReader } from '../core/history.js';
import type { Logger } from '../runtime/log.js';
import { systemTimeZone, type ChartsConfig } from '../config/charts.js';
import { chatMessage } from '../xmpp/stanza.js';
import { oobMessage } from '../xep/oob.js';
import { isUploadError, type Uploader } from './uploader.js';
import type { ChartRequest } from '../chart/render.js';

/** Charts waiting to be drawn; past it a request gets the text and "busy". */
const MAX_WAITING = 3;
/** An alarm chart per device at most this often: a value hovering at its threshold must not upload a chart a minute. */
export const ALARM_CHART_INTERVAL_MS = 10 * 60_000;
/** An alarm chart shows the device's last hour. */
const ALARM_WINDOW_MS = HOUR;

type Renderer = (req: ChartRequest) => Buffer;

export interface ChartsDeps {
  config: ChartsConfig;
  devices: Devices;
  history: HistoryReader;
  historyRetentionMs: number;
  /** history.interval: stored readings are at least this far apart, so only more than twice that is a gap. */
  historyIntervalMs: number;
  rules: readonly AlarmRule[];
  /** Who gets alarm charts: the owners now (config and people added by chat). */
  owners: () => readonly string[];
  uploads: Pick<Uploader, 'service' | 'upload'>;
  send(m: Element): Promise<void>;
  online(): boolean;
  clock: Clock;
  log: Logger;
  /** The renderer, loaded on first use (tests may hand in their own). */
  load?: () => Promise<Renderer>;
}

export interface ChartAnswer {
  /** The full JID that asked. */
  to: string;
  /** The sparkline text, already made by the chat command. */
  text: string;
  device: string;
  windowMs: number;
  /** Asked for with "chart": a missing upload service is said, not only a failed upload. */
  explicit: boolean;
  thread?: string;
}

const loadRenderer = async (): Promise<Renderer> => (await import('../chart/render.js')).chartPng;

export function charts(deps: ChartsDeps) {
  const { log } = deps;
  let renderer: Promise<Renderer> | undefined;
  let queue: Promise<unknown> = Promise.resolve();
  let waiting = 0;
  const lastAlarmChart = new Map<string, number>();

  /** Draws one chart after any others asked before it. */
  const draw = (req: ChartRequest): Promise<Buffer> => {
    if (waiting >= MAX_WAITING) return Promise.reject(new Error('the gateway is busy drawing other charts'));
    waiting++;
    const run = queue.then(async () => {
      renderer ??= (deps.load ?? loadRenderer)().catch((err: unknown) => {
        renderer = undefined;
        throw err;
      });
      return (await renderer)(req);
    });
    queue = run.catch(() => {}).finally(() => waiting--);
    return run;
  };

  /** What a chart of the device over the window shows; undefined when there is nothing to draw. */
  const request = (id: string, asked: number, opts: { live?: boolean } = {}): ChartRequest | undefined => {
    const s = deps.devices.get(id);
    if (!s) return undefined;
    const { info } = s;
    const type = info.type;
    if (type === 'string') return undefined;
    const to = deps.clock.now();
    const windowMs = Math.min(asked, deps.historyRetentionMs);
    const from = to - windowMs;
    const points: HistoryPoint[] = deps.history.query(id, from, to).filter((p) => typeof p.value === type && (type !== 'number' || Number.isFinite(p.value)));
    // An alarm's reading may be newer than the last one stored (at most one a history.interval).
    const live = s.value;
    if (opts.live && live !== undefined && typeof live === type && s.at !== undefined && s.at >= from && s.at > (points.at(-1)?.t ?? -Infinity)) points.push({ t: s.at, value: live });
    let before: boolean | undefined;
    if (type === 'boolean' && from > 0) {
      const prior = deps.history.query(id, Math.max(0, from - deps.historyRetentionMs), from - 1).filter((p) => typeof p.value === 'boolean').at(-1);
      before = prior?.value as boolean | undefined;
    }
    if (points.length === 0 && before === undefined) return undefined;
    const thresholds = deps.rules
      .filter((r) => r.device === id)
      .flatMap((r) => [...(r.above !== undefined ? [{ side: 'above' as const, value: r.above }] : []), ...(r.below !== undefined ? [{ side: 'below' as const, value: r.below }] : [])]);
    return {
      device: { name: info.name, type, unit: info.unit, decimals: info.decimals },
      from,
      to,
      points,
      before,
      gapMs: Math.max(info.staleAfterMs, 2 * deps.historyIntervalMs),
      thresholds,
      timeZone: deps.config.timeZone ?? systemTimeZone(),
    };
  };

  const fileName = (id: string, req: ChartRequest): string => {
    const stamp = new Date(req.to).toISOString().slice(0, 19).replace(/[-:]/g, '').replace('T', '-');
    return `${id}-${formatWindow(req.to - req.from).replace(' ', '')}-${stamp}.png`;
  };

  const upload = async (id: string, req: ChartRequest): Promise<string> => {
    const bytes = await draw(req);
    return deps.uploads.upload({ name: fileName(id, req), bytes, contentType: 'image/png' });
  };

  return {
    /** Answers a history command: the text, then the chart; or the text alone, with why when it should have had one. */
    async answer(a: ChartAnswer): Promise<void> {
      const text = (why?: string): Promise<void> => deps.send(chatMessage(a.to, why ? `${a.text}\n${why}` : a.text, a.thread));
      if (!deps.config.enabled) return text(a.explicit ? 'No chart image: charts are turned off on this gateway (charts.enabled).' : undefined);
      const req = request(a.device, a.windowMs);
      if (!req) return text();
      let url: string;
      try {
        if (!(await deps.uploads.service())) return text(a.explicit ? 'No chart image: this server offers no file upload (XEP-0363).' : undefined);
        url = await upload(a.device, req);
      } catch (err) {
        const why = isUploadError(err) ? err.reason : `the chart could not be made (${(err as Error).message})`;
        log.warn('chart not sent', { device: a.device, reason: why });
        return text(`No chart image: ${why}.`);
      }
      await text();
      await deps.send(oobMessage(a.to, url, a.thread));
    },

    /** After a raised alarm: the device's last hour to every owner, when the server offers upload. Never throws. */
    afterAlarm(device: string): void {
      if (!deps.config.enabled || !deps.config.alarms || !deps.online()) return;
      const now = deps.clock.now();
      const last = lastAlarmChart.get(device);
      if (last !== undefined && now - last < ALARM_CHART_INTERVAL_MS) return;
      lastAlarmChart.set(device, now);
      void (async () => {
        if (!(await deps.uploads.service())) return;
        const req = request(device, ALARM_WINDOW_MS, { live: true });
        if (!req) return;
        const url = await upload(device, req);
        for (const owner of deps.owners()) await deps.send(oobMessage(owner, url));
        log.debug('alarm chart sent', { device });
      })().catch((err: unknown) => log.info('no chart with the alarm', { device, reason: isUploadError(err) ? err.reason : (err as Error).message }));
    },
  };
}

export type Charts = ReturnType<typeof charts>;
