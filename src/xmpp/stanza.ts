// Building RFC 6120 stanzas: replies and errors.

import type { Element } from 'ltx';
import xml from '@xmpp/xml';
import { StanzaError } from '../core/errors.js';

export const NS_STANZAS = 'urn:ietf:params:xml:ns:xmpp-stanzas';

export function errorElement(err: StanzaError): Element {
  return xml(
    'error',
    { type: err.type },
    xml(err.condition, { xmlns: NS_STANZAS }),
    err.text ? xml('text', { xmlns: NS_STANZAS, 'xml:lang': 'en' }, err.text) : undefined,
    err.app ? xml(err.app.name, { xmlns: err.app.xmlns, ...err.app.attrs }, err.app.text) : undefined,
  );
}

/**
 * A stanza error that also carries a payload beside <error/> (RFC 6120 §8.3.1
 * lets an error include content), for protocols whose older clients look for
 * their own element in the error (XEP-0323 <rejected/>, XEP-0325 <setResponse/>).
 */
export class PayloadError extends StanzaError {
  constructor(
    err: StanzaError,
    readonly payload: Element,
  ) {
    super(err.condition, err.text, { type: err.type, app: err.app });
  }
}

/** An error reply to any stanza: same kind, id, addressed back to the sender. */
export function errorReply(stanza: Element, err: StanzaError): Element {
  const payload = err instanceof PayloadError ? err.payload : undefined;
  return xml(stanza.name, { type: 'error', to: stanza.attrs.from, id: stanza.attrs.id }, payload, errorElement(err));
}

export function iqResult(stanza: Element, child?: Element): Element {
  return xml('iq', { type: 'result', to: stanza.attrs.from, id: stanza.attrs.id }, child);
}

export function chatMessage(to: string, body: string, thread?: string): Element {
  return xml('message', { type: 'chat', to }, xml('body', {}, body), thread ? xml('thread', {}, thread) : undefined);
}
