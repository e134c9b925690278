// When presence is worth sending: a change beyond a device's deadband, never
// faster than min_interval, at least every heartbeat. Pure: time comes in as
// `now`, on the monotonic clock (Clock.mono), so setting the wall clock neither
// holds presence back nor lets everything due fire at once.

import type { DeviceInfo, Devices, Value } from './devices.js';
import { formatValue, type Show } from './format.js';

export interface Sent {
  /** When it was sent, on the monotonic clock. */
  at: number;
  show: Show;
  values: ReadonlyMap<string, Value | undefined>;
  faults: ReadonlySet<string>;
}

export interface Policy {
  minIntervalMs: number;
  heartbeatMs: number;
}

export type Decision = { send: true } | { send: false; at: number };

export function snapshot(devices: Devices, show: Show, at: number): Sent {
  const values = new Map<string, Value | undefined>();
  const faults = new Set<string>();
  for (const s of devices.list()) {
    values.set(s.info.id, s.value);
    if (s.fault) faults.add(s.info.id);
  }
  return { at, show, values, faults };
}

/** A value moved enough to tell anyone: shown differently and by at least the deadband. */
export function beyondDeadband(info: DeviceInfo, before: Value | undefined, after: Value | undefined): boolean {
  if (before === undefined || after === undefined) return before !== after;
  if (typeof before === 'number' && typeof after === 'number') {
    return formatValue(info, before) !== formatValue(info, after) && Math.abs(after - before) >= info.deadband;
  }
  return before !== after;
}

export function changed(devices: Devices, last: Sent, current: Sent): boolean {
  if (last.show !== current.show || last.values.size !== current.values.size) return true;
  for (const s of devices.list()) {
    const id = s.info.id;
    if (last.faults.has(id) !== current.faults.has(id)) return true;
    if (!last.values.has(id)) return true;
    if (beyondDeadband(s.info, last.values.get(id), current.values.get(id))) return true;
  }
  return false;
}

/**
 * Decide whether to send now or when to look again.
 * `urgent`: an owner's command changed something; it is reported at once.
 */
export function decide(args: { policy: Policy; last?: Sent; current: Sent; devices: Devices; now: number; urgent?: boolean }): Decision {
  const { policy, last, current, devices, now } = args;
  if (!last) return { send: true };
  if (changed(devices, last, current)) {
    if (args.urgent || now - last.at >= policy.minIntervalMs) return { send: true };
    return { send: false, at: last.at + policy.minIntervalMs };
  }
  if (now - last.at >= policy.heartbeatMs) return { send: true };
  return { send: false, at: last.at + policy.heartbeatMs };
}
