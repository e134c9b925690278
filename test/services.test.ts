// The services between core and session, each driven alone: real Devices,
// vitest's fake timers behind systemClock, and small fakes for the session,
// the outbox, the history and the mDNS responder. Nothing here touches the network.

import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { systemClock } from '../src/core/clock.js';
import { Devices, type DeviceInfo } from '../src/core/devices.js';
import { gatewayShow } from '../src/core/format.js';
import type { Advert, AdvertOptions } from '../src/mdns/responder.js';
import { createLogger, createSink, type Logger } from '../src/runtime/log.js';
import { alerter } from '../src/services/alerter.js';
import { lanAdvertising, type Advertiser } from '../src/services/lan-advert.js';

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
function devices(): Devices {
  const d = new Devices({ clock: systemClock });
  d.add(info({ id: 'temperature', unit: '°C', deadband: 0.5 }));
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
  return { sent, enqueue: (to: string, body: string): void => void sent.push({ to, body }) };
}

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
  const setup = (opts: { readings?: boolean; alarms?: () => readonly string[] } = {}) => {
    const d = devices();
    const mdns = fakeAdvertiser();
    const active = opts.alarms ?? (() => []);
    const lan = lanAdvertising({
      devices: d,
      clock: systemClock,
      show: (now) => gatewayShow(d, active(), now),
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
