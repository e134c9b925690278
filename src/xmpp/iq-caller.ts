// Our own IQ requests and their replies. An IQ reply is matched by its id
// AND by who sent it (RFC 6120 §8.1.2.1): a reply must come from the entity
// the request went to; a request without 'to' (or to our own bare JID or
// server) is answered by our server on the account's behalf, with no 'from',
// our bare JID or the domain. Ids are random (96 bits), so a third party that
// sees none of our traffic cannot forge a reply either.

import { randomBytes } from 'node:crypto';
import xml from '@xmpp/xml';
import type { Element } from 'ltx';
import { StanzaError, type Condition } from '../core/errors.js';
import type { Clock, TimerHandle } from '../core/clock.js';
import { bareOf } from '../core/authority.js';

export class TimeoutError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TimeoutError';
  }
}

interface Pending {
  to: string | undefined;
  resolve(el: Element): void;
  reject(err: Error): void;
  timer: TimerHandle;
}

const NS_STANZAS = 'urn:ietf:params:xml:ns:xmpp-stanzas';

/** The StanzaError an IQ error reply carries. */
export function errorOf(reply: Element): StanzaError {
  const error = reply.getChild('error');
  const condition = (error?.getChildElements().find((c) => c.getNS() === NS_STANZAS && c.name !== 'text')?.name ?? 'undefined-condition') as Condition;
  const text = error?.getChildText('text', NS_STANZAS) ?? undefined;
  return new StanzaError(condition, text, { type: (error?.attrs.type as 'cancel' | undefined) ?? 'cancel' });
}

export class IqCaller {
  /** Replies dropped because they came from someone the request did not go to. */
  spoofed = 0;
  private readonly pending = new Map<string, Pending>();

  constructor(
    private readonly deps: {
      send(iq: Element): Promise<void>;
      /** Our own bare JID (the account). */
      self: string;
      clock: Clock;
    },
  ) {}

  /** Send an IQ get/set and wait for its result; rejects with the StanzaError of an error reply, or a TimeoutError. */
  request(iq: Element, timeoutMs = 15_000): Promise<Element> {
    const id = randomBytes(12).toString('base64url');
    iq.attrs.id = id;
    return new Promise<Element>((resolve, reject) => {
      const timer = this.deps.clock.setTimeout(() => {
        this.pending.delete(id);
        reject(new TimeoutError(`no reply to the IQ within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { to: iq.attrs.to, resolve, reject, timer });
      this.deps.send(iq).catch((err: Error) => {
        this.deps.clock.clearTimeout(timer);
        this.pending.delete(id);
        reject(err);
      });
    });
  }

  /** Send `<iq type=set>` with one child and resolve with the same child of the result. */
  async set(child: Element, to?: string): Promise<Element | undefined> {
    const reply = await this.request(xml('iq', { type: 'set', ...(to ? { to } : {}) }, child));
    return reply.getChild(child.name, child.getNS());
  }

  /** An IQ result or error: true when it answered one of our requests (consumed), false otherwise. */
  route(stanza: Element): boolean {
    const { type, id } = stanza.attrs;
    if (stanza.name !== 'iq' || (type !== 'result' && type !== 'error') || !id) return false;
    const p = this.pending.get(id);
    if (!p) return false;
    if (!this.fromAddressee(p.to, stanza.attrs.from)) {
      this.spoofed++;
      return true; // dropped: the real reply may still come
    }
    this.pending.delete(id);
    this.deps.clock.clearTimeout(p.timer);
    if (type === 'error') p.reject(errorOf(stanza));
    else p.resolve(stanza);
    return true;
  }

  /** The connection is gone: no reply can come any more. */
  failAll(why: string): void {
    for (const [id, p] of this.pending) {
      this.deps.clock.clearTimeout(p.timer);
      this.pending.delete(id);
      p.reject(new Error(why));
    }
  }

  private fromAddressee(to: string | undefined, from: string | undefined): boolean {
    const self = bareOf(this.deps.self);
    const domain = self.slice(self.indexOf('@') + 1);
    const norm = (jid: string): string => {
      const slash = jid.indexOf('/');
      return slash < 0 ? jid.toLowerCase() : `${jid.slice(0, slash).toLowerCase()}${jid.slice(slash)}`;
    };
    // To the account or its server: the server answers for it.
    const toAccount = to === undefined || norm(to) === self || norm(to) === domain;
    if (from === undefined || from === '') return toAccount;
    if (toAccount) return norm(from) === self || norm(from) === domain || (to !== undefined && norm(from) === norm(to));
    return norm(from) === norm(to!);
  }
}
