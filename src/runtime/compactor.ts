// Gives memory back once a burst is over. V8 sizes its heap for throughput: a
// burst of readings grows the young generation to its cap and leaves the
// buffers the serial port and TLS read into dead in old space. V8's own memory
// reducer gives them back only after a full collection, and a burst that needed
// none leaves nothing to start it: after the bench's burst of 10^5 readings the
// agent's RssAnon stayed 5 MiB up for the 40 s it was watched.
//
// Every 2 s this looks at what V8 holds (its committed heap and the buffers
// it tracks) and at how busy the event loop was since the last look.
// Once it has been quiet (the loop mostly idle, V8 not growing) for four looks
// in a row and V8 holds a megabyte more than the least it held since the last
// collection, it asks V8 for one full collection. V8 shrinks its young generation in a collection only when
// allocation has slowed down, which is why it waits for quiet. What is still held
// after it is in use and becomes the new floor, so memory that really is in use
// (a full outbox, say) costs one collection, not one per look; a slow creep
// costs one per megabyte.
//
// The collection is reached without a command-line flag: `--expose-gc` is set
// while one new context is made, which hands out its `gc`, and unset again
// (built-in modules loaded later still take Node's code cache). A flag on the
// command line would cost every start (deploy/systemd says why); this costs
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
/** Growth between two looks that makes the second one not quiet, however idle the loop. */
export const GROWING_BYTES = 256 << 10;

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

export interface Compactor {
  start(): void;
  stop(): void;
}

export function compactor(deps: CompactorDeps): Compactor {
  const { clock, log } = deps;
  const gauge = deps.gauge ?? v8Gauge;
  const busy = deps.busy ?? loopBusy();
  /** undefined until the first collection; null once it turned out not to work. */
  let collect: (() => void) | null | undefined = deps.collect;
  let timer: TimerHandle | undefined;
  let floor = Infinity;
  let last = Infinity;
  let quietLooks = 0;

  const look = (): void => {
    const held = gauge();
    if (held < floor) floor = held;
    // Quiet: the loop mostly idle, and V8 not growing (a short burst fits between two looks).
    const grew = held - last > GROWING_BYTES;
    last = held;
    quietLooks = busy() > BUSY || grew ? 0 : quietLooks + 1;
    if (quietLooks < QUIET_LOOKS || held - floor < WORTH_BYTES || collect === null) return;
    // Every collection waits for quiet looks of its own: right after one, V8 may still be busy growing.
    quietLooks = 0;
    const t0 = clock.mono();
    try {
      collect ??= exposedGc();
      collect();
    } catch (err) {
      // Never worth a crash: without the collection the agent only keeps more memory.
      collect = null;
      log.warn('cannot ask V8 for a collection; memory after a burst stays with V8', { error: err });
      return;
    }
    const ms = clock.mono() - t0;
    // What is still held is in use: the floor from now on, until V8 holds less.
    floor = gauge();
    log.debug('collected after a burst', () => ({ heldKiB: held >> 10, afterKiB: floor >> 10, ms: Math.round(ms * 10) / 10 }));
  };

  return {
    start() {
      if (timer) return;
      // From here on: a burst right after start (a board's backlog) counts as growth.
      floor = last = gauge();
      busy();
      timer = clock.setInterval(look, LOOK_EVERY_MS, { unref: true });
    },
    stop() {
      clock.clearInterval(timer);
      timer = undefined;
    },
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
  let gc: unknown;
  try {
    // The function keeps its context (about 0.2 MB of heap) alive: made once, on the first collection.
    gc = vm.runInNewContext('gc');
  } finally {
    v8.setFlagsFromString('--no-expose-gc');
  }
  if (typeof gc !== 'function') throw new Error('this Node.js gave no gc function');
  return gc as () => void;
}
