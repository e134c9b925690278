// History as a person reads it in chat: the pure arithmetic (windows, buckets,
// sparklines, time switched on, downsampling), then whole replies computed
// from a real SQLite store in a temp dir, with a fixed clock.

import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import xml from '@xmpp/xml';
import type { Element } from 'ltx';
import { afterEach, describe, expect, it } from 'vitest';
import { openStore, type Store } from '../src/store/db.js';
import { Devices, type DeviceInfo } from '../src/core/devices.js';
import { clockAt } from '../src/core/clock.js';
import {
  bucketMeans,
  DAY,
  downsample,
  formatWindow,
  HOUR,
  MINUTE,
  onTime,
  parseWindow,
  runs,
  sparkline,
  WEEK,
  type HistoryReader,
} from '../src/core/history.js';
import { execute, helpText, type ChatContext } from '../src/chat/commands.js';
import { HISTORY_USAGE, parse } from '../src/chat/grammar.js';
import { chatHandler } from '../src/chat/handler.js';
import { silentLogger } from '../src/runtime/log.js';

const NOW = 1_700_000_000_000; // 2023-11-14T22:13:20Z

describe('windows', () => {
  it.each([
    ['30m', 30 * MINUTE],
    ['6h', 6 * HOUR],
    ['24h', DAY],
    ['7d', 7 * DAY],
    ['2w', 2 * WEEK],
    ['6 hours', 6 * HOUR],
    ['90MIN', 90 * MINUTE],
  ])('parses %j', (text, ms) => {
    expect(parseWindow(text)).toBe(ms);
  });

  it.each(['', '0h', 'h', '6', '6y', '1.5h', '-2h', '12345h', 'soon'])('refuses %j', (text) => {
    expect(parseWindow(text)).toBeUndefined();
  });

  it('writes windows the way people say them', () => {
    expect([30 * MINUTE, 6 * HOUR, DAY, 2 * DAY, 36 * HOUR, 2 * WEEK, 90_000].map(formatWindow)).toEqual(['30 min', '6 h', '24 h', '2 d', '36 h', '14 d', '90 s']);
  });
});

describe('buckets and sparklines', () => {
  it('averages each bucket, leaves empty ones undefined, and counts both bounds in', () => {
    const pts = [
      { t: 0, value: 1 },
      { t: 9, value: 3 }, // bucket 0 of [0, 40) in 4
      { t: 25, value: 10 },
      { t: 40, value: 7 }, // `to` itself: the last bucket
      { t: 41, value: 1000 }, // outside
      { t: 30, value: Number.NaN }, // not a number to average
      { t: 31, value: 'x' },
    ];
    expect(bucketMeans(pts, 0, 40, 4)).toEqual([2, undefined, 10, 7]);
  });

  it('draws the lowest mean as ▁, the highest as █, and gaps as ·', () => {
    expect(sparkline([0, 1, 2, 3, 4, 5, 6, 7])).toBe('▁▂▃▄▅▆▇█');
    expect(sparkline([10, undefined, 20, undefined])).toBe('▁·█·');
    expect(sparkline([5, 5, undefined])).toBe('▄▄·'); // flat: the middle
    expect(sparkline([undefined, undefined])).toBe('··');
    expect(sparkline([0, 0.5, 1], { min: 0, max: 1 })).toBe('▁▅█');
  });

  it('counts the time a switch was on, carrying the state in from before the window', () => {
    const pts = [
      { t: 10, value: false },
      { t: 20, value: false }, // the same again (a restart): no change
      { t: 25, value: true },
    ];
    const known = onTime(pts, 0, 40, 4, true);
    expect(known.buckets).toEqual([1, 0, 0.5, 1]);
    expect(known.fraction).toBeCloseTo(25 / 40);
    expect(known.changes).toBe(2);
    expect(known.count).toBe(3);
    const unknownStart = onTime(pts, 0, 40, 4);
    expect(unknownStart.buckets).toEqual([undefined, 0, 0.5, 1]);
    expect(unknownStart.fraction).toBeCloseTo(15 / 30);
    expect(unknownStart.changes).toBe(1);
  });

  it('merges runs of the same text, newest first', () => {
    const pts = [
      { t: 5, value: 'eco' },
      { t: 6, value: 'eco' },
      { t: 7, value: 'away' },
      { t: 8, value: 'eco' },
    ];
    expect(runs(pts, { t: 1, value: 'eco' })).toEqual([
      { value: 'eco', since: 8 },
      { value: 'away', since: 7 },
      { value: 'eco', since: 1 },
    ]);
  });

  it('downsamples evenly, keeping the oldest and the newest', () => {
    const items = Array.from({ length: 10 }, (_, i) => i);
    expect(downsample(items, 4)).toEqual([0, 3, 6, 9]);
    expect(downsample(items, 10)).toEqual(items);
    expect(downsample(items, 1)).toEqual([9]);
    expect(downsample(Array.from({ length: 10_080 }, (_, i) => i), 1000)).toHaveLength(1000);
  });
});

describe('history in chat', () => {
  const base = { writable: false, deadband: 0, decimals: 1, staleAfterMs: 60_000 };
  const infos: DeviceInfo[] = [
    { ...base, id: 'temperature', name: 'temperature', type: 'number', unit: '°C' },
    { ...base, id: 'humidity', name: 'humidity', type: 'number', unit: '%' },
    { ...base, id: 'fan', name: 'fan', type: 'boolean', unit: '', decimals: 0 },
    { ...base, id: 'mode', name: 'mode', type: 'string', unit: '' },
  ];
  const devices = new Devices({ clock: clockAt(() => NOW) });
  for (const info of infos) devices.add(info);
  const stores: Store[] = [];
  afterEach(() => {
    for (const s of stores.splice(0)) s.close();
  });

  /** A store with a month's retention (so the chat's own cap is what is tested), filled and flushed to disk. */
  function store(): Store {
    const s = openStore({ dir: mkdtempSync(join(tmpdir(), 'xia-history-')), now: () => NOW, historyRetentionMs: 30 * DAY, onError: (e) => { throw e; } });
    stores.push(s);
    const from = NOW - DAY;
    // One reading a minute for a day, constant within each hour at 20 + (hour % 8) * 0.5; none in hours 5 and 6.
    for (let k = 0; k < 1440; k++) {
      const hour = Math.floor(k / 60);
      if (hour === 5 || hour === 6) continue;
      s.history.record('temperature', from + k * MINUTE, 20 + (hour % 8) * 0.5);
    }
    s.history.record('temperature', from - 1, 100); // just before the window
    s.history.record('temperature', NOW - 8 * DAY, -40); // kept by the store, but older than the chat's 7 d
    // A switch, recorded when it changes: on since before the window, a repeat after a restart.
    for (const [ago, v] of [[30, true], [20, false], [14, true], [11, false], [5, false], [2.5, true]] as const) s.history.record('fan', NOW - ago * HOUR, v);
    for (const [ago, v] of [[30, 'eco'], [20, 'away'], [15, 'eco'], [9, 'comfort'], [5, 'comfort'], [2, 'eco']] as const) s.history.record('mode', NOW - ago * HOUR, v);
    s.history.flush();
    return s;
  }
  const ctx = (s: Store, more: Partial<ChatContext> = {}): ChatContext => ({ devices, role: 'viewer', now: NOW, history: s.history, historyRetentionMs: 7 * DAY, ...more });
  const ask = (text: string, c: ChatContext) => execute(parse(text, devices.ids()), c);

  it('reads from the SQLite store: a query returns the stored readings in the window', () => {
    const reader: HistoryReader = store().history;
    expect(reader.query('temperature', NOW - 60_000, NOW)).toEqual([{ t: NOW - 60_000, value: 23.5 }]);
  });

  it('sums up a number over 24 h: sparkline with gaps, min/avg/max in its unit, and the count', async () => {
    expect(await ask('history temperature', ctx(store()))).toBe(
      'temperature, last 24 h: ▁▂▃▄▅··█▁▂▃▄▅▆▇█▁▂▃▄▅▆▇█ min 20.0 °C · avg 21.7 °C · max 23.5 °C (1,320 readings)',
    );
  });

  it('sums up the window asked for (6 h): its own 24 buckets, min/avg/max and count', async () => {
    expect(await ask('history temperature 6h', ctx(store()))).toBe(
      'temperature, last 6 h: ▁▁▁▁▂▂▂▂▄▄▄▄▅▅▅▅▇▇▇▇████ min 21.0 °C · avg 22.3 °C · max 23.5 °C (360 readings)',
    );
  });

  it('cuts a window longer than the retention, and says so', async () => {
    const reply = await ask('history temperature 2w', ctx(store()));
    expect(reply).toMatch(/^temperature, last 7 d \(only 7 d are kept\): \S{24} min 20\.0 °C · avg 21\.\d °C · max 100\.0 °C \(1,321 readings\)$/);
    // Without a retention there is nothing to cut: the reading from 8 days ago is in.
    expect(await ask('history temperature 2w', ctx(store(), { historyRetentionMs: undefined }))).toMatch(/^temperature, last 14 d: .* min -40\.0 °C .*\(1,322 readings\)$/);
  });

  it('shows a switch as time on per bucket, with the share of time and the changes', async () => {
    expect(await ask('history fan', ctx(store()))).toBe('fan, last 24 h: ████▁▁▁▁▁▁███▁▁▁▁▁▁▁▁▅██ on 40 % of the time, 4 changes');
    // On all along: the reading before the window is enough to know.
    expect(await ask('history fan 2h', ctx(store()))).toBe('fan, last 2 h: ████████████████████████ on 100 % of the time, 0 changes');
  });

  it('lists the latest text values with their times', async () => {
    expect(await ask('history mode', ctx(store()))).toBe('mode, last 24 h: eco since 2 h ago; before: comfort 9 h ago, eco 15 h ago, away 20 h ago, … (4 changes)');
    expect(await ask('history mode 90m', ctx(store()))).toBe('mode, last 90 min: eco since 2 h ago, no changes');
  });

  it('says so when there is nothing stored', async () => {
    const s = store();
    expect(await ask('history humidity', ctx(s))).toBe('humidity: no readings stored in the last 24 h.');
    expect(await ask('history humidity 3w', ctx(s))).toBe('humidity: no readings stored in the last 7 d (only 7 d are kept).');
    const empty = openStore({ dir: mkdtempSync(join(tmpdir(), 'xia-history-')), now: () => NOW });
    stores.push(empty);
    expect(await ask('history fan', ctx(empty))).toBe('fan: no readings stored in the last 24 h.');
    expect(await ask('history mode', ctx(empty))).toBe('mode: no readings stored in the last 24 h.');
  });

  it('answers an unknown device like get does, and a bad or missing window with the usage', async () => {
    const c = ctx(store());
    expect(await ask('history temprature', c)).toBe('No device "temprature". Did you mean temperature?');
    expect(await ask('history temprature', c)).toBe(await ask('get temprature', c));
    expect(await ask('history', c)).toBe(HISTORY_USAGE);
    expect(await ask('history temperature soon', c)).toBe(HISTORY_USAGE);
    expect(await ask('history temperature 0h', c)).toBe(HISTORY_USAGE);
  });

  it('is for readers only, and says so when the history cannot be read', async () => {
    const s = store();
    expect(await ask('history fan', ctx(s, { role: 'owner' }))).toMatch(/^fan, last 24 h: /);
    expect(await ask('history fan', ctx(s, { role: 'stranger' }))).toBe('Sorry, this gateway only answers its owners.');
    const broken: HistoryReader = { query: () => { throw new Error('disk I/O error'); } };
    expect(await ask('history fan', ctx(s, { history: broken }))).toBe('fan: the history could not be read (disk I/O error).');
  });

  it('lists the command in help only where history is kept', async () => {
    const s = store();
    expect(await ask('help', ctx(s))).toContain('  history <device> [window] — past readings, e.g. "history temperature 6h"');
    expect(await ask('help', ctx(s, { history: undefined }))).not.toContain('history');
    expect(helpText(devices, 'viewer', { history: true })).toContain('history <device> [window]');
  });

  it('gets the reader and the retention from the chat handler deps', async () => {
    const s = store();
    const sent: Element[] = [];
    const handler = chatHandler({ devices, clock: clockAt(() => NOW), send: async (m) => void sent.push(m), log: silentLogger, history: s.history, historyRetentionMs: DAY });
    await handler(xml('message', { type: 'chat', from: 'alice@iot.test/phone' }, xml('body', {}, 'history mode 2d')), 'viewer');
    expect(sent.map((m) => m.getChildText('body'))).toEqual(['mode, last 24 h (only 24 h are kept): eco since 2 h ago; before: comfort 9 h ago, eco 15 h ago, away 20 h ago, … (4 changes)']);
  });
});
