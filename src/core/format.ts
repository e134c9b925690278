// How readings read to a person: "temperature 21.4 °C · fan off".

import type { DeviceInfo, DeviceState, Devices, Value } from './devices.js';

export type Show = 'away' | 'xa' | 'dnd' | undefined;

export function formatValue(info: DeviceInfo, value: Value): string {
  if (typeof value === 'boolean') return value ? 'on' : 'off';
  if (typeof value === 'number') {
    const n = value.toFixed(info.decimals);
    return info.unit ? `${n} ${info.unit}` : n;
  }
  return info.unit ? `${value} ${info.unit}` : value;
}

export function formatState(s: DeviceState): string {
  if (s.fault) return `${s.info.name} fault`;
  if (s.value === undefined) return `${s.info.name} –`;
  return `${s.info.name} ${formatValue(s.info, s.value)}`;
}

/** The presence <status>: every device's current reading. */
export function summary(devices: Devices): string {
  return devices.list().map(formatState).join(' · ');
}

/** Health alone: xa when a device is faulty, away when a reading is stale. `mono`: the moment, on the monotonic clock. */
export function healthShow(devices: Devices, mono: number): Show {
  let show: Show;
  for (const id of devices.ids()) {
    const h = devices.health(id, mono);
    if (h === 'fault') return 'xa';
    if (h === 'stale') show = 'away';
  }
  return show;
}

/**
 * The gateway's show, wherever it is shown (presence, the LAN advert): dnd
 * while any alarm is active, otherwise its health.
 */
export function gatewayShow(devices: Devices, activeAlarms: readonly string[], mono: number): Show {
  return activeAlarms.length > 0 ? 'dnd' : healthShow(devices, mono);
}

export function ago(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}
