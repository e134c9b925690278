// XEP-0198 stream management, counted exactly. The stock xmpp.js middleware
// counts inbound stanzas only when no earlier layer consumed them (IQ results
// never reach it), announces online before <enable/>, and lets its queue grow
// without bound; here every stanza is counted where it crosses the wire
// (Session feeds us each element as parsed and each stanza before it is
// written), the session goes online only after <enabled/> or <resumed/>, and
// the unacknowledged queue is bounded.
//
// Over 300 lines on purpose: the counters, the queue and enable/resume/lose
// change together under one rule (the server's h settles everything); split
// apart, each half would have to trust the other's bookkeeping.

import { EventEmitter } from 'node:events';
import xml from '@xmpp/xml';
import type { Element } from 'ltx';
import type { Logger } from '../runtime/log.js';
import { withDelay } from './delay.js';

export const NS_SM = 'urn:xmpp:sm:3';

/** Called once per stanza: acknowledged by the server, or lost with the stream (a failed resume). */
export interface Receipt {
  onAck(): void;
  onFail(): void;
}

export interface Unacked {
  stanza: Element;
  /** Outbound sequence number in the current stream (1-based, as the server's h counts). */
  seq: number;
  /** When it was first sent (ms since epoch), for the XEP-0203 stamp of a re-send. */
  sentAt: number;
  receipt?: Receipt;
}

export interface SmOptions {
  /** Raw write of a nonza or stanza (the stanza path comes back through outbound()). */
  write(el: Element): Promise<void>;
  /** Tear the connection down (an unanswered ack request means a dead link). */
  drop(): void;
  log: Logger;
  /** Ask for an ack once this many stanzas are unacknowledged. */
  requestEvery: number;
  /** Ask for an ack this long after the last unacknowledged stanza went out, if none was asked yet. */
  requestDelayMs: number;
  /** No <a/> this long after <r/>: the link is dead. */
  ackTimeoutMs: number;
  /** Unacknowledged stanzas kept for a resume; past it the oldest without a receipt are forgotten. */
  maxQueue: number;
  /** Wall clock, for the stamps of stanzas sent again. */
  now?: () => number;
  /** Monotonic clock, for how long a lost stream stays resumable. */
  mono?: () => number;
}

export interface SmStats {
  enabled: number;
  resumed: number;
  resumeFailed: number;
  acksRequested: number;
  acksReceived: number;
  acksSent: number;
  inbound: number;
  outbound: number;
  queue: number;
  queueHigh: number;
  forgotten: number;
  ackTimeouts: number;
  /** The last h the server sent: how many of our stanzas it says it handled. */
  serverH: number;
  /** <a/> sent unasked, after the server's <a/> while stanzas were flowing (see inboundElement). */
  acksVolunteered: number;
}

/**
 * While stanzas arrived this recently, the server's <a/> is answered with ours. A server with
 * Nagle's algorithm on (Prosody as it ships) holds its next small write until we ACK its <a/>
 * at the TCP level, and with nothing of ours to carry that ACK the kernel delays it (40 ms on
 * Linux, up to 200 ms): our own <a/> carries it at once. 200 ms is the longest delayed ACK.
 */
export const BUSY_MS = 200;

export interface SmEvents {
  /** The server lost our stream: these stanzas (without a receipt, whose onFail was called instead) may never have arrived. */
  lost: [items: Unacked[]];
  /** The server took the stream back (<resumed/>): stanzas it held for us follow at once, before we are online again. */
  resumed: [];
}

type Waiter = { names: string[]; resolve(el: Element): void; reject(err: Error): void; timer: NodeJS.Timeout };

export class StreamManagement extends EventEmitter<SmEvents> {
  readonly stats: SmStats = {
    enabled: 0, resumed: 0, resumeFailed: 0, acksRequested: 0, acksReceived: 0, acksSent: 0,
    inbound: 0, outbound: 0, queue: 0, queueHigh: 0, forgotten: 0, ackTimeouts: 0, serverH: 0, acksVolunteered: 0,
  };
  /** Stream id the server gave for resumption; undefined when there is nothing to resume. */
  id?: string;
  /** Where the server wants a resume to go (host:port), if it said. */
  location?: string;
  /** The full JID of the stream, restored on resume. */
  jid?: string;
  private maxMs = 0;
  private lostAt?: number;
  /** When the last stanza arrived (ms, opts.now). */
  private stanzaAt = -Infinity;
  /** When anything (a stanza or a nonza) last arrived from the server. */
  private heardAt = -Infinity;
  /** Counting inbound stanzas (after <enabled/> or <resumed/>). */
  private countingIn = false;
  /** Counting outbound stanzas (from <enable/> or <resumed/>). */
  private countingOut = false;
  private inbound = 0;
  private sent = 0;
  private acked = 0;
  private queue: Unacked[] = [];
  private readonly receipts = new WeakMap<Element, Receipt>();
  private waiter?: Waiter;
  private requestTimer?: NodeJS.Timeout;
  private ackTimer?: NodeJS.Timeout;
  private readonly now: () => number;
  private readonly mono: () => number;

  constructor(private readonly opts: SmOptions) {
    super();
    this.now = opts.now ?? Date.now;
    this.mono = opts.mono ?? (() => performance.now());
  }

  get maxQueue(): number {
    return this.opts.maxQueue;
  }

  /** Stream management is active on the current stream. */
  get active(): boolean {
    return this.countingOut;
  }

  /** A lost stream could still be resumed (the server keeps it for `max` seconds). */
  canResume(): boolean {
    if (!this.id) return false;
    return this.lostAt === undefined || this.mono() - this.lostAt < this.maxMs;
  }

  /** Attach a receipt to a stanza about to be sent. */
  track(stanza: Element, receipt: Receipt): void {
    this.receipts.set(stanza, receipt);
  }

  /** Every element the parser produced, before anything else sees it. */
  inboundElement(el: Element): void {
    this.heardAt = this.now();
    if (el.name === 'iq' || el.name === 'message' || el.name === 'presence') {
      if (this.countingIn) {
        this.inbound = (this.inbound + 1) % 2 ** 32;
        this.stats.inbound++;
        this.stanzaAt = this.heardAt;
      }
      return;
    }
    if (el.getNS() !== NS_SM) return;
    if (this.waiter?.names.includes(el.name)) {
      const w = this.waiter;
      this.waiter = undefined;
      clearTimeout(w.timer);
      w.resolve(el);
      return;
    }
    if (el.name === 'r' && this.countingIn) {
      this.stats.acksSent++;
      this.sendAck();
    } else if (el.name === 'a') {
      this.stats.acksReceived++;
      this.stats.serverH = Number(el.attrs.h);
      clearTimeout(this.ackTimer);
      this.ackTimer = undefined;
      this.ackUpTo(Number(el.attrs.h));
      // Stanzas are flowing: our <a/> (XEP-0198 §4 lets either side send one unasked) carries the TCP ACK
      // that lets a Nagle-bound server send what it holds; on an idle link it would be bytes for nothing.
      if (this.countingIn && this.heardAt - this.stanzaAt < BUSY_MS) {
        this.stats.acksVolunteered++;
        this.sendAck();
      }
      this.scheduleRequest();
    }
  }

  /** Every stanza we are about to write. */
  outbound(stanza: Element): void {
    const receipt = this.receipts.get(stanza);
    if (!this.countingOut) return;
    this.sent = (this.sent + 1) % 2 ** 32;
    this.stats.outbound++;
    this.queue.push({ stanza, seq: this.sent, sentAt: this.now(), receipt });
    this.bound();
    this.stats.queue = this.queue.length;
    this.stats.queueHigh = Math.max(this.stats.queueHigh, this.queue.length);
    // Messages that carry a receipt are worth an immediate ack: it makes them durable-delivered and narrows the re-send window.
    if (receipt || this.queue.length >= this.opts.requestEvery) this.requestSoon();
    else this.scheduleRequest();
  }

  /** Ask the server for an ack now (keepalive, diagnostics, tests); ignored when one is already pending. */
  requestAck(timeoutMs = this.opts.ackTimeoutMs): void {
    if (this.ackTimer || !this.countingOut) return;
    clearTimeout(this.requestTimer);
    this.request(true, timeoutMs);
  }

  /** How many stanzas we sent in this stream (what an honest server's h ends up at). */
  get sentCount(): number {
    return this.sent;
  }

  /** How many stanzas we received in this stream (the h we report). */
  get handledCount(): number {
    return this.inbound;
  }

  /** After binding: ask to enable; true when the server agreed. */
  async enable(jid: string): Promise<boolean> {
    this.lose(); // whatever an expired stream still held is reported lost before a new one starts
    this.countingOut = true; // the server counts what we send from <enable/> on
    this.sent = 0;
    this.acked = 0;
    const reply = await this.exchange(xml('enable', { xmlns: NS_SM, resume: 'true' }), ['enabled', 'failed']);
    if (reply.name === 'failed') {
      this.countingOut = false;
      this.opts.log.warn('the server refused stream management; continuing without it', { condition: reply.getChildElements()[0]?.name });
      return false;
    }
    this.stats.enabled++;
    this.countingIn = true;
    this.inbound = 0;
    this.jid = jid;
    this.id = reply.attrs.resume === 'true' || reply.attrs.resume === '1' ? reply.attrs.id : undefined;
    this.location = reply.attrs.location || undefined;
    this.maxMs = Number(reply.attrs.max ?? 300) * 1000;
    this.lostAt = undefined;
    this.opts.log.debug('stream management enabled', { resumable: this.id !== undefined, maxS: this.maxMs / 1000 });
    return true;
  }

  /** Before binding, on a new connection: try to resume the lost stream. */
  async resume(): Promise<boolean> {
    const id = this.id;
    if (!id) return false;
    const reply = await this.exchange(xml('resume', { xmlns: NS_SM, previd: id, h: String(this.inbound) }), ['resumed', 'failed']);
    if (reply.name === 'failed') {
      this.stats.resumeFailed++;
      // Newer servers say how much of our stream they handled even when refusing: trust it over a re-send.
      if (reply.attrs.h !== undefined) this.ackUpTo(Number(reply.attrs.h));
      this.opts.log.info('stream not resumed; starting a new session', { condition: reply.getChildElements()[0]?.name });
      this.lose();
      return false;
    }
    this.stats.resumed++;
    this.emit('resumed');
    this.ackUpTo(Number(reply.attrs.h));
    const again = this.queue;
    this.queue = [];
    this.countingIn = true;
    this.countingOut = true;
    this.sent = this.acked;
    this.lostAt = undefined;
    this.opts.log.info('stream resumed', { resent: again.length });
    for (let i = 0; i < again.length; i++) {
      const item = again[i]!;
      if (item.receipt) this.receipts.set(item.stanza, item.receipt);
      try {
        await this.opts.write(stamped(item, this.jid));
      } catch (err) {
        // The link broke part-way (the one that failed is queued already, as it was counted on its way out):
        // the rest stay queued too, for the next resume or, if the stream is lost, their receipts' onFail.
        for (const rest of again.slice(i + 1)) this.requeue(rest);
        throw err;
      }
    }
    return true;
  }

  /** The connection is gone (the stream may still be resumable). */
  disconnected(): void {
    clearTimeout(this.requestTimer);
    clearTimeout(this.ackTimer);
    this.requestTimer = this.ackTimer = undefined;
    this.waiter?.reject(new Error('disconnected'));
    this.waiter = undefined;
    this.countingIn = this.countingOut = false;
    if (this.id) this.lostAt ??= this.mono();
    else this.lose();
  }

  /** The stream is over for good (resumption refused, expired, or we closed it). */
  lose(): void {
    const lost = this.queue;
    this.reset();
    for (const item of lost) item.receipt?.onFail();
    const rest = lost.filter((item) => !item.receipt);
    if (rest.length > 0) this.emit('lost', rest);
  }

  private sendAck(): void {
    this.opts.write(xml('a', { xmlns: NS_SM, h: String(this.inbound) })).catch(() => {});
  }

  /** Before a graceful close: tell the server what we handled. */
  async farewell(): Promise<void> {
    if (!this.countingIn) return;
    await this.opts.write(xml('a', { xmlns: NS_SM, h: String(this.inbound) })).catch(() => {});
  }

  private reset(): void {
    this.id = undefined;
    this.location = undefined;
    this.lostAt = undefined;
    this.queue = [];
    this.stats.queue = 0;
    this.countingIn = this.countingOut = false;
  }

  private exchange(el: Element, names: string[]): Promise<Element> {
    return new Promise<Element>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = undefined;
        reject(new Error(`no answer to <${el.name}/> from the server`));
      }, 10_000);
      this.waiter = { names, resolve, reject, timer };
      this.opts.write(el).catch((err: Error) => {
        clearTimeout(timer);
        this.waiter = undefined;
        reject(err);
      });
    });
  }

  private ackUpTo(h: number): void {
    if (!Number.isInteger(h) || h < 0) return;
    const newly = seqDelta(h, this.acked);
    const unacked = seqDelta(this.sent, this.acked);
    if (newly > unacked) {
      this.opts.log.error('the server acknowledged more stanzas than were sent; dropping the stream', { h, sent: this.sent });
      this.opts.drop();
      return;
    }
    const old = this.acked;
    this.acked = h;
    while (this.queue.length > 0) {
      const pos = seqDelta(this.queue[0]!.seq, old);
      if (pos === 0 || pos > newly) break;
      this.queue.shift()!.receipt?.onAck();
    }
    this.stats.queue = this.queue.length;
  }

  /** Back in the queue without being written: counted as sent, so that only the server's h can settle it. */
  private requeue(item: Unacked): void {
    this.sent = (this.sent + 1) % 2 ** 32;
    this.queue.push({ ...item, seq: this.sent });
    this.stats.queue = this.queue.length;
  }

  /** Keep the queue bounded: forget the oldest stanzas nobody waits on (presences, replies); never a receipted one. */
  private bound(): void {
    if (this.queue.length <= this.opts.maxQueue) return;
    const i = this.queue.findIndex((q) => !q.receipt);
    if (i < 0) return;
    this.queue.splice(i, 1);
    this.stats.forgotten++;
  }

  private requestSoon(): void {
    if (this.ackTimer) return; // one request in flight is enough
    clearTimeout(this.requestTimer);
    this.requestTimer = setTimeout(() => this.request(), 0);
  }

  private scheduleRequest(): void {
    if (this.ackTimer || this.requestTimer || this.queue.length === 0 || !this.countingOut) return;
    this.requestTimer = setTimeout(() => this.request(), this.opts.requestDelayMs);
    this.requestTimer.unref();
  }

  private request(force = false, timeoutMs = this.opts.ackTimeoutMs): void {
    this.requestTimer = undefined;
    if (!this.countingOut || this.ackTimer || (this.queue.length === 0 && !force)) return;
    this.stats.acksRequested++;
    this.ackTimer = setTimeout(() => {
      this.ackTimer = undefined;
      this.stats.ackTimeouts++;
      this.opts.log.warn('the server did not acknowledge; dropping the connection', { timeoutMs });
      this.opts.drop();
    }, timeoutMs);
    this.opts.write(xml('r', { xmlns: NS_SM })).catch(() => {});
  }
}

/** How far sequence number `to` is past `from`: XEP-0198 counters wrap at 2^32, so the difference is taken modulo 2^32. */
export function seqDelta(to: number, from: number): number {
  return (to - from + 2 ** 32) % 2 ** 32;
}

/** A message sent again carries when it was first meant to go (XEP-0203). */
export function stamped(item: Pick<Unacked, 'stanza' | 'sentAt'>, from?: string): Element {
  return withDelay(item.stanza, item.sentAt, from);
}
