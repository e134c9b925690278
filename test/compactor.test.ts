// Giving memory back after a burst: the policy on vitest's fake timers, with
// what V8 holds and how busy the loop is scripted look by look; and the real
// collection, which must actually collect.

import { runInNewContext } from 'node:vm';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { systemClock } from '../src/core/clock.js';
import { silentLogger } from '../src/runtime/log.js';
import { compactor, exposedGc, LOOK_EVERY_MS, QUIET_LOOKS, WORTH_BYTES } from '../src/runtime/compactor.js';

const MiB = 1 << 20;

/** A compactor whose gauge and loop are what the test says, look by look. */
function scripted(start: { held: number }) {
  const s = { held: start.held, busy: 0, collections: 0, freesTo: undefined as number | undefined };
  const c = compactor({
    clock: systemClock,
    log: silentLogger,
    gauge: () => s.held,
    busy: () => s.busy,
    collect: () => {
      s.collections++;
      if (s.freesTo !== undefined) s.held = s.freesTo;
    },
  });
  /** n looks, each with the loop this busy. */
  const looks = (n: number, busy = 0): void => {
    s.busy = busy;
    vi.advanceTimersByTime(n * LOOK_EVERY_MS);
  };
  return { s, c, looks };
}

describe('giving memory back after a burst', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('collects once, after the loop has been quiet for a while, when a burst left a megabyte or more behind', () => {
    const { s, c, looks } = scripted({ held: 12 * MiB });
    c.start();
    looks(5); // settled at start
    s.held = 17 * MiB; // the burst
    looks(3, 0.9);
    expect(s.collections).toBe(0);
    s.freesTo = 13 * MiB;
    looks(QUIET_LOOKS - 1);
    expect(s.collections, 'not before the loop has been quiet long enough').toBe(0);
    looks(1);
    expect(s.collections).toBe(1);
    looks(100);
    expect(s.collections, 'nothing more to give back').toBe(1);
    c.stop();
  });

  it('leaves a busy loop alone, however much it holds', () => {
    const { s, c, looks } = scripted({ held: 12 * MiB });
    c.start();
    looks(1);
    s.held = 40 * MiB;
    for (let i = 0; i < 50; i++) looks(1, 0.5), looks(QUIET_LOOKS - 1, 0);
    expect(s.collections).toBe(0);
    c.stop();
  });

  it('does not collect for less than a megabyte', () => {
    const { s, c, looks } = scripted({ held: 12 * MiB });
    c.start();
    looks(1);
    s.held = 12 * MiB + WORTH_BYTES - 1;
    looks(50);
    expect(s.collections).toBe(0);
    s.held += 1;
    looks(1);
    expect(s.collections).toBe(1);
    c.stop();
  });

  it('takes what a collection could not free as in use: one collection, not one every look', () => {
    const { s, c, looks } = scripted({ held: 12 * MiB });
    c.start();
    looks(1);
    s.held = 20 * MiB; // a full outbox: live, so the collection gives nothing back
    looks(QUIET_LOOKS + 50);
    expect(s.collections).toBe(1);
    s.held = 21.5 * MiB; // another burst on top: the look that sees it is not quiet
    looks(QUIET_LOOKS);
    expect(s.collections, 'the next collection waits for quiet looks of its own').toBe(1);
    looks(1);
    expect(s.collections).toBe(2);
    c.stop();
  });

  it('waits for quiet after a short burst that left the loop idle but V8 grown', () => {
    const { s, c, looks } = scripted({ held: 12 * MiB });
    c.start();
    looks(20);
    s.held = 14 * MiB; // between two looks, the loop under 10 % busy: the look that sees it is not quiet
    looks(QUIET_LOOKS);
    expect(s.collections).toBe(0);
    looks(1);
    expect(s.collections).toBe(1);
    c.stop();
  });

  it('counts a burst that comes right after start (a board sending its backlog)', () => {
    const { s, c, looks } = scripted({ held: 12 * MiB });
    c.start();
    s.held = 16 * MiB; // before the first look
    s.freesTo = 12.5 * MiB;
    looks(QUIET_LOOKS);
    expect(s.collections).toBe(0);
    looks(1);
    expect(s.collections).toBe(1);
    c.stop();
  });

  it('keeps running, without collecting, when no collection can be had', () => {
    const s = { held: 12 * MiB, tries: 0 };
    const warnings: string[] = [];
    const c = compactor({
      clock: systemClock,
      log: { ...silentLogger, warn: (msg: string) => void warnings.push(msg) },
      gauge: () => s.held,
      busy: () => 0,
      collect: () => {
        s.tries++;
        throw new Error('no gc here');
      },
    });
    c.start();
    s.held = 20 * MiB;
    vi.advanceTimersByTime(50 * LOOK_EVERY_MS);
    expect(s.tries, 'tried once, then left alone').toBe(1);
    expect(warnings).toHaveLength(1);
    c.stop();
  });

  it('measures from the least held since the last collection, so memory V8 gave back on its own counts', () => {
    const { s, c, looks } = scripted({ held: 14 * MiB });
    c.start();
    looks(2);
    s.held = 11 * MiB; // V8 shrank after start
    looks(2);
    s.held = 12.5 * MiB; // 1.5 MiB above that floor, 1.5 below the first look
    looks(QUIET_LOOKS + 1);
    expect(s.collections).toBe(1);
    c.stop();
  });

  it('stops looking when stopped', () => {
    const { s, c, looks } = scripted({ held: 12 * MiB });
    c.start();
    looks(1);
    c.stop();
    s.held = 30 * MiB;
    looks(50);
    expect(s.collections).toBe(0);
  });
});

describe('the collection', () => {
  it('is a real full collection: an object nothing refers to is gone after it', async () => {
    const gc = exposedGc();
    let target: object | undefined = { payload: new Array(1000).fill('x') };
    const ref = new WeakRef(target);
    target = undefined;
    // A WeakRef keeps its target until the current job ends.
    await new Promise((r) => setImmediate(r));
    gc();
    expect(ref.deref()).toBeUndefined();
    expect(runInNewContext('typeof gc'), 'the flag is off again: later contexts get no gc').toBe('undefined');
  });
});
