// Recent readings per device, kept for a week. SD cards wear out by the
// number of writes, and a sensor polled every few seconds would otherwise
// cost a commit (and an fsync) each time, so readings wait in memory and go
// to disk in one transaction per batch. What a crash costs is at most the
// unflushed batch (30 s of readings by default), never the outbox.

import type Database from 'better-sqlite3';
import type { Value } from '../core/devices.js';
import { pruneCutoff, type PruneMark } from './retention.js';

export interface Reading {
  t: number;
  value: Value;
}

export interface HistoryStats {
  /** Rows on disk: counted at open, then kept up to date by flush and prune. */
  rows: number;
  buffered: number;
  flushes: number;
  pruned: number;
}

type Kind = 'n' | 'b' | 's';

interface Row {
  device: string;
  t: number;
  kind: Kind;
  num: number | null;
  txt: string | null;
}

const PRUNE_EVERY_MS = 60 * 60 * 1000;
// Flushes that keep failing (disk full, I/O errors) must not let the buffer eat the Pi's memory.
const BUFFER_HARD_LIMIT_FACTOR = 20;

export class History {
  private buffer: Row[] = [];
  /** Records since the last flush attempt: a failing disk is retried once per batch, not on every reading. */
  private sinceAttempt = 0;
  private rows: number;
  private flushes = 0;
  private pruned = 0;
  /** When the last prune ran, on the monotonic clock. */
  private lastPrune: number;
  /** Where the last prune cut (retention.ts): the pace a jump of the wall clock cannot hurry. */
  private mark: PruneMark | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly stmt;
  private readonly writeBatch;

  /** Built by openStore(), on a migrated database. */
  constructor(
    db: Database.Database,
    private readonly opts: {
      retentionMs: number;
      flushMs: number;
      maxBuffered: number;
      now: () => number;
      /** Monotonic clock: how often to prune, and how fast the cutoff may move. */
      mono: () => number;
      /** The wall clock can be believed (not before the agent's build); nothing is pruned while it cannot. */
      trusted: () => boolean;
      onError: (err: Error) => void;
    },
  ) {
    this.stmt = {
      insert: db.prepare<[string, number, number | null, string | null, Kind], void>(
        'INSERT INTO readings (device, t, num, txt, kind) VALUES (?, ?, ?, ?, ?)',
      ),
      range: db.prepare<[string, number, number], Row>(
        'SELECT device, t, kind, num, txt FROM readings WHERE device = ? AND t BETWEEN ? AND ? ORDER BY t, rowid',
      ),
      // Pruning walks the (device, t) index one device at a time: a seek to the
      // next device name, then a range delete. No second index on t (every insert
      // would update it, on an SD card), and no scan of every row each hour.
      nextDevice: db.prepare<[string], { device: string | null }>('SELECT min(device) AS device FROM readings WHERE device > ?'),
      prune: db.prepare<[string, number], void>('DELETE FROM readings WHERE device = ? AND t < ?'),
      count: db.prepare<[], { n: number }>('SELECT count(*) AS n FROM readings'),
    };
    this.writeBatch = db.transaction((rows: Row[]) => {
      for (const r of rows) this.stmt.insert.run(r.device, r.t, r.num, r.txt, r.kind);
    });
    this.rows = this.stmt.count.get()?.n ?? 0;
    this.lastPrune = opts.mono();
  }

  /** Buffers a reading; written at the next flush. Never throws for a failing disk (see onError). */
  record(device: string, t: number, value: Value): void {
    this.buffer.push(toRow(device, t, value));
    if (++this.sinceAttempt >= this.opts.maxBuffered) this.background(() => this.flush());
    const limit = this.opts.maxBuffered * BUFFER_HARD_LIMIT_FACTOR;
    if (this.buffer.length > limit) this.buffer.splice(0, this.buffer.length - limit);
  }

  /** Writes the buffered readings in one transaction; returns how many. Throws if the write fails (the rows stay buffered). */
  flush(): number {
    this.sinceAttempt = 0;
    if (this.buffer.length === 0) return 0;
    const batch = this.buffer;
    this.writeBatch.immediate(batch);
    // Only after the commit: a failed write keeps its rows for the next try.
    this.buffer = [];
    this.rows += batch.length;
    this.flushes++;
    return batch.length;
  }

  /** Readings of one device with fromMs <= t <= toMs, oldest first, flushed or not. */
  query(device: string, fromMs: number, toMs: number): Reading[] {
    const stored = this.stmt.range.all(device, fromMs, toMs);
    const pending = this.buffer.filter((r) => r.device === device && r.t >= fromMs && r.t <= toMs);
    // Stable sort: equal timestamps keep the order they were recorded in.
    return [...stored, ...pending].sort((a, b) => a.t - b.t).map((r) => ({ t: r.t, value: fromRow(r) }));
  }

  /** Hands over the buffered readings (to a store opened again after its disk came back). */
  drain(): (Reading & { device: string })[] {
    const rows = this.buffer;
    this.buffer = [];
    return rows.map((r) => ({ device: r.device, t: r.t, value: fromRow(r) }));
  }

  /** Deletes readings older than the retention period (at the pace retention.ts allows); returns how many. */
  prune(): number {
    const mono = this.opts.mono();
    const cutoff = pruneCutoff({ now: this.opts.now(), mono, retentionMs: this.opts.retentionMs, trusted: this.opts.trusted(), last: this.mark });
    this.lastPrune = mono;
    if (cutoff === undefined) return 0;
    let onDisk = 0;
    for (let d = this.stmt.nextDevice.get('')?.device; d != null; d = this.stmt.nextDevice.get(d)?.device) {
      onDisk += this.stmt.prune.run(d, cutoff).changes;
    }
    const before = this.buffer.length;
    this.buffer = this.buffer.filter((r) => r.t >= cutoff);
    const n = onDisk + before - this.buffer.length;
    this.rows = Math.max(0, this.rows - onDisk);
    this.pruned += n;
    this.mark = { cutoff, mono };
    return n;
  }

  stats(): HistoryStats {
    return { rows: this.rows, buffered: this.buffer.length, flushes: this.flushes, pruned: this.pruned };
  }

  /** Starts the flush timer (openStore does); it never keeps the process alive. */
  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.tick(), this.opts.flushMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private tick(): void {
    this.background(() => this.flush());
    if (this.opts.mono() - this.lastPrune >= PRUNE_EVERY_MS) this.background(() => this.prune());
  }

  // A timer callback that throws would take the whole agent down with it;
  // a full disk should cost history, not alarms already queued or the XMPP session.
  private background(work: () => void): void {
    try {
      work();
    } catch (err) {
      this.opts.onError(err instanceof Error ? err : new Error(String(err)));
    }
  }
}

function toRow(device: string, t: number, value: Value): Row {
  if (typeof value === 'boolean') return { device, t, kind: 'b', num: value ? 1 : 0, txt: null };
  if (typeof value === 'string') return { device, t, kind: 's', num: null, txt: value };
  // SQLite stores NaN as NULL; fromRow turns it back into NaN.
  return { device, t, kind: 'n', num: value, txt: null };
}

function fromRow(r: Row): Value {
  if (r.kind === 'b') return r.num === 1;
  if (r.kind === 's') return r.txt ?? '';
  return r.num ?? Number.NaN;
}
