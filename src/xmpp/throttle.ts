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
