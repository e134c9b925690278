// Exactly once across crashes. XEP-0198 settles what a live link delivered;
// what a dead process had written to the socket is known only to the server.
// So after a restart, and after a fresh session replaced one that could not
// be resumed, the courier asks this first: of the outbox entries already
// tried, which does the server's archive of our own messages (XEP-0313)
// already hold? Those are marked delivered; only the rest goes again. Without
// an archive the agent says so once and falls back to at-least-once (the same
// id on every attempt, so clients can drop the copy).

import xml from '@xmpp/xml';
import type { Element } from 'ltx';
import type { Logger } from '../runtime/log.js';
import { NS_MAM, type ArchiveSearch } from '../xep/mam.js';

const NS_DISCO_INFO = 'http://jabber.org/protocol/disco#info';
/** The search starts this long before the oldest entry was written: the server's clock and ours may differ. */
export const CLOCK_MARGIN_MS = 60 * 60_000;

export type Guarantee = 'exactly-once' | 'at-least-once' | 'unknown';

/** A message sent before (its id on the wire, and when it was written), maybe lost with the stream that carried it. */
export interface Tried {
  messageId: string;
  createdAt: number;
}

export interface ReconcileDeps {
  request(iq: Element, timeoutMs?: number): Promise<Element>;
  search: ArchiveSearch;
  /** Our bare JID: the archive is the account's. */
  self: string;
  log: Logger;
  /** Stamps before this were written while the clock was clearly wrong (CLOCK_FLOOR): the search starts no earlier. */
  floor?: number;
  /** The wall clock: an entry stamped ahead of it (written while NTP had set the clock forward) starts the search no later than now. */
  now?: () => number;
}

export function reconciler(deps: ReconcileDeps) {
  let guarantee: Guarantee = 'unknown';
  let said = false;
  const stats = { checked: 0, alreadyDelivered: 0 };

  const archiveOffered = async (): Promise<boolean> => {
    try {
      const info = await deps.request(xml('iq', { type: 'get', to: deps.self }, xml('query', { xmlns: NS_DISCO_INFO })), 10_000);
      return info.getChild('query', NS_DISCO_INFO)?.getChildren('feature').some((f) => f.attrs.var === NS_MAM) ?? false;
    } catch {
      return false;
    }
  };

  return {
    stats,
    guarantee: (): Guarantee => guarantee,
    /**
     * Of the messages already tried (by this process or one before it), the message ids the server
     * already has. Never throws: on any doubt it returns fewer.
     */
    async alreadyDelivered(tried: readonly Tried[]): Promise<Set<string>> {
      const offered = await archiveOffered();
      guarantee = offered ? 'exactly-once' : 'at-least-once';
      if (!offered && !said) {
        said = true;
        deps.log.warn('the server keeps no archive of our messages (XEP-0313): after a crash an alarm may arrive twice, with the same id');
      }
      if (!offered || tried.length === 0) return new Set();
      // An entry written while the clock said 1970 reached the server after this agent was built; one written
      // while the clock was ahead reached it before now. (The search goes newest first, so an early start costs little.)
      const oldest = Math.min(...tried.map((i) => i.createdAt), deps.now?.() ?? Infinity);
      const since = Math.max(oldest, deps.floor ?? -Infinity) - CLOCK_MARGIN_MS;
      stats.checked += tried.length;
      try {
        const { found, complete } = await deps.search.find(new Set(tried.map((i) => i.messageId)), since);
        if (!complete) deps.log.warn('the archive search stopped at its bound; entries not found there are sent again (same ids)', { tried: tried.length, found: found.size });
        stats.alreadyDelivered += found.size;
        if (found.size > 0) deps.log.info('the server already had these; not sending them again', { count: found.size });
        return found;
      } catch (err) {
        deps.log.warn('could not search the archive; sending the tried entries again (same ids)', { error: err });
        return new Set();
      }
    },
  };
}

export type Reconciler = ReturnType<typeof reconciler>;
