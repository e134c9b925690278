// XEP-0199 keepalive: ping our server on an interval. A TCP connection whose
// peer vanished (a router reboot, a dropped NAT mapping) can look open for
// many minutes; an unanswered ping shows it at once, and dropping the
// connection starts the reconnect.

import xml from '@xmpp/xml';
import type { Element } from 'ltx';
import type { Logger } from '../runtime/log.js';

export interface KeepaliveTarget {
  readonly online: boolean;
  request(iq: Element, timeoutMs: number): Promise<Element>;
  dropConnection(): void;
  on(event: 'online' | 'offline', fn: () => void): unknown;
}

export function keepalive(deps: { session: KeepaliveTarget; domain: string; intervalMs: number; timeoutMs: number; log: Logger }) {
  let timer: NodeJS.Timeout | undefined;
  let running = false;

  const schedule = (): void => {
    clearTimeout(timer);
    if (running && deps.session.online) timer = setTimeout(tick, deps.intervalMs);
  };
  const tick = async (): Promise<void> => {
    if (!running || !deps.session.online) return;
    try {
      await deps.session.request(xml('iq', { type: 'get', to: deps.domain }, xml('ping', { xmlns: 'urn:xmpp:ping' })), deps.timeoutMs);
    } catch (err) {
      // An error reply still proves the link is alive; only silence means it is dead.
      if ((err as Error).name === 'TimeoutError') {
        deps.log.warn('keepalive: the server did not answer a ping; dropping the connection', { timeoutMs: deps.timeoutMs });
        deps.session.dropConnection();
        return;
      }
    }
    schedule();
  };

  return {
    name: 'keepalive (XEP-0199)',
    start(): void {
      running = true;
      deps.session.on('online', schedule);
      deps.session.on('offline', () => clearTimeout(timer));
      schedule();
    },
    stop(): void {
      running = false;
      clearTimeout(timer);
    },
  };
}
