// XEP-0198 against a real Prosody (mod_smacks): every counter checked against
// the server's own view of it, resumption after a dropped link, and a failed
// resume after a server restart re-sending exactly what the server never got.

import { mkdtempSync, readFileSync } from 'node:fs';
import tls from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Element } from 'ltx';
import { startProsody, type Prosody } from '../tools/dev/prosody.js';
import { createLogger, createSink } from '../src/runtime/log.js';
import { Session } from '../src/xmpp/session.js';
import type { StreamManagementConfig } from '../src/config/durability.js';
import { account, peer, server, xml, type Account } from './helpers/peers.js';
import { until } from './helpers/until.js';

const sessions: Session[] = [];
afterAll(async () => {
  await Promise.all(sessions.map((s) => s.stop()));
});

function session(acc: Account, o: { service?: string; ca?: string; sm?: Partial<StreamManagementConfig> } = {}) {
  const s = new Session({
    jid: acc.jid,
    resource: 'gw',
    password: acc.password,
    service: o.service ?? `xmpp://127.0.0.1:${server().port}`,
    ca: readFileSync(o.ca ?? server().caFile, 'utf8'),
    allowPlaintext: false,
    reconnect: { initialDelayMs: 50, maxDelayMs: 300 },
    log: createLogger(createSink('error', () => {})),
    streamManagement: { enabled: true, requestEvery: 10, requestDelayMs: 30_000, ackTimeoutMs: 30_000, maxQueue: 500, ...o.sm },
  });
  sessions.push(s);
  const stanzas: Element[] = [];
  s.on('stanza', (st) => stanzas.push(st));
  let offline = 0;
  s.on('offline', () => offline++);
  return { s, stanzas, offlines: () => offline };
}

/** The session's next 'online' (resumed or not): take it before what brings the session back, or it can be missed. */
const online = (s: Session): Promise<boolean> => new Promise((r) => s.once('online', (_j, resumed) => r(resumed)));

/** Ask the server for its h and wait for the answer. */
async function serverH(s: Session): Promise<number> {
  const before = s.sm.stats.acksReceived;
  s.sm.requestAck();
  await until(() => s.sm.stats.acksReceived > before, 'an <a/> from the server');
  return s.sm.stats.serverH;
}

describe('XEP-0198 stream management', () => {
  it('is enabled before the session reports online, and resumable', async () => {
    const { s } = session(await account('sm'));
    let activeAtOnline: boolean | undefined;
    s.once('online', () => (activeAtOnline = s.sm.active));
    s.start();
    expect(await online(s)).toBe(false);
    expect(activeAtOnline).toBe(true);
    expect(s.sm.stats.enabled).toBe(1);
    expect(s.sm.id).toBeTruthy();
    expect(s.sm.canResume()).toBe(true);
  });

  it("counts what it sends exactly as the server does: messages, presences and the IQ layer's own requests", async () => {
    const { s } = session(await account('sm'));
    s.start();
    await online(s);
    const [, domain] = s.jid!.split('@');
    for (let i = 0; i < 30; i++) await s.send(xml('message', { to: `nobody@${server().domain}`, type: 'chat' }, xml('body', {}, `m${i}`)));
    await s.send(xml('presence'));
    for (let i = 0; i < 20; i++) await s.request(xml('iq', { type: 'get', to: domain!.split('/')[0] }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
    const h = await serverH(s);
    expect(h).toBe(51);
    expect(s.sm.sentCount).toBe(51);
    expect(s.sm.stats.queue).toBe(0); // everything acknowledged, nothing kept
  });

  it('counts IQ results the IQ layer consumes: 600 round trips keep the stream up past the server’s 500-stanza queue', async () => {
    const { s, offlines } = session(await account('sm'));
    s.start();
    await online(s);
    const domain = server().domain;
    for (let i = 0; i < 600; i++) await s.request(xml('iq', { type: 'get', to: domain }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
    // A short count would leave the server's queue holding the results and the stream killed at 500.
    expect(s.online).toBe(true);
    expect(s.stats.connects).toBe(1);
    expect(s.sm.handledCount).toBeGreaterThanOrEqual(600);
    expect(offlines()).toBe(0);
    expect(await serverH(s)).toBe(600);
  });

  it('takes whitespace keepalives between stanzas: one byte each on the stream, the session stays up, both counters still agree and the stream resumes', async () => {
    const o = await account('owner');
    const owner = await peer(o);
    const { s, stanzas, offlines } = session(await account('sm'));
    s.start();
    await online(s);
    try {
      const domain = server().domain;
      // The TLS socket's plaintext count: the space goes out, alone, as one byte.
      const before = s.bytesWritten();
      s.whitespace();
      await until(() => s.bytesWritten() > before, 'the space to be written');
      expect(s.bytesWritten() - before).toBe(1);
      expect(s.stats.whitespaceKeepalives).toBe(1);
      for (let i = 0; i < 20; i++) {
        s.whitespace();
        await s.request(xml('iq', { type: 'get', to: domain }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
        s.whitespace();
        s.whitespace();
        await owner.send(xml('message', { to: s.jid!, type: 'chat', id: `ws-${i}` }, xml('body', {}, `m${i}`)));
      }
      await until(() => stanzas.filter((st) => st.attrs.id?.startsWith('ws-')).length === 20, 'the owner\'s messages');
      // The server counted 20 pings from us, not a space more; we counted its 20 results and 20 messages.
      expect(await serverH(s)).toBe(20);
      expect(s.sm.sentCount).toBe(20);
      expect(s.sm.handledCount).toBe(40);
      expect(s.online).toBe(true);
      expect(offlines()).toBe(0);
      // A resume hands the server our h: had a space been counted, it would re-send or refuse.
      const back = online(s);
      s.dropConnection();
      await until(() => !s.online, 'offline');
      expect(await back).toBe(true);
      expect(s.stats.resumes).toBe(1);
      await owner.send(xml('message', { to: s.jid!, type: 'chat', id: 'ws-after' }, xml('body', {}, 'after')));
      await until(() => stanzas.some((st) => st.attrs.id === 'ws-after'), 'the message after the resume');
      expect(stanzas.filter((st) => st.attrs.id?.startsWith('ws-')).map((st) => st.attrs.id)).toEqual([...Array.from({ length: 20 }, (_, i) => `ws-${i}`), 'ws-after']);
      expect(s.stats.resent).toBe(0);
    } finally {
      await owner.stop();
    }
  });

  it('resumes after the link drops: stanzas sent to it meanwhile arrive once, its unacknowledged messages are delivered once', async () => {
    const o = await account('owner');
    const owner = await peer(o);
    const { s, stanzas } = session(await account('sm'));
    s.start();
    await online(s);
    try {
      // Messages in flight when the link dies, each with a receipt.
      const acked: number[] = [];
      const failed: number[] = [];
      for (let i = 0; i < 5; i++) {
        await s.send(xml('message', { to: o.jid, type: 'chat', id: `out-${i}` }, xml('body', {}, `out ${i}`)), {
          onAck: () => acked.push(i),
          onFail: () => failed.push(i),
        });
      }
      const back = online(s);
      s.dropConnection();
      await until(() => !s.online, 'offline');
      // The owner talks to the gateway while its link is down: the server holds it for the resumed stream.
      for (let i = 0; i < 3; i++) await owner.send(xml('message', { to: s.jid!, type: 'chat', id: `in-${i}` }, xml('body', {}, `in ${i}`)));
      expect(await back).toBe(true);
      expect(s.stats.resumes).toBe(1);
      await until(() => stanzas.filter((st) => st.attrs.id?.startsWith('in-')).length >= 3, 'the held messages');
      await until(() => acked.length === 5, 'all receipts');
      await owner.waitFor((st) => st.attrs.id === 'out-4', 10_000, 'the last message');
      // One more message each way, after the resume: each stream is in order, so a duplicate would have come before it.
      await owner.send(xml('message', { to: s.jid!, type: 'chat', id: 'after-in' }, xml('body', {}, 'after')));
      await s.send(xml('message', { to: o.jid, type: 'chat', id: 'after-out' }, xml('body', {}, 'after')));
      await until(() => stanzas.some((st) => st.attrs.id === 'after-in'), 'the message after the resume, at the gateway');
      await owner.waitFor((st) => st.attrs.id === 'after-out', 10_000, 'the message after the resume, at the owner');
      expect(stanzas.filter((st) => st.attrs.id?.startsWith('in-')).map((st) => st.attrs.id)).toEqual(['in-0', 'in-1', 'in-2']);
      const got = owner.stanzas.filter((st) => st.attrs.id?.startsWith('out-')).map((st) => st.attrs.id);
      expect(got).toEqual(['out-0', 'out-1', 'out-2', 'out-3', 'out-4']);
      expect(acked).toEqual([0, 1, 2, 3, 4]);
      expect(failed).toEqual([]);
    } finally {
      await owner.stop();
    }
  });
});

describe('XEP-0198 across a server restart', () => {
  let own: Prosody | undefined;
  afterAll(async () => {
    await own?.stop();
  });

  it('falls back to a new session when a restarted server lost the stream, and re-sends nothing the server had acknowledged', async () => {
    own = await startProsody({ dir: mkdtempSync(join(tmpdir(), 'xia-sm-')) });
    await own.register('gw', 'gw-secret');
    await own.register('alice', 'alice-secret');
    const { s } = session({ user: 'gw', jid: `gw@${own.domain}`, password: 'gw-secret' }, { service: own.service, ca: own.caFile });
    s.start();
    await online(s);
    const lost: Element[] = [];
    const fails: number[] = [];
    const acks: number[] = [];
    // Acknowledged before the restart: never re-sent.
    await s.send(xml('message', { to: `alice@${own.domain}`, type: 'chat', id: 'early' }, xml('body', {}, 'early')), { onAck: () => acks.push(0), onFail: () => fails.push(0) });
    await until(() => acks.length === 1, 'the first ack');
    s.sm.on('lost', (items) => lost.push(...items.map((i) => i.stanza)));
    // A graceful restart: Prosody records how much of each stream it handled (smacks_h) before it goes.
    const back = online(s);
    await own.restart();
    expect(await back).toBe(false);
    expect(s.sm.stats.resumeFailed).toBe(1);
    expect(s.sm.stats.enabled).toBe(2);
    expect(fails).toEqual([]);
    expect(lost).toEqual([]); // the server's h covered everything: nothing to re-send, nothing duplicated
  });
});

describe('XEP-0198 after a server crash', () => {
  let own: Prosody | undefined;
  afterAll(async () => {
    await own?.stop();
  });

  it('re-sends, stamped, a reply the crashed server never processed; a receipted message is reported lost to its owner instead', async () => {
    own = await startProsody({ dir: mkdtempSync(join(tmpdir(), 'xia-sm-crash-')) });
    await own.register('gw', 'gw-secret');
    await own.register('alice', 'alice-secret');
    const { s } = session({ user: 'gw', jid: `gw@${own.domain}`, password: 'gw-secret' }, { service: own.service, ca: own.caFile });
    s.start();
    await online(s);
    // Frozen, then killed: what we write now sits unread in its socket and dies with it.
    process.kill(own.pid()!, 'SIGSTOP');
    const fails: string[] = [];
    const sentAt = Date.now();
    await s.send(xml('message', { to: `alice@${own.domain}`, type: 'chat', id: 'reply-1' }, xml('body', {}, 'fan → on ✓')));
    await s.send(xml('message', { to: `alice@${own.domain}`, type: 'chat', id: 'alarm-1' }, xml('body', {}, 'alarm')), { onAck: () => {}, onFail: () => fails.push('alarm-1') });
    const back = online(s);
    await own.restart({ hard: true });
    expect(await back).toBe(false);
    expect(s.sm.stats.resumeFailed).toBe(1);
    expect(fails).toEqual(['alarm-1']); // its owner (the outbox) sends it again from disk
    await until(() => s.stats.resent === 1, 'the reply sent again');
    // Alice comes online and finds the reply in offline storage, stamped with when it was first sent.
    const alice = session({ user: 'alice', jid: `alice@${own.domain}`, password: 'alice-secret' }, { service: own.service, ca: own.caFile });
    alice.s.on('online', () => void alice.s.send(xml('presence')).catch(() => {}));
    alice.s.start();
    await until(() => alice.stanzas.some((st) => st.attrs.id === 'reply-1'), 'the reply at alice');
    const got = alice.stanzas.filter((st) => st.attrs.id === 'reply-1');
    expect(got).toHaveLength(1);
    const stamp = got[0]!.getChildren('delay').find((d) => d.attrs.from?.startsWith(`gw@${own!.domain}`));
    expect(Math.abs(Date.parse(stamp?.attrs.stamp ?? '') - sentAt)).toBeLessThan(2_000);
    expect(alice.stanzas.some((st) => st.attrs.id === 'alarm-1')).toBe(false); // only the outbox may send that one again
  });
});

/**
 * A minimal XMPP server over direct TLS (the suite's certificate) that logs in
 * anyone with PLAIN, binds, and enables stream management with a location.
 * Prosody never sends one, so this is the only way to see the agent honour it.
 */
function fakeServer(opts: { location?: () => string; onResume?: (el: string) => void }) {
  const dirOf = server().caFile.replace(/\/[^/]+$/, '');
  const cert = readFileSync(server().caFile);
  const key = readFileSync(`${dirOf}/${server().domain}.key`);
  const sockets = new Set<tls.TLSSocket>();
  const srv = tls.createServer({ cert, key }, (sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', () => {});
    let authed = false;
    const header = `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='s' from='${server().domain}' version='1.0'>`;
    sock.on('data', (d) => {
      const text = d.toString();
      if (text.includes('<stream:stream')) {
        sock.write(
          header +
            (authed
              ? `<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/><sm xmlns='urn:xmpp:sm:3'/></stream:features>`
              : `<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>`),
        );
      }
      if (text.includes('<auth')) {
        authed = true;
        sock.write(`<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>`);
      }
      const resume = /<resume[^>]*>/.exec(text);
      if (resume) {
        opts.onResume?.(resume[0]);
        sock.write(`<failed xmlns='urn:xmpp:sm:3'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>`);
      }
      const bind = /<iq[^>]*id="([^"]+)"[^>]*>\s*<bind/.exec(text) ?? /<iq[^>]*id='([^']+)'[^>]*>\s*<bind/.exec(text);
      if (bind) sock.write(`<iq type='result' id='${bind[1]}'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>gw@${server().domain}/gw</jid></bind></iq>`);
      if (text.includes('<enable')) {
        const loc = opts.location?.();
        sock.write(`<enabled xmlns='urn:xmpp:sm:3' id='stream-1' resume='true' max='60'${loc ? ` location='${loc}'` : ''}/>`);
      }
      const ping = /<iq[^>]*id="([^"]+)"[^>]*type="get"/.exec(text);
      if (ping && !bind) sock.write(`<iq type='result' id='${ping[1]}'/>`);
    });
  });
  return {
    listen: () => new Promise<number>((r) => srv.listen(0, '127.0.0.1', () => r((srv.address() as { port: number }).port))),
    dropAll: () => sockets.forEach((s) => s.destroy()),
    close: () => {
      sockets.forEach((s) => s.destroy());
      srv.close();
    },
  };
}

describe('XEP-0198 location', () => {
  it('goes back to the location the server named to resume, then to its usual service when that refuses', async () => {
    const resumes: string[] = [];
    let secondPort = 0;
    const first = fakeServer({ location: () => `127.0.0.1:${secondPort}` });
    const second = fakeServer({ onResume: (el) => resumes.push(el) });
    const firstPort = await first.listen();
    secondPort = await second.listen();
    try {
      const { s } = session({ user: 'gw', jid: `gw@${server().domain}`, password: 'x' }, { service: `xmpps://127.0.0.1:${firstPort}` });
      s.start();
      await online(s);
      expect(s.sm.location).toBe(`127.0.0.1:${secondPort}`);
      first.dropAll();
      // The location takes the resume (and refuses it here); the session carries on with a new stream there.
      expect(await online(s)).toBe(false);
      expect(resumes).toHaveLength(1);
      expect(resumes[0]).toMatch(/previd=["']stream-1["']/);
    } finally {
      first.close();
      second.close();
    }
  });
});
