// TLS for both ways in: STARTTLS on xmpp:// and direct TLS on xmpps://, each
// with the configured CA and the JID's domain as the name to verify. The stock
// STARTTLS calls tls.connect without CA options, so a site CA never applied.

import type { ConnectionOptions } from 'node:tls';
import net from 'node:net';
import tls from 'node:tls';
import type { Client } from '@xmpp/client-core';
import type { StreamFeatures } from '@xmpp/stream-features';
import ConnectionTLS from '@xmpp/tls/lib/Connection.js';
import TlsSocket from '@xmpp/tls/lib/Socket.js';
import { promise } from '@xmpp/events';
import xml from '@xmpp/xml';
import { nextElement } from './wait.js';

export const NS_TLS = 'urn:ietf:params:xml:ns:xmpp-tls';

export interface TlsSettings {
  /** PEM text of the CA to trust instead of the system store. */
  ca?: string;
  /** The name the certificate must carry: the JID's domain. */
  servername: string;
}

function connectOptions(s: TlsSettings): ConnectionOptions {
  return { servername: s.servername, ...(s.ca ? { ca: s.ca } : {}), minVersion: 'TLSv1.2' };
}

/** Direct TLS (xmpps://host:5223, XEP-0368) with our options. */
export function directTls(entity: Client, settings: TlsSettings): void {
  class DirectTls extends ConnectionTLS {
    override socketParameters(service: string) {
      const p = super.socketParameters(service);
      return p && { ...p, ...connectOptions(settings) };
    }
  }
  entity.transports.push(DirectTls);
}

export function starttls(streamFeatures: StreamFeatures<Client>, settings: TlsSettings): void {
  streamFeatures.use('starttls', NS_TLS, async ({ entity }, next) => {
    const raw = entity.socket;
    if (!(raw instanceof net.Socket) || raw instanceof tls.TLSSocket) return next();
    try {
      const answer = nextElement(entity, NS_TLS, 10_000);
      await entity.send(xml('starttls', { xmlns: NS_TLS }));
      const el = await answer;
      if (!el.is('proceed')) throw new Error('the server refused STARTTLS');
      const secured = new TlsSocket();
      secured.connect({ socket: raw, ...connectOptions(settings) });
      await promise(secured, 'connect');
      entity._attachSocket(secured);
    } catch (err) {
      // Closing the socket turns a failed handshake into an ordinary disconnect (and a retry).
      raw.destroy();
      throw err;
    }
    await entity.restart();
  });
}

/** The TCP socket under whatever transport is attached. */
export function tcpSocketOf(entity: Client): net.Socket | undefined {
  const s = entity.socket as unknown;
  if (s instanceof net.Socket) return s;
  const inner = (s as { socket?: unknown } | null)?.socket;
  return inner instanceof net.Socket ? inner : undefined;
}
