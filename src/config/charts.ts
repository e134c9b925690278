// Config for chart images (history and alarms as PNGs shared through the
// server's HTTP File Upload): whether to make them, and the time zone of
// their time axis.

import type { Checker } from './validate.js';

export interface ChartsConfig {
  /** Answer history with an image when the server offers upload; false: text only. */
  enabled: boolean;
  /** Follow an alarm with a chart of the device's last hour (best effort, when the server offers upload). */
  alarms: boolean;
  /** IANA zone of the time axis; undefined: the system's (looked up at the first chart: Intl costs 1.6 MB). */
  timeZone?: string;
}

export const CHARTS_KEYS = ['charts'];

/** The zone the system runs in (TZ, /etc/localtime); UTC when it cannot tell. */
export function systemTimeZone(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
}

/** Checked only when the key is set: it loads the zone data (the time zone of the system is not looked up at start). */
function knownZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

export function checkCharts(c: Checker, raw: unknown): ChartsConfig {
  const o = c.object('charts', raw, ['enabled', 'alarms', 'time_zone'], false) ?? {};
  const enabled = c.boolean('charts.enabled', o.enabled) ?? true;
  const alarms = c.boolean('charts.alarms', o.alarms) ?? true;
  let timeZone = c.string('charts.time_zone', o.time_zone, { what: 'an IANA time zone such as Europe/Berlin' });
  if (timeZone !== undefined && !knownZone(timeZone)) timeZone = c.fail('charts.time_zone', `unknown time zone ${JSON.stringify(timeZone)}; expected an IANA name such as Europe/Berlin or UTC`);
  return { enabled, alarms, timeZone };
}
