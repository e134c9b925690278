// The parts of xmpp.js 0.14.0 that we call and that have no typings on
// DefinitelyTyped: two files inside @xmpp/tls (our STARTTLS and direct TLS
// reuse its transport and socket with our TLS options, see src/xmpp/tls.ts),
// and the @xmpp/tcp plugin. Everything else of xmpp.js is
// typed by the pinned @types/xmpp__* packages; src/types/xmpp-augment.d.ts
// adds what those lack.
//
// Checked against @xmpp/tls and @xmpp/tcp 0.14.0 (the versions
// pinned in package.json). These are internals: on an xmpp.js upgrade, read
// the files named here again before bumping the version.
// (Ambient declarations, so this file must stay a script: no top-level import or export.)

/** @xmpp/tls/lib/Connection.js: the xmpps:// transport (a ConnectionTCP, itself untyped, so declared on Connection here). */
declare module '@xmpp/tls/lib/Connection.js' {
  import Connection from '@xmpp/connection';
  import type { Element } from '@xmpp/xml';
  export default class ConnectionTLS extends Connection {
    /** For an xmpps:// service: host and port (5223 when none is given); undefined for any other scheme. */
    socketParameters(service: string): { port: number; host: string } | undefined;
    headerElement(): Element;
  }
}

/** @xmpp/tls/lib/Socket.js: the TLS socket the transport attaches (connect() calls tls.connect). */
declare module '@xmpp/tls/lib/Socket.js' {
  import type { SocketBase } from '@xmpp/connection';
  import type { ConnectionOptions, TLSSocket } from 'node:tls';
  interface TlsSocket extends SocketBase {
    readonly secure: true;
    /** The tls.TLSSocket once connect() was called; null after close. */
    socket: TLSSocket | null;
    /** tls.connect(options); emits 'connect' once the handshake is done. */
    connect(options: ConnectionOptions): void;
  }
  const TlsSocket: new () => TlsSocket;
  export default TlsSocket;
}

/** @xmpp/tcp: adds the xmpp:// transport to entity.transports. */
declare module '@xmpp/tcp' {
  import type { Client } from '@xmpp/client-core';
  export default function tcp(deps: { entity: Client }): void;
}
