// One readout model for every protocol that reads devices (XEP-0323 today,
// chat and forms alike): each device is a node with one field of its own name.

import type { DeviceType, Devices, Value } from './devices.js';
import { StanzaError } from './errors.js';
import { clip } from '../util/text.js';

export interface Field {
  node: string;
  name: string;
  type: DeviceType;
  value?: Value;
  unit: string;
  decimals: number;
  at?: number;
  writable: boolean;
  /** The device reports a fault; the value (if any) is the last good one. */
  error?: string;
  /** No reading has arrived yet. */
  missing: boolean;
  stale: boolean;
}

/** Fields for the named nodes and/or field names (all when both are empty); unknown names are item-not-found. `mono`: staleness is judged at this moment (monotonic clock). */
export function readout(devices: Devices, filter: { nodes?: string[]; fields?: string[] } = {}, mono?: number): Field[] {
  const nodes = filter.nodes?.filter(Boolean) ?? [];
  const names = filter.fields?.filter(Boolean) ?? [];
  for (const id of [...nodes, ...names]) {
    if (!devices.get(id)) throw new StanzaError('item-not-found', `no device "${clip(id)}"`);
  }
  return devices
    .list()
    .filter((s) => (nodes.length === 0 || nodes.includes(s.info.id)) && (names.length === 0 || names.includes(s.info.id)))
    .map((s) => ({
      node: s.info.id,
      name: s.info.id,
      type: s.info.type,
      value: s.value,
      unit: s.info.unit,
      decimals: s.info.decimals,
      at: s.at,
      writable: s.info.writable,
      error: s.fault,
      missing: s.value === undefined,
      stale: devices.health(s.info.id, mono) === 'stale',
    }));
}
