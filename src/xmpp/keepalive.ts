// XEP-0199 keepalive: ping our server on an interval. A TCP connection whose
// peer vanished (a router reboot, a dropped NAT mapping) can look open for
// many minutes; an unanswered ping shows it at once, and dropping the
// connection starts the reconnect.

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
}

const isTimeout = (err: unknown): boolean => err instanceof Error && err.name === 'TimeoutError';

export function keepalive(deps: { session: KeepaliveTarget; clock: Clock; domain: string; intervalMs: number; timeoutMs: number; log: Logger }) {
  const { session, clock } = deps;
  let timer: TimerHandle | undefined;
  let running = false;

  const schedule = (): void => {
    clock.clearTimeout(timer);
    timer = running && session.online ? clock.setTimeout(() => void tick(), deps.intervalMs) : undefined;
  };
  const tick = async (): Promise<void> => {
    if (!running || !session.online) return;
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
