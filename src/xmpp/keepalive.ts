// Keepalive: keep the path to our server open, and notice when it died.
//
// Two probes, on one interval (xmpp.keepalive.interval, 60 s by default):
//
// - On most quiet intervals, a whitespace keepalive (RFC 6120 §4.6.1): one
//   space written raw between stanzas. It is not a stanza, so neither side's
//   XEP-0198 counter moves; it refreshes the NAT and firewall mappings on the
//   way, and gives TCP outstanding data, so a peer that vanished shows up as
//   retransmissions that time out instead of a socket that looks open for
//   ever. 1 byte, plus its TLS record (22 bytes with TLS 1.3).
// - Once the link has gone unproven for xmpp.keepalive.check (5 min by
//   default), the real liveness check, answered or not within
//   xmpp.keepalive.timeout: with XEP-0198 an ack request (<r/> answered by
//   <a/>, no stanza either way; its ack timer drops a dead link), else an
//   XEP-0199 ping (a ping and its pong are two stanzas).
//
// A stanza from the server in an interval proves the link: no probe of
// either kind goes in it, and the check period starts again.
//
// Why a slower idle check loses nothing that matters. While something needs
// sending, the stanza brings its own check: with XEP-0198 a message with a
// receipt (an alarm, a command's answer) asks for an ack at once and a
// presence within 30 s (stream-management.ts, delivery.ts), each with the
// stream-management ack timeout, which drops a dead link and lets the resume
// re-send what it held. So the check period only delays noticing a dead link
// while nothing needs to go out: at most check + one interval + timeout idle
// (about 5.5 min by default) instead of interval + timeout. Without XEP-0198
// a receipt's ping (barrier.ts) fails the receipt in 30 s, so the outbox keeps
// the message, but it is this check that drops the link. Nothing else writes
// on an idle session: the presence heartbeat (presence.heartbeat, 5 min) is a
// stanza and draws the server's echo, which counts as the server speaking.
// Bytes: BENCHMARKS.md, wire bytes on a real trace.

import xml from '@xmpp/xml';
import type { Element } from 'ltx';
import type { Clock, TimerHandle } from '../core/clock.js';
import type { Logger } from '../runtime/log.js';

export interface KeepaliveTarget {
  readonly online: boolean;
  /** Rejects with an error named TimeoutError when no reply came within timeoutMs (as @xmpp/iq does). */
  request(iq: Element, timeoutMs: number): Promise<Element>;
  /** Write one space on the stream, outside any stanza (never counted by XEP-0198). */
  whitespace(): void;
  dropConnection(): void;
  on(event: 'online' | 'offline', fn: () => void): unknown;
  /** Stream management: when active, <r/> is the probe (its ack timer drops a dead link). */
  readonly sm?: { readonly active: boolean; readonly stats: { readonly inbound: number }; requestAck(timeoutMs?: number): void };
}

const isTimeout = (err: unknown): boolean => err instanceof Error && err.name === 'TimeoutError';

export interface KeepaliveOptions {
  session: KeepaliveTarget;
  clock: Clock;
  domain: string;
  intervalMs: number;
  timeoutMs: number;
  /** The real check goes once the link went unproven this long; shorter than intervalMs (or absent): every interval. */
  checkMs?: number;
  log: Logger;
}

export function keepalive(deps: KeepaliveOptions) {
  const { session, clock } = deps;
  /** Quiet intervals from one check to the next: the first at which checkMs has passed. */
  const every = Math.max(1, Math.ceil((deps.checkMs ?? 0) / deps.intervalMs));
  let timer: TimerHandle | undefined;
  let running = false;
  /** Quiet intervals since the link was last proven (a check sent, or a stanza from the server). */
  let quiet = 0;

  let heard = -1;
  const schedule = (): void => {
    heard = session.sm?.stats.inbound ?? -1;
    clock.clearTimeout(timer);
    timer = running && session.online ? clock.setTimeout(() => void tick(), deps.intervalMs) : undefined;
  };
  const online = (): void => {
    quiet = 0; // a login or a resume has just proven the link
    schedule();
  };
  const tick = async (): Promise<void> => {
    if (!running || !session.online) return;
    const sm = session.sm;
    if (sm?.active && sm.stats.inbound !== heard) {
      quiet = 0;
      return schedule();
    }
    if (++quiet < every) {
      session.whitespace();
      return schedule();
    }
    quiet = 0;
    if (sm?.active) {
      sm.requestAck(deps.timeoutMs);
      return schedule();
    }
    try {
      await session.request(xml('iq', { type: 'get', to: deps.domain }, xml('ping', { xmlns: 'urn:xmpp:ping' })), deps.timeoutMs);
    } catch (err) {
      // An error reply still proves the link is alive; only silence means it is dead.
      if (isTimeout(err)) {
        deps.log.warn('keepalive: the server did not answer a ping; dropping the connection', { timeoutMs: deps.timeoutMs });
        session.dropConnection();
        return;
      }
    }
    schedule();
  };

  return {
    name: 'keepalive (XEP-0199)',
    start(): void {
      running = true;
      session.on('online', online);
      session.on('offline', () => clock.clearTimeout(timer));
      online();
    },
    stop(): void {
      running = false;
      clock.clearTimeout(timer);
    },
  };
}
