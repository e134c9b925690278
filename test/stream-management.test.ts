// XEP-0198 rules that a friendly server never exercises: the bounded queue,
// an ack that never comes, a server that acknowledges too much, the 2^32
// wrap, and where a resume goes (location).

import { afterEach, describe, expect, it, vi } from 'vitest';
import xml from '@xmpp/xml';
import type { Element } from 'ltx';
import { createLogger, createSink } from '../src/runtime/log.js';
import { BUSY_MS, NS_SM, seqDelta, StreamManagement } from '../src/xmpp/stream-management.js';
import { locationService } from '../src/xmpp/reconnect.js';

function harness(o: Partial<{ maxQueue: number; requestEvery: number; ackTimeoutMs: number; now: () => number; mono: () => number }> = {}) {
  const written: Element[] = [];
  /** Writes that throw (after the stanza was counted, as a socket that died under us does). */
  let failWrites: (el: Element) => boolean = () => false;
  let drops = 0;
  // Written the way Session writes: stanzas pass through outbound() on their way out.
  const write = async (el: Element): Promise<void> => {
    if (el.name === 'iq' || el.name === 'message' || el.name === 'presence') sm.outbound(el);
    if (failWrites(el)) throw new Error('write after the socket closed');
    written.push(el);
  };
  const sm: StreamManagement = new StreamManagement({
    write,
    drop: () => drops++,
    log: createLogger(createSink('error', () => {})),
    requestEvery: o.requestEvery ?? 100,
    requestDelayMs: 60_000,
    ackTimeoutMs: o.ackTimeoutMs ?? 5_000,
    maxQueue: o.maxQueue ?? 500,
    now: o.now,
    mono: o.mono,
  });
  const server = (el: Element): void => sm.inboundElement(el);
  const enable = async (attrs: Record<string, string> = {}): Promise<void> => {
    const p = sm.enable('gw@iot.test/gw');
    server(xml('enabled', { xmlns: NS_SM, id: 'stream-1', resume: 'true', max: '60', ...attrs }));
    await p;
  };
  const send = (el: Element, receipt?: { onAck(): void; onFail(): void }): Promise<void> => {
    if (receipt) sm.track(el, receipt);
    return write(el);
  };
  return { sm, written, drops: () => drops, server, enable, send, failWhen: (f: (el: Element) => boolean) => (failWrites = f) };
}

/** Three receipted messages, the link lost, and a resume whose re-sends break again at the second (the third is never written). */
async function resumeThatBreaks() {
  const h = harness();
  await h.enable();
  const settled: string[] = [];
  const receipt = (id: string) => ({ onAck: () => settled.push(`${id} acked`), onFail: () => settled.push(`${id} failed`) });
  for (const id of ['a1', 'a2', 'a3']) await h.send(xml('message', { id }, xml('body', {}, id)), receipt(id));
  h.sm.disconnected();
  h.failWhen((el) => el.attrs.id === 'a2');
  const resumed = h.sm.resume();
  h.server(xml('resumed', { xmlns: NS_SM, previd: 'stream-1', h: '0' }));
  await expect(resumed).rejects.toThrow('write after the socket closed');
  return { h, settled };
}

afterEach(() => vi.useRealTimers());

describe('stream management rules', () => {
  it('keeps the unacknowledged queue bounded, forgetting presences but never a message that waits for its receipt', async () => {
    const h = harness({ maxQueue: 5 });
    await h.enable();
    const fails: number[] = [];
    for (let i = 0; i < 3; i++) await h.send(xml('message', { id: `m${i}` }), { onAck: () => {}, onFail: () => fails.push(i) });
    for (let i = 0; i < 10; i++) await h.send(xml('presence', { id: `p${i}` }));
    expect(h.sm.stats.queue).toBe(5);
    expect(h.sm.stats.forgotten).toBe(8);
    // The stream dies for good: the three receipted messages are reported lost, in order.
    h.sm.lose();
    expect(fails).toEqual([0, 1, 2]);
  });

  it('acks by the server count, even when forgotten stanzas sit between acknowledged ones', async () => {
    const h = harness({ maxQueue: 2 });
    await h.enable();
    const acks: string[] = [];
    await h.send(xml('message', { id: 'a' }), { onAck: () => acks.push('a'), onFail: () => {} });
    await h.send(xml('presence'));
    await h.send(xml('presence'));
    await h.send(xml('message', { id: 'b' }), { onAck: () => acks.push('b'), onFail: () => {} });
    h.server(xml('a', { xmlns: NS_SM, h: '1' }));
    expect(acks).toEqual(['a']);
    h.server(xml('a', { xmlns: NS_SM, h: '4' }));
    expect(acks).toEqual(['a', 'b']);
    expect(h.sm.stats.queue).toBe(0);
  });

  it('drops the connection when the server does not answer an ack request in time', async () => {
    vi.useFakeTimers();
    const h = harness({ ackTimeoutMs: 5_000 });
    await h.enable();
    await h.send(xml('message'), { onAck: () => {}, onFail: () => {} });
    await vi.advanceTimersByTimeAsync(1);
    expect(h.written.some((e) => e.is('r', NS_SM))).toBe(true);
    await vi.advanceTimersByTimeAsync(4_000);
    expect(h.drops()).toBe(0);
    await vi.advanceTimersByTimeAsync(1_001);
    expect(h.drops()).toBe(1);
    expect(h.sm.stats.ackTimeouts).toBe(1);
  });

  it('drops a stream whose server acknowledges more than was sent', async () => {
    const h = harness();
    await h.enable();
    await h.send(xml('presence'));
    h.server(xml('a', { xmlns: NS_SM, h: '2' }));
    expect(h.drops()).toBe(1);
  });

  it('answers <r/> with the number of stanzas received since <enabled/>, IQ results included', async () => {
    const h = harness();
    h.server(xml('message')); // before enabling: not counted
    await h.enable();
    h.server(xml('iq', { type: 'result', id: 'x' }));
    h.server(xml('message'));
    h.server(xml('presence'));
    h.server(xml('r', { xmlns: NS_SM }));
    expect(h.written.at(-1)!.toString()).toBe(`<a xmlns="${NS_SM}" h="3"/>`);
  });

  it('Nagle-bound server: while stanzas flow, its <a/> is answered with ours (carrying the TCP ACK it waits for); on an idle link, not', async () => {
    let now = 1_000_000;
    const h = harness({ now: () => now });
    await h.enable();
    await h.send(xml('iq', { type: 'result', id: 'r1' }));
    h.sm.requestAck();
    h.server(xml('iq', { type: 'get', id: 'p2' }));
    now += 5;
    h.server(xml('a', { xmlns: NS_SM, h: '1' }));
    expect(h.written.at(-1)!.toString()).toBe(`<a xmlns="${NS_SM}" h="1"/>`);
    expect(h.sm.stats.acksVolunteered).toBe(1);
    // Idle: the last stanza came long before the answer to our request; nothing is sent back.
    await h.send(xml('presence'));
    h.sm.requestAck();
    now += BUSY_MS;
    h.server(xml('a', { xmlns: NS_SM, h: '2' }));
    expect(h.written.at(-1)!.is('r', NS_SM)).toBe(true);
    expect(h.sm.stats.acksVolunteered).toBe(1);
    // Counting is unchanged by it: the server's next <r/> gets the same h.
    h.server(xml('r', { xmlns: NS_SM }));
    expect(h.written.at(-1)!.toString()).toBe(`<a xmlns="${NS_SM}" h="1"/>`);
  });

  it('counts across the 2^32 wrap', () => {
    expect(seqDelta(1, 2 ** 32 - 1)).toBe(2);
    expect(seqDelta(0, 2 ** 32 - 1)).toBe(1);
    expect(seqDelta(5, 3)).toBe(2);
    expect(seqDelta(3, 3)).toBe(0);
  });

  it('resumes with the handled count, re-sends only what the server did not have, stamped', async () => {
    const h = harness();
    await h.enable({ location: '[2001:db8::1]:5223' });
    expect(h.sm.location).toBe('[2001:db8::1]:5223');
    for (let i = 0; i < 3; i++) await h.send(xml('message', { id: `m${i}` }, xml('body', {}, String(i))));
    h.server(xml('iq', { type: 'get', id: 'in' }));
    h.sm.disconnected();
    expect(h.sm.canResume()).toBe(true);
    const p = h.sm.resume();
    expect(h.written.at(-1)!.attrs).toMatchObject({ previd: 'stream-1', h: '1' });
    h.server(xml('resumed', { xmlns: NS_SM, previd: 'stream-1', h: '1' }));
    expect(await p).toBe(true);
    const again = h.written.slice(-2);
    expect(again.map((e) => e.attrs.id)).toEqual(['m1', 'm2']);
    expect(again.every((e) => e.getChild('delay', 'urn:xmpp:delay') !== undefined)).toBe(true);
  });

  it('gives up resuming once the server’s resumption time has passed', async () => {
    let now = 1_000_000;
    // The resumption window is a duration: the monotonic clock measures it.
    const h = harness({ mono: () => now });
    await h.enable({ max: '60' });
    h.sm.disconnected();
    now += 59_000;
    expect(h.sm.canResume()).toBe(true);
    now += 2_000;
    expect(h.sm.canResume()).toBe(false);
  });

  it('turns a location into a service address', () => {
    expect(locationService('xmpp2.example.org:5223')).toBe('xmpp://xmpp2.example.org:5223');
    expect(locationService('xmpp2.example.org')).toBe('xmpp://xmpp2.example.org:5222');
    expect(locationService('[2001:db8::1]:5223')).toBe('xmpp://[2001:db8::1]:5223');
    expect(locationService('xmpp2.example.org', 'xmpps://xmpp.example.org:5223')).toBe('xmpps://xmpp2.example.org:5223');
  });

  it('alarm stuck until restart: a write failing part-way through the re-sends after <resumed/> leaves every message settled later, none dropped', async () => {
    const { h, settled } = await resumeThatBreaks();
    h.sm.disconnected();
    expect(h.sm.stats.queue).toBe(3);
    // The next resume: the server had a1 only; a2 and a3 go again, and its ack settles all three.
    h.failWhen(() => false);
    const again = h.sm.resume();
    h.server(xml('resumed', { xmlns: NS_SM, previd: 'stream-1', h: '1' }));
    expect(await again).toBe(true);
    expect(h.written.filter((e) => e.name === 'message').map((e) => e.attrs.id)).toEqual(['a1', 'a2', 'a3', 'a1', 'a2', 'a3']);
    h.server(xml('a', { xmlns: NS_SM, h: '3' }));
    expect(settled).toEqual(['a1 acked', 'a2 acked', 'a3 acked']);
  });

  it('alarm stuck until restart: when the stream is then lost for good, every message not yet acknowledged is reported failed', async () => {
    const { h, settled } = await resumeThatBreaks();
    h.sm.lose();
    expect(settled).toEqual(['a1 failed', 'a2 failed', 'a3 failed']);
  });
});
