// The SD card as it really fails: it fills up, or ext4 remounts it read-only
// after an I/O error. Whatever writes to the state store tells this guard
// when a write failed; the guard finds out what is wrong with the filesystem
// itself (a small probe write: ENOSPC, EROFS, or an I/O error), says so once
// in the log with what to do, and tries the held-back work again every few
// seconds (the history's buffered readings, alarms kept in memory) until the
// disk takes it, then says that too. Chat, presence and control never wait
// for it; alarms go out from memory meanwhile (services/courier.ts).

import { statfsSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Clock, TimerHandle } from '../core/clock.js';
import type { Logger } from '../runtime/log.js';

export type StorageState = 'ok' | 'full' | 'read-only' | 'failing';

const RETRY_MS = 5000;
const PROBE = '.xia-write-probe';

export interface StorageGuard {
  readonly name: string;
  start(): void;
  stop(): void;
  readonly state: StorageState;
  /** Writes can be expected to work (no failure since the last successful retry). */
  readonly ok: boolean;
  /** A write to the store failed; `what` names what was lost or held back ("history", "an alarm"). */
  failed(err: unknown, what: string): void;
  /** Work that failed and must be tried again once the disk takes writes: runs in order, and throws if it still cannot write. */
  retry(fn: () => void): void;
  /** One line on what is wrong and what to do, or undefined when the disk is fine. */
  notice(): string | undefined;
  readonly stats: { failures: number; recoveries: number; since?: number };
}

export interface StorageDeps {
  dir: string;
  clock: Clock;
  log: Logger;
  /** Extra words for the notice: how much waits in memory ("12 readings", "3 alarms"). */
  waiting?: () => string[];
  /** The store cannot write although the filesystem can (a handle left on a filesystem that was remounted): open it again. */
  reopen?: () => void;
}

/** What the filesystem under `dir` says when written to: its state, and the errno behind it. */
export function probe(dir: string): { state: StorageState; code?: string } {
  const file = join(dir, PROBE);
  try {
    writeFileSync(file, Buffer.alloc(4096));
    unlinkSync(file);
    return { state: 'ok' };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    try {
      unlinkSync(file);
    } catch {
      // it was never created
    }
    if (code === 'ENOSPC' || code === 'EDQUOT') return { state: 'full', code };
    if (code === 'EROFS') return { state: 'read-only', code };
    return { state: 'failing', code };
  }
}

function freeBytes(dir: string): number | undefined {
  try {
    const s = statfsSync(dir);
    return s.bavail * s.bsize;
  } catch {
    return undefined;
  }
}

export function storageGuard(deps: StorageDeps): StorageGuard {
  const { dir, clock, log } = deps;
  const pending: (() => void)[] = [];
  const stats: StorageGuard['stats'] = { failures: 0, recoveries: 0 };
  let state: StorageState = 'ok';
  let ok = true;
  let timer: TimerHandle | undefined;
  let running = false;
  /** Retries that failed although the filesystem took the probe: the store's handle is stale. */
  let staleTries = 0;

  const advice = (s: StorageState): string => {
    switch (s) {
      case 'full':
        return `free some space on it (df -h ${dir}; journalctl --vacuum-size=50M often helps); the agent carries on by itself`;
      case 'read-only':
        return `the filesystem went read-only, as ext4 does after an I/O error: the SD card may be failing. Back up ${dir}, then reboot (fsck repairs it at boot) and replace the card if it happens again`;
      case 'failing':
        return `the card returns I/O errors (see dmesg): back up ${dir} and replace the card`;
      case 'ok':
        return '';
    }
  };

  const describe = (s: StorageState): string =>
    s === 'full' ? 'the disk is full' : s === 'read-only' ? 'the disk is read-only' : s === 'failing' ? 'the disk fails to write' : 'the disk is fine';

  const arm = (): void => {
    if (!running || timer) return;
    timer = clock.setInterval(tick, RETRY_MS, { unref: true });
  };

  const tick = (): void => {
    const fs = probe(dir);
    if (fs.state !== 'ok') {
      if (fs.state !== state) {
        state = fs.state;
        log.error(`state store: ${describe(state)} (${dir}): ${advice(state)}`, { state, code: fs.code });
      }
      return;
    }
    try {
      for (const fn of pending) fn();
    } catch (err) {
      // The filesystem writes but the store does not: its file handle may belong to a filesystem since remounted.
      if (++staleTries >= 2 && deps.reopen) {
        log.warn('state store: the disk writes again but the database does not; opening it again', { error: err });
        staleTries = 0;
        try {
          deps.reopen();
        } catch (reopenErr) {
          log.error('state store: could not open the database again', { error: reopenErr });
        }
      }
      return;
    }
    staleTries = 0;
    const was = state;
    state = 'ok';
    ok = true;
    stats.recoveries++;
    stats.since = undefined;
    clock.clearInterval(timer);
    timer = undefined;
    log.info(`state store: writes again (${dir}); what waited in memory is on disk now, history goes on`, { was });
  };

  return {
    name: 'storage guard',
    stats,
    get state() {
      return state;
    },
    get ok() {
      return ok;
    },
    start() {
      running = true;
      if (!ok) arm();
    },
    stop() {
      running = false;
      clock.clearInterval(timer);
      timer = undefined;
    },
    failed(err, what) {
      stats.failures++;
      if (!ok) return arm();
      ok = false;
      stats.since = clock.now();
      const fs = probe(dir);
      // The probe may pass on a disk that just failed SQLite (a partly full one); the error says which.
      const code = String((err as { code?: unknown }).code ?? '');
      state = fs.state !== 'ok' ? fs.state : code.startsWith('SQLITE_FULL') ? 'full' : code.startsWith('SQLITE_READONLY') ? 'read-only' : 'failing';
      const free = freeBytes(dir);
      log.error(`state store: ${describe(state)} (${dir}), ${what} could not be written. Alarms are kept in memory and still sent; history waits in memory. To fix: ${advice(state)}`, {
        state,
        error: err,
        code: fs.code,
        freeBytes: free,
      });
      arm();
    },
    retry(fn) {
      pending.push(fn);
    },
    notice() {
      if (ok) return undefined;
      const waiting = deps.waiting?.() ?? [];
      return `storage: ${describe(state)} (${dir})${waiting.length ? `; waiting in memory: ${waiting.join(', ')}` : ''}. ${advice(state)}`;
    },
  };
}
