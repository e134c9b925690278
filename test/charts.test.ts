// Charts without a server: the XEP-0363 stanzas read strictly, the uploader's
// lookup, limits and failures against a scripted server, the chart service's
// answers (text then image, or text with the reason), alarm charts, the
// `chart` alias and the `charts` config keys.

import xml from '@xmpp/xml';
import type { Element } from 'ltx';
import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { parseSlot, slotRequest, uploadServiceOf, NS_UPLOAD, SlotError } from '../src/xep/upload.js';
import { NS_OOB } from '../src/xep/oob.js';
import { isUploadError, uploader, type Put } from '../src/services/uploader.js';
import { charts, ALARM_CHART_INTERVAL_MS, type ChartsDeps } from '../src/services/charts.js';
import { StanzaError } from '../src/core/errors.js';
import { Devices } from '../src/core/devices.js';
import { clockAt } from '../src/core/clock.js';
import { HOUR, MINUTE, type HistoryPoint } from '../src/core/history.js';
import { silentLogger } from '../src/runtime/log.js';
import { parse } from '../src/chat/grammar.js';
import { checkConfig } from '../src/config/schema.js';
import type { ChartRequest } from '../src/chart/render.js';

const info = (features: string[], max?: string): Element =>
  xml(
    'iq',
    { type: 'result' },
    xml(
      'query',
      { xmlns: 'http://jabber.org/protocol/disco#info' },
      ...features.map((f) => xml('feature', { var: f })),
      max === undefined
        ? undefined
        : xml('x', { xmlns: 'jabber:x:data', type: 'result' }, xml('field', { var: 'FORM_TYPE', type: 'hidden' }, xml('value', {}, NS_UPLOAD)), xml('field', { var: 'max-file-size' }, xml('value', {}, max))),
    ),
  );

const slot = (put: string, get: string, headers: Record<string, string> = {}): Element =>
  xml('iq', { type: 'result' }, xml('slot', { xmlns: NS_UPLOAD }, xml('put', { url: put }, ...Object.entries(headers).map(([name, v]) => xml('header', { name }, v))), xml('get', { url: get })));

describe('XEP-0363 stanzas', () => {
  it('knows an upload service by its feature and reads its max-file-size', () => {
    expect(uploadServiceOf('upload.example', info([NS_UPLOAD], '10485760'))).toEqual({ jid: 'upload.example', maxFileSize: 10485760 });
    expect(uploadServiceOf('upload.example', info([NS_UPLOAD]))).toEqual({ jid: 'upload.example' });
    expect(uploadServiceOf('upload.example', info([NS_UPLOAD], 'lots'))).toEqual({ jid: 'upload.example', maxFileSize: undefined });
    expect(uploadServiceOf('muc.example', info(['http://jabber.org/protocol/muc']))).toBeUndefined();
  });

  it('asks for a slot with the name, size and type', () => {
    const r = slotRequest('upload.example', { name: 'a.png', size: 123, contentType: 'image/png' }).getChild('request', NS_UPLOAD)!;
    expect(r.attrs).toMatchObject({ filename: 'a.png', size: '123', 'content-type': 'image/png' });
  });

  it('keeps only the headers the XEP allows, without line breaks, and only HTTPS URLs', () => {
    const s = parseSlot(slot('https://u.example/p', 'https://u.example/g', { Authorization: 'Bearer x\r\nHost: evil', Cookie: 'c=1', 'X-Other': 'no', Host: 'evil' }));
    expect(s).toEqual({ put: 'https://u.example/p', get: 'https://u.example/g', headers: { Authorization: 'Bearer x Host: evil', Cookie: 'c=1' } });
    expect(() => parseSlot(slot('http://u.example/p', 'https://u.example/g'))).toThrow(SlotError);
    expect(() => parseSlot(slot('https://u.example/p', 'javascript:alert(1)'))).toThrow('not HTTPS');
    expect(() => parseSlot(xml('iq', { type: 'result' }))).toThrow('no slot');
  });
});

/** A scripted server: disco of the domain and its items, and slot requests. */
function server(opts: { items?: string[]; infos?: Record<string, Element>; slot?: () => Element } = {}) {
  const asked: Element[] = [];
  const request = async (iq: Element): Promise<Element> => {
    asked.push(iq);
    const to = iq.attrs.to as string;
    const child = iq.getChildElements()[0]!;
    if (child.getNS() === 'http://jabber.org/protocol/disco#items') {
      return xml('iq', { type: 'result' }, xml('query', { xmlns: child.getNS() }, ...(opts.items ?? ['upload.iot.test']).map((jid) => xml('item', { jid }))));
    }
    if (child.getNS() === 'http://jabber.org/protocol/disco#info') {
      const found = opts.infos?.[to] ?? (to === 'upload.iot.test' ? info([NS_UPLOAD], '100000') : info([]));
      return found;
    }
    if (child.name === 'request') return (opts.slot ?? (() => slot('https://127.0.0.1:1/put', 'https://127.0.0.1:1/get', { Authorization: 'Bearer t' })))();
    throw new StanzaError('service-unavailable');
  };
  return { request, asked };
}

function makeUploader(s: ReturnType<typeof server>, put: Put = async () => 201, ca?: string) {
  const session = new EventEmitter();
  const up = uploader({ request: s.request, domain: 'iot.test', ca, session: session as never, log: silentLogger, put });
  return { up, session };
}

const png = (n: number): { name: string; bytes: Buffer; contentType: string } => ({ name: 'c.png', bytes: Buffer.alloc(n), contentType: 'image/png' });

describe('uploader', () => {
  it('finds the service among the domain items, once per session', async () => {
    const s = server({ items: ['conference.iot.test', 'upload.iot.test'] });
    const { up, session } = makeUploader(s);
    expect(await up.service()).toEqual({ jid: 'upload.iot.test', maxFileSize: 100000 });
    expect(await up.service()).toEqual({ jid: 'upload.iot.test', maxFileSize: 100000 });
    const lookups = s.asked.length;
    session.emit('online', 'gw@iot.test/a', true); // resumed: the same stream, the same server
    await up.service();
    expect(s.asked.length).toBe(lookups);
    session.emit('online', 'gw@iot.test/a', false); // a new session: looked up again
    await up.service();
    expect(s.asked.length).toBe(2 * lookups);
  });

  it('says when there is none', async () => {
    const s = server({ items: ['conference.iot.test'] });
    const { up } = makeUploader(s);
    expect(await up.service()).toBeUndefined();
    const err = await up.upload(png(10)).catch((e: unknown) => e);
    expect(isUploadError(err) && err.code).toBe('no-service');
  });

  it('puts the file with the slot headers and the configured CA, and gives the GET URL', async () => {
    const puts: { url: string; headers: Record<string, string>; ca?: string; size: number }[] = [];
    const { up } = makeUploader(server(), async (url, body, headers, ca) => (puts.push({ url, headers, ca, size: body.length }), 201), 'PEM');
    expect(await up.upload(png(500))).toBe('https://127.0.0.1:1/get');
    expect(puts).toEqual([{ url: 'https://127.0.0.1:1/put', headers: { Authorization: 'Bearer t', 'Content-Type': 'image/png' }, ca: 'PEM', size: 500 }]);
  });

  it('does not ask for a slot for a file over the advertised limit', async () => {
    const s = server();
    const { up } = makeUploader(s);
    const err = await up.upload(png(200_000)).catch((e: unknown) => e);
    expect(isUploadError(err) && [err.code, err.reason]).toEqual(['too-large', "the image (195 KiB) is larger than the server's upload limit (98 KiB)"]);
    expect(s.asked.some((iq) => iq.getChild('request'))).toBe(false);
  });

  it('says why a slot was refused, and a failed PUT', async () => {
    const quota = makeUploader(server({ slot: () => { throw new StanzaError('resource-constraint', 'Daily quota reached'); } })).up;
    const e1 = await quota.upload(png(10)).catch((e: unknown) => e);
    expect(isUploadError(e1) && [e1.code, e1.reason]).toEqual(['refused', 'the server refused the upload (Daily quota reached)']);
    const broken = makeUploader(server(), async () => 500).up;
    const e2 = await broken.upload(png(10)).catch((e: unknown) => e);
    expect(isUploadError(e2) && [e2.code, e2.reason]).toEqual(['http', 'the upload was refused (HTTP 500)']);
    const down = makeUploader(server(), async () => { throw new Error('connect ECONNREFUSED'); }).up;
    const e3 = await down.upload(png(10)).catch((e: unknown) => e);
    expect(isUploadError(e3) && e3.code).toBe('unreachable');
  });
});

const NOW = Date.parse('2026-12-01T12:00:00Z');

function chartsFixture(over: Partial<ChartsDeps> & { readings?: HistoryPoint[]; service?: boolean; fail?: Error } = {}) {
  const clock = clockAt(() => now);
  let now = NOW;
  const devices = new Devices({ clock });
  devices.add({ id: 'temperature', name: 'temperature', type: 'number', unit: '°C', writable: false, deadband: 0, decimals: 1, staleAfterMs: 30_000 });
  devices.add({ id: 'label', name: 'label', type: 'string', unit: '', writable: false, deadband: 0, decimals: 1, staleAfterMs: 30_000 });
  const readings = over.readings ?? Array.from({ length: 60 }, (_, i) => ({ t: NOW - (60 - i) * MINUTE, value: 20 + i / 10 }));
  const sent: Element[] = [];
  const uploads: { name: string; size: number }[] = [];
  const drawn: ChartRequest[] = [];
  let loads = 0;
  const deps: ChartsDeps = {
    config: { enabled: true, alarms: true, timeZone: 'UTC' },
    devices,
    history: { query: (id, from, to) => (id === 'temperature' ? readings.filter((p) => p.t >= from && p.t <= to) : []) },
    historyRetentionMs: 7 * 24 * HOUR,
    historyIntervalMs: MINUTE,
    rules: [{ device: 'temperature', above: 30, hysteresis: 0 }],
    owners: () => ['alice@iot.test', 'carol@iot.test'],
    uploads: {
      service: async () => (over.service === false ? undefined : { jid: 'upload.iot.test' }),
      upload: async (f) => {
        if (over.fail) throw over.fail;
        uploads.push({ name: f.name, size: f.bytes.length });
        return `https://up.example/${uploads.length}/${f.name}`;
      },
    },
    send: async (m) => void sent.push(m),
    online: () => true,
    clock,
    log: silentLogger,
    load: async () => {
      loads++;
      return (req) => (drawn.push(req), Buffer.from('png'));
    },
    ...over,
  };
  const c = charts(deps);
  const bodies = (): string[] => sent.map((m) => m.getChildText('body') ?? '');
  return { c, sent, bodies, uploads, drawn, devices, loads: () => loads, advance: (ms: number) => (now += ms) };
}

const ask = { to: 'alice@iot.test/phone', text: 'temperature, last 24 h: ▁▂▃', device: 'temperature', windowMs: 24 * HOUR, explicit: false };

describe('chart answers', () => {
  it('sends the text, then the image as a message whose body is exactly its URL, with oob', async () => {
    const f = chartsFixture();
    await f.c.answer({ ...ask, thread: 't1' });
    expect(f.bodies()).toEqual(['temperature, last 24 h: ▁▂▃', 'https://up.example/1/temperature-24h-20261201-120000.png']);
    const image = f.sent[1]!;
    expect(image.attrs).toMatchObject({ type: 'chat', to: 'alice@iot.test/phone' });
    expect(image.getChild('x', NS_OOB)?.getChildText('url')).toBe(image.getChildText('body'));
    expect(f.sent.map((m) => m.getChildText('thread'))).toEqual(['t1', 't1']);
    // The chart shows what was asked, the alarm threshold and the zone of the config.
    expect(f.drawn[0]).toMatchObject({ from: NOW - 24 * HOUR, to: NOW, thresholds: [{ side: 'above', value: 30 }], timeZone: 'UTC', gapMs: 2 * MINUTE });
    expect(f.drawn[0]!.points).toHaveLength(60);
  });

  it('loads the renderer at the first chart only', async () => {
    const f = chartsFixture();
    expect(f.loads()).toBe(0);
    await f.c.answer(ask);
    await f.c.answer(ask);
    expect(f.loads()).toBe(1);
  });

  it('answers with the text alone where the server has no upload, and says so when "chart" was typed', async () => {
    const f = chartsFixture({ service: false });
    await f.c.answer(ask);
    await f.c.answer({ ...ask, explicit: true });
    expect(f.bodies()).toEqual([ask.text, `${ask.text}\nNo chart image: this server offers no file upload (XEP-0363).`]);
    expect(f.loads()).toBe(0);
  });

  it('adds the reason to the text when the upload fails', async () => {
    const { UploadError } = await import('../src/services/uploader.js');
    const f = chartsFixture({ fail: new UploadError('refused', 'the server refused the upload (Daily quota reached)') });
    await f.c.answer(ask);
    expect(f.bodies()).toEqual([`${ask.text}\nNo chart image: the server refused the upload (Daily quota reached).`]);
    expect(f.sent[0]!.getChild('x', NS_OOB)).toBeUndefined();
  });

  it('draws nothing for text devices, unknown devices and windows without readings', async () => {
    const f = chartsFixture({ readings: [] });
    await f.c.answer({ ...ask, device: 'label' });
    await f.c.answer({ ...ask, device: 'nope' });
    await f.c.answer(ask);
    expect(f.bodies()).toEqual([ask.text, ask.text, ask.text]);
    expect(f.uploads).toHaveLength(0);
  });

  it('follows charts.enabled: false with text, and says so for "chart"', async () => {
    const f = chartsFixture({ config: { enabled: false, alarms: true, timeZone: 'UTC' } });
    await f.c.answer(ask);
    await f.c.answer({ ...ask, explicit: true });
    expect(f.bodies()).toEqual([ask.text, `${ask.text}\nNo chart image: charts are turned off on this gateway (charts.enabled).`]);
  });

  it('draws one chart at a time and tells the fourth waiting one that it is busy', async () => {
    const f = chartsFixture();
    await Promise.all(Array.from({ length: 5 }, () => f.c.answer(ask)));
    const busy = f.bodies().filter((b) => b.endsWith('No chart image: the chart could not be made (the gateway is busy drawing other charts).'));
    expect(busy).toHaveLength(2);
    expect(f.uploads).toHaveLength(3);
  });
});

describe('alarm charts', () => {
  const settle = () => new Promise((r) => setTimeout(r, 20));

  it("sends every owner the device's last hour, with the reading that raised the alarm", async () => {
    const f = chartsFixture();
    f.devices.report('temperature', 31.5, NOW);
    f.c.afterAlarm('temperature');
    await settle();
    expect(f.uploads).toHaveLength(1);
    expect(f.sent.map((m) => [m.attrs.to, m.getChildText('body')])).toEqual([
      ['alice@iot.test', 'https://up.example/1/temperature-1h-20261201-120000.png'],
      ['carol@iot.test', 'https://up.example/1/temperature-1h-20261201-120000.png'],
    ]);
    expect(f.drawn[0]!.to - f.drawn[0]!.from).toBe(HOUR);
    expect(f.drawn[0]!.points.at(-1)).toEqual({ t: NOW, value: 31.5 });
  });

  it('sends at most one per device every ten minutes, none while offline or turned off', async () => {
    const f = chartsFixture();
    f.c.afterAlarm('temperature');
    f.c.afterAlarm('temperature');
    await settle();
    expect(f.uploads).toHaveLength(1);
    f.advance(ALARM_CHART_INTERVAL_MS);
    f.c.afterAlarm('temperature');
    await settle();
    expect(f.uploads).toHaveLength(2);
    const offline = chartsFixture({ online: () => false });
    offline.c.afterAlarm('temperature');
    const off = chartsFixture({ config: { enabled: true, alarms: false, timeZone: 'UTC' } });
    off.c.afterAlarm('temperature');
    const none = chartsFixture({ service: false });
    none.c.afterAlarm('temperature');
    await settle();
    expect([offline.sent, off.sent, none.sent, none.uploads]).toEqual([[], [], [], []]);
  });
});

describe('chat and config', () => {
  it('takes "chart" as history that asks for the image', () => {
    expect(parse('chart temperature 6h', ['temperature'])).toEqual({ kind: 'history', id: 'temperature', windowMs: 6 * HOUR, chart: true });
    expect(parse('history temperature', ['temperature'])).toEqual({ kind: 'history', id: 'temperature', windowMs: 24 * HOUR });
    expect(parse('chrat', ['temperature'])).toMatchObject({ kind: 'unknown', suggestion: 'chart' });
  });

  const base = { xmpp: { jid: 'gw@iot.test' }, owners: ['alice@iot.test'], devices: [{ id: 'temperature', driver: 'simulated', type: 'number' }] };

  it('checks the charts keys: on by default, the zone an IANA name', () => {
    const ok = checkConfig({ ...base, charts: { alarms: false, time_zone: 'Europe/Berlin' } }, { hostname: 'pi' });
    expect(ok.config?.charts).toEqual({ enabled: true, alarms: false, timeZone: 'Europe/Berlin' });
    expect(checkConfig(base, { hostname: 'pi' }).config?.charts).toEqual({ enabled: true, alarms: true, timeZone: undefined });
    const bad = checkConfig({ ...base, charts: { enabled: 'yes', time_zone: 'Mars/Olympus', alarm: true } }, { hostname: 'pi' });
    expect(bad.issues.map((i) => i.path)).toEqual(['charts.alarm', 'charts.enabled', 'charts.time_zone']);
    expect(bad.issues[2]!.message).toContain('unknown time zone "Mars/Olympus"');
    expect(checkConfig({ ...base, devices: [{ id: 'chart', driver: 'simulated', type: 'number' }] }, { hostname: 'pi' }).issues[0]?.message).toContain('chat command word');
  });
});
