// What the session takes and tells: its options, figures, states and events.

import type { Element } from 'ltx';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../runtime/log.js';
import type { StreamManagementConfig } from '../config/durability.js';
import type { AuthError } from './sasl.js';
import type { SrvResolver } from './endpoints.js';

export interface SessionOptions {
  jid: string;
  resource: string;
  password: string;
  service?: string;
  /** Endpoints in order of preference (a cluster's nodes); wins over service. Neither: DNS SRV of the JID's domain. */
  services?: readonly string[];
  /** DNS SRV lookups (tests inject one); default: the system resolver. */
  resolveSrv?: SrvResolver;
  ca?: string;
  allowPlaintext: boolean;
  reconnect: { initialDelayMs: number; maxDelayMs: number };
  log: Logger;
  clock?: Clock;
  /** Log every stanza in and out (never SASL). */
  traceXml?: boolean;
  random?: () => number;
  /** XEP-0198; off only for servers that mishandle it. */
  streamManagement?: StreamManagementConfig;
}

export interface SessionStats {
  connects: number;
  reconnects: number;
  /** Logins that had to run PBKDF2 (the rest reused the cached salted password). */
  keyDerivations: number;
  mechanism?: string;
  onlineSince?: number;
  lastError?: string;
  /** Streams resumed (XEP-0198) instead of a new session. */
  resumes: number;
  /** Messages sent again with a delay stamp after the server lost a stream. */
  resent: number;
  /** Times the server told us to slow down (resource-constraint, wait). */
  slowDowns: number;
  /** Whitespace keepalives written (one byte each, before TLS). */
  whitespaceKeepalives: number;
  /** The endpoint (xmpp:// or xmpps:// URI) of the current connection, while online. */
  endpoint?: string;
}

export type SessionState = 'offline' | 'connecting' | 'online' | 'stopped' | 'failed';

export interface SessionEvents {
  /** resumed: the server kept our stream (presence, subscriptions and queued stanzas carried over). */
  online: [jid: string, resumed: boolean];
  offline: [];
  stanza: [stanza: Element];
  /** The next connect attempt, and how long until it. */
  reconnecting: [{ attempt: number; delay: number }];
  /** Unrecoverable (bad password): retrying will not help. */
  fatal: [error: AuthError];
}
