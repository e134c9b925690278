// Alarm messages: readings go through the alarm rules; each raise and each
// recovery becomes one chat message to every owner, queued durably in the
// outbox (delivered once, in order, even across a reconnect or a power cut).
// A device its driver removes (a bridge's new hello without that channel)
// takes its alarms with it, and the owners are told once. active() is what
// the gateway's show reads: dnd while any alarm is active.

import { Alarms, type AlarmEvent, type AlarmRule, type EndedAlarm } from '../core/alarms.js';
import type { DeviceInfo, Devices } from '../core/devices.js';
import { formatValue } from '../core/format.js';
import type { Logger } from '../runtime/log.js';

const formatter = (info: DeviceInfo | undefined) => (v: number): string => (info ? formatValue(info, v) : String(v));

export function alarmText(info: DeviceInfo | undefined, e: AlarmEvent): string {
  const fmt = formatter(info);
  const name = info?.name ?? e.device;
  return e.kind === 'raised'
    ? `⚠ ${name} ${fmt(e.value)} ${e.side} ${fmt(e.threshold)}`
    : `✓ ${name} back to ${fmt(e.value)} (alarm ${e.side} ${fmt(e.threshold)} cleared)`;
}

/** One line for all the alarms a removed device took with it. */
export function removedText(info: DeviceInfo | undefined, device: string, ended: readonly EndedAlarm[]): string {
  const fmt = formatter(info);
  const which = ended.map((a) => `${a.side} ${fmt(a.threshold)}`).join(' and ');
  return `✓ ${info?.name ?? device} was removed by its driver; alarm${ended.length > 1 ? 's' : ''} ${which} cleared (no reading showed it recover)`;
}

export function alerter(deps: {
  devices: Devices;
  rules: readonly AlarmRule[];
  /** Who gets alarms; a function when owners can change while the agent runs (claim, invite). */
  owners: readonly string[] | (() => readonly string[]);
  /** Durable delivery (the courier): on disk when it returns, with the message id. */
  enqueue(to: string, body: string, kind: 'alarm'): string | undefined;
  log: Logger;
  /** Told of each alarm raised or cleared once it is queued (the alarm chart follows it). */
  onAlarm?: (e: AlarmEvent) => void;
}) {
  const alarms = new Alarms(deps.rules);
  // What a device with an active alarm is, for the message once it is removed (the registry has forgotten it by then).
  const alarmed = new Map<string, DeviceInfo>();
  /** Written first, logged after: a crash between the two loses a log line, never an alarm. */
  const owners = (): readonly string[] => (typeof deps.owners === 'function' ? deps.owners() : deps.owners);
  const tell = (text: string): (string | undefined)[] => owners().map((owner) => deps.enqueue(owner, text, 'alarm'));

  deps.devices.onChange((c) => {
    if (c.cause === 'removed') {
      const ended = alarms.forget(c.id);
      const info = alarmed.get(c.id);
      alarmed.delete(c.id);
      if (ended.length === 0) return;
      const ids = tell(removedText(info, c.id, ended));
      deps.log.warn('alarm cleared: device removed', { device: c.id, sides: ended.map((a) => a.side), ids });
      return;
    }
    if ((c.cause !== 'reading' && c.cause !== 'command') || c.value === undefined) return;
    const info = deps.devices.get(c.id)?.info;
    for (const e of alarms.evaluate(c.id, c.value)) {
      const ids = tell(alarmText(info, e));
      deps.log.warn(e.kind === 'raised' ? 'alarm' : 'alarm cleared', { device: e.device, value: e.value, threshold: e.threshold, side: e.side, ids });
      deps.onAlarm?.(e);
    }
    if (info && alarms.active().includes(c.id)) alarmed.set(c.id, info);
    else alarmed.delete(c.id);
  });
  return { active: () => alarms.active() };
}
