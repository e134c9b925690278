// XEP-0203 Delayed Delivery: how long the server held a stanza (offline storage).
// A command held past MAX_COMMAND_DELAY_MS must not actuate: the world has moved on.

import xml from '@xmpp/xml';
import type { Element } from 'ltx';

export const NS_DELAY = 'urn:xmpp:delay';
export const MAX_COMMAND_DELAY_MS = 60_000;

/** Mark a message as meant for an earlier time (a re-send, or one that waited in a queue); once. */
export function withDelay(message: Element, atMs: number, from?: string): Element {
  if (message.name === 'message' && !message.getChild('delay', NS_DELAY)) {
    message.append(xml('delay', { xmlns: NS_DELAY, stamp: new Date(atMs).toISOString(), ...(from ? { from } : {}) }));
  }
  return message;
}

/**
 * Milliseconds between the stanza's oldest delay stamp and `now`, or 0 without
 * one. Every <delay/> counts (XEP-0203 lets each hop add its own): a sender
 * must not escape the rule for held commands by putting a fresh stamp ahead of
 * the server's offline-storage one.
 */
export function heldFor(stanza: Element, now: number): number {
  let oldest = Infinity;
  for (const d of stanza.getChildren('delay', NS_DELAY)) {
    const t = Date.parse(d.attrs.stamp ?? '');
    if (Number.isFinite(t)) oldest = Math.min(oldest, t);
  }
  return Number.isFinite(oldest) ? Math.max(0, now - oldest) : 0;
}
