// The session against real servers: TLS both ways, login, reconnect with
// backoff after a dropped link and a server restart, plaintext refusal,
// and secrets kept out of the log.

import net from 'node:net';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startProsody } from '../tools/dev/prosody.js';
import { account, peer, server, startAgent, xml, type RunningAgent } from './helpers/peers.js';
import { until } from './helpers/until.js';

const running: RunningAgent[] = [];
const track = (a: RunningAgent): RunningAgent => (running.push(a), a);
afterAll(async () => {
  await Promise.all(running.map((a) => a.stop()));
});

const once = <T>(emitter: { once(e: string, f: (v: T) => void): unknown }, event: string): Promise<T> =>
  new Promise((resolve) => emitter.once(event, resolve));

describe('TLS', () => {
  it('logs in over STARTTLS with SCRAM and the configured CA', async () => {
    const a = track(await startAgent({ owners: ['alice@iot.test'] }));
    expect(a.agent.session.online).toBe(true);
    expect(a.agent.session.stats.mechanism).toMatch(/^SCRAM-SHA-/);
    expect(a.agent.session.secure).toBe(true);
    expect(a.agent.session.jid).toBe(`${a.jid}/agent`);
  });

  it('logs in over direct TLS (xmpps://)', async () => {
    const a = track(await startAgent({ owners: ['alice@iot.test'], service: `xmpps://127.0.0.1:${server().tlsPort}` }));
    expect(a.agent.session.online).toBe(true);
  });
});

describe('login failures', () => {
  it('stops for good on a wrong password instead of hammering the server', async () => {
    const a = track(await startAgent({ owners: ['alice@iot.test'], password: 'wrong-password', waitOnline: false }));
    const err = await once<{ kind: string; message: string }>(a.agent, 'fatal');
    expect(err.kind).toBe('not-authorized');
    expect(a.agent.session.state).toBe('failed');
    // About time passing: nothing here signals "no retry will come", so give a retry more than the 100 ms
    // initial backoff to show itself. (A slow machine can only make this pass wrongly, never fail wrongly.)
    await new Promise((r) => setTimeout(r, 300));
    expect(a.reconnects).toHaveLength(0);
    expect(a.agent.session.state).toBe('failed');
    expect(a.agent.session.stats.connects).toBe(0);
  });

  it('refuses to log in when the server offers no TLS, and logs in without TLS only when allowed on loopback', async () => {
    const received: string[] = [];
    let streams = 0;
    const fake = net.createServer((sock) => {
      sock.on('data', (d) => {
        const text = d.toString();
        received.push(text);
        if (text.includes('<stream:stream')) {
          streams++;
          sock.write(
            `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='x' from='iot.test' version='1.0'>` +
              `<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism><mechanism>SCRAM-SHA-1</mechanism></mechanisms></stream:features>`,
          );
        }
      });
      sock.on('error', () => {});
    });
    await new Promise<void>((r) => fake.listen(0, '127.0.0.1', r));
    const port = (fake.address() as net.AddressInfo).port;
    try {
      const refused = track(await startAgent({ owners: ['alice@iot.test'], service: `xmpp://127.0.0.1:${port}`, waitOnline: false }));
      // Not fatal (it may be an attacker stripping STARTTLS on the path): refused, and tried again.
      await until(() => refused.reconnects.length >= 2 && streams >= 2, 'two refused logins, each followed by a retry', { got: () => refused.reconnects });
      expect(refused.agent.session.stats.lastError).toMatch(/offered no TLS; refusing to log in/);
      expect(refused.agent.session.state).not.toBe('failed');
      expect(received.join('')).not.toContain('<auth');
      await refused.stop();

      received.length = 0;
      const allowed = track(
        await startAgent({ owners: ['alice@iot.test'], service: `xmpp://127.0.0.1:${port}`, xmpp: '  tls:\n    allow_plaintext: true\n', caFile: null, waitOnline: false }),
      );
      await until(() => received.join('').includes('<auth'), 'an <auth/> at the plaintext server');
      // Over plaintext it picks SCRAM, never PLAIN (which would show the password).
      expect(received.join('')).toMatch(/<auth [^>]*mechanism="SCRAM-SHA-1"/);
      await allowed.stop();
    } finally {
      fake.close();
    }
  });
});

describe('reconnect', () => {
  it('comes back after the link drops by resuming its stream: no PBKDF2, no presence churn, and a command sent meanwhile is carried out once', async () => {
    const o = await account('alice');
    const a = track(await startAgent({ owners: [o.jid] }));
    const owner = await peer(o);
    try {
      await owner.send(xml('presence', { type: 'subscribe', to: a.jid }));
      await owner.waitFor((s) => s.name === 'presence' && s.attrs.from === a.fullJid && !s.attrs.type, 10_000, 'first presence');
      const seen = owner.stanzas.length;
      const offline = once(a.agent.session, 'offline');
      const online = new Promise<boolean>((r) => a.agent.session.once('online', (_j: string, resumed: boolean) => r(resumed)));
      a.agent.session.dropConnection();
      await offline;
      // Typed while the gateway's link is down: the server holds it for the resumed stream.
      const reply = owner.chat(a.fullJid, 'fan on');
      expect(await online).toBe(true);
      expect(await reply).toBe('fan → on ✓');
      expect(a.agent.session.stats).toMatchObject({ connects: 2, reconnects: 1, resumes: 1, keyDerivations: 1 });
      expect(a.agent.devices.get('fan')?.value).toBe(true);
      // The agent answers in order: once this ping is answered, a second reply or an unavailable would be here.
      await owner.iq('get', a.fullJid, xml('ping', { xmlns: 'urn:xmpp:ping' }));
      const after = owner.stanzas.slice(seen);
      // The owner never saw the gateway go away, and got exactly one answer.
      expect(after.filter((s) => s.name === 'presence' && s.attrs.type === 'unavailable')).toHaveLength(0);
      expect(after.filter((s) => s.name === 'message' && s.getChildText('body') === 'fan → on ✓')).toHaveLength(1);
    } finally {
      await owner.stop();
    }
  });

  it('starts a new session, with presence, when the server lost its stream in a restart', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'xia-restart-'));
    const own = await startProsody({ dir });
    try {
      await own.register('gw', 'gw-secret');
      const a = track(
        await startAgent({ owners: ['alice@iot.test'], account: { user: 'gw', jid: `gw@${own.domain}`, password: 'gw-secret' }, service: own.service, caFile: own.caFile }),
      );
      const before = a.agent.reporter.stats.presencesSent;
      const back = new Promise<boolean>((r) => a.agent.session.once('online', (_j: string, resumed: boolean) => r(resumed)));
      await own.restart({ hard: true });
      expect(await back).toBe(false);
      await until(() => a.agent.reporter.stats.presencesSent > before, 'presence on the new session');
    } finally {
      await own.stop();
    }
  });

  it('retries with growing delays while the server is down, and recovers when it returns', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'xia-restart-'));
    const own = await startProsody({ dir });
    try {
      const pw = 'restart-secret';
      await own.register('gw', pw);
      const a = track(
        await startAgent({
          owners: ['alice@iot.test'],
          account: { user: 'gw', jid: `gw@${own.domain}`, password: pw },
          service: own.service,
          caFile: own.caFile,
        }),
      );
      await own.stop();
      const delays = (): number[] => a.reconnects.map((r) => r.delay);
      await until(() => delays().length >= 4, 'four failed attempts', { got: delays });
      const d = delays();
      // Doubling from 100 ms to a 1 s cap, each jittered into [half, full]. The session had been up for
      // less than 10 s, so the backoff goes on from the first login's attempt instead of starting over.
      expect(d[0]).toBeGreaterThanOrEqual(100);
      expect(d[0]).toBeLessThanOrEqual(200);
      expect(d[3]).toBeGreaterThanOrEqual(400);
      expect(Math.max(...d)).toBeLessThanOrEqual(1000);
      expect(a.agent.session.online).toBe(false);
      const back = once(a.agent.session, 'online');
      await own.restart();
      await back;
      expect(a.agent.session.stats.reconnects).toBe(1);
    } finally {
      await own.stop();
    }
  });
});

describe('keepalive', () => {
  it('notices a server that stopped answering (frozen, TCP still open), drops the link, and recovers when it answers again', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'xia-freeze-'));
    const own = await startProsody({ dir });
    try {
      await own.register('gw', 'freeze-secret');
      const a = track(
        await startAgent({
          owners: ['alice@iot.test'],
          account: { user: 'gw', jid: `gw@${own.domain}`, password: 'freeze-secret' },
          service: own.service,
          caFile: own.caFile,
          xmpp: '  keepalive: { interval: 300ms, timeout: 700ms, check: 900ms }\n',
        }),
      );
      // Idle, it writes whitespace between the checks and stays on the one connection.
      await until(() => a.agent.session.stats.whitespaceKeepalives >= 3, 'whitespace keepalives');
      expect(a.agent.session.stats.connects).toBe(1);
      const offline = once(a.agent.session, 'offline');
      const retries = a.reconnects.length;
      const frozenAt = Date.now();
      process.kill(own.pid()!, 'SIGSTOP');
      await offline;
      // The frozen server closes nothing; the agent dropped the link itself, at most one check period, one interval
      // and one timeout (1.9 s) after the freeze: well before stream management's 30 s ack timeout, the only other thing that would.
      expect(Date.now() - frozenAt).toBeLessThan(15_000);
      expect(a.reconnects.length).toBeGreaterThan(retries);
      const back = once(a.agent.session, 'online');
      process.kill(own.pid()!, 'SIGCONT');
      await back;
      expect(a.agent.session.online).toBe(true);
    } finally {
      try {
        process.kill(own.pid()!, 'SIGCONT');
      } catch {}
      await own.stop();
    }
  }, 60_000);
});

describe('secrets', () => {
  it('never writes the password to the log, even at debug level with an XML trace and no redaction', async () => {
    const a = track(await startAgent({ owners: ['alice@iot.test'], extra: 'log:\n  level: debug\n  xml: true\n', redact: false }));
    const o = await account('alice');
    const p = await peer(o);
    await p.stop();
    await a.agent.session.stop();
    const all = a.logs.join('\n');
    expect(a.logs.some((l) => l.includes('"ns":"agent:xmpp"') && l.includes('"msg":"out"'))).toBe(true); // the trace is on
    expect(all).not.toContain(a.account.password);
    expect(all).not.toContain(Buffer.from(a.account.password).toString('base64'));
  });
});

describe('a server that asks us to wait', () => {
  it('holds presence back after an error of type wait, and still answers an owner at once', async () => {
    const o = await account('alice');
    const a = track(await startAgent({ owners: [o.jid], devices: `  - { id: temperature, driver: simulated, type: number, unit: "°C", initial: 20, interval: 1h }\n  - { id: fan, driver: simulated, type: boolean, writable: true }\n`, extra: 'presence:\n  min_interval: 0s\n' }));
    const owner = await peer(o);
    try {
      await owner.send(xml('message', { type: 'error', to: a.fullJid }, xml('error', { type: 'wait' }, xml('resource-constraint', { xmlns: 'urn:ietf:params:xml:ns:xmpp-stanzas' }))));
      await until(() => a.agent.session.stats.slowDowns > 0, 'the slow-down to be counted');
      expect(a.agent.session.stats.slowDowns).toBe(1);
      expect(a.agent.session.slowedUntil).toBeGreaterThan(0);
      const sent = a.agent.reporter.stats.presencesSent;
      a.agent.devices.report('temperature', 25);
      expect(a.agent.reporter.stats.heldBack).toBeGreaterThan(0);
      expect(a.agent.reporter.stats.presencesSent).toBe(sent);
      // A person's command is not optional traffic.
      expect(await owner.chat(a.fullJid, 'fan on')).toBe('fan → on ✓');
      expect(a.agent.reporter.stats.presencesSent).toBe(sent + 1);
    } finally {
      await owner.stop();
    }
  });

  it('waits at least 30 s before reconnecting after a resource-constraint stream error', async () => {
    const fake = net.createServer((sock) => {
      sock.on('error', () => {});
      sock.on('data', (d) => {
        if (!d.toString().includes('<stream:stream')) return;
        sock.write(
          `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='x' from='iot.test' version='1.0'>` +
            `<stream:error><resource-constraint xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>`,
        );
        sock.end();
      });
    });
    await new Promise<void>((r) => fake.listen(0, '127.0.0.1', r));
    const port = (fake.address() as net.AddressInfo).port;
    try {
      const a = track(await startAgent({ owners: ['alice@iot.test'], service: `xmpp://127.0.0.1:${port}`, waitOnline: false, reconnectMax: '5m' }));
      await until(() => a.reconnects.length > 0, 'a reconnect to be scheduled');
      expect(a.reconnects[0]!.delay).toBeGreaterThanOrEqual(30_000);
      expect(a.agent.session.stats.slowDowns).toBe(1);
    } finally {
      fake.close();
    }
  });
});
