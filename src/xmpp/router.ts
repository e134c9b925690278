// Stanza routing with authority. Knows no XEP: each XEP registers its IQ
// handlers by (namespace, element), the way xmpp.js's iq-callee does, and
// every rule of RFC 6120 about replies lives here, once.

import type { Element } from 'ltx';
import type { Logger } from '../runtime/log.js';
import type { Authority, Role } from '../core/authority.js';
import { isStanzaError, StanzaError } from '../core/errors.js';
import { errorReply, iqResult } from './stanza.js';

export interface IqRequest {
  stanza: Element;
  /** The single payload child. */
  child: Element;
  from: string;
  role: Role;
  /** Run after the IQ reply is on the wire (e.g. follow-up messages that must come after it). */
  afterReply(fn: () => Promise<void> | void): void;
}

/** Returns the result payload (or nothing for an empty result), or throws StanzaError. */
export type IqHandler = (req: IqRequest) => Element | undefined | Promise<Element | undefined>;
export type StanzaHandler = (stanza: Element, role: Role) => void | Promise<void>;

interface Route {
  handler: IqHandler;
  allow: readonly Role[];
  advertise: boolean;
}

export interface RouteOptions {
  /** Who may call it; default: readers for get, owners for set. */
  allow?: readonly Role[];
  /** List the namespace in disco#info (default true; false for RFC plumbing such as roster pushes). */
  advertise?: boolean;
}

export interface RouterStats {
  iqIn: number;
  errorsOut: number;
  handlerFailures: number;
}

const READERS: readonly Role[] = ['owner', 'viewer'];
const OWNERS: readonly Role[] = ['owner'];

export class Router {
  readonly stats: RouterStats = { iqIn: 0, errorsOut: 0, handlerFailures: 0 };
  private readonly routes = new Map<string, Route>();
  private readonly messageHandlers: StanzaHandler[] = [];
  private readonly presenceHandlers: StanzaHandler[] = [];

  constructor(private readonly deps: { send: (stanza: Element) => Promise<void>; authority: Authority; log: Logger }) {}

  /** Register an IQ get handler; readers (owners, viewers) may call it unless `allow` says otherwise. */
  get(ns: string, name: string, handler: IqHandler, opts: RouteOptions = {}): void {
    this.add('get', ns, name, handler, { allow: opts.allow ?? READERS, advertise: opts.advertise ?? true });
  }

  /** Register an IQ set handler; only owners may call it unless `allow` says otherwise. */
  set(ns: string, name: string, handler: IqHandler, opts: RouteOptions = {}): void {
    this.add('set', ns, name, handler, { allow: opts.allow ?? OWNERS, advertise: opts.advertise ?? true });
  }

  onMessage(handler: StanzaHandler): void {
    this.messageHandlers.push(handler);
  }

  onPresence(handler: StanzaHandler): void {
    this.presenceHandlers.push(handler);
  }

  /** Namespaces with an advertised handler, for disco#info. */
  features(): string[] {
    return [...new Set([...this.routes].filter(([, r]) => r.advertise).map(([k]) => k.split(' ')[1]!))];
  }

  async handle(stanza: Element): Promise<void> {
    const role = this.deps.authority.roleOf(stanza.attrs.from);
    try {
      if (stanza.name === 'iq') await this.handleIq(stanza, role);
      else if (stanza.name === 'message') await this.dispatch(this.messageHandlers, stanza, role);
      else if (stanza.name === 'presence') await this.dispatch(this.presenceHandlers, stanza, role);
    } catch (err) {
      this.stats.handlerFailures++;
      this.deps.log.error('stanza handling failed', { error: err, stanza: stanza.name });
    }
  }

  private add(type: string, ns: string, name: string, handler: IqHandler, rest: Omit<Route, 'handler'>): void {
    const key = `${type} ${ns} ${name}`;
    if (this.routes.has(key)) throw new Error(`two handlers for ${key}`);
    this.routes.set(key, { handler, ...rest });
  }

  private async dispatch(handlers: StanzaHandler[], stanza: Element, role: Role): Promise<void> {
    if (stanza.attrs.type === 'error') return; // never answer an error (RFC 6120 §8.3.1)
    for (const h of handlers) await h(stanza, role);
  }

  private async handleIq(stanza: Element, role: Role): Promise<void> {
    const type = stanza.attrs.type;
    if (type === 'result' || type === 'error') return; // replies to requests we no longer wait for
    this.stats.iqIn++;
    if (!stanza.attrs.id) {
      // Without an id no reply can be matched (and an error reply without one is invalid too): drop it.
      this.stats.errorsOut++;
      this.deps.log.debug('IQ without id dropped', { from: stanza.attrs.from });
      return;
    }
    const after: (() => Promise<void> | void)[] = [];
    const reply = await this.answerIq(stanza, type, role, after);
    if (reply.attrs.type === 'error') this.stats.errorsOut++;
    await this.deps.send(reply);
    if (reply.attrs.type === 'result') for (const fn of after) await fn();
  }

  private async answerIq(stanza: Element, type: string | undefined, role: Role, after: (() => Promise<void> | void)[]): Promise<Element> {
    const children = stanza.getChildElements();
    if ((type !== 'get' && type !== 'set') || children.length !== 1) {
      return errorReply(stanza, new StanzaError('bad-request', 'an IQ needs type get or set and exactly one child'));
    }
    if (role === 'stranger') return errorReply(stanza, new StanzaError('forbidden'));
    const child = children[0]!;
    const route = this.routes.get(`${type} ${child.getNS() ?? ''} ${child.name}`);
    if (!route) return errorReply(stanza, new StanzaError('service-unavailable'));
    if (!route.allow.includes(role)) return errorReply(stanza, new StanzaError('forbidden'));
    try {
      const payload = await route.handler({ stanza, child, from: stanza.attrs.from ?? '', role, afterReply: (fn) => after.push(fn) });
      return iqResult(stanza, payload);
    } catch (err) {
      if (isStanzaError(err)) return errorReply(stanza, err);
      this.stats.handlerFailures++;
      this.deps.log.error('IQ handler failed', { error: err, ns: child.getNS() });
      return errorReply(stanza, new StanzaError('internal-server-error'));
    }
  }
}
