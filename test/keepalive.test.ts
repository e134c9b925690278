// XEP-0199 keepalive against a fake session that answers a ping, refuses it,
// or stays silent until the request times out, on vitest's fake timers.

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
  drops = 0;

  request(iq: Element, timeoutMs: number): Promise<Element> {
    if (iq.getChild('ping', 'urn:xmpp:ping')) this.pings.push({ to: iq.attrs.to, timeoutMs });
    switch (this.answer) {
      case 'result':
        return Promise.resolve(xml('iq', { type: 'result' }));
      case 'error':
        return Promise.reject(new Error('service-unavailable'));
      case 'silence':
        return new Promise((_resolve, reject) => systemClock.setTimeout(() => reject(new TimeoutError('no reply')), timeoutMs));
    }
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

function setup() {
  const session = new FakeSession();
  const warnings: string[] = [];
  const log = createLogger(createSink('warn', (l) => warnings.push((JSON.parse(l) as { msg: string }).msg)));
  const k = keepalive({ session, clock: systemClock, domain: 'iot.example.org', intervalMs: INTERVAL, timeoutMs: TIMEOUT, log });
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

describe('keepalive over XEP-0198', () => {
  class SmSession extends FakeSession {
    readonly sm = { active: true, stats: { inbound: 0 }, requests: [] as (number | undefined)[], requestAck: (t?: number) => void this.sm.requests.push(t) };
  }
  const smSetup = () => {
    const session = new SmSession();
    const k = keepalive({ session, clock: systemClock, domain: 'iot.example.org', intervalMs: INTERVAL, timeoutMs: TIMEOUT, log: createLogger(createSink('error', () => {})) });
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
