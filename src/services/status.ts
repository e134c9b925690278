// "Agent status" (ad-hoc command, and anything else that shows the agent's
// health): live figures gathered from the components, as label/value pairs.

import type { Clock } from '../core/clock.js';
import type { Devices } from '../core/devices.js';
import type { Driver } from '../drivers/driver.js';
import { PRODUCT } from '../runtime/version.js';
import type { StatusField } from '../xep/commands.js';
import type { Session } from '../xmpp/session.js';
import type { OutboxStats } from '../store/outbox.js';

export interface StatusSources {
  clock: Clock;
  /** When the agent started, on the clock's monotonic scale. */
  startedAt: () => number;
  session: Pick<Session, 'state' | 'stats' | 'sm'> & { endpoints?: Pick<Session['endpoints'], 'rank'> };
  devices: Devices;
  drivers: readonly Driver[];
  presencesSent: () => number;
  stanzaErrorsSent: () => number;
  /** Undefined while the store is not open. */
  outbox: () => OutboxStats | undefined;
  delivered: () => number;
  guarantee: () => 'exactly-once' | 'at-least-once' | 'unknown';
  /** Who may use the gateway and where each comes from (agent.yaml, claimed, invited). */
  people?: () => string;
  /** Messages kept in memory because the disk refused them. */
  held?: () => number;
  /** What is wrong with the SD card and what to do (services/storage.ts); undefined when nothing. */
  storage?: () => string | undefined;
  /** What is wrong with the clock (services/clock-watch.ts); undefined when nothing. */
  clockNotice?: () => string | undefined;
}

const guaranteeText = {
  'exactly-once': 'exactly once (the server archives our messages, XEP-0313)',
  'at-least-once': 'at least once, same id (the server keeps no message archive)',
  unknown: 'not known yet (not online since start)',
} as const;

function duration(seconds: number): string {
  return `${Math.floor(seconds / 3600)} h ${Math.floor((seconds % 3600) / 60)} min ${seconds % 60} s`;
}

/** Which endpoint the session is on, and how far down the list of preference. */
function serverText(session: StatusSources['session']): string {
  const at = session.stats.endpoint;
  if (!at) return '—';
  const rank = session.endpoints?.rank;
  if (!rank || rank.of < 2) return at;
  return `${at} (${rank.position === 1 ? 'preferred' : `fallback ${rank.position - 1}`} of ${rank.of})`;
}

export function statusFields(src: StatusSources): StatusField[] {
  const s = src.session.stats;
  const faults = src.devices.list().filter((d) => d.fault).length;
  const uptime = Math.round((src.clock.mono() - src.startedAt()) / 1000);
  const o = src.outbox();
  const held = src.held?.() ?? 0;
  const inMemory = held > 0 ? ` · ${held} in memory (the disk refused them)` : '';
  const queue = o ? `${o.queued} waiting (${o.alarmsQueued} alarms) · ${src.delivered()} delivered · ${o.dropped} dropped when full${inMemory}` : `store not open${inMemory}`;
  const sm = src.session.sm;
  return [
    { var: 'version', label: 'Version', value: PRODUCT.version },
    { var: 'uptime', label: 'Uptime', value: duration(uptime) },
    { var: 'connection', label: 'Connection', value: src.session.state },
    { var: 'online-since', label: 'Online since', value: s.onlineSince ? new Date(s.onlineSince).toISOString() : '—' },
    { var: 'server', label: 'Server', value: serverText(src.session) },
    { var: 'reconnects', label: 'Reconnects', value: String(s.reconnects) },
    { var: 'devices', label: 'Devices', value: `${src.devices.ids().length} (${faults} faulty)` },
    { var: 'readings', label: 'Readings received', value: String(src.devices.readings) },
    { var: 'presences', label: 'Presences sent', value: String(src.presencesSent()) },
    { var: 'dropped', label: 'Bad frames/samples dropped', value: String(src.drivers.reduce((n, d) => n + (d.stats?.().dropped ?? 0), 0)) },
    { var: 'queue', label: 'Outbox queue', value: queue },
    { var: 'delivery', label: 'Delivery guarantee', value: guaranteeText[src.guarantee()] },
    { var: 'stream', label: 'Stream management', value: sm.active ? `on · ${s.resumes} resumed · ${sm.stats.queue} unacked` : 'off' },
    { var: 'stanza-errors', label: 'Stanza errors sent', value: String(src.stanzaErrorsSent()) },
    ...(src.people ? [{ var: 'people', label: 'People', value: src.people() }] : []),
    { var: 'storage', label: 'Storage', value: src.storage?.() ?? 'ok' },
    { var: 'clock', label: 'Clock', value: src.clockNotice?.() ?? `ok (${new Date(src.clock.now()).toISOString()})` },
  ];
}
