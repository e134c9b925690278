// Config for what makes the agent lose nothing: where its state lives, the
// outbox bound, the readings history, and XEP-0198 tuning.

import type { Checker } from './validate.js';

export interface DurabilityConfig {
  /** Directory for the SQLite store (outbox and history). */
  stateDir: string;
  outbox: { maxMessages: number };
  history: { retentionMs: number; intervalMs: number; flushIntervalMs: number };
}

export interface StreamManagementConfig {
  enabled: boolean;
  requestEvery: number;
  requestDelayMs: number;
  ackTimeoutMs: number;
  maxQueue: number;
}

export const DEFAULT_STATE_DIR = '/var/lib/xmpp-iot-agent';

/** The one place these defaults live: the config checker, the store and the session all take them from here. */
export const DEFAULT_OUTBOX = { maxMessages: 1000 } as const;
export const DEFAULT_HISTORY = { retentionMs: 7 * 86_400_000, intervalMs: 60_000, flushIntervalMs: 30_000 } as const;
export const DEFAULT_STREAM_MANAGEMENT: Readonly<StreamManagementConfig> = { enabled: true, requestEvery: 10, requestDelayMs: 30_000, ackTimeoutMs: 30_000, maxQueue: 500 };
export const DURABILITY_KEYS = ['state_dir', 'outbox', 'history'];

export function checkDurability(c: Checker, root: Record<string, unknown>): DurabilityConfig {
  const stateDir = c.string('state_dir', root.state_dir, { what: 'a directory path (the agent creates it)' }) ?? DEFAULT_STATE_DIR;
  const o = c.object('outbox', root.outbox, ['max_messages'], false) ?? {};
  const maxMessages = c.number('outbox.max_messages', o.max_messages, { integer: true, min: 10, max: 1_000_000 }) ?? DEFAULT_OUTBOX.maxMessages;
  const h = c.object('history', root.history, ['retention', 'interval', 'flush_interval'], false) ?? {};
  const retentionMs = c.duration('history.retention', h.retention, { minMs: 60_000 }) ?? DEFAULT_HISTORY.retentionMs;
  const intervalMs = c.duration('history.interval', h.interval) ?? DEFAULT_HISTORY.intervalMs;
  const flushIntervalMs = c.duration('history.flush_interval', h.flush_interval, { minMs: 100 }) ?? DEFAULT_HISTORY.flushIntervalMs;
  return { stateDir, outbox: { maxMessages }, history: { retentionMs, intervalMs, flushIntervalMs } };
}

export function checkStreamManagement(c: Checker, raw: unknown): StreamManagementConfig {
  const s = c.object('xmpp.stream_management', raw, ['enabled', 'ack_timeout', 'request_every', 'max_queue'], false) ?? {};
  return {
    enabled: c.boolean('xmpp.stream_management.enabled', s.enabled) ?? DEFAULT_STREAM_MANAGEMENT.enabled,
    ackTimeoutMs: c.duration('xmpp.stream_management.ack_timeout', s.ack_timeout, { minMs: 1000 }) ?? DEFAULT_STREAM_MANAGEMENT.ackTimeoutMs,
    requestEvery: c.number('xmpp.stream_management.request_every', s.request_every, { integer: true, min: 1, max: 1000 }) ?? DEFAULT_STREAM_MANAGEMENT.requestEvery,
    maxQueue: c.number('xmpp.stream_management.max_queue', s.max_queue, { integer: true, min: 10, max: 100_000 }) ?? DEFAULT_STREAM_MANAGEMENT.maxQueue,
    requestDelayMs: DEFAULT_STREAM_MANAGEMENT.requestDelayMs,
  };
}
