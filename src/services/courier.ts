// The courier: delivers the durable outbox. Every message that must arrive
// (alarms, recoveries) is written to SQLite first, then sent with a receipt;
// its row is deleted only when the server has acknowledged it (XEP-0198, or a
// ping round trip on servers without it). A lost stream leaves the rows in
// place and the next session sends them again, oldest first, with the same
// id and an XEP-0203 stamp of when they were written.
//
// When the disk refuses the write (a full or read-only SD card), the message
// is kept in memory instead, sent all the same, and written to the outbox
// once the disk takes writes again (services/storage.ts retries it). A
// message written while the wall clock was clearly wrong (a Pi that booted in
// 1970) is stamped with the time it really had once the clock is set, or not
// stamped at all, never with 1970.

import xml from '@xmpp/xml';
import type { Element } from 'ltx';
import type { Logger } from '../runtime/log.js';
import type { Outbox, OutboxItem, OutboxKind } from '../store/outbox.js';
import type { Receipt } from '../xmpp/stream-management.js';
import type { Clock, TimerHandle } from '../core/clock.js';
import { withDelay } from '../xmpp/delay.js';
import type { Tried } from './reconcile.js';

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
  /** Messages the disk refused, kept in memory (sent from there, written once the disk takes them). */
  held: number;
}

/** What the courier asks of the clock watch (services/clock-watch.ts). */
export interface StampTrust {
  trusted(): boolean;
  /** Wall minus monotonic time now. */
  offset(): number;
  /** Stamps before this are clearly wrong (CLOCK_FLOOR). */
  readonly floor: number;
}

/** What the courier tells the storage guard (services/storage.ts). */
export interface StoreHealth {
  readonly ok: boolean;
  failed(err: unknown, what: string): void;
}

/** A message the disk refused. */
interface Held {
  key: string;
  to: string;
  body: string;
  kind: OutboxKind;
  createdAt: number;
  attempts: number;
}

/** At most this many messages wait in memory; past it the oldest informational ones go first, as in the outbox. */
const MAX_HELD = 1000;

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
  alreadyDelivered?: (tried: readonly Tried[]) => Promise<Set<string>>;
  /** Whether the clock can be believed, for the XEP-0203 stamps of messages written while it could not. */
  trust?: StampTrust;
  /** Told of every failed write; while it says the disk is not ok, new messages are held in memory. */
  health?: StoreHealth;
}) {
  const { session, log, clock } = deps;
  const box = (): Outbox => deps.store.outbox;
  const now = (): number => clock.now();
  const window = deps.window ?? 20;
  const stats: CourierStats = { sent: 0, delivered: 0, retried: 0, alreadyDelivered: 0, held: 0 };
  /** Ids sent in this process and not yet acknowledged or failed (outbox ids, or a held message's key). */
  const inFlight = new Set<number | string>();
  /** Messages the disk refused, oldest first. */
  const held: Held[] = [];
  /** Held messages raised while the clock was clearly wrong, with the clock's offset then. */
  const heldOffsets = new Map<string, number>();
  let heldSeq = 0;
  /**
   * Outbox ids this process sent and the server has not yet acknowledged. The archive lookup after a
   * fresh session asks about these even when the disk refused to count the attempt.
   */
  const sentHere = new Set<number>();
  /** Outbox ids of messages first tried from memory, with the memory id those attempts carried: looked up under both. */
  const triedAs = new Map<number, string>();
  /** Outbox ids whose first attempt add() counted already (they were to go at once): send() writes no attempt for them. */
  const countedAtAdd = new Set<number>();
  /** Delivered, but the disk refused to delete them: never sent again, deleted once it takes writes. */
  const undeleted = new Set<number>();
  /** Outbox ids written while the clock was clearly wrong, with the clock's offset then (for their real time). */
  const wrongClock = new Map<number, number>();
  const storeFailed = (err: unknown, what: string): void => {
    if (deps.health) deps.health.failed(err, what);
    else log.error(`could not write ${what} to the state store`, { error: err });
  };
  let running = false;
  /** Asking the server what it already has: nothing goes out meanwhile, so the order stays. */
  let holding = false;
  let timer: TimerHandle | undefined;

  /** When it was really written: its stamp, moved by the clock's jump since if the clock was wrong then; undefined if not known. */
  const stampOf = (id: number | undefined, createdAt: number, offsetThen?: number): number | undefined => {
    const trust = deps.trust;
    if (!trust || createdAt >= trust.floor) return createdAt;
    const then = offsetThen ?? (id !== undefined ? wrongClock.get(id) : undefined);
    if (then === undefined || !trust.trusted()) return undefined;
    return createdAt + (trust.offset() - then);
  };

  const stanzaOf = (item: Pick<OutboxItem, 'to' | 'body' | 'attempts' | 'createdAt'>, id: string, stamp: number | undefined): Element => {
    const m = xml(
      'message',
      { type: 'chat', to: item.to, id },
      xml('body', {}, item.body),
      // XEP-0359: the same id on every attempt lets a client recognise a copy; XEP-0334: keep it for an offline recipient.
      xml('origin-id', { xmlns: 'urn:xmpp:sid:0', id }),
      xml('store', { xmlns: 'urn:xmpp:hints' }),
    );
    // Stamped when it waited: written before this session came online, tried before, or simply late.
    // Not stamped when the time it was written is not known (the clock was wrong then and this process did not see it set).
    if (stamp === undefined) return m;
    const waited = item.attempts > 0 || stamp < (session.stats.onlineSince ?? Infinity) || now() - stamp > LATE_MS;
    return waited ? withDelay(m, stamp, session.jid) : m;
  };

  /** Whether pump() would send a message queued now (it may still wait behind older ones: then its count is early, which is safe). */
  const goesNow = (): boolean => running && !holding && session.online && (session.slowedUntil ?? 0) <= clock.mono() && inFlight.size < window;

  const pump = (): void => {
    clock.clearTimeout(timer);
    timer = undefined;
    if (!running || holding || !session.online) return;
    const hold = (session.slowedUntil ?? 0) - clock.mono();
    if (hold > 0) {
      timer = clock.setTimeout(pump, hold);
      return;
    }
    if (held.length > 0 && (deps.health?.ok ?? true)) persistHeld(false);
    let room = window - inFlight.size;
    if (room <= 0) return;
    let next: OutboxItem[] = [];
    try {
      next = box().pending(window + inFlight.size + undeleted.size).filter((i) => !inFlight.has(i.id) && !undeleted.has(i.id)).slice(0, room);
    } catch (err) {
      storeFailed(err, 'the outbox (reading it)');
    }
    for (const item of next) send(item);
    room -= next.length;
    for (const h of held) {
      if (room <= 0) break;
      if (inFlight.has(h.key)) continue;
      sendHeld(h);
      room--;
    }
  };

  /**
   * Writes the held messages (not in flight) to the outbox, oldest first, and deletes what was delivered
   * while the disk refused it. Throws if the disk still refuses (rethrow: the storage guard retries).
   */
  const persistHeld = (rethrow: boolean): void => {
    try {
      for (const id of [...undeleted]) {
        box().delivered(id);
        undeleted.delete(id);
      }
      while (held.length > 0) {
        const h = held.find((x) => !inFlight.has(x.key));
        if (!h) break;
        const item = box().add({ to: h.to, body: h.body, kind: h.kind, createdAt: h.createdAt });
        held.splice(held.indexOf(h), 1);
        // From here on it goes by its outbox id (the earlier attempts, under the memory id, were never acknowledged).
        log.info('a message kept in memory is on disk now', { memoryId: `${heldIdPrefix()}${h.key}`, id: box().messageId(item) });
        // Tried from memory already: the server may hold it under that id, so ask for both after a fresh session.
        if (h.attempts > 0) triedAs.set(item.id, `${heldIdPrefix()}${h.key}`);
        if (h.createdAt < (deps.trust?.floor ?? -Infinity)) wrongClock.set(item.id, heldOffsets.get(h.key) ?? 0);
        heldOffsets.delete(h.key);
      }
      stats.held = held.length;
    } catch (err) {
      if (rethrow) throw err;
    }
  };
  /** A receipt settled once: acked (then delivered() and on to the next) or failed (it stays, for the next session). */
  const receiptFor = (key: number | string, delivered: () => void): Receipt => {
    let settled = false;
    const settle = (): boolean => {
      if (settled) return false;
      settled = true;
      inFlight.delete(key);
      return true;
    };
    return {
      onAck: () => {
        if (!settle()) return;
        delivered();
        stats.delivered++;
        pump();
      },
      onFail: () => {
        if (settle()) stats.retried++;
      },
    };
  };

  const sendHeld = (h: Held): void => {
    const id = `${heldIdPrefix()}${h.key}`;
    const stanza = stanzaOf(h, id, stampOf(undefined, h.createdAt, heldOffsets.get(h.key)));
    inFlight.add(h.key);
    h.attempts++;
    stats.sent++;
    const receipt = receiptFor(h.key, () => {
      const i = held.indexOf(h);
      if (i >= 0) held.splice(i, 1);
      heldOffsets.delete(h.key);
      stats.held = held.length;
      log.debug('delivered from memory', { key: h.key, kind: h.kind });
    });
    session.send(stanza, receipt).catch((err: unknown) => log.debug('not sent now; kept in memory for the next session', { key: h.key, error: err }));
  };

  /** Held messages' ids: the store's token (kept in memory) and the moment this process started, so they never collide with outbox ids. */
  let prefix: string | undefined;
  const heldIdPrefix = (): string => {
    if (prefix) return prefix;
    let token = 'nostore';
    try {
      token = box().token;
    } catch {
      // the store is not open: the prefix still differs from every outbox id
    }
    prefix = `xia-${token}-m${Math.floor(now()).toString(36)}-`;
    return prefix;
  };

  const send = (item: OutboxItem): void => {
    // Counted when it was written: on disk it says tried, but this is its first attempt (for the stamp).
    const counted = countedAtAdd.delete(item.id);
    const stanza = stanzaOf(counted ? { ...item, attempts: item.attempts - 1 } : item, box().messageId(item), stampOf(item.id, item.createdAt));
    inFlight.add(item.id);
    sentHere.add(item.id);
    try {
      if (!counted) box().attempted(item.id);
    } catch (err) {
      // Only the count of attempts is lost (it decides the XEP-0203 stamp and the archive lookup): send it anyway.
      storeFailed(err, 'the outbox (an attempt)');
    }
    stats.sent++;
    const receipt = receiptFor(item.id, () => {
      sentHere.delete(item.id);
      triedAs.delete(item.id);
      try {
        box().delivered(item.id);
      } catch (err) {
        // Delivered all the same: it must never go again, so remember it until the disk takes the delete.
        undeleted.add(item.id);
        storeFailed(err, 'the outbox (a delivery)');
      }
      wrongClock.delete(item.id);
      log.debug('delivered', { id: item.id, kind: item.kind });
    });
    // The session settles the receipt whatever happens, a failed write included: failing it here too
    // would send the alarm again while stream management still holds it for a resume.
    session.send(stanza, receipt).catch((err: unknown) => log.debug('not sent now; kept for the next session', { id: item.id, error: err }));
  };

  /**
   * After a restart or a fresh session: ask which of the messages already tried the server has, and
   * settle those without sending them again. Tried means an earlier process counted an attempt on
   * disk, this process sent it (the disk may have refused to count it), or it waits in memory.
   */
  const reconcile = async (lookup: (tried: readonly Tried[]) => Promise<Set<string>>): Promise<void> => {
    let pending: OutboxItem[] = [];
    try {
      pending = box().pending(MAX_RECONCILED).filter((i) => !undeleted.has(i.id) && (i.attempts > 0 || sentHere.has(i.id) || triedAs.has(i.id)));
    } catch (err) {
      storeFailed(err, 'the outbox (reading it)');
    }
    const outboxIds = new Map(pending.flatMap((i) => [[box().messageId(i), i.id] as const, ...(triedAs.has(i.id) ? [[triedAs.get(i.id)!, i.id] as const] : [])]));
    const heldIds = new Map(held.filter((h) => h.attempts > 0).map((h) => [`${heldIdPrefix()}${h.key}`, h]));
    const createdAt = new Map(pending.map((i) => [i.id, i.createdAt]));
    const tried: Tried[] = [
      ...[...outboxIds].map(([messageId, id]) => ({ messageId, createdAt: createdAt.get(id)! })),
      ...[...heldIds].map(([messageId, h]) => ({ messageId, createdAt: h.createdAt })),
    ];
    // Asked even with nothing tried: the answer says which guarantee the server gives.
    const found = await lookup(tried);
    for (const messageId of found) {
      const id = outboxIds.get(messageId);
      if (id !== undefined) {
        if (!createdAt.delete(id)) continue; // found under both of its ids: settled once
        sentHere.delete(id);
        triedAs.delete(id);
        try {
          box().delivered(id);
        } catch (err) {
          undeleted.add(id);
          storeFailed(err, 'the outbox (a delivery)');
        }
        stats.alreadyDelivered++;
        continue;
      }
      const h = heldIds.get(messageId);
      if (h && held.includes(h)) {
        held.splice(held.indexOf(h), 1);
        heldOffsets.delete(h.key);
        stats.held = held.length;
        stats.alreadyDelivered++;
      }
    }
  };

  return {
    name: 'outbox courier',
    stats,
    /** Queue a message durably (on disk when this returns) and send it as soon as the session allows; returns its message id. */
    enqueue(to: string, body: string, kind: OutboxKind): string | undefined {
      const createdAt = now();
      const wrong = deps.trust && createdAt < deps.trust.floor ? deps.trust.offset() : undefined;
      let id: string;
      // While the disk refuses writes, newer messages wait behind the held ones (in memory), keeping the order.
      if (held.length === 0 || (deps.health?.ok ?? true)) {
        try {
          // Going out at once (the usual case): its attempt is counted in the same commit as the write,
          // one fsync instead of two. On disk the count is never below the attempts really made.
          const tried = goesNow();
          const item = box().add({ to, body, kind, tried });
          if (tried) countedAtAdd.add(item.id);
          if (wrong !== undefined) wrongClock.set(item.id, wrong);
          id = box().messageId(item);
          pump();
          return id;
        } catch (err) {
          // The store failed (disk full, read-only card): keep it in memory, send it anyway, write it later.
          storeFailed(err, kind === 'alarm' ? 'an alarm' : 'a message');
        }
      }
      const key = (heldSeq++).toString(36);
      held.push({ key, to, body, kind, createdAt, attempts: 0 });
      if (wrong !== undefined) heldOffsets.set(key, wrong);
      if (held.length > MAX_HELD) {
        const victim = held.find((h) => h.kind === 'info' && !inFlight.has(h.key)) ?? held.find((h) => !inFlight.has(h.key));
        if (victim) held.splice(held.indexOf(victim), 1);
      }
      stats.held = held.length;
      const memoryId = `${heldIdPrefix()}${key}`;
      log.warn('kept in memory: the disk refused it; sent all the same, written to disk once it takes writes again', { kind, held: held.length, id: memoryId });
      pump();
      return memoryId;
    },
    /** Write what the disk refused (for the storage guard's retry): throws while it still refuses. */
    persist(): void {
      persistHeld(true);
    },
    /** Messages waiting in memory because the disk refused them. */
    heldCount: (): number => held.length,
    start(): void {
      running = true;
      const online = (resumed: boolean): void => {
        // A resumed stream settles its own stanzas (XEP-0198); a new one may follow a crash or a lost stream.
        if (resumed || !deps.alreadyDelivered) return pump();
        holding = true;
        Promise.resolve()
          .then(() => reconcile(deps.alreadyDelivered!))
          .catch((err: unknown) => log.warn('could not reconcile the outbox with the server', { error: err }))
          .finally(() => {
            holding = false;
            pump();
          });
      };
      session.on('online', (_jid, resumed) => online(resumed));
      // The session connects while the rest of the agent starts: it may already be online (a new session, never resumed before we listened).
      if (session.online) online(false);
      else pump();
    },
    stop(): void {
      running = false;
      clock.clearTimeout(timer);
    },
  };
}

export type Courier = ReturnType<typeof courier>;
