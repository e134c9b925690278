// RFC 6120 §8.3.2: an error of type "wait" (resource-constraint is the usual
// condition) means "retry after waiting". A gateway that retries at once only
// adds to the load that caused it, so such an error slows optional traffic.

import type { Element } from 'ltx';

const NS_STANZAS = 'urn:ietf:params:xml:ns:xmpp-stanzas';

/** Is this an error stanza by which the server (or a peer) asks us to wait? */
export function serverSlowDown(stanza: Element): boolean {
  if (stanza.attrs.type !== 'error') return false;
  const error = stanza.getChild('error');
  if (!error) return false;
  return error.attrs.type === 'wait' || error.getChild('resource-constraint', NS_STANZAS) !== undefined;
}

/** How long optional traffic waits: 5 s on the first "wait", doubling while the server keeps saying it, up to 5 min. */
export class Throttle {
  private untilMs = 0;
  private stepMs = 0;

  /** `now`: a monotonic clock (Clock.mono), so a clock set backwards cannot make the wait last for years. */
  constructor(private readonly now: () => number = () => performance.now()) {}

  /** The server said wait; returns how long we now hold back. */
  hit(): number {
    const now = this.now();
    this.stepMs = now < this.untilMs + 60_000 ? Math.min(this.stepMs * 2 || 5_000, 300_000) : 5_000;
    this.untilMs = now + this.stepMs;
    return this.stepMs;
  }

  /** Until when to hold back (on the clock given), or 0. */
  until(): number {
    return this.untilMs > this.now() ? this.untilMs : 0;
  }
}
