// Endpoint choice: RFC 2782 ordering of SRV records (priority, then weight)
// with an injected resolver, XEP-0368 direct TLS records merged in, the
// RFC 6120 fallback to the domain, and the walk through a list on failures,
// back to the preferred endpoint later.

import { describe, expect, it } from 'vitest';
import { Endpoints, orderSrv, srvEndpoints, SRV_TTL_MS, type SrvRecord, type SrvResolver } from '../src/xmpp/endpoints.js';
import { checkConfig } from '../src/config/schema.js';

const rec = (name: string, priority: number, weight: number, port = 5222): SrvRecord => ({ name, port, priority, weight });

/** A resolver that answers from a table and counts its lookups. */
function table(t: Record<string, SrvRecord[]>): SrvResolver & { lookups: string[] } {
  const lookups: string[] = [];
  const f = async (name: string): Promise<SrvRecord[]> => {
    lookups.push(name);
    return t[name] ?? [];
  };
  return Object.assign(f, { lookups });
}

describe('SRV ordering (RFC 2782)', () => {
  it('tries lower priority values first, whatever their weight', () => {
    const out = orderSrv([rec('c', 20, 100), rec('a', 5, 1), rec('b', 10, 1000)], () => 0.5);
    expect(out.map((r) => r.name)).toEqual(['a', 'b', 'c']);
  });

  it('within one priority, picks each record with a chance proportional to its weight', () => {
    let seed = 1;
    const random = (): number => ((seed = (seed * 16807) % 2147483647) - 1) / 2147483646;
    const firsts: Record<string, number> = { heavy: 0, light: 0 };
    for (let i = 0; i < 4000; i++) firsts[orderSrv([rec('light', 1, 10), rec('heavy', 1, 30)], random)[0]!.name]!++;
    // 30 / 40 = 75 % heavy first.
    expect(firsts.heavy! / 4000).toBeGreaterThan(0.71);
    expect(firsts.heavy! / 4000).toBeLessThan(0.79);
  });

  it('follows the running sum exactly: the first record whose running sum reaches the drawn number', () => {
    // Weights 0, 10, 30 (weight 0 first): sums 0, 10, 40; draw floor(r × 41).
    const records = [rec('w10', 1, 10), rec('w30', 1, 30), rec('w0', 1, 0)];
    expect(orderSrv(records, () => 0)[0]!.name).toBe('w0'); // draw 0: the weight-0 record, rarely
    expect(orderSrv(records, () => 0.1)[0]!.name).toBe('w10'); // draw 4
    expect(orderSrv(records, () => 0.5)[0]!.name).toBe('w30'); // draw 20
    expect(orderSrv(records, () => 0.999)[0]!.name).toBe('w30'); // draw 40
    expect(orderSrv(records, () => 0.5)).toHaveLength(3);
  });

  it('orders records that all weigh 0 as well', () => {
    expect(orderSrv([rec('a', 1, 0), rec('b', 1, 0)], () => 0.7).map((r) => r.name).sort()).toEqual(['a', 'b']);
  });
});

describe('SRV endpoints of a domain (RFC 6120 §3.2, XEP-0368)', () => {
  it('merges direct TLS and STARTTLS records by priority into URIs', async () => {
    const resolve = table({
      '_xmpps-client._tcp.iot.example.org': [rec('b.iot.example.org.', 10, 0, 5223)],
      '_xmpp-client._tcp.iot.example.org': [rec('a.iot.example.org.', 5, 0), rec('b.iot.example.org.', 20, 0)],
    });
    const out = await srvEndpoints('iot.example.org', resolve);
    expect(out.map((e) => e.uri)).toEqual(['xmpp://a.iot.example.org:5222', 'xmpps://b.iot.example.org:5223', 'xmpp://b.iot.example.org:5222']);
    expect(resolve.lookups.sort()).toEqual(['_xmpp-client._tcp.iot.example.org', '_xmpps-client._tcp.iot.example.org']);
  });

  it('falls back to the domain on 5222 when it publishes no records, or only "." (service not offered)', async () => {
    expect(await srvEndpoints('x.org', table({}))).toEqual([{ uri: 'xmpp://x.org:5222', source: 'domain' }]);
    const dot = table({ '_xmpps-client._tcp.x.org': [rec('.', 0, 0, 0)], '_xmpp-client._tcp.x.org': [rec('xmpp.x.org', 0, 0)] });
    expect((await srvEndpoints('x.org', dot)).map((e) => e.uri)).toEqual(['xmpp://xmpp.x.org:5222']);
  });

  it('treats a failing lookup as no records', async () => {
    const failing: SrvResolver = async (name) => {
      if (name.startsWith('_xmpps')) throw new Error('SERVFAIL');
      return [rec('xmpp.x.org', 0, 0)];
    };
    expect((await srvEndpoints('x.org', failing)).map((e) => e.uri)).toEqual(['xmpp://xmpp.x.org:5222']);
  });
});

describe('walking the endpoint list', () => {
  const list = ['xmpps://127.0.0.2:5223', 'xmpps://127.0.0.1:5223', 'xmpps://127.0.0.3:5223'];

  it('moves to the next endpoint on each failed connect and wraps around', async () => {
    const e = new Endpoints({ services: list, domain: 'iot.test' });
    const seen: string[] = [];
    for (let i = 0; i < 4; i++) {
      seen.push((await e.next()).uri);
      e.failed();
    }
    expect(seen).toEqual([list[0], list[1], list[2], list[0]]);
  });

  it('counts one failure per attempt, however many ways it is reported', async () => {
    const e = new Endpoints({ services: list, domain: 'iot.test' });
    await e.next();
    e.failed(); // the connect threw
    e.failed(); // and the entity said disconnect too
    expect((await e.next()).uri).toBe(list[1]);
  });

  it('after losing the preferred node, tries the next; after losing a fallback, goes back to the preferred one', async () => {
    const e = new Endpoints({ services: list, domain: 'iot.test' });
    expect((await e.next()).uri).toBe(list[0]);
    e.online();
    e.lost(); // node B died under us
    expect((await e.next()).uri).toBe(list[1]);
    expect(e.rank).toEqual({ position: 2, of: 3 });
    e.online(); // on A now, and it stays there while up
    e.lost();
    expect((await e.next()).uri).toBe(list[0]); // back to B at the next reconnect
  });

  it('counts a loss only for a connection that was online (an attempt that never was is a failure)', async () => {
    const e = new Endpoints({ services: list, domain: 'iot.test' });
    await e.next();
    e.lost();
    expect((await e.next()).uri).toBe(list[0]);
  });

  it('without a list, looks SRV up at the start of a cycle, again only once the answer is old', async () => {
    let now = 0;
    const resolve = table({ '_xmpp-client._tcp.iot.example.org': [rec('a.iot.example.org', 1, 0), rec('b.iot.example.org', 2, 0)] });
    const e = new Endpoints({ domain: 'iot.example.org', resolveSrv: resolve, now: () => now });
    expect((await e.next()).uri).toBe('xmpp://a.iot.example.org:5222');
    e.failed();
    expect((await e.next()).uri).toBe('xmpp://b.iot.example.org:5222');
    e.failed();
    expect((await e.next()).uri).toBe('xmpp://a.iot.example.org:5222');
    expect(resolve.lookups).toHaveLength(2); // one cycle's lookup (both names)
    now += SRV_TTL_MS;
    e.failed();
    await e.next();
    expect(resolve.lookups).toHaveLength(2); // mid-cycle: no lookup
    e.failed();
    await e.next();
    expect(resolve.lookups).toHaveLength(4); // a new cycle with an old answer: looked up again
  });
});

describe('xmpp.service as a list', () => {
  const base = { owners: ['a@x.org'], devices: [{ id: 't', driver: 'simulated', type: 'number' }] };
  const check = (service: unknown, tls?: unknown) => checkConfig({ ...base, xmpp: { jid: 'gw@x.org', password: 'p', service, tls } }, { hostname: 'pi' });

  it('takes one URI or a list in order of preference', () => {
    expect(check('xmpps://a.x.org:5223').config?.xmpp.services).toEqual(['xmpps://a.x.org:5223']);
    const two = check(['xmpps://b.x.org:5223', 'xmpp://a.x.org:5222']).config?.xmpp;
    expect(two?.services).toEqual(['xmpps://b.x.org:5223', 'xmpp://a.x.org:5222']);
    expect(two?.service).toBe('xmpps://b.x.org:5223');
    expect(check(undefined).config?.xmpp.services).toEqual([]);
  });

  it('names the bad entry, a repeated one, and an empty list', () => {
    const said = (r: ReturnType<typeof check>): string[] => r.issues.map((i) => `${i.path}: ${i.message}`);
    expect(said(check(['xmpps://b.x.org:5223', 'http://a.x.org']))).toEqual([expect.stringMatching(/^xmpp\.service\[1\]: expected a URI such as xmpp:\/\/host:5222/)]);
    expect(said(check(['xmpps://b.x.org:5223', 'xmpps://b.x.org:5223']))).toEqual(['xmpp.service[1]: "xmpps://b.x.org:5223" is listed twice']);
    expect(said(check([]))).toEqual([expect.stringMatching(/^xmpp\.service: must name at least one endpoint/)]);
  });

  it('allows plaintext only when every endpoint is on loopback', () => {
    expect(check(['xmpp://127.0.0.2:5222', 'xmpp://127.0.0.1:5222'], { allow_plaintext: true }).issues).toEqual([]);
    expect(check(['xmpp://127.0.0.2:5222', 'xmpp://10.0.0.5:5222'], { allow_plaintext: true }).issues.map((i) => i.message)).toEqual([
      'plaintext is only allowed when xmpp.service is on loopback (xmpp://127.0.0.1:PORT), got "xmpp://10.0.0.5:5222"',
    ]);
  });
});
