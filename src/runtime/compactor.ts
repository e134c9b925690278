// Gives memory back once a burst is over. V8 sizes its heap for throughput: a
// burst of readings grows the young generation to its cap and leaves the
// buffers the serial port and TLS read into dead in old space, and nothing makes
// V8 collect them when the agent is quiet again (Node never tells it the process
// is idle), so a gateway that took one burst keeps those megabytes for hours.
//
// Every 2 s this looks at what V8 holds (its committed heap and the buffers
// it tracks) and at how busy the event loop was since the last look.
// Once it has been quiet for four looks in a row and V8 holds a megabyte more
// than the least it held since the last collection, it asks V8 for one full
// collection (which also shrinks the young generation). What is still held
// after it is in use and becomes the new floor, so memory that really is in use
// (a full outbox, say) costs one collection, not one per look; a slow creep
// costs one per megabyte.
//
// The collection is reached the way Node's own tests reach it after start:
// `--expose-gc` set for one new context, which hands out its `gc`. A flag on
// the command line would cost every start (deploy/systemd says why), this costs
// nothing until the first collection.

import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';
import type { Clock, TimerHandle } from '../core/clock.js';
import type { Logger } from './log.js';

/** How often it looks. */
export const LOOK_EVERY_MS = 2000;
/** The event loop busy for more than this share of the time between two looks: not quiet. */
export const BUSY = 0.1;
/**
 * Looks in a row that found the loop quiet: a burst is over. A
 * collection a few seconds after a burst gave nothing back here (2 of 2 runs at
 * 3 s, while 10 s later the same collection gave 3 MiB), so it waits 8 s.
 */
export const QUIET_LOOKS = 4;
/** Growth since the last collection (or the least held since start) that is worth one. */
export const WORTH_BYTES = 1 << 20;

export interface CompactorDeps {
  clock: Clock;
  log: Logger;
  /** Bytes a full collection could give back some of; by default V8's committed heap plus its external memory. */
  gauge?: () => number;
  /** Share of the time since the previous call that the event loop was busy (0–1). */
  busy?: () => number;
  /** One full, synchronous collection. */
  collect?: () => void;
}

export interface CompactorStats {
  collections: number;
}

export interface Compactor {
  start(): void;
  stop(): void;
  stats(): CompactorStats;
}

export function compactor(deps: CompactorDeps): Compactor {
  const { clock, log } = deps;
  const gauge = deps.gauge ?? v8Gauge;
  const busy = deps.busy ?? loopBusy();
  let collect = deps.collect;
  let timer: TimerHandle | undefined;
  let floor = Infinity;
  let quietLooks = 0;
  const stats: CompactorStats = { collections: 0 };

  const look = (): void => {
    const held = gauge();
    if (held < floor) floor = held;
    quietLooks = busy() > BUSY ? 0 : quietLooks + 1;
    if (quietLooks < QUIET_LOOKS || held - floor < WORTH_BYTES) return;
    collect ??= exposedGc();
    const t0 = clock.mono();
    collect();
    const ms = clock.mono() - t0;
    stats.collections++;
    // What is still held is in use: the floor from now on, until V8 holds less.
    floor = gauge();
    log.debug('collected after a burst', () => ({ heldKiB: held >> 10, afterKiB: floor >> 10, ms: Math.round(ms * 10) / 10 }));
  };

  return {
    start() {
      if (timer) return;
      busy();
      timer = clock.setInterval(look, LOOK_EVERY_MS, { unref: true });
    },
    stop() {
      clock.clearInterval(timer);
      timer = undefined;
    },
    stats: () => ({ ...stats }),
  };
}

function v8Gauge(): number {
  const m = process.memoryUsage();
  return m.heapTotal + m.external;
}

function loopBusy(): () => number {
  let last = performance.eventLoopUtilization();
  return () => {
    const now = performance.eventLoopUtilization();
    const share = performance.eventLoopUtilization(now, last).utilization;
    last = now;
    return share;
  };
}

/**
 * V8's `gc`, from a context created while `--expose-gc` is on; the flag goes
 * off again at once. node:v8 and node:vm (0.13 MiB) load only here.
 */
export function exposedGc(): () => void {
  const require = createRequire(import.meta.url);
  const v8 = require('node:v8') as typeof import('node:v8');
  const vm = require('node:vm') as typeof import('node:vm');
  v8.setFlagsFromString('--expose-gc');
  try {
    return vm.runInNewContext('gc') as () => void;
  } finally {
    v8.setFlagsFromString('--no-expose-gc');
  }
}
