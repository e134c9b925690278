import { describe, expect, it } from 'vitest';
import { ScramClient, saslName, type SaltCache } from '../src/xmpp/scram.js';
import { chooseMechanism } from '../src/xmpp/sasl.js';
import { backoff } from '../src/util/backoff.js';

describe('SCRAM', () => {
  it('matches the RFC 5802 SCRAM-SHA-1 example', async () => {
    const cache: SaltCache = new Map();
    const c = new ScramClient('sha1', 'user', 'pencil', cache, 'fyko+d2lbbFgONRv9qkxdawL');
    expect(c.first()).toBe('n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL');
    const final = await c.final('r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096');
    expect(final).toBe('c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=');
    expect(() => c.verify('v=rmF9pqV8S7suAoZWja4dJRkFsKQ=')).not.toThrow();
    expect(c.derived).toBe(true);
  });

  it('matches the RFC 7677 SCRAM-SHA-256 example', async () => {
    const c = new ScramClient('sha256', 'user', 'pencil', new Map(), 'rOprNGfwEbeRWgbNEkqO');
    c.first();
    const final = await c.final('r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096');
    expect(final).toBe('c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=');
    expect(() => c.verify('v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=')).not.toThrow();
  });

  it('reuses the salted password on the next login with the same salt', async () => {
    const cache: SaltCache = new Map();
    const serverFirst = 'r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096';
    const a = new ScramClient('sha1', 'user', 'pencil', cache, 'fyko+d2lbbFgONRv9qkxdawL');
    a.first();
    await a.final(serverFirst);
    const b = new ScramClient('sha1', 'user', 'pencil', cache, 'fyko+d2lbbFgONRv9qkxdawL');
    b.first();
    expect(await b.final(serverFirst)).toContain('p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=');
    expect(b.derived).toBe(false);
  });

  it('refuses an impostor server, a foreign nonce and a weak iteration count', async () => {
    const c = new ScramClient('sha1', 'user', 'pencil', new Map(), 'fyko+d2lbbFgONRv9qkxdawL');
    c.first();
    await expect(c.final('r=someoneelse,s=QSXCR+Q6sek8bf92,i=4096')).rejects.toThrow('server nonce does not extend ours');
    await expect(c.final('r=fyko+d2lbbFgONRv9qkxdawLX,s=QSXCR+Q6sek8bf92,i=1')).rejects.toThrow('at least 4096');
    await c.final('r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096');
    expect(() => c.verify('v=AAAAAAAAAAAAAAAAAAAAAAAAAAA=')).toThrow(/possible impostor/);
    expect(() => c.verify('e=invalid-proof')).toThrow('server rejected the proof: invalid-proof');
  });

  it('escapes user names and prefers the strongest mechanism, PLAIN only inside TLS', () => {
    expect(saslName('a=b,c')).toBe('a=3Db=2Cc');
    expect(chooseMechanism(['PLAIN', 'SCRAM-SHA-1', 'SCRAM-SHA-256'], true)).toBe('SCRAM-SHA-256');
    expect(chooseMechanism(['PLAIN', 'SCRAM-SHA-1'], true)).toBe('SCRAM-SHA-1');
    expect(chooseMechanism(['PLAIN'], true)).toBe('PLAIN');
    expect(chooseMechanism(['PLAIN'], false)).toBeUndefined();
  });
});

describe('reconnect backoff', () => {
  it('doubles from the initial delay up to the cap, jittered into the upper half', () => {
    const lo = (n: number) => backoff(n, 1000, 60_000, () => 0);
    const hi = (n: number) => backoff(n, 1000, 60_000, () => 1);
    expect([1, 2, 3, 4].map(hi)).toEqual([1000, 2000, 4000, 8000]);
    expect([1, 2, 3, 4].map(lo)).toEqual([500, 1000, 2000, 4000]);
    expect(hi(30)).toBe(60_000);
    expect(lo(30)).toBe(30_000);
  });
});
