// Claim by code without a server: the code's form, the xmpp: URI, the limits
// on wrong codes (per sender and overall, on a fake clock), expiry, a code made
// by `image` that starts its time at the first start, the config rule that
// owners may be left out only when claim is on, and the store's migration.

import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import type { Clock } from '../src/core/clock.js';
import { ClaimAttempts, claimUri, makeCode, normalizeCode, OVERALL, PER_SENDER } from '../src/core/claim.js';
import { checkConfig } from '../src/config/schema.js';
import { people } from '../src/services/people.js';
import { openStore, type Store } from '../src/store/db.js';
import { readClaim, writeClaim } from '../src/store/claim-file.js';
import { createLogger, createSink } from '../src/runtime/log.js';

const GW = 'gw@iot.example.org';
const tmp = (): string => mkdtempSync(join(tmpdir(), 'xia-claim-unit-'));

function fixture(opts: { owners?: string[]; viewers?: string[]; ttlMs?: number; dir?: string } = {}) {
  const dir = opts.dir ?? tmp();
  let t = Date.UTC(2026, 10, 25, 12);
  const clock = { now: () => t } as Clock;
  const logs: string[] = [];
  const sent: string[] = [];
  const notices: string[] = [];
  let store: Store | undefined = openStore({ dir, now: () => t });
  let seed = 1;
  const p = people({
    self: GW,
    owners: opts.owners ?? [],
    viewers: opts.viewers ?? [],
    claim: { enabled: true, codeTtlMs: opts.ttlMs ?? 3_600_000 },
    stateDir: dir,
    table: () => store?.people,
    clock,
    log: createLogger(createSink('debug', (l) => logs.push(l))),
    send: async (s) => void sent.push(s.toString()),
    notice: (n) => notices.push(n),
    random: (n) => new Uint8Array(n).map(() => (seed = (seed * 1103515245 + 12345) >>> 0) >>> 24),
  });
  return {
    dir,
    p,
    logs,
    sent,
    notices,
    advance: (ms: number) => (t += ms),
    now: () => t,
    code: () => {
      const s = readClaim(dir);
      return s?.state === 'open' ? s.code : undefined;
    },
    close: () => {
      store?.close();
      store = undefined;
    },
  };
}

describe('claim codes', () => {
  it('are 12 symbols of Crockford base 32 in groups of four, read back whatever the case, dashes or look-alikes', () => {
    const code = makeCode((n) => new Uint8Array(n).map((_, i) => i * 37));
    expect(code).toMatch(/^[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){2}$/);
    expect(normalizeCode(code.toLowerCase().replace(/-/g, ''))).toBe(code);
    expect(normalizeCode(' k7qm 3xrt 9pwd ')).toBe('K7QM-3XRT-9PWD');
    expect(normalizeCode('O1IL-0000-0000')).toBe('0111-0000-0000');
    expect(normalizeCode('K7QM-3XRT-9PW')).toBeUndefined();
    expect(normalizeCode('K7QM-3XRT-9PWU')).toBeUndefined();
  });

  it('go in an RFC 5122 URI that opens a chat with the message ready', () => {
    expect(claimUri(GW, 'K7QM-3XRT-9PWD')).toBe('xmpp:gw@iot.example.org?message;body=claim%20K7QM-3XRT-9PWD');
    // Characters a URI may not carry as they are get percent-encoded; ; and = may stay in a node.
    expect(claimUri('a#b;c=d@iot.example.org', 'X')).toBe('xmpp:a%23b;c=d@iot.example.org?message;body=claim%20X');
  });

  it('limit wrong guesses per sender and overall, in sliding windows', () => {
    const a = new ClaimAttempts();
    const t0 = 1_000_000;
    for (let i = 0; i < PER_SENDER.max; i++) {
      expect(a.blockedUntil('m@x', t0 + i)).toBeUndefined();
      a.fail('m@x', t0 + i);
    }
    expect(a.blockedUntil('m@x', t0 + 10)).toBe(t0 + PER_SENDER.windowMs);
    expect(a.blockedUntil('other@x', t0 + 10)).toBeUndefined();
    expect(a.blockedUntil('m@x', t0 + PER_SENDER.windowMs)).toBeUndefined(); // the first guess left the window
    // Everyone together: the overall limit holds even when each sender stays under their own.
    const b = new ClaimAttempts();
    for (let i = 0; i < OVERALL.max; i++) b.fail(`s${i}@x`, t0 + i);
    expect(b.blockedUntil('fresh@x', t0 + 100)).toBe(t0 + OVERALL.windowMs);
    expect(b.blockedUntil('fresh@x', t0 + OVERALL.windowMs)).toBeUndefined();
  });
});

describe('the people service', () => {
  it('opens a code at start, refuses it once expired, and opens a new one at the next start', () => {
    const f = fixture({ ttlMs: 60_000 });
    f.p.start();
    const first = f.code()!;
    expect(f.notices).toHaveLength(1);
    f.advance(60_000);
    expect(f.p.claim('carol@x/phone', first)?.text).toMatch(/^That code expired at 2026-11-25 12:01 UTC\./);
    expect(f.p.owners()).toEqual([]);
    f.p.start();
    const second = f.code()!;
    expect(second).not.toBe(first);
    expect(f.p.claim('carol@x/phone', first)?.text).toBe('That is not the code shown at the device.');
    expect(f.p.claim('carol@x/phone', second)?.ok).toBe(true);
    expect(f.p.roleOf('carol@x')).toBe('owner');
    f.close();
  });

  it('refuses every claim once the overall limit is reached, the right code too, until the window moves on', () => {
    const f = fixture({ ttlMs: 2 * OVERALL.windowMs });
    f.p.start();
    const code = f.code()!;
    for (let i = 0; i < OVERALL.max; i++) expect(f.p.claim(`bot${i}@x`, 'AAAA-AAAA-AAAA')?.text).toBe('That is not the code shown at the device.');
    expect(f.p.claim('carol@x', code)?.text).toBe('Too many wrong codes. Try again in 60 min.');
    expect(f.p.claim('carol@x', code)).toBeUndefined(); // told once, then silence
    f.advance(OVERALL.windowMs);
    expect(f.p.claim('carol@x', code)?.ok).toBe(true);
    f.close();
  });

  it('starts the time of a code made by `image` at the first start', () => {
    const f = fixture({ ttlMs: 3_600_000 });
    writeClaim(f.dir, { state: 'open', code: 'K7QM-3XRT-9PWD', created: f.now() - 30 * 86_400_000, ttlMs: 3_600_000 });
    f.p.start();
    expect(readClaim(f.dir)).toEqual({ state: 'open', code: 'K7QM-3XRT-9PWD', created: f.now() - 30 * 86_400_000, ttlMs: 3_600_000, expires: f.now() + 3_600_000 });
    expect(f.p.claim('carol@x', 'k7qm3xrt9pwd')?.ok).toBe(true);
    f.close();
  });

  it('withdraws an open code once the gateway has owners, and opens one when the owners are gone with the database', () => {
    const dir = tmp();
    const named = fixture({ dir, owners: ['alice@x'] });
    writeClaim(dir, { state: 'open', code: 'K7QM-3XRT-9PWD', created: named.now(), expires: named.now() + 1000, ttlMs: 1000 });
    named.p.start();
    expect(readClaim(dir)).toMatchObject({ state: 'done' });
    expect(named.notices).toEqual([]);
    named.close();

    const f = fixture();
    writeClaim(f.dir, { state: 'done', at: f.now(), by: 'carol@x' }); // claimed, but this agent.db is new
    f.p.start();
    expect(readClaim(f.dir)).toMatchObject({ state: 'open' });
    expect(f.logs.some((l) => l.includes('no owner is stored'))).toBe(true);
    f.close();
  });

  it('never gives the gateway\'s own account a role from chat, and keeps the only owner', () => {
    const f = fixture();
    f.p.start();
    expect(f.p.claim(`${GW}/other-gateway`, f.code()!)?.text).toBe("The gateway's own account cannot claim it.");
    expect(f.p.claim('carol@x', f.code()!)?.ok).toBe(true);
    expect(f.p.invite('carol@x', GW, 'owner').ok).toBe(false);
    expect(f.p.roleOf(GW)).toBeUndefined();
    expect(f.p.invite('carol@x', 'carol@x', 'viewer').text).toBe('carol@x is the only owner; invite another owner first.');
    expect(f.p.invite('carol@x', 'bob@x/phone', 'viewer').text).toBe('Give a bare address without a resource, e.g. bob@x');
    expect(f.p.invite('carol@x', 'not an address', 'viewer').ok).toBe(false);
    expect(f.p.invite('carol@x', 'xmpp:Bob@X', 'owner')).toMatchObject({ ok: true });
    expect(f.p.roleOf('bob@x')).toBe('owner');
    expect(f.p.revoke('bob@x', 'carol@x').ok).toBe(true); // two owners: one may go
    expect(f.sent).toEqual(["<presence type=\"unsubscribed\" to=\"carol@x\"/>"]);
    f.close();
  });

  it('keeps the config the root of trust: named people are not changed or revoked from chat', () => {
    const f = fixture({ owners: ['alice@x'], viewers: ['dave@x'] });
    expect(f.p.invite('alice@x', 'dave@x', 'owner').text).toBe('dave@x is a viewer by agent.yaml; only the file can change that.');
    expect(f.p.revoke('alice@x', 'alice@x').text).toBe('alice@x is named in agent.yaml (owners) and cannot be revoked from chat: take them out of the file and restart the agent.');
    expect(f.p.claim('eve@x', 'AAAA-AAAA-AAAA')?.text).toBe('This gateway already has an owner. Ask them to invite you (they type: invite <your address>).');
    f.close();
  });
});

describe('config', () => {
  const base = { xmpp: { jid: GW, password: 'pw' }, devices: [{ id: 't', driver: 'simulated', type: 'number' }] };
  const problems = (raw: unknown): string[] => checkConfig(raw, { hostname: 'h' }).issues.map((i) => `${i.path}: ${i.message}`);

  it('requires owners unless claim is enabled, and says how to go without', () => {
    expect(problems(base)).toEqual([
      'owners: is required: list the bare JIDs allowed to control the gateway, e.g. [alice@iot.example.org]; or set claim.enabled: true to let the first person with the code shown at the device become the owner',
    ]);
    expect(problems({ ...base, owners: [] })[0]).toMatch(/^owners: must name at least one bare JID, or set claim\.enabled: true/);
    expect(problems({ ...base, claim: { enabled: true } })).toEqual([]);
    expect(checkConfig({ ...base, claim: { enabled: true } }, { hostname: 'h' }).config).toMatchObject({ owners: [], claim: { enabled: true, codeTtlMs: 86_400_000 } });
    expect(checkConfig({ ...base, owners: [], claim: { enabled: true, code_ttl: '2h' } }, { hostname: 'h' }).config?.claim.codeTtlMs).toBe(7_200_000);
    expect(problems({ ...base, claim: { enabled: true, code_ttl: '10s', enable: 1 } })).toEqual([
      'claim.enable: unknown key (did you mean "enabled"?); expected one of enabled, code_ttl',
      'claim.code_ttl: expected at least 60000 ms, got "10s"',
    ]);
    expect(problems({ ...base, owners: ['a@x'], devices: [{ id: 'invite', driver: 'simulated', type: 'number' }] })).toEqual(['devices[0].id: "invite" is a chat command word; choose another id']);
  });
});

describe('the store', () => {
  it('migrates a version 1 database to version 2 (the people table), keeping what it held', () => {
    const dir = tmp();
    const db = new Database(join(dir, 'agent.db'));
    db.exec(`CREATE TABLE meta (key TEXT PRIMARY KEY, value);
      CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, recipient TEXT NOT NULL, body TEXT NOT NULL, kind TEXT NOT NULL CHECK (kind IN ('alarm', 'info')), created INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0);
      CREATE TABLE readings (device TEXT NOT NULL, t INTEGER NOT NULL, num REAL, txt TEXT, kind TEXT NOT NULL CHECK (kind IN ('n', 'b', 's')));
      CREATE INDEX readings_device_t ON readings (device, t);
      INSERT INTO outbox (recipient, body, kind, created) VALUES ('alice@x', 'an alarm', 'alarm', 1);
      PRAGMA user_version = 1;`);
    db.close();
    const store = openStore({ dir });
    expect(store.outbox.pending().map((i) => i.body)).toEqual(['an alarm']);
    store.people.put({ jid: 'Carol@X', role: 'owner', source: 'claim', since: 5 });
    store.close();
    const again = openStore({ dir });
    expect(again.people.all()).toEqual([{ jid: 'carol@x', role: 'owner', source: 'claim', since: 5 }]);
    again.close();
    const check = new Database(join(dir, 'agent.db'), { readonly: true });
    expect(check.pragma('user_version', { simple: true })).toBe(2);
    check.close();
  });
});
