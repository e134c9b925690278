// The courier: delivers the durable outbox. Every message that must arrive
// (alarms, recoveries) is written to SQLite first, then sent with a receipt;
// its row is deleted only when the server has acknowledged it (XEP-0198, or a
// ping round trip on servers without it). A lost stream leaves the rows in
// place and the next session sends them again, oldest first, with the same
// id and an XEP-0203 stamp of when they were written.

import xml from '@xmpp/xml';
import type { Element } from 'ltx';
import type { Logger } from '../runtime/log.js';
import type { Outbox, OutboxItem, OutboxKind } from '../store/outbox.js';
import type { Receipt } from '../xmpp/stream-management.js';
import type { Clock, TimerHandle } from '../core/clock.js';
import { withDelay } from '../xmpp/delay.js';

/** Pending items looked up in the server's archive after a restart, oldest first; the rest go again as they are. */
const MAX_RECONCILED = 1000;
/** Sent later than this after it was written, a message carries its original time. */
const LATE_MS = 5_000;

export interface CourierSession {
  readonly online: boolean;
  readonly jid?: string;
  readonly slowedUntil?: number;
  readonly stats: { readonly onlineSince?: number };
  send(stanza: Element, receipt?: Receipt): Promise<void>;
  on(event: 'online', fn: (jid: string, resumed: boolean) => void): unknown;
}

export interface CourierStats {
  sent: number;
  delivered: number;
  /** Sends that the lost stream took with it (the item stays queued and goes again). */
  retried: number;
  /** Items the server's archive already held after a restart: marked delivered, not sent again. */
  alreadyDelivered: number;
}

export function courier(deps: {
  /** Where the outbox lives; read when needed, so the courier can be built before the store is opened. */
  store: { readonly outbox: Outbox };
  session: CourierSession;
  clock: Clock;
  log: Logger;
  window?: number;
  /**
   * After a restart or a fresh session: which of the pending items the server already has
   * (reconcile.ts, via its message archive). Nothing is sent until it answers.
   */
  alreadyDelivered?: (pending: readonly OutboxItem[]) => Promise<Set<number>>;
}) {
  const { session, log, clock } = deps;
  const box = (): Outbox => deps.store.outbox;
  const now = (): number => clock.now();
  const window = deps.window ?? 20;
  const stats: CourierStats = { sent: 0, delivered: 0, retried: 0, alreadyDelivered: 0 };
  /** Ids sent in this process and not yet acknowledged or failed. */
  const inFlight = new Set<number>();
  let running = false;
  /** Asking the server what it already has: nothing goes out meanwhile, so the order stays. */
  let holding = false;
  let timer: TimerHandle | undefined;

  const stanzaOf = (item: OutboxItem): Element => {
    const id = box().messageId(item);
    const m = xml(
      'message',
      { type: 'chat', to: item.to, id },
      xml('body', {}, item.body),
      // XEP-0359: the same id on every attempt lets a client recognise a copy; XEP-0334: keep it for an offline recipient.
      xml('origin-id', { xmlns: 'urn:xmpp:sid:0', id }),
      xml('store', { xmlns: 'urn:xmpp:hints' }),
    );
    // Stamped when it waited: written before this session came online, tried before, or simply late.
    const waited = item.attempts > 0 || item.createdAt < (session.stats.onlineSince ?? Infinity) || now() - item.createdAt > LATE_MS;
    return waited ? withDelay(m, item.createdAt, session.jid) : m;
  };

  const pump = (): void => {
    clock.clearTimeout(timer);
    timer = undefined;
    if (!running || holding || !session.online) return;
    const hold = (session.slowedUntil ?? 0) - clock.mono();
    if (hold > 0) {
      timer = clock.setTimeout(pump, hold);
      return;
    }
    const room = window - inFlight.size;
    if (room <= 0) return;
    const next = box().pending(window + inFlight.size).filter((i) => !inFlight.has(i.id)).slice(0, room);
    for (const item of next) send(item);
  };

  const send = (item: OutboxItem): void => {
    const stanza = stanzaOf(item);
    inFlight.add(item.id);
    box().attempted(item.id);
    stats.sent++;
    let settled = false;
    const receipt: Receipt = {
      onAck: () => {
        if (settled) return;
        settled = true;
        inFlight.delete(item.id);
        box().delivered(item.id);
        stats.delivered++;
        log.debug('delivered', { id: item.id, kind: item.kind });
        pump();
      },
      onFail: () => {
        if (settled) return;
        settled = true;
        inFlight.delete(item.id);
        stats.retried++;
      },
    };
    // The session settles the receipt whatever happens, a failed write included: failing it here too
    // would send the alarm again while stream management still holds it for a resume.
    session.send(stanza, receipt).catch((err: unknown) => log.debug('not sent now; kept for the next session', { id: item.id, error: err }));
  };

  return {
    name: 'outbox courier',
    stats,
    /** Queue a message durably (on disk when this returns) and send it as soon as the session allows; returns its message id. */
    enqueue(to: string, body: string, kind: OutboxKind): string | undefined {
      let id: string;
      try {
        id = box().messageId(box().add({ to, body, kind }));
      } catch (err) {
        // The store failed (disk full, card gone): say so loudly, and still try to send it once.
        log.error('could not store a message; sending it without durability', { error: err, kind });
        if (session.online) session.send(xml('message', { type: 'chat', to }, xml('body', {}, body))).catch(() => {});
        return undefined;
      }
      pump();
      return id;
    },
    start(): void {
      running = true;
      session.on('online', (_jid, resumed) => {
        // A resumed stream settles its own stanzas (XEP-0198); a new one may follow a crash or a lost stream.
        if (resumed || !deps.alreadyDelivered) return pump();
        holding = true;
        deps
          .alreadyDelivered(box().pending(MAX_RECONCILED))
          .then((ids) => {
            for (const id of ids) box().delivered(id);
            stats.alreadyDelivered += ids.size;
          })
          .catch((err: unknown) => log.warn('could not reconcile the outbox with the server', { error: err }))
          .finally(() => {
            holding = false;
            pump();
          });
      });
      pump();
    },
    stop(): void {
      running = false;
      clock.clearTimeout(timer);
    },
  };
}

export type Courier = ReturnType<typeof courier>;
