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

/** Milliseconds between the stanza's delay stamp and `now`, or 0 without one. */
export function heldFor(stanza: Element, now: number): number {
  const stamp = stanza.getChild('delay', NS_DELAY)?.attrs.stamp;
  const t = stamp ? Date.parse(stamp) : NaN;
  return Number.isFinite(t) ? Math.max(0, now - t) : 0;
}
