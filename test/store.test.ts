// The durable store, used the way the agent uses it: real SQLite files in a
// temp dir, closed and reopened as a restart would. What "on disk" means is
// checked by copying the files aside (what a crash would leave behind), since
// the store's exclusive lock keeps every other connection out while it is open.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { openStore, StoreError, type StoreOptions } from '../src/store/db.js';
import { until } from './helpers/until.js';

const DAY = 24 * 60 * 60 * 1000;
const tempDir = (): string => mkdtempSync(join(tmpdir(), 'xia-store-'));
const open = (dir: string, opts: Omit<StoreOptions, 'dir'> = {}) => openStore({ dir, onError: (e) => { throw e; }, ...opts });

/** Runs a query on a copy of the files as they are now: what would survive if the process died here. */
function onDisk(dir: string, sql: string): unknown[] {
  const copy = tempDir();
  for (const f of ['agent.db', 'agent.db-wal']) if (existsSync(join(dir, f))) copyFileSync(join(dir, f), join(copy, f));
  const db = new Database(join(copy, 'agent.db'));
  try {
    return db.prepare(sql).all();
  } finally {
    db.close();
  }
}
/** The files as a power cut would leave them at this moment, copied into a dir of their own. */
function crashCopy(dir: string): string {
  const copy = tempDir();
  for (const f of ['agent.db', 'agent.db-wal']) if (existsSync(join(dir, f))) copyFileSync(join(dir, f), join(copy, f));
  return copy;
}
const readingsOnDisk = (dir: string): unknown => (onDisk(dir, 'SELECT count(*) AS n FROM readings')[0] as { n: number }).n;

function thrown(fn: () => unknown): StoreError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(StoreError);
    return err as StoreError;
  }
  throw new Error('expected a StoreError, nothing was thrown');
}

/** Another process holding agent.db the way a second agent would; resolves once it holds the lock. */
async function otherProcess(dir: string): Promise<ChildProcess> {
  const script = `
    const Database = require(process.argv[1]);
    const db = new Database(process.argv[2], { timeout: 0 });
    db.pragma('locking_mode = EXCLUSIVE');
    db.exec("CREATE TABLE IF NOT EXISTS other (x); INSERT INTO other VALUES (1)");
    process.stdout.write('holding\\n');
    process.stdin.on('end', () => process.exit(0)).resume();`;
  const child = spawn(process.execPath, ['-e', script, createRequire(import.meta.url).resolve('better-sqlite3'), join(dir, 'agent.db')]);
  await new Promise<void>((res, rej) => {
    child.stdout?.on('data', () => res());
    child.stderr?.on('data', (d: Buffer) => rej(new Error(d.toString())));
    child.on('exit', (code) => rej(new Error(`holder exited with ${code}`)));
  });
  return child;
}

describe('outbox', () => {
  it('keeps queued items across close and reopen, in order, with the same message ids', () => {
    const dir = tempDir();
    const a = open(dir);
    const sent = [
      a.outbox.add({ to: 'alice@iot.test', body: 'frost in greenhouse', kind: 'alarm' }),
      a.outbox.add({ to: 'bob@iot.test', body: 'door closed', kind: 'info' }),
      a.outbox.add({ to: 'alice@iot.test', body: 'water leak', kind: 'alarm' }),
    ];
    const ids = sent.map((i) => a.outbox.messageId(i));
    expect(new Set(ids).size).toBe(3);
    // Committed when add() returns: a crash right now would not lose them.
    expect(onDisk(dir, 'SELECT body FROM outbox ORDER BY id')).toEqual(sent.map((i) => ({ body: i.body })));
    a.close();

    const b = open(dir);
    const queued = b.outbox.pending();
    expect(queued.map((i) => [i.to, i.body, i.kind])).toEqual(sent.map((i) => [i.to, i.body, i.kind]));
    expect(queued.map((i) => b.outbox.messageId(i))).toEqual(ids);
    expect(ids[0]).toMatch(new RegExp(`^xia-${b.outbox.token}-\\d+$`));
    expect(b.outbox.stats()).toMatchObject({ queued: 3, alarmsQueued: 2 });
    // Ids are never reused, even for the newest item once it is gone.
    b.outbox.delivered(sent[2]!.id);
    b.close();
    const c = open(dir);
    const next = c.outbox.add({ to: 'alice@iot.test', body: 'again', kind: 'alarm' });
    expect(ids).not.toContain(c.outbox.messageId(next));
    c.close();

    const other = open(tempDir());
    expect(other.outbox.token).not.toBe(c.outbox.token);
    other.close();
  });

  it('drops the oldest infos first when full, alarms only when no info is left, and remembers how many', () => {
    const dir = tempDir();
    const s = open(dir, { outboxMax: 5 });
    const add = (body: string): void => void s.outbox.add({ to: 'alice@iot.test', body, kind: body.startsWith('a') ? 'alarm' : 'info' });
    const bodies = (): string[] => s.outbox.pending().map((i) => i.body);
    for (const b of ['i1', 'a1', 'i2', 'a2', 'i3']) add(b);
    expect(bodies()).toEqual(['i1', 'a1', 'i2', 'a2', 'i3']);
    add('a3');
    expect(bodies()).toEqual(['a1', 'i2', 'a2', 'i3', 'a3']);
    add('i4');
    expect(bodies()).toEqual(['a1', 'a2', 'i3', 'a3', 'i4']);
    add('a4');
    add('a5');
    expect(bodies()).toEqual(['a1', 'a2', 'a3', 'a4', 'a5']);
    add('a6');
    expect(bodies()).toEqual(['a2', 'a3', 'a4', 'a5', 'a6']);
    // Full of alarms: a new info is itself the oldest info.
    add('i5');
    expect(bodies()).toEqual(['a2', 'a3', 'a4', 'a5', 'a6']);
    expect(s.outbox.stats()).toEqual({ queued: 5, dropped: 6, delivered: 0, alarmsQueued: 5 });
    s.close();

    const again = open(dir, { outboxMax: 5 });
    expect(again.outbox.stats().dropped).toBe(6);
    again.outbox.add({ to: 'alice@iot.test', body: 'a7', kind: 'alarm' });
    expect(again.outbox.stats().dropped).toBe(7);
    again.close();
  });

  it('delivered() removes exactly that item and attempted() counts tries, across a restart', () => {
    const dir = tempDir();
    const s = open(dir);
    const [x, y, z] = ['one', 'two', 'three'].map((body) => s.outbox.add({ to: 'bob@iot.test', body, kind: 'info' }));
    s.outbox.attempted(y!.id);
    s.outbox.attempted(y!.id);
    s.outbox.attempted(z!.id);
    s.outbox.delivered(x!.id);
    s.outbox.delivered(x!.id); // twice is still one delivery
    expect(s.outbox.pending().map((i) => [i.body, i.attempts])).toEqual([['two', 2], ['three', 1]]);
    expect(s.outbox.stats()).toEqual({ queued: 2, dropped: 0, delivered: 1, alarmsQueued: 0 });
    s.close();
    const t = open(dir);
    expect(t.outbox.pending().map((i) => [i.id, i.attempts])).toEqual([[y!.id, 2], [z!.id, 1]]);
    expect(t.outbox.stats().delivered).toBe(0);
    t.close();
  });
});

describe('history', () => {
  it('buffers readings in memory, shows them to queries, and writes them in one flush', () => {
    const dir = tempDir();
    const T0 = Date.now() - 60_000; // recent: opening prunes anything older than a week
    const s = open(dir, { historyFlushMs: 3_600_000 });
    s.history.record('temp', T0 + 1000, 21.5);
    s.history.record('door', T0 + 1001, true);
    s.history.record('door', T0 + 1003, false);
    s.history.record('mode', T0 + 1002, 'eco');
    s.history.record('temp', T0 + 900, 20.25); // late arrival: queries still come out in time order
    expect(s.history.query('temp', T0, T0 + 2000)).toEqual([{ t: T0 + 900, value: 20.25 }, { t: T0 + 1000, value: 21.5 }]);
    expect(s.history.query('door', T0 + 1002, T0 + 1003)).toEqual([{ t: T0 + 1003, value: false }]);
    expect(s.history.stats()).toEqual({ rows: 0, buffered: 5, flushes: 0, pruned: 0 });
    expect(readingsOnDisk(dir)).toBe(0);

    expect(s.history.flush()).toBe(5);
    expect(s.history.flush()).toBe(0);
    expect(s.history.stats()).toEqual({ rows: 5, buffered: 0, flushes: 1, pruned: 0 });
    expect(readingsOnDisk(dir)).toBe(5);

    s.history.record('mode', T0 + 1004, '1'); // a string that looks like a number stays a string
    s.history.record('temp', T0 + 1005, Number.NaN);
    expect(readingsOnDisk(dir)).toBe(5);
    s.close();
    s.close();
    expect(readingsOnDisk(dir)).toBe(7);

    const t = open(dir);
    expect(t.history.query('door', T0, T0 + 2000)).toEqual([{ t: T0 + 1001, value: true }, { t: T0 + 1003, value: false }]);
    expect(t.history.query('mode', T0, T0 + 2000)).toEqual([{ t: T0 + 1002, value: 'eco' }, { t: T0 + 1004, value: '1' }]);
    expect(t.history.query('temp', T0 + 1005, T0 + 1005)).toEqual([{ t: T0 + 1005, value: Number.NaN }]);
    expect(t.history.stats().rows).toBe(7);
    t.close();
  });

  it('flushes by itself when the buffer fills and when the timer fires', async () => {
    const full = open(tempDir(), { historyFlushMs: 3_600_000, historyMaxBuffered: 3 });
    full.history.record('temp', 1, 1);
    full.history.record('temp', 2, 2);
    expect(full.history.stats()).toMatchObject({ buffered: 2, flushes: 0 });
    full.history.record('temp', 3, 3);
    expect(full.history.stats()).toMatchObject({ buffered: 0, flushes: 1, rows: 3 });
    full.close();

    const dir = tempDir();
    const timed = open(dir, { historyFlushMs: 30 });
    timed.history.record('temp', 1, 1);
    await until(() => timed.history.stats().flushes > 0, 'the 30 ms flush timer', { got: () => timed.history.stats() });
    expect(timed.history.stats()).toMatchObject({ buffered: 0, rows: 1 });
    expect(readingsOnDisk(dir)).toBe(1);
    timed.close();
  });

  it('prunes readings older than the retention period, at open, on demand and about hourly', async () => {
    let now = 100 * DAY;
    const clock = (): number => now;
    const dir = tempDir();
    // Days pass for real here: the monotonic clock (the prune's pace and cadence) moves with the wall clock.
    const s = open(dir, { now: clock, mono: clock, historyRetentionMs: 7 * DAY, historyFlushMs: 3_600_000 });
    for (const age of [8, 6, 1, 0]) s.history.record('temp', now - age * DAY, age);
    s.history.flush();
    s.history.record('temp', now - 9 * DAY, 9); // old and still buffered
    expect(s.history.prune()).toBe(2);
    expect(s.history.query('temp', 0, now).map((r) => r.value)).toEqual([6, 1, 0]);
    expect(s.history.stats()).toMatchObject({ rows: 3, buffered: 0, pruned: 2 });
    now += 2 * DAY;
    expect(s.history.prune()).toBe(1);
    expect(s.history.query('temp', 0, now).map((r) => r.value)).toEqual([1, 0]);
    s.close();

    now += 4.5 * DAY;
    const t = open(dir, { now: clock, mono: clock, historyRetentionMs: 7 * DAY, historyFlushMs: 3_600_000 });
    expect(t.history.query('temp', 0, now).map((r) => r.value)).toEqual([0]);
    expect(t.history.stats()).toMatchObject({ rows: 1, pruned: 1 });
    t.close();

    const u = open(dir, { now: clock, mono: clock, historyRetentionMs: 7 * DAY, historyFlushMs: 20 });
    now += 2 * DAY; // the last reading is now too old; the timer prunes once an hour has passed
    await until(() => u.history.stats().pruned > 0, 'the flush timer to prune', { got: () => u.history.stats() });
    expect(u.history.query('temp', 0, now)).toEqual([]);
    u.close();
  });

  it('prunes every device, however many, and only what is past the retention', () => {
    const now = 100 * DAY;
    const s = open(tempDir(), { now: () => now, historyRetentionMs: 7 * DAY });
    const devices = ['a', 'b-1', 'humidity', 'temp', 'z_9'];
    for (const d of devices) for (const age of [9, 8, 1]) s.history.record(d, now - age * DAY, age);
    s.history.flush();
    expect(s.history.prune()).toBe(devices.length * 2);
    for (const d of devices) expect(s.history.query(d, 0, now).map((r) => r.value)).toEqual([1]);
    s.close();
  });
});

describe('opening', () => {
  it('refuses a second store on the same dir, in this process or another, and says it is in use', async () => {
    const dir = tempDir();
    open(dir).close(); // an existing store, as after a restart: no migration to write anything
    const first = open(dir);
    const again = thrown(() => open(dir));
    expect(again.message).toMatch(/in use/);
    expect(again.message).toContain(join(dir, 'agent.db'));
    expect(again.hint).toMatch(/systemctl stop|state_dir/);
    // The refused attempt must not have loosened the first one's hold.
    first.outbox.add({ to: 'alice@iot.test', body: 'still mine', kind: 'alarm' });
    await expect(otherProcess(dir)).rejects.toThrow(/locked/);
    first.close();

    const holder = await otherProcess(dir);
    try {
      expect(thrown(() => open(dir)).message).toMatch(/in use/);
    } finally {
      holder.stdin?.end();
      await new Promise((r) => holder.on('exit', r));
    }
    const after = open(dir);
    expect(after.outbox.pending().map((i) => i.body)).toEqual(['still mine']);
    after.close();
  });

  it('folds a WAL left by a crash into the file at open and starts the WAL again from nothing', () => {
    const dir = tempDir();
    const s = open(dir);
    for (let i = 0; i < 200; i++) s.outbox.add({ to: 'bob@iot.test', body: `alarm ${i}`, kind: 'alarm' });
    // The files as a power cut would leave them: the WAL holds every commit since the last checkpoint.
    const crashed = tempDir();
    for (const f of ['agent.db', 'agent.db-wal']) copyFileSync(join(dir, f), join(crashed, f));
    s.close();
    const leftWal = statSync(join(crashed, 'agent.db-wal')).size;
    expect(leftWal).toBeGreaterThan(200 * 4096);
    const t = open(crashed);
    expect(t.outbox.stats().queued).toBe(200);
    // Only what open() itself wrote since: a frame or two, not the crashed process's frames rewritten in place.
    expect(statSync(join(crashed, 'agent.db-wal')).size).toBeLessThan(3 * 4120 + 32);
    t.close();
    expect(onDisk(crashed, 'SELECT count(*) AS n FROM outbox')).toEqual([{ n: 200 }]);
  });

  it('names a garbage agent.db, says how to move it aside, and leaves it untouched', () => {
    const dir = tempDir();
    const path = join(dir, 'agent.db');
    const garbage = Buffer.from(Array.from({ length: 8192 }, (_, i) => (i * 31 + 7) % 256));
    writeFileSync(path, garbage);
    const err = thrown(() => open(dir));
    expect(err.message).toContain(path);
    expect(err.hint).toMatch(new RegExp(`mv ${path} ${path}\\.corrupt-\\d{8}-\\d{6}`));
    expect(err.hint).toMatch(/empty store/);
    expect(readFileSync(path).equals(garbage)).toBe(true);
    expect(readdirSync(dir)).toEqual(['agent.db']);
  });

  it('after an unclean stop, finds a damaged page in a real store with quick_check, and leaves that page as it was', () => {
    const dir = tempDir();
    const s = open(dir);
    const t0 = Date.now() - 3000; // recent: the next open prunes nothing, so the damaged page is not rewritten in the WAL
    for (let i = 0; i < 3000; i++) s.history.record(`sensor-${i % 7}`, t0 + i, i / 3);
    s.close();
    // Running again, then a power cut: what it leaves is a copy of the files taken while the store is open.
    const running = open(dir);
    const cut = crashCopy(dir);
    running.close();
    const path = join(cut, 'agent.db');
    const bytes = readFileSync(path);
    const pageSize = bytes.readUInt16BE(16);
    for (let i = 0; i < 64; i++) bytes[5 * pageSize + i] = 0xfe; // trash a b-tree page header
    writeFileSync(path, bytes);
    const err = thrown(() => open(cut));
    expect(err.message).toContain(path);
    expect(err.message).toMatch(/damaged/);
    expect(err.hint).toContain(`mv ${path} `);
    // Refused before its first write. (Closing the refused handle lets SQLite copy the WAL's last
    // commit into agent.db, as any SQLite that opens it would; the damaged page is left as it was.)
    const after = readFileSync(path);
    expect(after.subarray(5 * pageSize, 6 * pageSize).equals(bytes.subarray(5 * pageSize, 6 * pageSize))).toBe(true);
  });

  it('skips quick_check after an orderly close: a damaged page is found at open only after an unclean stop', () => {
    const dir = tempDir();
    const s = open(dir);
    for (let i = 0; i < 300; i++) s.outbox.add({ to: 'alice@iot.test', body: `alarm ${i} ${'x'.repeat(100)}`, kind: 'alarm' });
    s.close();
    const running = open(dir);
    const cut = crashCopy(dir);
    running.close();
    // The same damage in both: the outbox's root page, which opening the store never reads.
    const db = new Database(join(dir, 'agent.db'));
    const root = (db.prepare("SELECT rootpage FROM sqlite_master WHERE name = 'outbox'").get() as { rootpage: number }).rootpage;
    db.close();
    for (const d of [dir, cut]) {
      const bytes = readFileSync(join(d, 'agent.db'));
      const pageSize = bytes.readUInt16BE(16);
      for (let i = 0; i < 64; i++) bytes[(root - 1) * pageSize + i] = 0xfe;
      writeFileSync(join(d, 'agent.db'), bytes);
    }
    // Closed cleanly: not checked, so it opens; the damage shows when the outbox is read.
    const clean = open(dir);
    expect(() => clean.outbox.pending()).toThrow(/malformed|corrupt/i);
    clean.close();
    // Stopped without closing: checked before the first write, and refused.
    expect(thrown(() => open(cut)).message).toMatch(/damaged/);
  });

  it('checks a store it has no shutdown mark for (written by an older agent), then trusts the mark its own close leaves', () => {
    const dir = tempDir();
    open(dir).close();
    const path = join(dir, 'agent.db');
    const db = new Database(path);
    db.prepare("DELETE FROM meta WHERE key = 'shutdown'").run();
    const root = (db.prepare("SELECT rootpage FROM sqlite_master WHERE name = 'outbox'").get() as { rootpage: number }).rootpage;
    db.close();
    const bytes = readFileSync(path);
    const pageSize = bytes.readUInt16BE(16);
    const page = bytes.subarray((root - 1) * pageSize, root * pageSize);
    const good = Buffer.from(page);
    page.fill(0xfe, 0, 64);
    writeFileSync(path, bytes);
    expect(thrown(() => open(dir)).message).toMatch(/damaged/);
    expect(readFileSync(path).equals(bytes)).toBe(true); // no WAL to carry over: untouched, byte for byte
    expect(readdirSync(dir)).toEqual(['agent.db']);
    good.copy(bytes, (root - 1) * pageSize);
    writeFileSync(path, bytes); // repaired, still without a mark: checked, opens, and leaves one at close
    open(dir).close();
    expect(onDisk(dir, "SELECT value FROM meta WHERE key = 'shutdown'")).toEqual([{ value: 'clean' }]);
  });

  it('names a state dir that cannot be created because a file is in the way', () => {
    const base = tempDir();
    writeFileSync(join(base, 'state'), 'not a dir');
    const dir = join(base, 'state', 'agent');
    const err = thrown(() => open(dir));
    expect(err.message).toContain(dir);
    expect(err.message).toMatch(/not a directory/);
  });

  it('names a state dir it may not write to', () => {
    const parent = tempDir();
    const dir = join(parent, 'state');
    mkdirSync(dir);
    chmodSync(dir, 0o500);
    if (process.getuid?.() !== 0) {
      const err = thrown(() => open(dir));
      expect(err.message).toContain(dir);
      expect(err.message).toMatch(/permission denied|EACCES/i);
      return;
    }
    // Root writes anywhere: ask as the unprivileged user a service would run as.
    chmodSync(parent, 0o755); // our own temp dir, so that nobody can reach the state dir inside it
    // The agent as it ships, run as nobody: the store refuses the directory before anything else happens.
    const config = join(parent, 'agent.yaml');
    writeFileSync(config, `xmpp: { jid: gw@iot.test, password: x, service: "xmpp://127.0.0.1:9" }\nowners: [alice@iot.test]\nmdns: { enabled: false }\nstate_dir: ${dir}\ndevices:\n  - { id: fan, driver: simulated, type: boolean, writable: true }\n`);
    chmodSync(config, 0o644);
    const r = spawnSync('runuser', ['-u', 'nobody', '--', process.execPath, join(__dirname, '..', 'dist', 'cli.js'), 'run', '--config', config], { encoding: 'utf8' });
    expect(r.status).toBe(73);
    const err = { message: r.stderr };
    expect(err.message).toContain(dir);
    expect(err.message).toMatch(/permission denied|EACCES/i);
  });
});
