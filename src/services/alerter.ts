// Alarm messages: readings go through the alarm rules; each raise and each
// recovery becomes one chat message to every owner, queued durably in the
// outbox (delivered once, in order, even across a reconnect or a power cut),
// and presence shows dnd while any alarm is active.

import { Alarms, type AlarmEvent, type AlarmRule } from '../core/alarms.js';
import type { Devices } from '../core/devices.js';
import { formatValue } from '../core/format.js';
import type { Logger } from '../runtime/log.js';

export function alarmText(devices: Devices, e: AlarmEvent): string {
  const info = devices.get(e.device)?.info;
  const fmt = (v: number): string => (info ? formatValue(info, v) : String(v));
  const name = info?.name ?? e.device;
  return e.kind === 'raised'
    ? `⚠ ${name} ${fmt(e.value)} ${e.side} ${fmt(e.threshold)}`
    : `✓ ${name} back to ${fmt(e.value)} (alarm ${e.side} ${fmt(e.threshold)} cleared)`;
}

export function alerter(deps: {
  devices: Devices;
  rules: readonly AlarmRule[];
  owners: readonly string[];
  /** Durable delivery (the courier). */
  enqueue(to: string, body: string, kind: 'alarm'): void;
  log: Logger;
}) {
  const alarms = new Alarms(deps.rules);
  deps.devices.onChange((c) => {
    if ((c.cause !== 'reading' && c.cause !== 'command') || c.value === undefined) return;
    for (const e of alarms.evaluate(c.id, c.value)) {
      const text = alarmText(deps.devices, e);
      deps.log.warn(e.kind === 'raised' ? 'alarm' : 'alarm cleared', { device: e.device, value: e.value, threshold: e.threshold, side: e.side });
      for (const owner of deps.owners) deps.enqueue(owner, text, 'alarm');
    }
  });
  return { active: () => alarms.active() };
}
