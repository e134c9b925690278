// XEP-0313 Message Archive Management, for the one question the agent asks
// it: which of the messages it may have sent before a crash did the server
// already take? The gateway's own archive is queried (no 'to': the account's
// server answers) from a given time on, a page at a time (XEP-0059), newest
// first: what a crash left unconfirmed is what was sent last, so it is found
// in the first pages however busy the window was (paging oldest first, a
// gateway sending 100 alarms a minute never reached them within the bound).
// The ids found are matched against the outbox's (XEP-0359 origin-id, or the
// message id). Bounded: a long outage must not turn a restart into a flood.

import { randomBytes } from 'node:crypto';
import xml from '@xmpp/xml';
import type { Element } from 'ltx';
import { bareOf } from '../core/authority.js';

export const NS_MAM = 'urn:xmpp:mam:2';
export const NS_RSM = 'http://jabber.org/protocol/rsm';
export const NS_FORWARD = 'urn:xmpp:forward:0';
const NS_SID = 'urn:xmpp:sid:0';
const NS_DATA = 'jabber:x:data';

export interface ArchiveSearch {
  /** Of `ids`, those our archive holds among messages we sent since `sinceMs` (newest first). complete: the whole window was searched. */
  find(ids: ReadonlySet<string>, sinceMs: number): Promise<{ found: Set<string>; complete: boolean }>;
  /** Feed every incoming message; true when it was a result of one of our queries (consumed). */
  handle(message: Element): boolean;
}

export interface ArchiveDeps {
  /** Send an IQ and wait for its result (rejects on error or timeout). */
  request(iq: Element, timeoutMs?: number): Promise<Element>;
  /** Our bare JID: results must come from our own archive. */
  self: string;
  pageSize?: number;
  maxPages?: number;
}

function queryElement(queryid: string, sinceMs: number, max: number, before?: string): Element {
  const field = (v: string, value: string, type?: string): Element => xml('field', { var: v, ...(type ? { type } : {}) }, xml('value', {}, value));
  return xml(
    'query',
    { xmlns: NS_MAM, queryid },
    xml('x', { xmlns: NS_DATA, type: 'submit' }, field('FORM_TYPE', NS_MAM, 'hidden'), field('start', new Date(sinceMs).toISOString())),
    // <before/> empty: the last page; then the page before the first one seen (XEP-0059 §2.5).
    xml('set', { xmlns: NS_RSM }, xml('max', {}, String(max)), xml('before', {}, before ?? '')),
  );
}

export function archiveSearch(deps: ArchiveDeps): ArchiveSearch {
  const self = bareOf(deps.self);
  const pageSize = deps.pageSize ?? 50;
  const maxPages = deps.maxPages ?? 20;
  /** Ids seen per running query. */
  const running = new Map<string, Set<string>>();

  return {
    async find(ids, sinceMs) {
      const found = new Set<string>();
      let before: string | undefined;
      for (let page = 0; page < maxPages; page++) {
        const queryid = randomBytes(6).toString('base64url');
        const seen = new Set<string>();
        running.set(queryid, seen);
        let fin: Element | undefined;
        try {
          const reply = await deps.request(xml('iq', { type: 'set' }, queryElement(queryid, sinceMs, pageSize, before)), 20_000);
          fin = reply.getChild('fin', NS_MAM);
        } finally {
          running.delete(queryid);
        }
        for (const id of seen) if (ids.has(id)) found.add(id);
        if (found.size === ids.size) return { found, complete: true };
        if (!fin || fin.attrs.complete === 'true' || fin.attrs.complete === '1') return { found, complete: fin !== undefined };
        before = fin.getChild('set', NS_RSM)?.getChildText('first') ?? undefined;
        if (!before) return { found, complete: false };
      }
      return { found, complete: false };
    },

    handle(message) {
      const result = message.getChild('result', NS_MAM);
      if (!result) return false;
      const seen = running.get(result.attrs.queryid ?? '');
      // Only our own archive answers our queries: from our bare JID, or from nobody (our server).
      const from = message.attrs.from;
      if (!seen || (from !== undefined && bareOf(from) !== self)) return true;
      const inner = result.getChild('forwarded', NS_FORWARD)?.getChild('message');
      if (!inner || bareOf(inner.attrs.from ?? '') !== self) return true;
      if (inner.attrs.id) seen.add(inner.attrs.id);
      const origin = inner.getChild('origin-id', NS_SID)?.attrs.id;
      if (origin) seen.add(origin);
      return true;
    },
  };
}
