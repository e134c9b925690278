// TLS for both ways in: STARTTLS on xmpp:// and direct TLS on xmpps://, each
// with the configured CA and the JID's domain as the name to verify. The stock
// STARTTLS calls tls.connect without CA options, so a site CA never applied.
// A certificate that fails is explained (tls-problem.ts): which host, its
// dates, our clock; and one that changed (a renewal) is noted in the log.

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
import { explainCertificate, type PeerCertificateInfo } from './tls-problem.js';

export const NS_TLS = 'urn:ietf:params:xml:ns:xmpp-tls';

export interface TlsSettings {
  /** PEM text of the CA to trust instead of the system store. */
  ca?: string;
  /** The name the certificate must carry: the JID's domain. */
  servername: string;
  /** Every certificate the server presented on a connection that verified (to note a renewal). */
  onCertificate?: (cert: PeerCertificateInfo) => void;
  /** The wall clock (the explanation of a certificate that is not yet or no longer valid names it). */
  now?: () => number;
}

/**
 * One secure context per CA for the life of the process. Given `ca`, tls.connect builds a new one
 * (an OpenSSL SSL_CTX with its own certificate store) for every connection, and on a gateway that
 * reconnects often what those leave behind adds up: measured under the unit's runtime flags, 1,000
 * connections grew RssAnon by 16.6 MiB after a full GC, against 3.6 MiB with one shared context.
 * The context holds only what we trust; the server's certificate (renewed or not) is verified on
 * every connection as before.
 */
const contexts = new Map<string, tls.SecureContext>();
export function secureContextFor(ca: string | undefined): tls.SecureContext {
  const key = ca ?? '';
  let context = contexts.get(key);
  if (!context) {
    context = tls.createSecureContext({ ...(ca ? { ca } : {}), minVersion: 'TLSv1.2' });
    contexts.set(key, context);
  }
  return context;
}

function connectOptions(s: TlsSettings): ConnectionOptions & { requestOCSP: boolean } {
  // requestOCSP: the 'OCSPResponse' event comes after the server's certificate arrived and before it is
  // judged, the one moment its dates can be read when it fails (a stapled response is not required).
  return { servername: s.servername, secureContext: secureContextFor(s.ca), requestOCSP: true };
}

/**
 * Watches one TLS handshake: keeps the server's certificate as soon as it arrives, turns a verification
 * failure into an error that says what is wrong (the error object is amended before anyone else sees
 * it), and reports a verified certificate. Never changes what is accepted: Node verifies as before.
 */
function watchHandshake(socket: tls.TLSSocket, s: TlsSettings): void {
  let cert: PeerCertificateInfo | undefined;
  const keep = (): void => {
    const c = socket.getPeerCertificate();
    if (c && Object.keys(c).length > 0) cert = certificateInfo(c);
  };
  socket.once('OCSPResponse', keep);
  socket.prependOnceListener('error', (err: Error & { code?: string }) => explainCertificate(err, { host: s.servername, cert, now: (s.now ?? Date.now)() }));
  socket.once('secureConnect', () => {
    keep();
    if (socket.authorized && cert) s.onCertificate?.(cert);
  });
}

export function certificateInfo(c: tls.PeerCertificate): PeerCertificateInfo {
  const cn = (v: string | string[] | undefined): string => (Array.isArray(v) ? v.join(', ') : (v ?? ''));
  return { subject: cn(c.subject?.CN), altNames: c.subjectaltname ?? '', issuer: cn(c.issuer?.CN), validFrom: c.valid_from, validTo: c.valid_to, fingerprint: c.fingerprint256 };
}

/** Direct TLS (xmpps://host:5223, XEP-0368) with our options. */
export function directTls(entity: Client, settings: TlsSettings): void {
  class WatchedSocket extends TlsSocket {
    override connect(options: ConnectionOptions): void {
      super.connect(options);
      if (this.socket) watchHandshake(this.socket, settings);
    }
  }
  class DirectTls extends ConnectionTLS {
    override socketParameters(service: string) {
      const p = super.socketParameters(service);
      return p && { ...p, ...connectOptions(settings) };
    }
  }
  DirectTls.prototype.Socket = WatchedSocket;
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
      if (secured.socket) watchHandshake(secured.socket, settings);
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
