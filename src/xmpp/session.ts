// The XMPP session: xmpp.js's connection, stream features and resource binding,
// composed without the parts a gateway must not use as shipped (websocket,
// SASL2/FAST, stream management) and with our TLS, SCRAM and reconnect.

import { EventEmitter } from 'node:events';
import { Client } from '@xmpp/client-core';
import tcp from '@xmpp/tcp';
import middlewareFactory from '@xmpp/middleware';
import streamFeaturesFactory from '@xmpp/stream-features';
import iqCallerFactory, { type IqCaller } from '@xmpp/iq/caller.js';
import resourceBinding from '@xmpp/resource-binding';
import resolve from '@xmpp/resolve';
import type { Element } from 'ltx';
import type { Logger } from '../log.js';
import { backoff } from './backoff.js';
import { sasl, type AuthError } from './sasl.js';
import type { SaltCache } from './scram.js';
import { directTls, starttls, tcpSocketOf } from './tls.js';

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
}

export interface SessionStats {
  connects: number;
  reconnects: number;
  /** Logins that had to run PBKDF2 (the rest reused the cached salted password). */
  keyDerivations: number;
  mechanism?: string;
  onlineSince?: number;
  lastError?: string;
}

export type SessionState = 'offline' | 'connecting' | 'online' | 'stopped' | 'failed';

export interface SessionEvents {
  online: [jid: string];
  offline: [];
  stanza: [stanza: Element];
  /** Unrecoverable (bad password, server without TLS): retrying will not help. */
  fatal: [error: AuthError];
}

export class Session extends EventEmitter<SessionEvents> {
  readonly stats: SessionStats = { connects: 0, reconnects: 0, keyDerivations: 0 };
  state: SessionState = 'offline';
  private readonly entity: Client;
  private readonly iqCaller: IqCaller;
  private readonly cache: SaltCache = new Map();
  private readonly log: Logger;
  private timer?: NodeJS.Timeout;
  private loginTimer?: NodeJS.Timeout;
  private stableTimer?: NodeJS.Timeout;
  private attempt = 0;

  constructor(private readonly opts: SessionOptions) {
    super();
    this.log = opts.log;
    const [local, domain] = opts.jid.split('@') as [string, string];
    const entity = new Client({ service: opts.service ?? domain, domain, lang: 'en' });
    entity.timeout = 10_000;
    this.entity = entity;

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
    resourceBinding({ streamFeatures, iqCaller: this.iqCaller }, opts.resource);

    // Stanzas that no earlier layer (IQ replies to our requests) consumed.
    middleware.use((ctx, next) => {
      const name = ctx.stanza.name;
      if (name !== 'iq' && name !== 'message' && name !== 'presence') return next();
      this.emit('stanza', ctx.stanza);
      return undefined;
    });

    entity.on('error', (err: Error & { condition?: string; code?: string }) => {
      this.stats.lastError = err.condition ?? err.code ?? err.message;
      this.log.warn('connection error', { error: err });
    });
    entity.on('status', (status: string) => this.log.debug('status', { status }));
    entity.on('connect', () => {
      const socket = tcpSocketOf(entity);
      socket?.setNoDelay(true); // no Nagle: each small stanza goes out at once
      socket?.setKeepAlive(true, 30_000);
    });
    entity.on('online', (jid: { toString(): string }) => {
      clearTimeout(this.loginTimer);
      if (this.state === 'stopped' || this.state === 'failed') {
        void this.entity.stop().catch(() => {});
        return;
      }
      this.stableTimer = setTimeout(() => (this.attempt = 0), STABLE_MS);
      this.stableTimer.unref();
      this.stats.connects++;
      if (this.stats.connects > 1) this.stats.reconnects++;
      this.stats.onlineSince = Date.now();
      this.state = 'online';
      this.log.info('online', { jid: jid.toString(), secure: entity.isSecure(), mechanism: this.stats.mechanism });
      this.emit('online', jid.toString());
    });
    entity.on('disconnect', (info?: { clean?: boolean }) => {
      clearTimeout(this.loginTimer);
      clearTimeout(this.stableTimer);
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

  async send(stanza: Element): Promise<void> {
    if (!this.online) throw new Error('not connected');
    await this.entity.send(stanza);
  }

  /** Send an IQ and wait for its result (rejects with the StanzaError on type=error). */
  request(iq: Element, timeoutMs = 15_000): Promise<Element> {
    return this.iqCaller.request(iq, timeoutMs);
  }

  async stop(): Promise<void> {
    const wasConnected = this.entity.status !== 'offline' && this.entity.status !== 'disconnect';
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
    const delay = backoff(this.attempt + 1, this.opts.reconnect.initialDelayMs, this.opts.reconnect.maxDelayMs, this.opts.random);
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
    const { service, domain, lang } = this.entity.options;
    try {
      await this.entity.connect(service);
      await this.entity.open({ domain, lang });
    } catch (err) {
      this.stats.lastError = (err as Error).message;
      this.log.warn('connection attempt failed', { error: err, attempt: this.attempt });
      const status = this.entity.status;
      if (status === 'disconnect' || status === 'offline') this.schedule();
      else void this.entity.disconnect().catch(() => this.schedule());
    }
  }
}
