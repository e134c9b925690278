// Delivery receipts settle through one path only. Faults a friendly server
// never shows, played with our real stream management, delivery, courier and
// a real SQLite outbox; the wire is a function that records what it writes.

import { EventEmitter } from 'node:events';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import xml from '@xmpp/xml';
import type { Element } from 'ltx';
import { afterEach, describe, expect, it } from 'vitest';
import { systemClock } from '../src/core/clock.js';
import { silentLogger } from '../src/runtime/log.js';
import { courier } from '../src/services/courier.js';
import { reconciler } from '../src/services/reconcile.js';
import type { ArchiveSearch } from '../src/xep/mam.js';
import { openStore, type Store } from '../src/store/db.js';
import { Delivery } from '../src/xmpp/delivery.js';
import { NS_SM, StreamManagement, type Receipt } from '../src/xmpp/stream-management.js';

const stores: Store[] = [];
afterEach(() => {
  for (const s of stores.splice(0)) s.close();
});

function wire() {
  const written: Element[] = [];
  let broken = false;
  const sm: StreamManagement = new StreamManagement({
    write: (el) => write(el),
    drop: () => {},
    log: silentLogger,
    requestEvery: 100,
    requestDelayMs: 60_000,
    ackTimeoutMs: 60_000,
    maxQueue: 500,
  });
  // As the session's client does: a stanza is counted on its way out, then the socket may refuse it.
  async function write(el: Element): Promise<void> {
    if (el.name === 'message' || el.name === 'iq' || el.name === 'presence') sm.outbound(el);
    if (broken) throw new Error('the socket closed under us');
    written.push(el);
  }
  const server = (el: Element): void => sm.inboundElement(el);
  return { sm, written, write, server, breakSocket: (b: boolean) => (broken = b) };
}

function session(w: ReturnType<typeof wire>, delivery: Delivery) {
  const events = new EventEmitter<{ online: [string, boolean] }>();
  let online = true;
  return {
    events,
    setOnline: (v: boolean) => (online = v),
    api: {
      get online() {
        return online;
      },
      jid: 'gw@iot.test/gw',
      stats: { onlineSince: 0 },
      send: (s: Element, r?: Receipt) => delivery.send(s, r, online),
      on: (e: 'online', fn: (jid: string, resumed: boolean) => void) => events.on(e, fn),
    },
  };
}

/** A stream with stream management enabled by the server. */
/** The layer under test on a wire: no keepalive pings of its own. */
function deliveryOn(w: ReturnType<typeof wire>): Delivery {
  return new Delivery({ sm: w.sm, write: w.write, ping: async () => undefined, log: silentLogger });
}

/** A real SQLite store in a directory of its own, closed after the file's tests. */
function scratchStore(): Store {
  const store = openStore({ dir: mkdtempSync(join(tmpdir(), 'xia-delivery-')) });
  stores.push(store);
  return store;
}

async function enabledWire() {
  const w = wire();
  const enabling = w.sm.enable('gw@iot.test/gw');
  w.server(xml('enabled', { xmlns: NS_SM, id: 's1', resume: 'true', max: '60' }));
  await enabling;
  return w;
}

/** The stream is lost before the server's ack and cannot be resumed: a fresh one, and the session online again. */
async function freshSession(w: ReturnType<typeof wire>, s: ReturnType<typeof session>, whileOffline: () => void = () => {}): Promise<void> {
  w.sm.disconnected();
  s.setOnline(false);
  w.sm.lose();
  whileOffline();
  const enabling = w.sm.enable('gw@iot.test/gw');
  w.server(xml('enabled', { xmlns: NS_SM, id: 's2', resume: 'true', max: '60' }));
  await enabling;
  s.setOnline(true);
  s.events.emit('online', 'gw@iot.test/gw', false);
  await new Promise((r) => setTimeout(r, 10));
}

/** The server's archive of our messages (XEP-0313) as the reconciler asks it: `has` says which of the ids it holds. */
function archiveHolding(has: (ids: ReadonlySet<string>) => Set<string>) {
  const asked: string[] = [];
  const search: ArchiveSearch = {
    find: async (ids) => {
      asked.push(...ids);
      return { found: has(ids), complete: true };
    },
    handle: () => false,
  };
  const disco = xml('iq', { type: 'result' }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' }, xml('feature', { var: 'urn:xmpp:mam:2' })));
  const lookup = reconciler({ request: async () => disco, search, self: 'gw@iot.test', log: silentLogger });
  return { asked, alreadyDelivered: (t: Parameters<typeof lookup.alreadyDelivered>[0]) => lookup.alreadyDelivered(t) };
}

/** What reached the wire: an archive that holds exactly those. */
const onTheWire = (w: ReturnType<typeof wire>) => (ids: ReadonlySet<string>): Set<string> => {
  const sent = new Set(w.written.filter((e) => e.name === 'message').map((e) => e.attrs.id as string));
  return new Set([...ids].filter((id) => sent.has(id)));
};

/** The storage guard as the courier sees it: failed() turns the disk bad until the test says otherwise. */
function disk() {
  const d = { bad: false, health: { get ok() { return !d.bad; }, failed: () => { d.bad = true; } } };
  return d;
}

describe('delivery receipts', () => {
  it('duplicate alarm after a failed write and a resume: the alarm goes on the wire once', async () => {
    const w = await enabledWire();
    const delivery = deliveryOn(w);
    const dir = mkdtempSync(join(tmpdir(), 'xia-delivery-'));
    const store = openStore({ dir });
    stores.push(store);
    const s = session(w, delivery);
    const c = courier({ store, session: s.api, clock: systemClock, log: silentLogger });
    c.start();

    // The socket dies between the courier's check that we are online and the write.
    w.breakSocket(true);
    c.enqueue('alice@iot.test', '⚠ temperature 31.0 °C above 30.0 °C', 'alarm');
    await new Promise((r) => setImmediate(r));
    w.sm.disconnected();
    s.setOnline(false);

    // The stream is resumed: stream management re-sends what the server had not counted.
    w.breakSocket(false);
    const resuming = w.sm.resume();
    w.server(xml('resumed', { xmlns: NS_SM, previd: 's1', h: '0' }));
    expect(await resuming).toBe(true);
    s.setOnline(true);
    s.events.emit('online', 'gw@iot.test/gw', true);
    await new Promise((r) => setImmediate(r));

    const alarms = w.written.filter((e) => e.name === 'message');
    expect(alarms).toHaveLength(1);
    // The server's ack settles it, and the outbox lets it go.
    w.server(xml('a', { xmlns: NS_SM, h: '1' }));
    expect(c.stats.delivered).toBe(1);
    expect(store.outbox.stats().queued).toBe(0);
  });

  it('started when the session is already online (it connects while the agent starts): looks up what the last run tried, then sends the rest', async () => {
    const w = wire();
    const delivery = deliveryOn(w);
    const dir = mkdtempSync(join(tmpdir(), 'xia-delivery-'));
    // The last run queued two alarms and tried the first before it died.
    const before = openStore({ dir });
    const tried = before.outbox.add({ to: 'alice@iot.test', body: 'tried', kind: 'alarm' });
    before.outbox.add({ to: 'alice@iot.test', body: 'never sent', kind: 'alarm' });
    before.outbox.attempted(tried.id);
    before.close();
    const store = openStore({ dir });
    stores.push(store);
    const s = session(w, delivery); // online before the courier listens: its 'online' event has passed
    const { asked, alreadyDelivered } = archiveHolding((ids) => new Set(ids)); // the server had the one that was tried
    const c = courier({ store, session: s.api, clock: systemClock, log: silentLogger, alreadyDelivered });
    c.start();
    await new Promise((r) => setTimeout(r, 10));
    expect(asked).toEqual([store.outbox.messageId(tried)]);
    expect(c.stats.alreadyDelivered).toBe(1);
    expect(w.written.filter((e) => e.name === 'message').map((e) => e.getChildText('body'))).toEqual(['never sent']);
  });

  it('settles a receipt once when the write fails without stream management', async () => {
    const w = wire();
    const delivery = deliveryOn(w);
    w.breakSocket(true);
    const calls: string[] = [];
    await expect(delivery.send(xml('message', { id: 'x' }), { onAck: () => calls.push('ack'), onFail: () => calls.push('fail') })).rejects.toThrow();
    await new Promise((r) => setImmediate(r));
    expect(calls).toEqual(['fail']);
  });

  it('settles a receipt on a ping round trip when the server has no stream management', async () => {
    const w = wire();
    const delivery = deliveryOn(w);
    const calls: string[] = [];
    await delivery.send(xml('message', { id: 'x' }), { onAck: () => calls.push('ack'), onFail: () => calls.push('fail') });
    await new Promise((r) => setTimeout(r, 0));
    await new Promise((r) => setImmediate(r));
    expect(calls).toEqual(['ack']);
  });

  it('fails a receipt when asked to send while offline', async () => {
    const w = wire();
    const delivery = deliveryOn(w);
    const calls: string[] = [];
    await expect(delivery.send(xml('message'), { onAck: () => calls.push('ack'), onFail: () => calls.push('fail') }, false)).rejects.toThrow('not connected');
    await new Promise((r) => setImmediate(r));
    expect(calls).toEqual(['fail']);
    expect(w.written).toHaveLength(0);
  });

  it('an alarm that goes at once is written with its attempt counted (one commit), and a crash right after still asks the archive', async () => {
    const w = await enabledWire();
    const delivery = deliveryOn(w);
    const store = scratchStore();
    const s = session(w, delivery);
    const c = courier({ store, session: s.api, clock: systemClock, log: silentLogger });
    c.start();
    const attempted: number[] = [];
    const realAttempted = store.outbox.attempted.bind(store.outbox);
    store.outbox.attempted = (id) => {
      attempted.push(id);
      realAttempted(id);
    };

    const first = c.enqueue('alice@iot.test', '⚠ level 60 % above 50 %', 'alarm');
    // On disk as tried before it reaches the wire, in the commit that wrote it: no second write for the attempt.
    expect(store.outbox.pending().map((i) => i.attempts)).toEqual([1]);
    await new Promise((r) => setImmediate(r));
    const wired = w.written.filter((e) => e.name === 'message');
    expect(wired.map((e) => e.attrs.id)).toEqual([first]);
    expect(attempted).toEqual([]);
    // Its first attempt all the same: not stamped as one that waited.
    expect(wired[0]!.getChild('delay', 'urn:xmpp:delay')).toBeUndefined();

    // Offline, a new alarm waits: written untried, and its attempt is counted when it goes.
    s.setOnline(false);
    c.enqueue('alice@iot.test', '✓ level 40 %, back below 50 %', 'alarm');
    expect(store.outbox.pending().map((i) => i.attempts)).toEqual([1, 0]);

    // The process dies before the server's ack: the next one asks the archive about the first, as tried.
    const { asked, alreadyDelivered } = archiveHolding((ids) => new Set([...ids].filter((id) => id === first)));
    const w2 = wire();
    const delivery2 = new Delivery({ sm: w2.sm, write: w2.write, ping: async () => undefined, log: silentLogger });
    const s2 = session(w2, delivery2);
    const next = courier({ store, session: s2.api, clock: systemClock, log: silentLogger, alreadyDelivered });
    s2.setOnline(false);
    next.start();
    s2.setOnline(true);
    s2.events.emit('online', 'gw@iot.test/gw', false);
    await new Promise((r) => setTimeout(r, 10));
    expect(asked).toEqual([first]);
    // Only the one the server did not have goes out, counted on its way.
    expect(w2.written.filter((e) => e.name === 'message').map((e) => e.attrs.body ?? e.getChildText('body'))).toEqual(['✓ level 40 %, back below 50 %']);
    expect(attempted).toHaveLength(1);
  });

  /**
   * A fresh session after a lost stream (the server could not resume it), on a server whose archive
   * holds every message that reached the wire: the courier must ask it about everything it sent, and
   * send nothing twice. The disk refuses writes meanwhile (a card gone read-only), so the outbox on
   * disk does not know the alarm was tried, and a later one is only in memory.
   */
  it('an alarm sent while the card refused writes is looked up in the archive after a fresh session, not sent twice', async () => {
    const w = await enabledWire();
    const delivery = deliveryOn(w);
    const store = scratchStore();
    const s = session(w, delivery);
    // The server's archive: whatever message reached the wire.
    const { asked, alreadyDelivered } = archiveHolding(onTheWire(w));
    const refused = Object.assign(new Error('attempt to write a readonly database'), { code: 'SQLITE_READONLY' });
    const card = disk();
    const c = courier({ store, session: s.api, clock: systemClock, log: silentLogger, alreadyDelivered, health: card.health });
    c.start();

    // The alarm is on disk; then the card goes read-only: its attempt is not counted there.
    const realAttempted = store.outbox.attempted.bind(store.outbox);
    const realAdd = store.outbox.add.bind(store.outbox);
    store.outbox.attempted = () => {
      throw refused;
    };
    const first = c.enqueue('alice@iot.test', '⚠ level 40 % above 30 %', 'alarm');
    // The next one the disk refuses altogether: it is kept in memory, and sent from there.
    store.outbox.add = () => {
      throw refused;
    };
    const second = c.enqueue('alice@iot.test', '✓ level 10 %, back below 30 %', 'info');
    await new Promise((r) => setImmediate(r));
    expect(w.written.filter((e) => e.name === 'message').map((e) => e.attrs.id)).toEqual([first, second]);
    expect(c.heldCount()).toBe(1);

    // The stream is lost before the server's ack, and the server cannot resume it: a fresh session.
    await freshSession(w, s);

    expect(asked.sort()).toEqual([first, second].sort());
    expect(w.written.filter((e) => e.name === 'message').map((e) => e.attrs.id)).toEqual([first, second]);
    expect(c.stats.alreadyDelivered).toBe(2);
    expect(c.heldCount()).toBe(0);
    // The card takes writes again: the alarm the server had is gone from the outbox, nothing waits.
    store.outbox.attempted = realAttempted;
    store.outbox.add = realAdd;
    card.bad = false;
    c.persist();
    expect(store.outbox.stats().queued).toBe(0);
  });

  it('an alarm tried from memory and written to disk while offline is looked up under the id it was sent with', async () => {
    const w = await enabledWire();
    const delivery = deliveryOn(w);
    const store = scratchStore();
    const s = session(w, delivery);
    const { asked, alreadyDelivered } = archiveHolding(onTheWire(w));
    const card = disk();
    const c = courier({ store, session: s.api, clock: systemClock, log: silentLogger, alreadyDelivered, health: card.health });
    c.start();

    const realAdd = store.outbox.add.bind(store.outbox);
    store.outbox.add = () => {
      throw Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });
    };
    const memoryId = c.enqueue('alice@iot.test', '⚠ level 40 % above 30 %', 'alarm');
    await new Promise((r) => setImmediate(r));
    expect(w.written.filter((e) => e.name === 'message').map((e) => e.attrs.id)).toEqual([memoryId]);

    // The stream is lost before the ack; while offline, space returns and the message goes to disk under an outbox id.
    await freshSession(w, s, () => {
      store.outbox.add = realAdd;
      card.bad = false;
      c.persist();
      expect(c.heldCount()).toBe(0);
      expect(store.outbox.stats().queued).toBe(1);
    });

    expect(asked).toContain(memoryId);
    expect(w.written.filter((e) => e.name === 'message').map((e) => e.attrs.id)).toEqual([memoryId]);
    expect(store.outbox.stats().queued).toBe(0);
  });
});
