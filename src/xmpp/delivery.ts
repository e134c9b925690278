// Delivery receipts: the one path by which a stanza sent with a receipt is
// settled. Exactly one of its onAck (the server has it) or onFail (it may not)
// is called, once, by this module or by stream management, never by the
// caller: a failed write must not fail a stanza that stream management still
// holds and will re-send on resume (that would make the caller send it again
// too, two copies of one alarm on the wire).
//
// - XEP-0198 on: stream management tracks the stanza; its ack or the loss of
//   the stream settles it.
// - Without XEP-0198: a ping round trip after it stands in for the ack.
// - Messages without a receipt that a lost stream took with it are sent again
//   once the next session is online, stamped with when they were meant.

import type { Element } from 'ltx';
import type { Logger } from '../runtime/log.js';
import { PingBarrier } from './barrier.js';
import { stamped, type Receipt, type StreamManagement, type Unacked } from './stream-management.js';

export interface DeliveryOptions {
  sm: StreamManagement;
  /** Write one stanza to the socket (through stream management's counting). */
  write(stanza: Element): Promise<void>;
  /** A ping round trip to the server, for servers without XEP-0198. */
  ping(): Promise<unknown>;
  log: Logger;
}

export class Delivery {
  /** Messages sent again with a delay stamp after the server lost a stream. */
  resent = 0;
  private again: Unacked[] = [];
  private readonly barrier: PingBarrier;

  constructor(private readonly o: DeliveryOptions) {
    this.barrier = new PingBarrier(o.ping);
    o.sm.on('lost', (items) => this.lost(items));
  }

  /**
   * Write a stanza. With a receipt, exactly one of its callbacks is called
   * later, even when this rejects: the caller only logs a rejection.
   */
  async send(stanza: Element, receipt?: Receipt, online = true): Promise<void> {
    if (!online) {
      if (receipt) queueMicrotask(() => receipt.onFail());
      throw new Error('not connected');
    }
    if (receipt && this.o.sm.active) {
      // From here on stream management owns the receipt: it queues the stanza as it is written,
      // and whether the write succeeds or not, its ack, a resume or the loss of the stream settles it.
      this.o.sm.track(stanza, receipt);
      return this.o.write(stanza);
    }
    try {
      await this.o.write(stanza);
    } catch (err) {
      receipt?.onFail();
      throw err;
    }
    if (receipt) this.barrier.add(receipt);
  }

  /** Online again: what the last stream lost goes out, stamped. */
  online(jid: string): void {
    const items = this.again;
    this.again = [];
    for (const item of items) {
      this.resent++;
      this.send(stamped(item, jid)).catch((err: unknown) => this.o.log.warn('could not re-send a message', { error: err }));
    }
  }

  /** The connection is gone: receipts waiting on a ping cannot be confirmed any more. */
  offline(): void {
    this.barrier.failAll();
  }

  private lost(items: Unacked[]): void {
    for (const item of items) if (item.stanza.name === 'message') this.again.push(item);
    // As bounded as the queue it came from.
    if (this.again.length > this.o.sm.maxQueue) this.again.splice(0, this.again.length - this.o.sm.maxQueue);
  }
}
