// RFC 6121 roster and subscriptions: fetch the roster on every connect (so the
// server delivers pending requests), answer roster pushes, approve requests
// from allowed JIDs, refuse everyone else. The gateway never asks anyone for
// their presence: nothing in the agent uses it, and a client shows such a
// request as a question to its user.

import xml from '@xmpp/xml';
import type { Element } from 'ltx';
import type { Logger } from '../runtime/log.js';
import type { Router } from './router.js';

export const NS_ROSTER = 'jabber:iq:roster';

export interface RosterDeps {
  router: Router;
  session: { request(iq: Element): Promise<Element>; send(s: Element): Promise<void>; on(e: 'online', fn: (jid: string, resumed: boolean) => void): unknown };
  /** May this bare JID see our presence? */
  allowed(bare: string): boolean;
  self: string;
  log: Logger;
}

export function roster(deps: RosterDeps): void {
  const { router, session, log } = deps;
  const bareOf = (jid: string): string => jid.split('/')[0]!.toLowerCase();

  session.on('online', (_jid, resumed) => {
    if (resumed) return; // the server kept our session: roster and pending requests carried over
    session
      .request(xml('iq', { type: 'get' }, xml('query', { xmlns: NS_ROSTER })))
      .then(async (res) => {
        const items = res.getChild('query', NS_ROSTER)?.getChildren('item') ?? [];
        // Someone taken out of owners/viewers keeps no view of the readings.
        for (const item of items) {
          const jid = item.attrs.jid?.toLowerCase();
          const sub = item.attrs.subscription;
          if (jid && (sub === 'from' || sub === 'both') && !deps.allowed(jid)) {
            log.info('subscription revoked', { jid });
            await session.send(xml('presence', { type: 'unsubscribed', to: jid }));
          }
        }
      })
      .catch((err: unknown) => log.warn('roster not fetched', { error: err }));
  });

  // Roster pushes come from our own bare JID or the server (RFC 6121 §2.1.6).
  router.set(
    NS_ROSTER,
    'query',
    () => undefined, // acknowledged; nothing in the agent keeps the roster
    { allow: ['owner', 'server'], advertise: false },
  );

  router.onPresence(async (stanza) => {
    const type = stanza.attrs.type;
    const from = stanza.attrs.from;
    if (!from || type !== 'subscribe') return;
    const bare = bareOf(from);
    if (!deps.allowed(bare)) {
      log.info('subscription refused', { from: bare });
      await session.send(xml('presence', { type: 'unsubscribed', to: bare }));
      return;
    }
    log.info('subscription approved', { from: bare });
    await session.send(xml('presence', { type: 'subscribed', to: bare }));
  });

}
