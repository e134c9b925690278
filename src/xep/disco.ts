// XEP-0030 Service Discovery: our identity and features, devices as items, and
// nodes answered by providers (caps node#ver, ad-hoc commands, devices).

import type { Element } from 'ltx';
import xml from '@xmpp/xml';
import { canRead, type Role } from '../core/authority.js';
import type { Devices } from '../core/devices.js';
import { StanzaError } from '../core/errors.js';
import type { IqHandler } from '../xmpp/router.js';
import type { Identity } from './caps.js';
import { clip } from '../util/text.js';

export const NS_DISCO_INFO = 'http://jabber.org/protocol/disco#info';
export const NS_DISCO_ITEMS = 'http://jabber.org/protocol/disco#items';

/** Answers disco for the nodes it knows; undefined for the others. */
export interface NodeProvider {
  info?(node: string, role: Role): Element[] | undefined;
  items?(node: string, role: Role): Element[] | undefined;
}

export interface DiscoDeps {
  devices: Devices;
  identity: Identity;
  /** Features this agent answers (namespaces), computed by the root. */
  features: () => string[];
  /** Our full JID, for item jids. */
  self: () => string;
  providers: NodeProvider[];
  /** XEP-0115 `node#ver`: answered exactly like the root. */
  capsNode?: () => string;
}

export function ownFeatures(deps: Pick<DiscoDeps, 'features'>): string[] {
  return [...new Set([NS_DISCO_INFO, NS_DISCO_ITEMS, ...deps.features()])].sort();
}

function identityElement(i: Identity): Element {
  return xml('identity', { category: i.category, type: i.type, ...(i.name ? { name: i.name } : {}) });
}

/** The devices as disco nodes (one per device). */
export function deviceNodes(devices: Devices): NodeProvider {
  return {
    info(node) {
      const d = devices.get(node);
      if (!d) return undefined;
      return [xml('identity', { category: 'client', type: 'bot', name: d.info.name }), xml('feature', { var: NS_DISCO_INFO })];
    },
    items(node) {
      return devices.get(node) ? [] : undefined;
    },
  };
}

export function discoInfo(deps: DiscoDeps): IqHandler {
  return ({ child, role }) => {
    const node = child.attrs.node;
    const query = xml('query', { xmlns: NS_DISCO_INFO, ...(node ? { node } : {}) });
    if (node && node !== deps.capsNode?.()) {
      // Nodes name the devices: readers only (our server gets the identity and features).
      if (!canRead(role)) throw new StanzaError('forbidden');
      for (const p of deps.providers) {
        const els = p.info?.(node, role);
        if (els) {
          query.append(...els);
          return query;
        }
      }
      throw new StanzaError('item-not-found', `no node "${clip(node)}"`);
    }
    query.append(identityElement(deps.identity));
    for (const f of ownFeatures(deps)) query.append(xml('feature', { var: f }));
    return query;
  };
}

export function discoItems(deps: DiscoDeps): IqHandler {
  return ({ child, role }) => {
    const node = child.attrs.node;
    if (node) {
      for (const p of deps.providers) {
        const els = p.items?.(node, role);
        if (els) {
          const query = xml('query', { xmlns: NS_DISCO_ITEMS, node });
          query.append(...els);
          return query;
        }
      }
      throw new StanzaError('item-not-found', `no node "${clip(node)}"`);
    }
    const query = xml('query', { xmlns: NS_DISCO_ITEMS });
    for (const { info } of deps.devices.list()) {
      const label = info.unit ? `${info.name} (${info.unit})` : info.name;
      query.append(xml('item', { jid: deps.self(), node: info.id, name: info.writable ? `${label}, writable` : label }));
    }
    return query;
  };
}
