// XEP-0115 Entity Capabilities: a hash of our disco#info identity and
// features, sent in every presence so clients cache it instead of asking.

import { createHash } from 'node:crypto';
import type { Element } from 'ltx';
import xml from '@xmpp/xml';

export const NS_CAPS = 'http://jabber.org/protocol/caps';
export const CAPS_NODE = 'urn:x-xmpp-iot-agent:caps';

export interface Identity {
  category: string;
  type: string;
  lang?: string;
  name?: string;
}

/** XEP-0115 §5.1 verification string (no extended forms), SHA-1, base64. */
export function capsVer(identities: Identity[], features: string[]): string {
  const ids = identities
    .map((i) => `${i.category}/${i.type}/${i.lang ?? ''}/${i.name ?? ''}`)
    .sort();
  const s = [...ids, ...[...new Set(features)].sort()].map((x) => `${x}<`).join('');
  return createHash('sha1').update(s, 'utf8').digest('base64');
}

export function capsElement(ver: string): Element {
  return xml('c', { xmlns: NS_CAPS, hash: 'sha-1', node: CAPS_NODE, ver });
}
