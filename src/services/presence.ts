// Presence reporter: turns device state into presence, sent on change beyond
// the deadband, never faster than min_interval, at least every heartbeat, and
// when a reading goes stale; at once after an owner's command and on every new
// session (a resumed one still shows what we last sent). While the server asks
// us to slow down, it waits, except for an owner's command.

import type { Element } from 'ltx';
import xml from '@xmpp/xml';
import type { Clock, TimerHandle } from '../core/clock.js';
import type { Devices } from '../core/devices.js';
import { summary, type Show } from '../core/format.js';
import { decide, snapshot, type Policy, type Sent } from '../core/reporting.js';
import type { Logger } from '../runtime/log.js';

export interface PresenceSink {
  readonly online: boolean;
  send(stanza: Element): Promise<void>;
  on(event: 'online', fn: (jid: string, resumed: boolean) => void): unknown;
  on(event: 'offline', fn: () => void): unknown;
  /** The server asked us to hold back until then (on the clock's monotonic scale; 0 = not). */
  readonly slowedUntil?: number;
}

export interface Reporter {
  start(): void;
  stop(): Promise<void>;
  readonly stats: { presencesSent: number; heldBack: number };
  /** Extra children for every presence (e.g. XEP-0115 caps). */
  decorate(fn: (presence: Element) => void): void;
}

export function reporter(deps: {
  devices: Devices;
  session: PresenceSink;
  clock: Clock;
  policy: Policy;
  log: Logger;
  /** The gateway's show at a moment on the monotonic clock (gatewayShow: health and alarms); the LAN advert is handed the same. */
  show: (mono: number) => Show;
}): Reporter {
  const { devices, session, clock, policy, log, show: showAt } = deps;
  const stats = { presencesSent: 0, heldBack: 0 };
  const decorators: ((p: Element) => void)[] = [];
  let last: Sent | undefined;
  let urgent = false;
  let timer: TimerHandle | undefined;
  let unsubscribe: (() => void) | undefined;
  let running = false;

  const build = (show: string | undefined, status: string): Element => {
    const p = xml('presence', {}, show ? xml('show', {}, show) : undefined, xml('status', {}, status));
    for (const d of decorators) d(p);
    return p;
  };

  const nextStale = (now: number): number => {
    let next = Infinity;
    for (const s of devices.list()) {
      const due = s.seen !== undefined ? s.seen + s.info.staleAfterMs + 1 : Infinity;
      if (due > now && due < next) next = due;
    }
    return next;
  };

  const evaluate = (): void => {
    clock.clearTimeout(timer);
    timer = undefined;
    if (!running || !session.online) return;
    // Every time here is monotonic: NTP setting the clock must neither freeze presence nor release it all at once.
    const now = clock.mono();
    // The server said wait: presence is optional traffic, so it waits (an owner's command still gets its answer).
    const holdMs = (session.slowedUntil ?? 0) - now;
    if (holdMs > 0 && !urgent) {
      stats.heldBack++;
      timer = clock.setTimeout(evaluate, holdMs);
      return;
    }
    const current = snapshot(devices, showAt(now), now);
    const d = decide({ policy, last, current, devices, now, urgent });
    let wake: number;
    if (d.send) {
      const stanza = build(current.show, summary(devices));
      last = current;
      urgent = false;
      stats.presencesSent++;
      session.send(stanza).catch((err: unknown) => log.warn('presence not sent', { error: err }));
      wake = now + policy.heartbeatMs;
    } else {
      wake = d.at;
    }
    wake = Math.min(wake, nextStale(now));
    timer = clock.setTimeout(evaluate, Math.max(0, wake - now));
  };

  return {
    stats,
    decorate: (fn) => decorators.push(fn),
    start() {
      running = true;
      unsubscribe = devices.onChange((c) => {
        if (c.cause === 'command') urgent = true;
        // One request that changes several devices is one presence, sent when it is done.
        if (devices.batching) return;
        evaluate();
      });
      const unsettle = devices.onSettled(evaluate);
      const unchange = unsubscribe;
      unsubscribe = () => {
        unchange();
        unsettle();
      };
      session.on('online', (_jid, resumed) => {
        // A new session has no presence yet: send at once. A resumed one still shows the last we sent.
        if (!resumed) last = undefined;
        evaluate();
      });
      session.on('offline', () => clock.clearTimeout(timer));
      evaluate();
    },
    async stop() {
      running = false;
      clock.clearTimeout(timer);
      unsubscribe?.();
      if (session.online) {
        await session.send(xml('presence', { type: 'unavailable' }, xml('status', {}, 'gateway stopped'))).catch(() => {});
      }
    },
  };
}
