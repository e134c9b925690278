// XEP-0199 keepalive: ping our server on an interval. A TCP connection whose
// peer vanished (a router reboot, a dropped NAT mapping) can look open for
// many minutes; an unanswered ping shows it at once, and dropping the
// connection starts the reconnect. With XEP-0198 on, the probe is an ack
// request instead: <r/> is answered by <a/>, no stanza either way, where a
// ping and its pong are two stanzas, each drawing an ack exchange of its own
// (about 4 writes a minute against 1; see BENCHMARKS.md, wire bytes). A stanza
// from the server since the last probe proves the link, and no probe goes.

import xml from '@xmpp/xml';
import type { Element } from 'ltx';
import type { Clock, TimerHandle } from '../core/clock.js';
import type { Logger } from '../runtime/log.js';

export interface KeepaliveTarget {
  readonly online: boolean;
  /** Rejects with an error named TimeoutError when no reply came within timeoutMs (as @xmpp/iq does). */
  request(iq: Element, timeoutMs: number): Promise<Element>;
  dropConnection(): void;
  on(event: 'online' | 'offline', fn: () => void): unknown;
  /** Stream management: when active, <r/> is the probe (its ack timer drops a dead link). */
  readonly sm?: { readonly active: boolean; readonly stats: { readonly inbound: number }; requestAck(timeoutMs?: number): void };
}

const isTimeout = (err: unknown): boolean => err instanceof Error && err.name === 'TimeoutError';

export function keepalive(deps: { session: KeepaliveTarget; clock: Clock; domain: string; intervalMs: number; timeoutMs: number; log: Logger }) {
  const { session, clock } = deps;
  let timer: TimerHandle | undefined;
  let running = false;

  let heard = -1;
  const schedule = (): void => {
    heard = session.sm?.stats.inbound ?? -1;
    clock.clearTimeout(timer);
    timer = running && session.online ? clock.setTimeout(() => void tick(), deps.intervalMs) : undefined;
  };
  const tick = async (): Promise<void> => {
    if (!running || !session.online) return;
    const sm = session.sm;
    if (sm?.active) {
      if (sm.stats.inbound === heard) sm.requestAck(deps.timeoutMs);
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
      session.on('online', schedule);
      session.on('offline', () => clock.clearTimeout(timer));
      schedule();
    },
    stop(): void {
      running = false;
      clock.clearTimeout(timer);
    },
  };
}
