// Additions to the DefinitelyTyped typings of xmpp.js (pinned in
// package.json: @types/xmpp__connection 0.14.0, @types/xmpp__xml 0.14.0 with
// @types/ltx 3.1.1), for what we call and they do not declare. Checked
// against @xmpp/connection 0.14.0, @xmpp/xml 0.14.0 and ltx 3.1.2; read the
// named functions again before bumping any of these versions.
// (Module augmentations, so this file must stay a module.)

import type { default as ConnectionClass, SocketBase } from '@xmpp/connection';
import type { Element, Node } from '@xmpp/xml';

declare module '@xmpp/connection' {
  // Underscored methods of Connection (@xmpp/connection/index.js) that our
  // STARTTLS and session establishment call, as the stock plugins do.
  export default interface Connection {
    /** Make `socket` the connection's socket (STARTTLS swaps in the TLS socket). */
    _attachSocket(socket: SocketBase): void;
    /** Set entity.jid from the bound (or resumed) full JID. */
    _jid(id: string): NonNullable<ConnectionClass['jid']>;
    /** Status online: emits 'online' unless `resumed` (XEP-0198 resume sets the status quietly). */
    _ready(resumed?: boolean): void;
  }
}

declare module '@xmpp/xml' {
  // ltx 3.1.2's createElement skips null, undefined and boolean children
  // (lib/createElement.js, append()), so `cond ? xml(...) : undefined` is a
  // valid child; @types/ltx 3.1.1 declares children as Node[] only.
  export default function xml(
    name: string,
    attrs?: Record<string, string | number | boolean | null | undefined> | null,
    ...children: (Node | null | undefined | false)[]
  ): Element;
}
