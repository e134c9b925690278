// The XMPP session, as the rest of the agent sees it: start, stop, send (with
// a delivery receipt when asked), request, and events. It composes the
// assembled client (client.ts), the reconnect policy (reconnect.ts), delivery
// receipts and re-sends (delivery.ts), our XEP-0198 (stream-management.ts) and
// the server's "slow down" (throttle.ts); each rule lives in its own file.

import { EventEmitter } from 'node:events';
import xml from '@xmpp/xml';
import type { Element } from 'ltx';
import type { IqCaller } from './iq-caller.js';
import { systemClock, type Clock } from '../core/clock.js';
import type { Logger } from '../runtime/log.js';
import type { AuthError } from './sasl.js';
import type { SaltCache } from './scram.js';
import { tcpSocketOf } from './tls.js';
import { isCertificateError } from './tls-problem.js';
import { StreamManagement, type Receipt } from './stream-management.js';
import { assembleClient, closeStream, type CountingClient } from './client.js';
import { Delivery } from './delivery.js';
import { locationService, Reconnect } from './reconnect.js';
import { Endpoints } from './endpoints.js';
import { serverSlowDown, Throttle } from './throttle.js';
import { DEFAULT_STREAM_MANAGEMENT } from '../config/durability.js';
import type { SessionEvents, SessionOptions, SessionState, SessionStats } from './session-types.js';

/** How long stop() waits for the server to close the stream. */
const STOP_GRACE_MS = 1500;
/** From connecting to online (TLS, SASL, bind); past it the attempt is abandoned and retried. */
const LOGIN_TIMEOUT_MS = 45_000;
/** Stream errors by which a server says it is overloaded or limiting us. */
const BACK_OFF_CONDITIONS = ['resource-constraint', 'policy-violation', 'connection-timeout'];

export type { SessionEvents, SessionOptions, SessionState, SessionStats } from './session-types.js';

export class Session extends EventEmitter<SessionEvents> {
  readonly sm: StreamManagement;
  private current: SessionState = 'offline';
  private readonly counters: Omit<SessionStats, 'resent'> = { connects: 0, reconnects: 0, keyDerivations: 0, resumes: 0, slowDowns: 0, whitespaceKeepalives: 0 };
  private readonly entity: CountingClient;
  private readonly iqCaller: IqCaller;
  private readonly cache: SaltCache = new Map();
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly delivery: Delivery;
  private readonly retry: Reconnect;
  private readonly throttle: Throttle;
  /** From <resumed/> until online: replies to what the server held for us wait here instead of failing. */
  private resuming?: { promise: Promise<void>; resolve(): void; reject(err: Error): void };
  /** The next connect goes to the server's XEP-0198 location (once per lost stream). */
  private tryLocation = false;
  /** Where to connect next: the configured list or DNS SRV (endpoints.ts). */
  readonly endpoints: Endpoints;
  /** The service of the attempt under way, or of the connection we are on. */
  private service?: string;

  constructor(opts: SessionOptions) {
    super();
    this.log = opts.log;
    this.clock = opts.clock ?? systemClock;
    const domain = opts.jid.slice(opts.jid.indexOf('@') + 1);
    const sm = opts.streamManagement ?? DEFAULT_STREAM_MANAGEMENT;
    const services = opts.services && opts.services.length > 0 ? opts.services : opts.service ? [opts.service] : undefined;
    this.endpoints = new Endpoints({ services, domain, resolveSrv: opts.resolveSrv, random: opts.random, now: () => this.clock.now() });
    this.sm = new StreamManagement({ write: (el) => this.entity.send(el), drop: () => this.dropConnection(), log: this.log.child('sm'), now: () => this.clock.now(), mono: () => this.clock.mono(), ...sm });
    const client = assembleClient({
      ...opts,
      sm: this.sm,
      useSm: sm.enabled,
      cache: this.cache,
      onAuth: (r) => {
        if ('error' in r) return this.onAuthFailed(r.error);
        this.counters.mechanism = r.mechanism;
        if (r.derived) this.counters.keyDerivations++;
        this.log.debug('authenticated', { mechanism: r.mechanism, cachedKey: !r.derived });
      },
      onResumed: (jid) => this.becomeOnline(jid, true),
      trace: opts.traceXml ? this.log : undefined,
      clock: this.clock,
    });
    this.entity = client.entity;
    this.iqCaller = client.iqCaller;
    this.throttle = new Throttle(() => this.clock.mono());
    this.delivery = new Delivery({
      sm: this.sm,
      write: (el) => this.entity.send(el),
      ping: () => this.request(xml('iq', { type: 'get', to: domain }, xml('ping', { xmlns: 'urn:xmpp:ping' })), 30_000),
      log: this.log,
    });
    this.retry = new Reconnect({
      clock: this.clock,
      ...opts.reconnect,
      random: opts.random,
      connect: () => void this.connectOnce(),
      loginTimedOut: () => {
        if (this.current !== 'connecting') return;
        this.endpoints.failed();
        this.log.warn('login did not complete in time; retrying', { timeoutMs: LOGIN_TIMEOUT_MS });
        this.dropConnection();
        const status = this.entity.status;
        if (status === 'disconnect' || status === 'offline') this.retryUnlessDone();
      },
      loginTimeoutMs: LOGIN_TIMEOUT_MS,
    });
    this.retry.on('reconnecting', (e) => {
      this.log.info('reconnecting', { inMs: e.delay, attempt: e.attempt });
      this.emit('reconnecting', e);
    });

    // Stanzas that no earlier layer (IQ replies to our requests) consumed.
    client.middleware.use((ctx, next) => {
      const name = ctx.stanza.name;
      if (name !== 'iq' && name !== 'message' && name !== 'presence') return next();
      if (serverSlowDown(ctx.stanza)) this.slowDown();
      this.emit('stanza', ctx.stanza);
      return undefined;
    });
    this.sm.on('resumed', () => {
      let resolve!: () => void;
      let reject!: (err: Error) => void;
      const promise = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
      promise.catch(() => {});
      this.resuming = { promise, resolve, reject };
    });
    this.watchConnection();
  }

  get state(): SessionState {
    return this.current;
  }

  get stats(): Readonly<SessionStats> {
    return { ...this.counters, resent: this.delivery.resent, endpoint: this.online ? this.service : undefined };
  }

  get jid(): string | undefined {
    return this.entity.jid?.toString();
  }

  get online(): boolean {
    return this.current === 'online';
  }

  /** The current connection is TLS-protected. */
  get secure(): boolean {
    return this.entity.isSecure();
  }

  /** Until when the server asked us to hold back optional traffic (on the clock's monotonic scale; 0 = not asked). */
  get slowedUntil(): number {
    return this.throttle.until();
  }

  /** Begin connecting in the background; retries with backoff until stop(). Listen for 'online'. */
  start(): void {
    if (this.current !== 'offline') return;
    void this.connectOnce();
  }

  /**
   * Send a stanza. With a receipt, exactly one of onAck (the server has it:
   * XEP-0198 ack, or a ping round trip on servers without it) or onFail (the
   * stream was lost before that) is called later, even when this rejects.
   */
  send(stanza: Element, receipt?: Receipt): Promise<void> {
    // A command the server held for the resumed stream arrives before we are announced online again: answer it then.
    if (!this.online && this.resuming) {
      return this.resuming.promise.then(
        () => this.delivery.send(stanza, receipt, this.online),
        () => this.delivery.send(stanza, receipt, false), // fails its receipt too
      );
    }
    return this.delivery.send(stanza, receipt, this.online);
  }

  /** Send an IQ and wait for its result (rejects with the StanzaError on type=error). */
  request(iq: Element, timeoutMs = 15_000): Promise<Element> {
    return this.iqCaller.request(iq, timeoutMs);
  }

  /** The server answered with resource-constraint or wait: back off optional traffic, doubling up to 5 minutes. */
  slowDown(): void {
    const forMs = this.throttle.hit();
    this.counters.slowDowns++;
    this.log.warn('the server asked us to slow down', { forMs });
  }

  async stop(): Promise<void> {
    const wasConnected = this.entity.status !== 'offline' && this.entity.status !== 'disconnect';
    if (this.current === 'online') await this.sm.farewell();
    this.current = 'stopped';
    this.retry.stop();
    if (wasConnected) await closeStream(this.entity, this.clock, STOP_GRACE_MS, this.log);
    // A closed stream cannot be resumed: what it still held is reported lost (durable messages stay in the outbox).
    if (wasConnected) this.sm.lose();
  }

  /** Bytes this session's current TCP connection has written (TLS framing included). */
  bytesWritten(): number {
    return tcpSocketOf(this.entity)?.bytesWritten ?? 0;
  }

  /**
   * A whitespace keepalive (RFC 6120 §4.6.1): one space between stanzas, written raw. Not an element,
   * so stream management never counts it (only send() is counted) and the XML trace does not show it.
   */
  whitespace(): void {
    if (!this.online) return;
    this.counters.whitespaceKeepalives++;
    this.entity.write(' ').catch(() => {}); // a broken link shows as the socket's own error
  }

  /** Drop the connection as a network fault would (keepalive, tests, diagnostics). */
  dropConnection(): void {
    tcpSocketOf(this.entity)?.destroy();
  }

  private watchConnection(): void {
    const entity = this.entity;
    entity.on('error', (err: Error & { condition?: string; code?: string }) => {
      this.counters.lastError = err.condition ?? err.code ?? err.message;
      // A certificate that fails says in one line what is wrong (the clock, the dates, the name): tls-problem.ts.
      if (isCertificateError(err)) this.log.error(err.message, { host: err.host, validFrom: err.validFrom, validTo: err.validTo, clock: err.clock, code: err.code });
      else this.log.warn('connection error', { error: err });
      // A server that is overloaded or limiting us says so with a stream error: come back later, not at once.
      if (err.condition && BACK_OFF_CONDITIONS.includes(err.condition)) {
        this.retry.backOff();
        this.counters.slowDowns++;
      }
    });
    entity.on('status', (status: string) => this.log.debug('status', { status }));
    entity.on('online', (jid: { toString(): string }) => this.becomeOnline(jid.toString(), false));
    entity.on('disconnect', (info?: { clean?: boolean }) => {
      this.retry.offline();
      this.resuming?.reject(new Error('not connected'));
      this.resuming = undefined;
      this.sm.disconnected();
      const wasOnline = this.current === 'online';
      if (wasOnline) this.tryLocation = this.sm.location !== undefined;
      // Lost while online: the next endpoint (or back to the preferred one); never reached online: the next.
      if (wasOnline) this.endpoints.lost();
      else this.endpoints.failed();
      this.delivery.offline();
      if (this.current !== 'stopped' && this.current !== 'failed') this.current = 'offline';
      if (wasOnline) {
        this.counters.onlineSince = undefined;
        this.log.warn('disconnected', { clean: info?.clean ?? false });
        this.emit('offline');
      }
      this.retryUnlessDone();
    });
  }

  private becomeOnline(jid: string, resumed: boolean): void {
    if (this.current === 'stopped' || this.current === 'failed') {
      void this.entity.stop().catch(() => {});
      return;
    }
    this.retry.online();
    this.endpoints.online();
    this.counters.connects++;
    if (this.counters.connects > 1) this.counters.reconnects++;
    if (resumed) this.counters.resumes++;
    this.counters.onlineSince = this.clock.now();
    this.current = 'online';
    const { position, of } = this.endpoints.rank;
    this.log.info(resumed ? 'online (stream resumed)' : 'online', { jid, endpoint: this.service, preference: `${position} of ${of}`, secure: this.entity.isSecure(), mechanism: this.counters.mechanism, sm: this.sm.active });
    this.emit('online', jid, resumed);
    this.delivery.online(jid);
    this.resuming?.resolve();
    this.resuming = undefined;
  }

  private onAuthFailed(error: AuthError): void {
    this.counters.lastError = error.message;
    if (error.kind === 'protocol' || error.kind === 'tls-required') {
      // A server without TLS may be an attacker stripping STARTTLS on the path: never log in, but keep trying.
      if (error.kind === 'tls-required') this.log.error('refusing to log in without TLS; will retry', { error });
      else this.log.warn('login failed; will retry', { error });
      this.dropConnection(); // no polite close: a server that misbehaves may never answer it
      return;
    }
    this.current = 'failed';
    this.retry.stop();
    this.log.error('login failed', { error, reason: error.kind });
    void this.entity.disconnect().catch(() => {});
    this.emit('fatal', error);
  }

  private retryUnlessDone(): void {
    if (this.current !== 'stopped' && this.current !== 'failed') this.retry.schedule();
  }

  private async connectOnce(): Promise<void> {
    if (this.current === 'stopped' || this.current === 'failed') return;
    this.retry.attempting();
    this.current = 'connecting';
    const { domain, lang } = this.entity.options;
    // A resumable stream goes back where the server said it lives (XEP-0198 location); once, then the endpoint list.
    const endpoint = this.sm.location && this.tryLocation && this.sm.canResume() ? undefined : await this.endpoints.next().catch(() => undefined);
    const location = !endpoint && this.sm.location ? locationService(this.sm.location, this.service) : undefined;
    this.tryLocation = false;
    // stop() may have come while the SRV lookup was under way (TypeScript cannot see the await change it).
    if ((this.current as SessionState) === 'stopped' || (this.current as SessionState) === 'failed') return;
    const service = location ?? endpoint?.uri ?? this.entity.options.service!;
    this.service = service;
    if (this.endpoints.all.length > 1) this.log.debug('connecting', { endpoint: service, preference: `${this.endpoints.rank.position} of ${this.endpoints.rank.of}` });
    try {
      // domain: always set by the constructor (the typings make every option optional).
      await this.entity.connect(service);
      await this.entity.open({ domain: domain!, lang });
    } catch (err) {
      this.counters.lastError = (err as Error).message;
      this.log.warn('connection attempt failed', { error: err, endpoint: service, attempt: this.retry.attempts });
      if (!location) this.endpoints.failed();
      const status = this.entity.status;
      if (status === 'disconnect' || status === 'offline') this.retryUnlessDone();
      else void this.entity.disconnect().catch(() => this.retryUnlessDone());
    }
  }
}
