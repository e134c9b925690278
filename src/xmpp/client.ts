// The xmpp.js pieces a gateway uses, assembled: TCP with STARTTLS or direct
// TLS (ours, with the site CA), stream features, our SASL (native SCRAM), the
// bind/resume step with our XEP-0198, and the IQ caller. Left out on purpose:
// websocket, SASL2/FAST, the stock stream management and reconnect, and
// @xmpp/resolve (the session picks each endpoint itself: endpoints.ts).

import { Client } from '@xmpp/client-core';
import tcp from '@xmpp/tcp';
import middlewareFactory from '@xmpp/middleware';
import streamFeaturesFactory from '@xmpp/stream-features';
import type { Element } from 'ltx';
import { sasl, type AuthError } from './sasl.js';
import type { SaltCache } from './scram.js';
import { directTls, starttls, tcpSocketOf } from './tls.js';
import type { Logger } from '../runtime/log.js';
import type { Clock, TimerHandle } from '../core/clock.js';
import type { StreamManagement } from './stream-management.js';
import { establishment } from './establish.js';
import { IqCaller } from './iq-caller.js';
import type { SessionOptions } from './session-types.js';
import type { PeerCertificateInfo } from './tls-problem.js';

/** Counts every stanza on its way to the socket (stream management must see what the IQ layer sends too). */
export class CountingClient extends Client {
  beforeSend?: (el: Element) => void;
  override send(el: Element): Promise<void> {
    if (el.name === 'iq' || el.name === 'message' || el.name === 'presence') this.beforeSend?.(el);
    return super.send(el);
  }
}

export interface ClientOptions extends Pick<SessionOptions, 'jid' | 'resource' | 'password' | 'service' | 'ca' | 'allowPlaintext'> {
  sm: StreamManagement;
  useSm: boolean;
  cache: SaltCache;
  onAuth(result: { mechanism: string; derived: boolean } | { error: AuthError }): void;
  /** The stream was resumed (the entity emits no 'online' for it). */
  onResumed(jid: string): void;
  /** Log every stanza in and out here (never SASL). */
  trace?: Logger;
  clock: Clock;
  /** Where the server's certificate is noted when it changes (a renewal). */
  log?: Logger;
}

export interface AssembledClient {
  entity: CountingClient;
  iqCaller: IqCaller;
  middleware: ReturnType<typeof middlewareFactory>;
}

export function assembleClient(o: ClientOptions): AssembledClient {
  const [local, domain] = o.jid.split('@') as [string, string];
  const entity = new CountingClient({ service: o.service ?? domain, domain, lang: 'en' });
  entity.timeout = 10_000;
  // Counted before any other layer sees the element: IQ results consumed by the IQ caller count too.
  entity.on('element', (el: Element) => o.sm.inboundElement(el));
  entity.beforeSend = (el) => o.sm.outbound(el);

  tcp({ entity });
  let lastFingerprint: string | undefined;
  const tlsSettings = {
    servername: domain,
    ca: o.ca,
    now: () => o.clock.now(),
    onCertificate: (c: PeerCertificateInfo): void => {
      if (c.fingerprint === lastFingerprint) return;
      const fields = { subject: c.subject, names: c.altNames, issuer: c.issuer, validFrom: c.validFrom, validTo: c.validTo, sha256: c.fingerprint };
      if (lastFingerprint === undefined) o.log?.info('server certificate', fields);
      else o.log?.info('the server presents a new certificate (renewed?); it verified, carrying on', fields);
      lastFingerprint = c.fingerprint;
    },
  };
  directTls(entity, tlsSettings);
  const middleware = middlewareFactory({ entity });
  const streamFeatures = streamFeaturesFactory({ middleware });
  const iqCaller = new IqCaller({ send: (iq) => entity.send(iq), self: o.jid, clock: o.clock });
  // Replies to our own requests, matched by id and sender, go no further.
  middleware.use((ctx, next) => (iqCaller.route(ctx.stanza) ? undefined : next()));
  entity.on('disconnect', () => iqCaller.failAll('the connection closed'));
  starttls(streamFeatures, tlsSettings);
  sasl({ streamFeatures, username: local, password: o.password, cache: o.cache, allowPlaintext: o.allowPlaintext, onResult: o.onAuth });
  establishment({
    streamFeatures,
    iqCaller,
    entity,
    sm: o.sm,
    useSm: o.useSm,
    resource: o.resource,
    fallbackJid: `${o.jid}/${o.resource}`,
    onResumed: o.onResumed,
  });
  entity.on('connect', () => {
    const socket = tcpSocketOf(entity);
    socket?.setNoDelay(true); // no Nagle: each small stanza goes out at once
    socket?.setKeepAlive(true, 30_000);
  });
  const trace = o.trace;
  if (trace) {
    const hide = (el: Element): boolean => el.getNS() === 'urn:ietf:params:xml:ns:xmpp-sasl';
    entity.on('element', (el: Element) => !hide(el) && trace.debug('in', { xml: el.toString() }));
    entity.on('send', (el: Element) => !hide(el) && trace.debug('out', { xml: el.toString() }));
  }
  return { entity, iqCaller, middleware };
}

/** Close the stream politely, but give up after graceMs on a server that no longer answers and cut the socket. */
export async function closeStream(entity: CountingClient, clock: Clock, graceMs: number, log: Logger): Promise<void> {
  let timer: TimerHandle | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = clock.setTimeout(() => reject(new Error('server did not close the stream in time')), graceMs);
  });
  try {
    await Promise.race([entity.stop(), limit]);
  } catch (err) {
    log.debug('stop', { error: err });
    tcpSocketOf(entity)?.destroy();
  } finally {
    clock.clearTimeout(timer);
  }
}
