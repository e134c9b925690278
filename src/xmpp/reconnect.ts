// When to try again after a failed connect or a lost link: exponential backoff
// with jitter (a fleet that lost its server at the same moment must not come
// back at the same moment), a floor raised by a server that asked us to back
// off, and a fresh start only once a session has stayed up for a while (a
// server that kicks us at once must not be hammered).

import { EventEmitter } from 'node:events';
import type { Clock, TimerHandle } from '../core/clock.js';
import { backoff } from '../util/backoff.js';

/** The backoff starts over only once a session has stayed up this long. */
export const STABLE_MS = 10_000;
/** The first delay after a stream error that asks us to back off. */
export const SLOW_DOWN_FLOOR_MS = 30_000;

export interface ReconnectEvents {
  reconnecting: [{ attempt: number; delay: number }];
}

export interface ReconnectOptions {
  clock: Clock;
  initialDelayMs: number;
  maxDelayMs: number;
  random?: () => number;
  /** Called when the delay is over. */
  connect(): void;
  /** An attempt has not reached online (or failed) within loginTimeoutMs. */
  loginTimedOut(): void;
  loginTimeoutMs: number;
}

export class Reconnect extends EventEmitter<ReconnectEvents> {
  private attempt = 0;
  private floorMs = 0;
  private timer?: TimerHandle;
  private stable?: TimerHandle;
  private login?: TimerHandle;
  private stopped = false;

  constructor(private readonly o: ReconnectOptions) {
    super();
  }

  /** Attempts since the last stable session (the one starting now included). */
  get attempts(): number {
    return this.attempt;
  }

  /** A connect attempt begins: it has loginTimeoutMs to get online. */
  attempting(): void {
    this.attempt++;
    this.o.clock.clearTimeout(this.login);
    this.login = this.o.clock.setTimeout(() => this.o.loginTimedOut(), this.o.loginTimeoutMs);
  }

  /** Try again after the backoff delay (once: a second call while waiting does nothing). */
  schedule(): void {
    if (this.timer || this.stopped) return;
    const delay = Math.max(this.floorMs, backoff(this.attempt + 1, this.o.initialDelayMs, this.o.maxDelayMs, this.o.random));
    this.emit('reconnecting', { attempt: this.attempt + 1, delay });
    this.timer = this.o.clock.setTimeout(() => {
      this.timer = undefined;
      this.o.connect();
    }, delay);
  }

  /** Online: once it has lasted STABLE_MS, the next loss starts from the shortest delay. */
  online(): void {
    this.o.clock.clearTimeout(this.login);
    this.o.clock.clearTimeout(this.stable);
    this.stable = this.o.clock.setTimeout(
      () => {
        this.attempt = 0;
        this.floorMs = 0;
      },
      STABLE_MS,
      { unref: true },
    );
  }

  offline(): void {
    this.o.clock.clearTimeout(this.login);
    this.o.clock.clearTimeout(this.stable);
  }

  /** The server said it is overloaded or limiting us: wait at least 30 s, doubling, up to the maximum. */
  backOff(): void {
    this.floorMs = Math.min(Math.max(this.floorMs * 2, SLOW_DOWN_FLOOR_MS), this.o.maxDelayMs);
  }

  stop(): void {
    this.stopped = true;
    this.o.clock.clearTimeout(this.timer);
    this.o.clock.clearTimeout(this.stable);
    this.o.clock.clearTimeout(this.login);
    this.timer = undefined;
  }
}

/** XEP-0198 location is host:port (IPv6 in brackets); make it a service our transports take, keeping how we connect now (STARTTLS or direct TLS). */
export function locationService(location: string, current?: string): string {
  const m = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(location.trim());
  if (!m) return location;
  const direct = current?.startsWith('xmpps://') ?? false;
  return `${direct ? 'xmpps' : 'xmpp'}://${m[1]}:${m[2] ?? (direct ? '5223' : '5222')}`;
}
