// The XMPP session: xmpp.js's connection and stream features, composed
// without the parts a gateway must not use as shipped (websocket, SASL2/FAST,
// the stock stream management) and with our TLS, SCRAM, XEP-0198 and reconnect.

import { EventEmitter } from 'node:events';
import { Client } from '@xmpp/client-core';
import tcp from '@xmpp/tcp';
import middlewareFactory from '@xmpp/middleware';
import streamFeaturesFactory from '@xmpp/stream-features';
import iqCallerFactory, { type IQCaller } from '@xmpp/iq/caller.js';
import resolve from '@xmpp/resolve';
import xml from '@xmpp/xml';
import type { Element } from 'ltx';
import type { Logger } from '../runtime/log.js';
import { backoff } from '../util/backoff.js';
import { sasl, type AuthError } from './sasl.js';
import type { SaltCache } from './scram.js';
import { directTls, starttls, tcpSocketOf } from './tls.js';
import { stamped, StreamManagement, type Receipt, type Unacked } from './stream-management.js';
import { establishment } from './establish.js';
import { serverSlowDown, Throttle } from './throttle.js';
import { PingBarrier } from './barrier.js';

/** How long stop() waits for the server to close the stream. */
const STOP_GRACE_MS = 1500;
/** From connecting to online (TLS, SASL, bind); past it the attempt is abandoned and retried. */
const LOGIN_TIMEOUT_MS = 45_000;
/** The backoff starts over only once a session has stayed up this long (a server that kicks us at once must not be hammered). */
const STABLE_MS = 10_000;

export interface SessionOptions {
  jid: string;
  resource: string;
  password: string;
  service?: string;
  ca?: string;
  allowPlaintext: boolean;
  reconnect: { initialDelayMs: number; maxDelayMs: number };
  log: Logger;
  /** Log every stanza in and out (never SASL). */
  traceXml?: boolean;
  random?: () => number;
  /** XEP-0198; off only for servers that mishandle it. */
  streamManagement?: SmSettings;
}

export interface SmSettings {
  enabled: boolean;
  requestEvery: number;
  requestDelayMs: number;
  ackTimeoutMs: number;
  maxQueue: number;
}

export const DEFAULT_SM: SmSettings = { enabled: true, requestEvery: 10, requestDelayMs: 30_000, ackTimeoutMs: 30_000, maxQueue: 500 };

/** Counts every stanza on its way to the socket (stream management must see what the IQ layer sends too). */
class CountingClient extends Client {
  beforeSend?: (el: Element) => void;
  override send(el: Element): Promise<void> {
    if (el.name === 'iq' || el.name === 'message' || el.name === 'presence') this.beforeSend?.(el);
    return super.send(el);
  }
}

export interface SessionStats {
  connects: number;
  reconnects: number;
  /** Logins that had to run PBKDF2 (the rest reused the cached salted password). */
  keyDerivations: number;
  mechanism?: string;
  onlineSince?: number;
  lastError?: string;
  /** Streams resumed (XEP-0198) instead of a new session. */
  resumes: number;
  /** Messages sent again with a delay stamp after the server lost a stream. */
  resent: number;
  /** Times the server told us to slow down (resource-constraint, wait). */
  slowDowns: number;
}

export type SessionState = 'offline' | 'connecting' | 'online' | 'stopped' | 'failed';

export interface SessionEvents {
  /** resumed: the server kept our stream (presence, subscriptions and queued stanzas carried over). */
  online: [jid: string, resumed: boolean];
  offline: [];
  stanza: [stanza: Element];
  /** Unrecoverable (bad password, server without TLS): retrying will not help. */
  fatal: [error: AuthError];
}

export class Session extends EventEmitter<SessionEvents> {
  readonly stats: SessionStats = { connects: 0, reconnects: 0, keyDerivations: 0, resumes: 0, resent: 0, slowDowns: 0 };
  readonly sm: StreamManagement;
  state: SessionState = 'offline';
  private readonly entity: CountingClient;
  private readonly iqCaller: IQCaller<Client>;
  private readonly cache: SaltCache = new Map();
  private readonly log: Logger;
  private timer?: NodeJS.Timeout;
  private loginTimer?: NodeJS.Timeout;
  private stableTimer?: NodeJS.Timeout;
  private attempt = 0;
  /** Messages without a receipt that a lost stream took with it: sent again, stamped, once online. */
  private resend: Unacked[] = [];
  /** Receipts for servers without XEP-0198: a ping round trip stands in for the ack. */
  private readonly barrier: PingBarrier;
  /** A stream error asking us to back off sets a floor under the next reconnect delay. */
  private reconnectFloorMs = 0;
  private readonly throttle = new Throttle();
  /** The next connect goes to the server's XEP-0198 location (once per lost stream). */
  private tryLocation = false;

  constructor(private readonly opts: SessionOptions) {
    super();
    this.log = opts.log;
    const [local, domain] = opts.jid.split('@') as [string, string];
    const entity = new CountingClient({ service: opts.service ?? domain, domain, lang: 'en' });
    entity.timeout = 10_000;
    this.entity = entity;
    const smOpts = opts.streamManagement ?? DEFAULT_SM;
    this.sm = new StreamManagement({
      write: (el) => entity.send(el),
      drop: () => this.dropConnection(),
      log: this.log.child('sm'),
      ...smOpts,
    });
    // Counted before any other layer sees the element: IQ results consumed by the IQ caller count too.
    entity.on('element', (el: Element) => this.sm.inboundElement(el));
    entity.beforeSend = (el) => this.sm.outbound(el);
    this.sm.on('lost', (items) => this.onLost(items));
    this.barrier = new PingBarrier(() => this.request(xml('iq', { type: 'get', to: domain }, xml('ping', { xmlns: 'urn:xmpp:ping' })), 30_000));

    tcp({ entity });
    const tlsSettings = { servername: domain, ca: opts.ca };
    directTls(entity, tlsSettings);
    const middleware = middlewareFactory({ entity });
    const streamFeatures = streamFeaturesFactory({ middleware });
    this.iqCaller = iqCallerFactory({ middleware, entity });
    resolve({ entity });
    starttls(streamFeatures, tlsSettings);
    sasl({
      streamFeatures,
      username: local,
      password: opts.password,
      cache: this.cache,
      allowPlaintext: opts.allowPlaintext,
      onResult: (r) => {
        if ('error' in r) return this.onAuthFailed(r.error);
        this.stats.mechanism = r.mechanism;
        if (r.derived) this.stats.keyDerivations++;
        this.log.debug('authenticated', { mechanism: r.mechanism, cachedKey: !r.derived });
      },
    });
    establishment({
      streamFeatures,
      iqCaller: this.iqCaller,
      entity,
      sm: this.sm,
      useSm: smOpts.enabled,
      resource: opts.resource,
      fallbackJid: `${opts.jid}/${opts.resource}`,
      onResumed: (jid) => this.becomeOnline(jid, true),
    });

    // Stanzas that no earlier layer (IQ replies to our requests) consumed.
    middleware.use((ctx, next) => {
      const name = ctx.stanza.name;
      if (name !== 'iq' && name !== 'message' && name !== 'presence') return next();
      if (serverSlowDown(ctx.stanza)) this.slowDown();
      this.emit('stanza', ctx.stanza);
      return undefined;
    });

    entity.on('error', (err: Error & { condition?: string; code?: string }) => {
      this.stats.lastError = err.condition ?? err.code ?? err.message;
      this.log.warn('connection error', { error: err });
      // A server that is overloaded or limiting us says so with a stream error: come back later, not at once.
      if (err.condition === 'resource-constraint' || err.condition === 'policy-violation' || err.condition === 'connection-timeout') {
        this.reconnectFloorMs = Math.min(Math.max(this.reconnectFloorMs * 2, 30_000), this.opts.reconnect.maxDelayMs);
        this.stats.slowDowns++;
      }
    });
    entity.on('status', (status: string) => this.log.debug('status', { status }));
    entity.on('connect', () => {
      const socket = tcpSocketOf(entity);
      socket?.setNoDelay(true); // no Nagle: each small stanza goes out at once
      socket?.setKeepAlive(true, 30_000);
    });
    entity.on('online', (jid: { toString(): string }) => this.becomeOnline(jid.toString(), false));
    entity.on('disconnect', (info?: { clean?: boolean }) => {
      clearTimeout(this.loginTimer);
      clearTimeout(this.stableTimer);
      this.sm.disconnected();
      if (this.state === 'online') this.tryLocation = this.sm.location !== undefined;
      this.barrier.failAll();
      const wasOnline = this.state === 'online';
      if (this.state !== 'stopped' && this.state !== 'failed') this.state = 'offline';
      if (wasOnline) {
        this.stats.onlineSince = undefined;
        this.log.warn('disconnected', { clean: info?.clean ?? false });
        this.emit('offline');
      }
      this.schedule();
    });
    if (opts.traceXml) {
      const hide = (el: Element): boolean => el.getNS() === 'urn:ietf:params:xml:ns:xmpp-sasl';
      entity.on('element', (el: Element) => !hide(el) && this.log.debug('in', { xml: el.toString() }));
      entity.on('send', (el: Element) => !hide(el) && this.log.debug('out', { xml: el.toString() }));
    }
  }

  get jid(): string | undefined {
    return this.entity.jid?.toString();
  }

  get online(): boolean {
    return this.state === 'online';
  }

  /** Begin connecting in the background; retries with backoff until stop(). Listen for 'online'. */
  start(): void {
    if (this.state !== 'offline') return;
    void this.connectOnce();
  }

  /**
   * Send a stanza. With a receipt, exactly one of onAck (the server has it:
   * XEP-0198 ack, or a ping round trip on servers without it) or onFail (the
   * stream was lost before that) is called later.
   */
  async send(stanza: Element, receipt?: Receipt): Promise<void> {
    if (!this.online) throw new Error('not connected');
    if (receipt && this.sm.active) this.sm.track(stanza, receipt);
    await this.entity.send(stanza);
    if (receipt && !this.sm.active) this.barrier.add(receipt);
  }

  /** Until when the server asked us to hold back optional traffic (ms since epoch; 0 = not asked). */
  get slowedUntil(): number {
    return this.throttle.until();
  }

  /** The server answered with resource-constraint or wait: back off optional traffic, doubling up to 5 minutes. */
  slowDown(): void {
    const forMs = this.throttle.hit();
    this.stats.slowDowns++;
    this.log.warn('the server asked us to slow down', { forMs });
  }

  private becomeOnline(jid: string, resumed: boolean): void {
    clearTimeout(this.loginTimer);
    if (this.state === 'stopped' || this.state === 'failed') {
      void this.entity.stop().catch(() => {});
      return;
    }
    this.stableTimer = setTimeout(() => {
      this.attempt = 0;
      this.reconnectFloorMs = 0;
    }, STABLE_MS);
    this.stableTimer.unref();
    this.stats.connects++;
    if (this.stats.connects > 1) this.stats.reconnects++;
    if (resumed) this.stats.resumes++;
    this.stats.onlineSince = Date.now();
    this.state = 'online';
    this.log.info(resumed ? 'online (stream resumed)' : 'online', { jid, secure: this.entity.isSecure(), mechanism: this.stats.mechanism, sm: this.sm.active });
    this.emit('online', jid, resumed);
    // Replies and notices the server lost with the old stream go out again, stamped with when they were meant.
    const again = this.resend;
    this.resend = [];
    for (const item of again) {
      this.stats.resent++;
      this.send(stamped(item, jid)).catch((err: unknown) => this.log.warn('could not re-send a message', { error: err }));
    }
  }

  private onLost(items: Unacked[]): void {
    for (const item of items) if (item.stanza.name === 'message') this.resend.push(item);
    // Keep the re-send list as bounded as the queue it came from.
    if (this.resend.length > this.sm.maxQueue) this.resend.splice(0, this.resend.length - this.sm.maxQueue);
  }

  /** Send an IQ and wait for its result (rejects with the StanzaError on type=error). */
  request(iq: Element, timeoutMs = 15_000): Promise<Element> {
    return this.iqCaller.request(iq, timeoutMs);
  }

  async stop(): Promise<void> {
    const wasConnected = this.entity.status !== 'offline' && this.entity.status !== 'disconnect';
    if (this.state === 'online') await this.sm.farewell();
    this.state = 'stopped';
    clearTimeout(this.timer);
    clearTimeout(this.loginTimer);
    clearTimeout(this.stableTimer);
    if (!wasConnected) return;
    try {
      // Close the stream politely, but do not wait long for a server that no longer answers.
      let timer: NodeJS.Timeout | undefined;
      const limit = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('server did not close the stream in time')), STOP_GRACE_MS);
      });
      await Promise.race([this.entity.stop(), limit]).finally(() => clearTimeout(timer));
    } catch (err) {
      this.log.debug('stop', { error: err });
      tcpSocketOf(this.entity)?.destroy();
    }
    // A closed stream cannot be resumed: what it still held is reported lost (durable messages stay in the outbox).
    this.sm.lose();
  }

  /** Bytes this session's current TCP connection has written (TLS framing included). */
  bytesWritten(): number {
    return tcpSocketOf(this.entity)?.bytesWritten ?? 0;
  }

  /** Drop the connection as a network fault would (tests, diagnostics). */
  dropConnection(): void {
    tcpSocketOf(this.entity)?.destroy();
  }

  private onAuthFailed(error: AuthError): void {
    this.stats.lastError = error.message;
    if (error.kind === 'protocol' || error.kind === 'tls-required') {
      // A server without TLS may be an attacker stripping STARTTLS on the path: never log in, but keep trying.
      if (error.kind === 'tls-required') this.log.error('refusing to log in without TLS; will retry', { error });
      else this.log.warn('login failed; will retry', { error });
      this.dropConnection(); // no polite close: a server that misbehaves may never answer it
      return;
    }
    this.state = 'failed';
    clearTimeout(this.timer);
    this.log.error('login failed', { error, reason: error.kind });
    void this.entity.disconnect().catch(() => {});
    this.emit('fatal', error);
  }

  private schedule(): void {
    if (this.timer || this.state === 'stopped' || this.state === 'failed') return;
    const delay = Math.max(this.reconnectFloorMs, backoff(this.attempt + 1, this.opts.reconnect.initialDelayMs, this.opts.reconnect.maxDelayMs, this.opts.random));
    this.log.info('reconnecting', { inMs: delay, attempt: this.attempt + 1 });
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.connectOnce();
    }, delay);
  }

  private async connectOnce(): Promise<void> {
    if (this.state === 'stopped' || this.state === 'failed') return;
    this.attempt++;
    this.state = 'connecting';
    clearTimeout(this.loginTimer);
    this.loginTimer = setTimeout(() => {
      if (this.state !== 'connecting') return;
      this.log.warn('login did not complete in time; retrying', { timeoutMs: LOGIN_TIMEOUT_MS });
      this.dropConnection();
      const status = this.entity.status;
      if (status === 'disconnect' || status === 'offline') this.schedule();
    }, LOGIN_TIMEOUT_MS);
    const { domain, lang } = this.entity.options;
    // A resumable stream goes back where the server said it lives (XEP-0198 location); once, then the usual service.
    const location = this.tryLocation && this.sm.canResume() && this.sm.location ? locationService(this.sm.location, this.entity.options.service) : undefined;
    this.tryLocation = false;
    const service = location ?? this.entity.options.service;
    try {
      // service and domain: always set by the constructor (the typings make every option optional).
      await this.entity.connect(service!);
      await this.entity.open({ domain: domain!, lang });
    } catch (err) {
      this.stats.lastError = (err as Error).message;
      this.log.warn('connection attempt failed', { error: err, attempt: this.attempt });
      const status = this.entity.status;
      if (status === 'disconnect' || status === 'offline') this.schedule();
      else void this.entity.disconnect().catch(() => this.schedule());
    }
  }
}

/** XEP-0198 location is host:port (IPv6 in brackets); make it a service our transports take, keeping how we connect now (STARTTLS or direct TLS). */
export function locationService(location: string, current?: string): string {
  const m = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(location.trim());
  if (!m) return location;
  const direct = current?.startsWith('xmpps://') ?? false;
  return `${direct ? 'xmpps' : 'xmpp'}://${m[1]}:${m[2] ?? (direct ? '5223' : '5222')}`;
}
