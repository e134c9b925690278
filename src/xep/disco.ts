// XEP-0030 Service Discovery: the agent's identity and features, and its
// devices as items (one node per device).

import type { Element } from 'ltx';
import xml from '@xmpp/xml';
import type { Devices } from '../core/devices.js';
import { StanzaError } from '../core/errors.js';
import type { IqHandler } from '../xmpp/router.js';

export const NS_DISCO_INFO = 'http://jabber.org/protocol/disco#info';
export const NS_DISCO_ITEMS = 'http://jabber.org/protocol/disco#items';

export interface DiscoDeps {
  devices: Devices;
  /** Features this agent answers (namespaces), computed by the root. */
  features: () => string[];
  name: string;
  /** Our full JID, for item jids. */
  self: () => string;
}

export function identity(name: string): Element {
  return xml('identity', { category: 'client', type: 'bot', name });
}

export function discoInfo(deps: DiscoDeps): IqHandler {
  return ({ child }) => {
    const node = child.attrs.node;
    const query = xml('query', { xmlns: NS_DISCO_INFO, ...(node ? { node } : {}) });
    if (node) {
      const d = deps.devices.get(node);
      if (!d) throw new StanzaError('item-not-found', `no device "${node}"`);
      query.append(xml('identity', { category: 'client', type: 'bot', name: d.info.name }));
      query.append(xml('feature', { var: NS_DISCO_INFO }));
      return query;
    }
    query.append(identity(deps.name));
    for (const f of [...new Set([NS_DISCO_INFO, NS_DISCO_ITEMS, ...deps.features()])].sort()) {
      query.append(xml('feature', { var: f }));
    }
    return query;
  };
}

export function discoItems(deps: DiscoDeps): IqHandler {
  return ({ child }) => {
    const node = child.attrs.node;
    if (node) {
      if (!deps.devices.get(node)) throw new StanzaError('item-not-found', `no device "${node}"`);
      return xml('query', { xmlns: NS_DISCO_ITEMS, node });
    }
    const query = xml('query', { xmlns: NS_DISCO_ITEMS });
    for (const { info } of deps.devices.list()) {
      const label = info.unit ? `${info.name} (${info.unit})` : info.name;
      query.append(xml('item', { jid: deps.self(), node: info.id, name: info.writable ? `${label}, writable` : label }));
    }
    return query;
  };
}
