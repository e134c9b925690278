// The history's retention on a clock NTP may set by years (src/store/retention.ts):
// a jump forward prunes at most twice the time that really passed, a jump back
// prunes nothing, and nothing is pruned while the clock is clearly wrong.

import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openStore } from '../src/store/db.js';
import { pruneCutoff } from '../src/store/retention.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const YEAR = 365 * DAY;

describe('prune cutoff', () => {
  it('follows the clock when it is steady, and is none while the clock is not trusted', () => {
    expect(pruneCutoff({ now: 100 * DAY, mono: 0, retentionMs: 7 * DAY, trusted: true })).toBe(93 * DAY);
    const last = { cutoff: 93 * DAY, mono: 0 };
    expect(pruneCutoff({ now: 100 * DAY + HOUR, mono: HOUR, retentionMs: 7 * DAY, trusted: true, last })).toBe(93 * DAY + HOUR);
    expect(pruneCutoff({ now: 100 * DAY + HOUR, mono: HOUR, retentionMs: 7 * DAY, trusted: false, last })).toBeUndefined();
  });

  it('moves at most twice as fast as real time after a jump forward, and back with the clock', () => {
    const last = { cutoff: 93 * DAY, mono: 0 };
    expect(pruneCutoff({ now: 100 * DAY + YEAR, mono: HOUR, retentionMs: 7 * DAY, trusted: true, last })).toBe(93 * DAY + 2 * HOUR);
    expect(pruneCutoff({ now: 100 * DAY - YEAR, mono: HOUR, retentionMs: 7 * DAY, trusted: true, last })).toBe(93 * DAY - YEAR);
  });
});

describe('history retention across clock jumps', () => {
  it('a jump forward by a year keeps the week of history; a jump back keeps the readings stamped meanwhile', () => {
    let now = Date.UTC(2027, 0, 10);
    let mono = 0;
    const s = openStore({ dir: mkdtempSync(join(tmpdir(), 'xia-retention-')), now: () => now, mono: () => mono, historyRetentionMs: 7 * DAY, onError: (e) => { throw e; } });
    for (let d = 6; d >= 0; d--) s.history.record('temp', now - d * DAY, d);
    s.history.flush();
    now += YEAR; // a bad NTP source
    mono += HOUR;
    expect(s.history.prune()).toBe(0); // two hours of pace: nothing a week old is that young
    now -= YEAR; // set right again
    mono += HOUR;
    s.history.record('temp', now, 100);
    now -= 30 * DAY; // and back, too far
    mono += HOUR;
    s.history.record('temp', now, 200);
    expect(s.history.prune()).toBe(0);
    expect(s.history.stats().rows + s.history.stats().buffered).toBe(9);
    s.close();
  });

  it('prunes nothing while the clock is before the build (1970)', () => {
    const now = 5 * DAY; // 1970-01-06
    const s = openStore({ dir: mkdtempSync(join(tmpdir(), 'xia-retention-')), now: () => now, trusted: () => false, historyRetentionMs: DAY, onError: (e) => { throw e; } });
    s.history.record('temp', 0, 1);
    s.history.flush();
    expect(s.history.prune()).toBe(0);
    expect(s.history.stats().rows).toBe(1);
    s.close();
  });
});
