// XEP-0199 XMPP Ping: answer with an empty result.

import type { IqHandler } from '../xmpp/router.js';

export const NS_PING = 'urn:xmpp:ping';

export const ping: IqHandler = () => undefined;
