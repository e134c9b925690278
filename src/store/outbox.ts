// Messages waiting for their recipient to be reachable. An item is on disk
// (fsynced) before add() returns, so an alarm raised just before a power cut
// is still sent after the reboot, with the same message id, so a recipient
// that saw the first attempt can recognise the resend.

import type Database from 'better-sqlite3';

export type OutboxKind = 'alarm' | 'info';

export interface OutboxItem {
  id: number;
  to: string;
  body: string;
  kind: OutboxKind;
  /** ms since the epoch, when add() was called. */
  createdAt: number;
  attempts: number;
}

export interface OutboxStats {
  queued: number;
  /** Items pushed out by the size bound, over the life of the file. */
  dropped: number;
  /** Items delivered since this process opened the store. */
  delivered: number;
  alarmsQueued: number;
}

interface Row {
  id: number;
  recipient: string;
  body: string;
  kind: OutboxKind;
  created: number;
  attempts: number;
}

export class Outbox {
  readonly token: string;
  private readonly max: number;
  private readonly now: () => number;
  private dropped: number;
  private deliveredCount = 0;
  private readonly stmt;
  private readonly addTx;

  /** Built by openStore(), on a migrated database. */
  constructor(db: Database.Database, opts: { max: number; now: () => number }) {
    this.max = opts.max;
    this.now = opts.now;
    const meta = db.prepare<[string], { value: unknown }>('SELECT value FROM meta WHERE key = ?');
    this.token = String(meta.get('token')?.value);
    this.dropped = Number(meta.get('dropped')?.value ?? 0);
    this.stmt = {
      insert: db.prepare<[string, string, OutboxKind, number, number], void>(
        'INSERT INTO outbox (recipient, body, kind, created, attempts) VALUES (?, ?, ?, ?, ?)',
      ),
      count: db.prepare<[], { n: number; alarms: number }>(
        "SELECT count(*) AS n, coalesce(sum(kind = 'alarm'), 0) AS alarms FROM outbox",
      ),
      dropOldest: db.prepare<[OutboxKind, number], void>(
        'DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE kind = ? ORDER BY id LIMIT ?)',
      ),
      addDropped: db.prepare<[number], void>("UPDATE meta SET value = value + ? WHERE key = 'dropped'"),
      pending: db.prepare<[number], Row>(
        'SELECT id, recipient, body, kind, created, attempts FROM outbox ORDER BY id LIMIT ?',
      ),
      attempted: db.prepare<[number], void>('UPDATE outbox SET attempts = attempts + 1 WHERE id = ?'),
      delivered: db.prepare<[number], void>('DELETE FROM outbox WHERE id = ?'),
    };
    // Insert, trim and count the losses in one transaction: a crash between
    // them must not leave the queue over its bound or the counter wrong.
    this.addTx = db.transaction((to: string, body: string, kind: OutboxKind, createdAt: number, attempts: number) => {
      const id = Number(this.stmt.insert.run(to, body, kind, createdAt, attempts).lastInsertRowid);
      let excess = (this.stmt.count.get()?.n ?? 0) - this.max;
      let dropped = 0;
      // Infos go first: an alarm is worth more than any number of status lines.
      for (const victim of ['info', 'alarm'] as const) {
        if (excess <= 0) break;
        const n = this.stmt.dropOldest.run(victim, excess).changes;
        excess -= n;
        dropped += n;
      }
      if (dropped > 0) this.stmt.addDropped.run(dropped);
      return { id, dropped };
    });
  }

  /**
   * Queues a message; it is durable when this returns. Note that when the
   * queue is full of alarms, a new info is itself the oldest info and is
   * dropped at once (stats().dropped says so).
   *
   * tried: count its first attempt in the same commit (the caller sends it right away), which
   * saves the commit and fsync attempted() would cost. Counting an attempt that then never
   * happens is safe: it only makes the next process ask the server's archive before sending.
   */
  add(item: { to: string; body: string; kind: OutboxKind; createdAt?: number; tried?: boolean }): OutboxItem {
    // createdAt: a message kept in memory while the disk refused it keeps the time it was raised.
    const createdAt = item.createdAt ?? this.now();
    const attempts = item.tried ? 1 : 0;
    // IMMEDIATE: take the write lock before reading the count (we hold it anyway in EXCLUSIVE mode).
    const { id, dropped } = this.addTx.immediate(item.to, item.body, item.kind, createdAt, attempts);
    this.dropped += dropped;
    return { id, to: item.to, body: item.body, kind: item.kind, createdAt, attempts };
  }

  /** Oldest first, the order they were added. */
  pending(limit = 100): OutboxItem[] {
    return this.stmt.pending.all(limit).map((r) => ({
      id: r.id,
      to: r.recipient,
      body: r.body,
      kind: r.kind,
      createdAt: r.created,
      attempts: r.attempts,
    }));
  }

  attempted(id: number): void {
    this.stmt.attempted.run(id);
  }

  delivered(id: number): void {
    if (this.stmt.delivered.run(id).changes > 0) this.deliveredCount++;
  }

  stats(): OutboxStats {
    const c = this.stmt.count.get();
    return { queued: c?.n ?? 0, dropped: this.dropped, delivered: this.deliveredCount, alarmsQueued: c?.alarms ?? 0 };
  }

  /** Stable for an item across retries and restarts (ids are AUTOINCREMENT, never reused), unique across files by the token. */
  messageId(item: Pick<OutboxItem, 'id'>): string {
    return `xia-${this.token}-${item.id}`;
  }
}
