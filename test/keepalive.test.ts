// Keepalive against a fake session that answers a ping, refuses it, or stays
// silent until the request times out, on vitest's fake timers: the real check
// (a ping, or an ack request with XEP-0198) every check period, a whitespace
// keepalive on the quiet intervals between.

import { EventEmitter } from 'node:events';
import type { Element } from 'ltx';
import xml from '@xmpp/xml';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { systemClock } from '../src/core/clock.js';
import { createLogger, createSink } from '../src/runtime/log.js';
import { keepalive, type KeepaliveTarget } from '../src/xmpp/keepalive.js';

/** What @xmpp/iq rejects with when no reply comes in time. */
class TimeoutError extends Error {
  override name = 'TimeoutError';
}

type Answer = 'result' | 'error' | 'silence';

class FakeSession extends EventEmitter<{ online: []; offline: [] }> implements KeepaliveTarget {
  online = true;
  answer: Answer = 'result';
  readonly pings: { to: string | undefined; timeoutMs: number }[] = [];
  /** What went on the wire, in order: 'space' (whitespace keepalive), 'ping', 'r' (ack request). */
  readonly wire: string[] = [];
  drops = 0;

  request(iq: Element, timeoutMs: number): Promise<Element> {
    if (iq.getChild('ping', 'urn:xmpp:ping')) {
      this.pings.push({ to: iq.attrs.to, timeoutMs });
      this.wire.push('ping');
    }
    switch (this.answer) {
      case 'result':
        return Promise.resolve(xml('iq', { type: 'result' }));
      case 'error':
        return Promise.reject(new Error('service-unavailable'));
      case 'silence':
        return new Promise((_resolve, reject) => systemClock.setTimeout(() => reject(new TimeoutError('no reply')), timeoutMs));
    }
  }
  whitespace(): void {
    this.wire.push('space');
  }
  dropConnection(): void {
    this.drops++;
    this.online = false;
    this.emit('offline');
  }
  reconnect(): void {
    this.online = true;
    this.emit('online');
  }
}

const INTERVAL = 30_000;
const TIMEOUT = 10_000;

function setup(checkMs?: number) {
  const session = new FakeSession();
  const warnings: string[] = [];
  const log = createLogger(createSink('warn', (l) => warnings.push((JSON.parse(l) as { msg: string }).msg)));
  const k = keepalive({ session, clock: systemClock, domain: 'iot.example.org', intervalMs: INTERVAL, timeoutMs: TIMEOUT, checkMs, log });
  return { session, warnings, k };
}

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('keepalive', () => {
  it('pings its own server once per interval while online', async () => {
    const { session, k } = setup();
    k.start();
    await vi.advanceTimersByTimeAsync(INTERVAL - 1);
    expect(session.pings).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(session.pings).toEqual([{ to: 'iot.example.org', timeoutMs: TIMEOUT }]);
    await vi.advanceTimersByTimeAsync(2 * INTERVAL);
    expect(session.pings).toHaveLength(3);
    expect(session.wire).toEqual(['ping', 'ping', 'ping']); // no check period given: the check every interval, no whitespace
    expect(session.drops).toBe(0);
    k.stop();
  });

  it('drops the connection when a ping goes unanswered for the timeout, and pings nothing while offline', async () => {
    const { session, warnings, k } = setup();
    session.answer = 'silence';
    k.start();
    await vi.advanceTimersByTimeAsync(INTERVAL + TIMEOUT - 1);
    expect(session.drops).toBe(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(session.drops).toBe(1);
    expect(warnings).toEqual(['keepalive: the server did not answer a ping; dropping the connection']);
    await vi.advanceTimersByTimeAsync(5 * INTERVAL);
    expect(session.pings).toHaveLength(1);
  });

  it('counts an error reply as alive: no drop, and the next ping comes on schedule', async () => {
    const { session, k } = setup();
    session.answer = 'error';
    k.start();
    await vi.advanceTimersByTimeAsync(3 * INTERVAL);
    expect(session.pings).toHaveLength(3);
    expect(session.drops).toBe(0);
    k.stop();
  });

  it('starts pinging again after a reconnect', async () => {
    const { session, k } = setup();
    session.answer = 'silence';
    k.start();
    await vi.advanceTimersByTimeAsync(INTERVAL + TIMEOUT);
    expect(session.drops).toBe(1);
    session.answer = 'result';
    session.reconnect();
    await vi.advanceTimersByTimeAsync(INTERVAL);
    expect(session.pings).toHaveLength(2);
    k.stop();
  });

  it('pings nothing once stopped', async () => {
    const { session, k } = setup();
    k.start();
    await vi.advanceTimersByTimeAsync(INTERVAL);
    k.stop();
    await vi.advanceTimersByTimeAsync(10 * INTERVAL);
    expect(session.pings).toHaveLength(1);
  });
});

class SmSession extends FakeSession {
  readonly sm = {
    active: true,
    stats: { inbound: 0 },
    requests: [] as (number | undefined)[],
    requestAck: (t?: number) => {
      this.sm.requests.push(t);
      this.wire.push('r');
    },
  };
}

describe('keepalive over XEP-0198', () => {
  const smSetup = (checkMs?: number) => {
    const session = new SmSession();
    const k = keepalive({ session, clock: systemClock, domain: 'iot.example.org', intervalMs: INTERVAL, timeoutMs: TIMEOUT, checkMs, log: createLogger(createSink('error', () => {})) });
    return { session, k };
  };

  it('probes with an ack request, not a ping, once per quiet interval, with the keepalive timeout', async () => {
    const { session, k } = smSetup();
    k.start();
    await vi.advanceTimersByTimeAsync(3 * INTERVAL);
    expect(session.pings).toEqual([]);
    expect(session.sm.requests).toEqual([TIMEOUT, TIMEOUT, TIMEOUT]);
    k.stop();
  });

  it('sends no probe in an interval in which a stanza came from the server', async () => {
    const { session, k } = smSetup();
    k.start();
    await vi.advanceTimersByTimeAsync(INTERVAL);
    expect(session.sm.requests).toHaveLength(1);
    session.sm.stats.inbound++; // e.g. the echo of our own presence
    await vi.advanceTimersByTimeAsync(INTERVAL);
    expect(session.sm.requests).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(INTERVAL);
    expect(session.sm.requests).toHaveLength(2);
    k.stop();
  });

  it('pings as before while stream management is off on the current stream', async () => {
    const { session, k } = smSetup();
    session.sm.active = false;
    k.start();
    await vi.advanceTimersByTimeAsync(INTERVAL);
    expect(session.pings).toHaveLength(1);
    expect(session.sm.requests).toEqual([]);
    k.stop();
  });
});

describe('whitespace keepalive between checks', () => {
  const CHECK = 5 * INTERVAL;
  const smSetup = (checkMs: number) => {
    const session = new SmSession();
    const warnings: string[] = [];
    const log = createLogger(createSink('warn', (l) => warnings.push((JSON.parse(l) as { msg: string }).msg)));
    const k = keepalive({ session, clock: systemClock, domain: 'iot.example.org', intervalMs: INTERVAL, timeoutMs: TIMEOUT, checkMs, log });
    return { session, k, warnings };
  };

  it('writes a space on the quiet intervals and asks for an ack once per check period, with the keepalive timeout', async () => {
    const { session, k } = smSetup(CHECK);
    k.start();
    await vi.advanceTimersByTimeAsync(INTERVAL - 1);
    expect(session.wire).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(session.wire).toEqual(['space']);
    await vi.advanceTimersByTimeAsync(9 * INTERVAL);
    expect(session.wire).toEqual(['space', 'space', 'space', 'space', 'r', 'space', 'space', 'space', 'space', 'r']);
    expect(session.sm.requests).toEqual([TIMEOUT, TIMEOUT]);
    expect(session.pings).toEqual([]);
    k.stop();
  });

  it('pings once per check period without stream management, a space in between, and still drops the link when the ping goes unanswered', async () => {
    const { session, warnings, k } = setup(3 * INTERVAL);
    session.answer = 'silence';
    k.start();
    await vi.advanceTimersByTimeAsync(3 * INTERVAL);
    expect(session.wire).toEqual(['space', 'space', 'ping']);
    expect(session.pings).toEqual([{ to: 'iot.example.org', timeoutMs: TIMEOUT }]);
    await vi.advanceTimersByTimeAsync(TIMEOUT - 1);
    expect(session.drops).toBe(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(session.drops).toBe(1);
    expect(warnings).toEqual(['keepalive: the server did not answer a ping; dropping the connection']);
    // Offline: neither a space nor a ping.
    await vi.advanceTimersByTimeAsync(10 * INTERVAL);
    expect(session.wire).toEqual(['space', 'space', 'ping']);
  });

  it('sends nothing in an interval in which the server sent a stanza, and counts the check period from there', async () => {
    const { session, k } = smSetup(CHECK);
    k.start();
    await vi.advanceTimersByTimeAsync(3 * INTERVAL);
    expect(session.wire).toEqual(['space', 'space', 'space']);
    session.sm.stats.inbound++; // e.g. the echo of our own presence, in the fourth interval
    await vi.advanceTimersByTimeAsync(INTERVAL);
    expect(session.wire).toEqual(['space', 'space', 'space']);
    // Proven at the fourth tick: the next check is five quiet intervals later, not at the fifth tick.
    await vi.advanceTimersByTimeAsync(4 * INTERVAL);
    expect(session.wire).toEqual(['space', 'space', 'space', 'space', 'space', 'space', 'space']);
    await vi.advanceTimersByTimeAsync(INTERVAL);
    expect(session.wire.at(-1)).toBe('r');
    expect(session.sm.requests).toHaveLength(1);
    k.stop();
  });

  it('starts the check period again after a reconnect, and writes nothing while offline', async () => {
    const { session, k } = smSetup(CHECK);
    k.start();
    await vi.advanceTimersByTimeAsync(3 * INTERVAL);
    session.dropConnection();
    await vi.advanceTimersByTimeAsync(5 * INTERVAL);
    expect(session.wire).toEqual(['space', 'space', 'space']);
    session.reconnect();
    await vi.advanceTimersByTimeAsync(4 * INTERVAL);
    expect(session.wire).toEqual(['space', 'space', 'space', 'space', 'space', 'space', 'space']);
    await vi.advanceTimersByTimeAsync(INTERVAL);
    expect(session.wire.at(-1)).toBe('r');
    k.stop();
  });

  it('rounds a check period that is not a whole number of intervals up, and checks every interval when it is shorter than one', async () => {
    const a = smSetup(2.5 * INTERVAL);
    a.k.start();
    await vi.advanceTimersByTimeAsync(6 * INTERVAL);
    expect(a.session.wire).toEqual(['space', 'space', 'r', 'space', 'space', 'r']);
    a.k.stop();
    const b = smSetup(INTERVAL / 2);
    b.k.start();
    await vi.advanceTimersByTimeAsync(3 * INTERVAL);
    expect(b.session.wire).toEqual(['r', 'r', 'r']);
    b.k.stop();
  });

  it('writes nothing once stopped', async () => {
    const { session, k } = smSetup(CHECK);
    k.start();
    await vi.advanceTimersByTimeAsync(INTERVAL);
    k.stop();
    await vi.advanceTimersByTimeAsync(10 * INTERVAL);
    expect(session.wire).toEqual(['space']);
  });
});
