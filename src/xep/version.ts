// XEP-0092 Software Version. The OS is left out on purpose (it helps attackers more than users).

import xml from '@xmpp/xml';
import type { IqHandler } from '../xmpp/router.js';

export const NS_VERSION = 'jabber:iq:version';

export function version(name: string, ver: string): IqHandler {
  return () => xml('query', { xmlns: NS_VERSION }, xml('name', {}, name), xml('version', {}, ver));
}
