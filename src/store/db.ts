// The agent's durable state: one SQLite file per state dir holding the outbox
// (messages that must reach their recipient, alarms above all) and a short
// history of readings. Opening it is where a Pi's real-world trouble shows up
// (a second agent on the same dir, an SD card that ate the file, a dir owned
// by someone else), so every such failure becomes a StoreError that says which
// file is affected and what the user can do about it.

import { accessSync, constants, existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import type BetterSqlite3 from 'better-sqlite3';
import { Outbox } from './outbox.js';
import { History } from './history.js';
import { PEOPLE_MIGRATION, PeopleTable } from './people.js';
import { DEFAULT_HISTORY, DEFAULT_OUTBOX } from '../config/durability.js';

// Loaded with require, not import: Node would first scan the CommonJS source for its named exports
// (cjs-module-lexer), and the addon is handed over by path rather than found by the `bindings`
// package's search. Together ~7 ms of a ~200 ms start (measured on x86), and the `bindings` code
// (a path search that reads a stack trace) never loads: 0.14 MiB RssAnon in an empty process.
const requireCjs = createRequire(import.meta.url);
const Database = requireCjs('better-sqlite3') as typeof BetterSqlite3;
let addon: string | null | undefined;
/** Where node-gyp and prebuild-install put the addon; undefined (better-sqlite3 searches as usual) if it is elsewhere. */
function addonPath(): string | undefined {
  if (addon === undefined) {
    try {
      addon = requireCjs.resolve('better-sqlite3/build/Release/better_sqlite3.node');
    } catch {
      addon = null;
    }
  }
  return addon ?? undefined;
}

export class StoreError extends Error {
  constructor(
    message: string,
    /** The way out, for a person: usually a command to run. */
    readonly hint: string,
  ) {
    super(message);
    this.name = 'StoreError';
  }
}

export interface StoreOptions {
  dir: string;
  outboxMax?: number;
  historyRetentionMs?: number;
  historyFlushMs?: number;
  historyMaxBuffered?: number;
  now?: () => number;
  /** Monotonic clock for the history's prune pace (default: performance.now). */
  mono?: () => number;
  /** The wall clock can be believed; the history is not pruned while it cannot (default: always). */
  trusted?: () => boolean;
  /** Failures of background work (timer flushes and prunes, the flush in close()); default: process.emitWarning. */
  onError?: (err: Error) => void;
}

export interface Store {
  readonly path: string;
  readonly outbox: Outbox;
  readonly history: History;
  /** People given rights by claim or invitation (config-named people are not here). */
  readonly people: PeopleTable;
  /** One small synced write (the storage guard's check that the database, not just its disk, takes writes again); throws if it does not. */
  probe(): void;
  close(): void;
}

const SCHEMA_VERSION = 2;

// Index i holds the step from user_version i to i + 1.
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE meta (key TEXT PRIMARY KEY, value);
   CREATE TABLE outbox (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     recipient TEXT NOT NULL,
     body TEXT NOT NULL,
     kind TEXT NOT NULL CHECK (kind IN ('alarm', 'info')),
     created INTEGER NOT NULL,
     attempts INTEGER NOT NULL DEFAULT 0
   );
   CREATE TABLE readings (
     device TEXT NOT NULL,
     t INTEGER NOT NULL,
     num REAL,
     txt TEXT,
     kind TEXT NOT NULL CHECK (kind IN ('n', 'b', 's'))
   );
   CREATE INDEX readings_device_t ON readings (device, t);`,
  PEOPLE_MIGRATION,
];

export function openStore(opts: StoreOptions): Store {
  const dir = resolve(opts.dir);
  const path = join(dir, 'agent.db');
  const now = opts.now ?? Date.now;
  const onError = opts.onError ?? ((err: Error) => process.emitWarning(err));
  const outboxMax = positive('outboxMax', opts.outboxMax ?? DEFAULT_OUTBOX.maxMessages);
  const historyOpts = {
    retentionMs: positive('historyRetentionMs', opts.historyRetentionMs ?? DEFAULT_HISTORY.retentionMs),
    flushMs: positive('historyFlushMs', opts.historyFlushMs ?? DEFAULT_HISTORY.flushIntervalMs),
    maxBuffered: positive('historyMaxBuffered', opts.historyMaxBuffered ?? 500),
    now,
    mono: opts.mono ?? (() => performance.now()),
    trusted: opts.trusted ?? (() => true),
    onError,
  };
  prepareDir(dir);

  let db: BetterSqlite3.Database;
  try {
    // timeout 0: only this process writes the file, so a lock means another
    // agent holds it for good; waiting (5 s by default) would only delay the error.
    const nativeBinding = addonPath();
    db = new Database(path, { timeout: 0, ...(nativeBinding ? { nativeBinding } : {}) });
  } catch (err) {
    throw translate(err, path, now) ?? err;
  }
  try {
    setUp(db, path, now);
    const store = {
      path,
      outbox: new Outbox(db, { max: outboxMax, now }),
      history: new History(db, historyOpts),
      people: new PeopleTable(db),
    };
    store.history.prune();
    store.history.start();
    // Opening filled the page cache (the row count, the prune) with pages nothing reads again soon: let them go
    // (measured, a focused run: the malloc heap 80 KiB smaller at idle, in each of 4 runs).
    db.pragma('shrink_memory');
    let closed = false;
    const probe = db.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES ('probed', ?)");
    const markClean = db.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES ('shutdown', 'clean')");
    return {
      ...store,
      probe: () => void probe.run(now()),
      close(): void {
        if (closed) return;
        closed = true;
        store.history.stop();
        try {
          store.history.flush();
        } catch (err) {
          onError(err instanceof Error ? err : new Error(String(err)));
        }
        try {
          // Last: the next open may skip quick_check only if everything before this was written.
          markClean.run();
        } catch {
          // The disk refused it (full, read-only): the mark stays 'running', so the next open checks.
        } finally {
          db.close();
        }
      },
    };
  } catch (err) {
    db.close();
    throw translate(err, path, now) ?? err;
  }
}

function positive(name: string, n: number): number {
  if (!Number.isFinite(n) || n <= 0) throw new RangeError(`store option ${name} must be a positive number, got ${n}`);
  return n;
}

function prepareDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    // SQLite creates agent.db-wal next to the file, so the dir itself must be writable, not just agent.db.
    accessSync(dir, constants.W_OK | constants.X_OK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    if (code === 'ENOTDIR' || code === 'EEXIST') {
      throw new StoreError(
        `state dir ${dir} cannot be used: part of that path is a file, not a directory (${code})`,
        `point state_dir at a directory, or find the file in the way with: ls -ld ${dir} ${join(dir, '..')}`,
      );
    }
    throw new StoreError(
      `state dir ${dir} cannot be created or written: ${(err as Error).message}`,
      `make it writable by the user the agent runs as (e.g. sudo install -d -m 700 -o xmpp-iot-agent ${dir}) or point state_dir elsewhere`,
    );
  }
}

function setUp(db: BetterSqlite3.Database, path: string, now: () => number): void {
  // EXCLUSIVE before anything touches the file: the lock then outlives each
  // statement, so a second agent on this dir is refused instead of both
  // sending the same outbox. It also keeps the WAL index in heap memory (no
  // -shm file, no mmap on the SD card).
  db.pragma('locking_mode = EXCLUSIVE');
  // A 64 KiB page cache, not better-sqlite3's 16 MB: opening reads the whole file (quick_check after an
  // unclean stop, the row count), and with a week of history the default cache kept ~10 MiB of it for good (measured:
  // 21.6 → 11.1 MiB RssAnon). Whatever it holds is private memory that duplicates the kernel's page
  // cache, so a page read again costs a pread, not the SD card: 64 KiB instead of 256 KiB kept the
  // malloc heap 0.17 MiB smaller at idle (a focused run, 3 each), and the history writes a few pages per flush.
  db.pragma('cache_size = -64');
  // Check before the first write: switching to WAL rewrites the header, and a
  // damaged file must stay exactly as the user had it. Only when the last run
  // did not close the store (power cut, kill, crash, or a file this agent has
  // not closed before): that is when a file gets damaged. Reading a whole week of
  // history makes it the longest step of a start (33 ms of ~250 ms, see BENCHMARKS.md).
  if (!closedCleanly(db)) {
    const check = db.pragma('quick_check', { simple: false }) as { quick_check: string }[];
    if (check.length !== 1 || check[0]?.quick_check !== 'ok') {
      const detail = check.map((r) => r.quick_check).join('; ').slice(0, 300);
      throw corrupt(path, `quick_check failed: ${detail}`, now);
    }
  }
  db.pragma('journal_mode = WAL');
  // FULL, not NORMAL: in WAL mode NORMAL skips the fsync at commit, so a power
  // cut can roll back the last transactions. An outbox add (an alarm) must
  // survive once add() has returned. The cost is one fsync per commit, and the
  // history only commits once per flush (every 30 s), so it stays cheap.
  db.pragma('synchronous = FULL');
  db.pragma('busy_timeout = 0');
  migrate(db, path, now);
  // A WAL left by a crash (a kill, a power cut, a card remounted under the agent) has just been read
  // in whole to recover it: fold it into the file and cut it to nothing, so the next frames are
  // appended to an empty file instead of rewriting the old ones in place. (On kernels whose ext4
  // keeps file data in large folios, as 6.16 and later do, a WAL read in at open sits in large
  // folios, and every later commit that overwrites one is charged the whole folio in /proc/PID/io
  // write_bytes: measured 144 KiB per 4 KiB frame instead of 8 KiB. The card itself only receives
  // the blocks written.) Best effort: a full card must not stop the agent here.
  try {
    db.pragma('wal_checkpoint(TRUNCATE)');
  } catch {
    // the disk refused it: the WAL stays as it is and SQLite checkpoints it later
  }
}

/** The last process to open this file closed it (close() marks it 'clean' after its last write). Reads only. */
function closedCleanly(db: BetterSqlite3.Database): boolean {
  const meta = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").get();
  if (meta === undefined) return false; // a new file (nothing to check), or not ours: quick_check says which
  const row = db.prepare("SELECT value FROM meta WHERE key = 'shutdown'").get() as { value: unknown } | undefined;
  return row?.value === 'clean';
}

function migrate(db: BetterSqlite3.Database, path: string, now: () => number): void {
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version > SCHEMA_VERSION) {
    throw new StoreError(
      `${path} has schema version ${version}; this agent only knows up to ${SCHEMA_VERSION} (written by a newer agent?)`,
      `upgrade the agent, or start with an empty store: ${moveAside(path, now)}`,
    );
  }
  // One commit (one fsync) per open: the migrations, if any, and the marks below.
  db.transaction(() => {
    for (let v = version; v < SCHEMA_VERSION; v++) db.exec(MIGRATIONS[v] ?? '');
    const seed = db.prepare('INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)');
    // Once per file: message ids built from it stay the same across restarts and differ between files.
    seed.run('token', randomBytes(8).toString('hex'));
    seed.run('dropped', 0);
    if (version < SCHEMA_VERSION) db.pragma(`user_version = ${SCHEMA_VERSION}`);
    // A real write, so the exclusive lock is taken at open rather than at the first alarm; and the
    // mark that close() turns back to 'clean' (until then, a stop counts as unclean).
    const set = db.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)');
    set.run('opened', now());
    set.run('shutdown', 'running');
  }).immediate();
}

function corrupt(path: string, detail: string, now: () => number): StoreError {
  return new StoreError(
    `${path} is damaged or not an agent database (${detail})`,
    `move it aside and the agent starts with an empty store (queued messages and history in it are not carried over): ${moveAside(path, now)}`,
  );
}

function moveAside(path: string, now: () => number): string {
  const stamp = new Date(now()).toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  // A leftover -wal would be replayed into the new, empty file, so it goes along.
  return ['', '-wal', '-journal']
    .filter((suffix) => suffix === '' || existsSync(path + suffix))
    .map((suffix) => `mv ${path}${suffix} ${path}${suffix}.corrupt-${stamp}`)
    .join(' && ');
}

/** A StoreError for the SQLite failures a user can act on; undefined for the rest. */
function translate(err: unknown, path: string, now: () => number): StoreError | undefined {
  if (err instanceof StoreError) return err;
  const code = String((err as { code?: unknown }).code ?? '');
  const message = err instanceof Error ? err.message : String(err);
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) {
    return new StoreError(
      `${path} is in use by another agent or process (${message})`,
      'stop the other agent (systemctl stop xmpp-iot-agent) or point state_dir elsewhere',
    );
  }
  if (code.startsWith('SQLITE_NOTADB') || code.startsWith('SQLITE_CORRUPT')) return corrupt(path, message, now);
  if (code.startsWith('SQLITE_CANTOPEN') || code.startsWith('SQLITE_READONLY') || code.startsWith('SQLITE_PERM')) {
    return new StoreError(
      `${path} cannot be opened for writing (${message})`,
      `check its owner and mode with ls -l ${path}*; it must be writable by the user the agent runs as (e.g. sudo chown xmpp-iot-agent: ${path}*)`,
    );
  }
  if (code.startsWith('SQLITE_FULL')) {
    return new StoreError(`${path} cannot grow: the disk is full`, `free some space on that filesystem (df -h ${path})`);
  }
  return undefined;
}
