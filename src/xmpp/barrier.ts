// Delivery receipts for a server without XEP-0198: a server handles one
// client's stanzas in order, so an answered ping proves it processed every
// stanza sent before it. One ping covers everything sent in the same tick.

import type { Receipt } from './stream-management.js';

export class PingBarrier {
  private waiting: Receipt[] = [];
  private timer?: NodeJS.Timeout;

  constructor(private readonly ping: () => Promise<unknown>) {}

  add(receipt: Receipt): void {
    this.waiting.push(receipt);
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      const batch = this.waiting;
      this.waiting = [];
      this.ping().then(
        () => batch.forEach((r) => r.onAck()),
        (err: Error) => {
          // An error reply still came back through the same stream, after our stanzas.
          if (err.name === 'StanzaError') batch.forEach((r) => r.onAck());
          else batch.forEach((r) => r.onFail());
        },
      );
    }, 0);
  }

  /** The connection is gone: nothing waiting can be confirmed any more. */
  failAll(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.waiting;
    this.waiting = [];
    batch.forEach((r) => r.onFail());
  }
}
