// The services between core and session, each driven alone: real Devices,
// vitest's fake timers behind systemClock, and small fakes for the session,
// the outbox, the history and the mDNS responder. Nothing here touches the network.

import { EventEmitter } from 'node:events';
import type { Element } from 'ltx';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { systemClock } from '../src/core/clock.js';
import { Devices, type DeviceInfo, type Value } from '../src/core/devices.js';
import { gatewayShow } from '../src/core/format.js';
import type { Advert, AdvertOptions } from '../src/mdns/responder.js';
import { createLogger, createSink, type Logger } from '../src/runtime/log.js';
import { alerter } from '../src/services/alerter.js';
import { lanAdvertising, type Advertiser } from '../src/services/lan-advert.js';
import { reporter, type PresenceSink } from '../src/services/presence.js';
import { recorder, type HistoryWriter } from '../src/services/recorder.js';

const T0 = Date.UTC(2024, 5, 1, 12, 0, 0);

beforeEach(() => {
  vi.useFakeTimers({ now: T0 });
});
afterEach(() => {
  vi.useRealTimers();
});

const info = (over: Partial<DeviceInfo> & { id: string }): DeviceInfo => ({
  name: over.id,
  type: 'number',
  unit: '',
  writable: false,
  deadband: 0,
  decimals: 1,
  staleAfterMs: 30_000,
  ...over,
});

/** A temperature sensor and a writable fan, on the system clock (so on vitest's fake time). */
function devices(opts: { staleAfterMs?: number } = {}): Devices {
  const d = new Devices({ clock: systemClock });
  d.add(info({ id: 'temperature', unit: '°C', deadband: 0.5, staleAfterMs: opts.staleAfterMs ?? 30_000 }));
  d.add(info({ id: 'fan', type: 'boolean', writable: true }), { write: async (_id, v) => v });
  return d;
}

interface LogLine {
  level: string;
  msg: string;
}

function recordingLog(): { log: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  return { log: createLogger(createSink('debug', (l) => lines.push(JSON.parse(l) as LogLine))), lines };
}

/** The courier's enqueue, recording what would be delivered. */
function outbox() {
  const sent: { to: string; body: string }[] = [];
  return { sent, enqueue: (to: string, body: string): string => `m${sent.push({ to, body })}` };
}

/** Plays the XMPP session for the reporter: online or not, a hold-back, and what was sent. */
class FakeSession extends EventEmitter<{ online: [jid: string, resumed: boolean]; offline: [] }> implements PresenceSink {
  online = true;
  slowedUntil = 0;
  readonly sent: Element[] = [];
  async send(stanza: Element): Promise<void> {
    if (!this.online) throw new Error('not connected');
    this.sent.push(stanza);
  }
  connect(resumed: boolean): void {
    this.online = true;
    this.emit('online', 'kitchen@iot.example.org/rpi', resumed);
  }
  disconnect(): void {
    this.online = false;
    this.emit('offline');
  }
}

const presences = (s: FakeSession) => s.sent.filter((p) => p.name === 'presence' && p.attrs.type === undefined);
const showOf = (p: Element | undefined): string | null => p?.getChildText('show') ?? null;
const statusOf = (p: Element | undefined): string | null => p?.getChildText('status') ?? null;

type AdvertState = Parameters<Advert['update']>[0];

/** Plays the mDNS responder: records what it was asked to advertise, sends nothing. */
function fakeAdvertiser() {
  const opened: AdvertOptions[] = [];
  const updates: AdvertState[] = [];
  let stops = 0;
  const advertise: Advertiser = (o) => {
    opened.push(o);
    return {
      update: (s) => void updates.push(s),
      stop: async () => void stops++,
      txt: () => ({}),
    };
  };
  return { advertise, opened, updates, stops: () => stops };
}

describe('LAN advert', () => {
  const setup = (opts: { readings?: boolean } = {}) => {
    const d = devices();
    const mdns = fakeAdvertiser();
    const lan = lanAdvertising({
      devices: d,
      clock: systemClock,
      show: (now) => gatewayShow(d, [], now),
      user: 'rpi-kitchen',
      jid: 'kitchen@iot.example.org',
      caps: () => ({ node: 'https://example.org/caps', ver: 'abc=' }),
      minIntervalMs: 1_000,
      readings: opts.readings ?? true,
      log: recordingLog().log,
      advertise: mdns.advertise,
    });
    return { d, mdns, lan };
  };

  it('advertises at once on start, then at most once per min interval however many readings arrive', async () => {
    const { d, mdns, lan } = setup();
    await lan.start();
    expect(mdns.opened).toHaveLength(1);
    expect(mdns.opened[0]).toMatchObject({ user: 'rpi-kitchen', jid: 'kitchen@iot.example.org', caps: { ver: 'abc=' } });
    expect(mdns.updates).toEqual([{ status: 'avail', msg: 'temperature – · fan –' }]);
    for (let i = 0; i < 5; i++) {
      vi.advanceTimersByTime(100);
      d.report('temperature', 20 + i);
    }
    vi.advanceTimersByTime(499); // 999 ms after the first advert
    expect(mdns.updates).toHaveLength(1);
    vi.advanceTimersByTime(1);
    expect(mdns.updates).toHaveLength(2);
    expect(mdns.updates[1]).toEqual({ status: 'avail', msg: 'temperature 24.0 °C · fan –' });
    await lan.stop();
  });

  it('with readings turned off, the advert keeps its status and carries an empty msg', async () => {
    const { d, mdns, lan } = setup({ readings: false });
    await lan.start();
    d.report('temperature', 21);
    vi.advanceTimersByTime(1_000);
    expect(mdns.updates).toEqual([
      { status: 'avail', msg: '' },
      { status: 'avail', msg: '' },
    ]);
    await lan.stop();
  });

  it('reads a faulty source (xa) as away, the nearest status XEP-0174 has', async () => {
    const { d, mdns, lan } = setup();
    await lan.start();
    d.fault('temperature', 'no answer');
    vi.advanceTimersByTime(1_000);
    expect(mdns.updates.at(-1)?.status).toBe('away');
    await lan.stop();
  });

  it('LAN advert never showed dnd: with an active alarm the advert status is dnd, and avail again once it clears', async () => {
    const d = devices();
    const mail = outbox();
    const alarms = alerter({ devices: d, rules: [{ device: 'temperature', above: 30, hysteresis: 1 }], owners: ['alice@iot.example.org'], enqueue: mail.enqueue, log: recordingLog().log });
    const mdns = fakeAdvertiser();
    const lan = lanAdvertising({
      devices: d,
      clock: systemClock,
      show: (now) => gatewayShow(d, alarms.active(), now),
      user: 'rpi-kitchen',
      jid: 'kitchen@iot.example.org',
      caps: () => ({ node: 'n', ver: 'v' }),
      minIntervalMs: 1_000,
      readings: true,
      log: recordingLog().log,
      advertise: mdns.advertise,
    });
    await lan.start();
    d.report('temperature', 31);
    vi.advanceTimersByTime(1_000);
    expect(alarms.active()).toEqual(['temperature']);
    expect(mdns.updates.at(-1)).toEqual({ status: 'dnd', msg: 'temperature 31.0 °C · fan –' });
    d.report('temperature', 25);
    vi.advanceTimersByTime(1_000);
    expect(mdns.updates.at(-1)?.status).toBe('avail');
    await lan.stop();
  });

  it('stops the advert on stop and publishes nothing after it', async () => {
    const { d, mdns, lan } = setup();
    await lan.start();
    d.report('temperature', 21); // a publish is now pending
    await lan.stop();
    expect(mdns.stops()).toBe(1);
    d.report('temperature', 22);
    vi.advanceTimersByTime(10_000);
    expect(mdns.updates).toHaveLength(1);
  });
});

describe('alerter', () => {
  const rules = [{ device: 'temperature', above: 30, hysteresis: 1 }];
  const owners = ['alice@iot.example.org', 'carol@iot.example.org'];

  it('tells every owner once when an alarm is raised and once when it clears, not while it wobbles', () => {
    const d = devices();
    const mail = outbox();
    const alarms = alerter({ devices: d, rules, owners, enqueue: mail.enqueue, log: recordingLog().log });
    for (const v of [29, 31, 30.5, 29.5, 31.2, 28.9]) d.report('temperature', v);
    expect(mail.sent).toEqual([
      { to: 'alice@iot.example.org', body: '⚠ temperature 31.0 °C above 30.0 °C' },
      { to: 'carol@iot.example.org', body: '⚠ temperature 31.0 °C above 30.0 °C' },
      { to: 'alice@iot.example.org', body: '✓ temperature back to 28.9 °C (alarm above 30.0 °C cleared)' },
      { to: 'carol@iot.example.org', body: '✓ temperature back to 28.9 °C (alarm above 30.0 °C cleared)' },
    ]);
    expect(alarms.active()).toEqual([]);
  });

  it('raises on a value an owner set, as on a reading', async () => {
    const d = new Devices({ clock: systemClock });
    d.add(info({ id: 'setpoint', writable: true }), { write: async (_id, v) => v });
    const mail = outbox();
    const alarms = alerter({ devices: d, rules: [{ device: 'setpoint', above: 80, hysteresis: 0 }], owners: ['alice@iot.example.org'], enqueue: mail.enqueue, log: recordingLog().log });
    await d.set('setpoint', 95);
    expect(alarms.active()).toEqual(['setpoint']);
    expect(mail.sent.map((m) => m.body)).toEqual(['⚠ setpoint 95.0 above 80.0']);
  });

  it('dnd stuck forever after a device was removed: removing a device with an active alarm ends it, tells each owner once, and presence leaves dnd', async () => {
    const d = devices();
    const mail = outbox();
    const alarms = alerter({ devices: d, rules, owners, enqueue: mail.enqueue, log: recordingLog().log });
    const session = new FakeSession();
    const presence = reporter({
      devices: d,
      session,
      clock: systemClock,
      policy: { minIntervalMs: 1_000, heartbeatMs: 3_600_000 },
      log: recordingLog().log,
      show: (now) => gatewayShow(d, alarms.active(), now),
    });
    d.report('temperature', 31);
    presence.start();
    expect(showOf(presences(session).at(-1))).toBe('dnd');
    mail.sent.length = 0;

    d.remove('temperature'); // a bridge's new hello without this channel
    expect(alarms.active()).toEqual([]);
    expect(mail.sent).toEqual(
      owners.map((to) => ({ to, body: '✓ temperature was removed by its driver; alarm above 30.0 °C cleared (no reading showed it recover)' })),
    );
    vi.advanceTimersByTime(1_000);
    const last = presences(session).at(-1);
    expect(showOf(last)).toBeNull();
    expect(statusOf(last)).toBe('fan –');
    await presence.stop();
  });

  it('says nothing when a device without an active alarm is removed', () => {
    const d = devices();
    const mail = outbox();
    alerter({ devices: d, rules, owners, enqueue: mail.enqueue, log: recordingLog().log });
    d.report('temperature', 31);
    d.report('temperature', 20); // raised and cleared again
    mail.sent.length = 0;
    d.remove('temperature');
    d.remove('fan');
    expect(mail.sent).toEqual([]);
  });
});

describe('presence reporter', () => {
  const policy = { minIntervalMs: 1_000, heartbeatMs: 60_000 };
  const setup = (opts: { staleAfterMs?: number } = {}) => {
    const d = devices({ staleAfterMs: opts.staleAfterMs ?? 3_600_000 });
    const session = new FakeSession();
    const presence = reporter({ devices: d, session, clock: systemClock, policy, log: recordingLog().log, show: (now) => gatewayShow(d, [], now) });
    return { d, session, presence };
  };

  it('sends the first presence at once on start', async () => {
    const { d, session, presence } = setup();
    d.report('temperature', 21);
    presence.start();
    expect(presences(session)).toHaveLength(1);
    expect(statusOf(presences(session)[0])).toBe('temperature 21.0 °C · fan –');
    expect(showOf(presences(session)[0])).toBeNull();
    await presence.stop();
  });

  it('holds back a change inside the deadband until the heartbeat', async () => {
    const { d, session, presence } = setup();
    d.report('temperature', 21);
    presence.start();
    vi.advanceTimersByTime(5_000);
    d.report('temperature', 21.3); // shown differently, but less than the 0.5 deadband
    vi.advanceTimersByTime(54_999);
    expect(presences(session)).toHaveLength(1);
    vi.advanceTimersByTime(1);
    expect(presences(session)).toHaveLength(2);
    expect(statusOf(presences(session)[1])).toBe('temperature 21.3 °C · fan –');
    await presence.stop();
  });

  it('sends a change beyond the deadband no sooner than the min interval after the last presence', async () => {
    const { d, session, presence } = setup();
    d.report('temperature', 21);
    presence.start();
    vi.advanceTimersByTime(200);
    d.report('temperature', 22);
    vi.advanceTimersByTime(799);
    expect(presences(session)).toHaveLength(1);
    vi.advanceTimersByTime(1);
    expect(presences(session)).toHaveLength(2);
    expect(statusOf(presences(session)[1])).toBe('temperature 22.0 °C · fan –');
    await presence.stop();
  });

  it('repeats an unchanged presence every heartbeat', async () => {
    const { d, session, presence } = setup();
    d.report('temperature', 21);
    presence.start();
    vi.advanceTimersByTime(59_999);
    expect(presences(session)).toHaveLength(1);
    vi.advanceTimersByTime(1);
    expect(presences(session)).toHaveLength(2);
    vi.advanceTimersByTime(60_000);
    expect(presences(session)).toHaveLength(3);
    expect(new Set(presences(session).map(statusOf))).toEqual(new Set(['temperature 21.0 °C · fan –']));
    await presence.stop();
  });

  it('shows away as soon as a reading goes stale, with no reading to prompt it', async () => {
    const { d, session, presence } = setup({ staleAfterMs: 30_000 });
    d.report('temperature', 21);
    presence.start();
    vi.advanceTimersByTime(30_000);
    expect(presences(session)).toHaveLength(1);
    vi.advanceTimersByTime(1);
    expect(presences(session)).toHaveLength(2);
    expect(showOf(presences(session)[1])).toBe('away');
    await presence.stop();
  });

  it("reports an owner's command at once, inside the min interval", async () => {
    const { d, session, presence } = setup();
    presence.start();
    vi.advanceTimersByTime(100);
    await d.set('fan', 'on');
    expect(presences(session)).toHaveLength(2);
    expect(statusOf(presences(session)[1])).toBe('temperature – · fan on');
    await presence.stop();
  });

  it('holds presence back while the server asked to slow down, then sends it', async () => {
    const { d, session, presence } = setup();
    d.report('temperature', 21);
    session.slowedUntil = performance.now() + 5_000; // on the monotonic clock, as the session gives it
    presence.start();
    expect(presences(session)).toHaveLength(0);
    expect(presence.stats.heldBack).toBe(1);
    vi.advanceTimersByTime(4_999);
    expect(presences(session)).toHaveLength(0);
    vi.advanceTimersByTime(1);
    expect(presences(session)).toHaveLength(1);
    await presence.stop();
  });

  it("does not hold back an owner's command while slowed down", async () => {
    const { d, session, presence } = setup();
    session.slowedUntil = performance.now() + 60_000;
    presence.start();
    await d.set('fan', 'on');
    expect(presences(session).map(statusOf)).toEqual(['temperature – · fan on']);
    await presence.stop();
  });

  it('sends at once on a new session, but not on a resumed one, which still shows the last presence', async () => {
    const { d, session, presence } = setup();
    d.report('temperature', 21);
    presence.start();
    session.disconnect();
    vi.advanceTimersByTime(100);
    session.connect(true);
    expect(presences(session)).toHaveLength(1);
    session.disconnect();
    session.connect(false);
    expect(presences(session)).toHaveLength(2);
    await presence.stop();
  });

  it('says unavailable on stop, and sends nothing after it', async () => {
    const { d, session, presence } = setup();
    presence.start();
    await presence.stop();
    const last = session.sent.at(-1);
    expect(last?.attrs.type).toBe('unavailable');
    expect(statusOf(last)).toBe('gateway stopped');
    const count = session.sent.length;
    d.report('temperature', 30);
    vi.advanceTimersByTime(120_000);
    expect(session.sent).toHaveLength(count);
  });
});

describe('history recorder', () => {
  /** Plays the store's history: keeps rows, or throws while `failing`. */
  function history() {
    const rows: { device: string; t: number; value: Value }[] = [];
    const writer: HistoryWriter & { failing: boolean } = {
      failing: false,
      record(device: string, t: number, value: Value): void {
        if (writer.failing) throw new Error('SQLITE_FULL: database or disk is full');
        rows.push({ device, t: t - T0, value });
      },
    };
    return { rows, writer };
  }

  const setup = () => {
    const d = devices();
    const h = history();
    const log = recordingLog();
    const r = recorder({ devices: d, history: h.writer, clock: systemClock, intervalMs: 10_000, log: log.log });
    r.start();
    return { d, h, log, r };
  };

  it('records a number at most once per interval', () => {
    const { d, h, r } = setup();
    d.report('temperature', 21);
    vi.advanceTimersByTime(5_000);
    d.report('temperature', 22);
    vi.advanceTimersByTime(4_999);
    d.report('temperature', 23);
    vi.advanceTimersByTime(1);
    d.report('temperature', 24);
    expect(h.rows).toEqual([
      { device: 'temperature', t: 0, value: 21 },
      { device: 'temperature', t: 10_000, value: 24 },
    ]);
    r.stop();
  });

  it('records every change of a switch at once, by reading or by command, and not a repeat', async () => {
    const { d, h, r } = setup();
    d.report('fan', false);
    vi.advanceTimersByTime(10);
    await d.set('fan', 'on');
    vi.advanceTimersByTime(10);
    d.report('fan', true);
    d.report('fan', false);
    expect(h.rows.map((x) => `${x.t}:${String(x.value)}`)).toEqual(['0:false', '10:true', '20:false']);
    r.stop();
  });

  it('a failing history writer does not throw into the readings, is logged once per hundred failures, and recording resumes', () => {
    const { d, h, log, r } = setup();
    h.writer.failing = true;
    for (let i = 0; i < 150; i++) d.report('fan', i % 2 === 0);
    expect(d.listenerErrors).toBe(0);
    expect(d.get('fan')?.value).toBe(false);
    expect(log.lines.filter((l) => l.level === 'error').map((l) => l.msg)).toEqual(['could not record history', 'could not record history']);
    h.writer.failing = false;
    d.report('fan', true);
    expect(h.rows).toEqual([{ device: 'fan', t: 0, value: true }]);
    r.stop();
  });

  it('records nothing once stopped', () => {
    const { d, h, r } = setup();
    r.stop();
    d.report('temperature', 21);
    expect(h.rows).toEqual([]);
  });
});
