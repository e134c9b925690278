// After SASL: resume the lost stream (XEP-0198) instead of binding if the
// server still holds it; otherwise bind the resource and enable stream
// management. The session is announced online only after that, so nothing is
// sent (or counted) before the server counts too.

import xml from '@xmpp/xml';
import type { Element } from 'ltx';
import type { Client } from '@xmpp/client-core';
import type { IqCaller } from './iq-caller.js';
import type { StreamFeatures } from '@xmpp/stream-features';
import { NS_SM, type StreamManagement } from './stream-management.js';

const NS_BIND = 'urn:ietf:params:xml:ns:xmpp-bind';

export function establishment(deps: {
  streamFeatures: StreamFeatures<Client>;
  iqCaller: IqCaller;
  entity: Client;
  sm: StreamManagement;
  /** Use XEP-0198 when offered. */
  useSm: boolean;
  resource: string;
  /** The full JID to assume if the server's bind result names none. */
  fallbackJid: string;
  /** The stream was resumed: online without a new session (no 'online' event from the entity). */
  onResumed(jid: string): void;
}): void {
  const { entity, sm } = deps;
  deps.streamFeatures.use('bind', NS_BIND, async ({ stanza: features }: { stanza: Element }) => {
    const offered = deps.useSm && features.getChild('sm', NS_SM) !== undefined;
    if (offered && sm.canResume() && (await sm.resume())) {
      entity._jid(sm.jid!);
      entity._ready(true);
      deps.onResumed(sm.jid!);
      return;
    }
    sm.lose(); // whatever the old stream still held is reported lost (a no-op when it held nothing)
    const bound = await deps.iqCaller.set(xml('bind', { xmlns: NS_BIND }, xml('resource', {}, deps.resource)));
    const jid = bound?.getChildText('jid') ?? deps.fallbackJid;
    entity._jid(jid);
    if (offered) await sm.enable(jid);
    entity._ready(false); // the entity emits online
  });
}
