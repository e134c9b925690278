// Who may use the gateway: the config's owners and viewers (the root of
// trust, never changed from chat) plus the people stored in the state
// database, made owners by claiming the gateway with its one-time code or
// invited by an owner. The authority asks roleOf() on every stanza, so a
// change counts at once. At start, a gateway with claim enabled and no
// owners opens a code and shows it to the person at the device.

import { randomBytes } from 'node:crypto';
import xml from '@xmpp/xml';
import type { Element } from 'ltx';
import type { Clock } from '../core/clock.js';
import { bareOf } from '../core/authority.js';
import { ClaimAttempts, claimNotice, claimUri, formatCode, makeCode, normalizeCode, sameCode } from '../core/claim.js';
import type { ClaimConfig } from '../config/claim.js';
import type { Logger } from '../runtime/log.js';
import { readClaim, writeClaim, type ClaimState } from '../store/claim-file.js';
import type { PeopleTable, StoredRole } from '../store/people.js';
import { clip } from '../util/text.js';

export type PersonSource = 'config' | 'claim' | 'invite';

export interface Person {
  jid: string;
  role: StoredRole;
  source: PersonSource;
  by?: string;
  since?: number;
}

/** What a people command did, in a sentence for chat and ad-hoc alike. */
export interface Outcome {
  ok: boolean;
  text: string;
}

export interface PeopleDeps {
  /** The gateway's own bare JID. */
  self: string;
  /** From the config file, lower-cased bare JIDs. */
  owners: readonly string[];
  viewers: readonly string[];
  claim: ClaimConfig;
  stateDir: string;
  /** The state database's people table; undefined while the store is closed. */
  table: () => PeopleTable | undefined;
  clock: Clock;
  log: Logger;
  /** To take back a revoked person's presence subscription at once. */
  send: (s: Element) => Promise<void>;
  /** Shows the claim notice (QR code and text) to the person at the device: stderr, so the journal has it. */
  notice: (text: string) => void;
  random?: (n: number) => Uint8Array;
}

const BARE_JID = /^[^@/\s"&'<>:]+@[^@/\s]+$/;
export const CLAIM_COMMAND_HINT = 'xmpp-iot-agent claim --config <agent.yaml>';
const day = (t: number): string => new Date(t).toISOString().slice(0, 10);
const minutes = (ms: number): number => Math.max(1, Math.ceil(ms / 60_000));

export function people(deps: PeopleDeps) {
  const self = bareOf(deps.self);
  const configOwners = new Set(deps.owners.map(bareOf));
  const configViewers = new Set(deps.viewers.map(bareOf));
  const attempts = new ClaimAttempts();
  /** Senders told they are over the limit, until when: told once, then silence. */
  const told = new Map<string, number>();
  const random = deps.random ?? ((n: number) => new Uint8Array(randomBytes(n)));
  const { log } = deps;

  const stored = () => deps.table()?.all() ?? [];
  const storedOwners = (): string[] => stored().filter((p) => p.role === 'owner').map((p) => p.jid);
  const allOwners = (): string[] => [...new Set([...configOwners, ...storedOwners()])];
  const fromConfig = (bare: string): StoredRole | undefined => (configOwners.has(bare) ? 'owner' : configViewers.has(bare) ? 'viewer' : undefined);

  function describe(p: Person): string {
    if (p.source === 'config') return `${p.jid} — agent.yaml`;
    if (p.source === 'claim') return `${p.jid} — claimed the gateway with its code, ${day(p.since!)}`;
    return `${p.jid} — invited by ${p.by ?? 'an owner'}, ${day(p.since!)}`;
  }

  function list(): Person[] {
    const out: Person[] = [];
    for (const jid of configOwners) out.push({ jid, role: 'owner', source: 'config' });
    for (const jid of configViewers) if (!configOwners.has(jid)) out.push({ jid, role: 'viewer', source: 'config' });
    for (const p of stored()) if (!fromConfig(p.jid)) out.push({ jid: p.jid, role: p.role, source: p.source, by: p.by, since: p.since });
    return out;
  }

  /** A bare JID from what someone typed, or a sentence saying why not. */
  function target(text: string): { jid: string } | Outcome {
    const jid = text.trim().replace(/^xmpp:/i, '').toLowerCase();
    if (jid.includes('/')) return { ok: false, text: `Give a bare address without a resource, e.g. ${clip(jid.split('/')[0]!)}` };
    if (!BARE_JID.test(jid)) return { ok: false, text: `"${clip(text.trim())}" is not an address such as bob@example.org` };
    if (jid === self) return { ok: false, text: "The gateway's own account gets rights only from agent.yaml (owners/viewers), never from chat." };
    return { jid };
  }

  /** Opens (or keeps) a live code and shows it; closes any code once the gateway has owners. */
  function reconcile(now: number): void {
    let state: ClaimState | undefined;
    try {
      state = readClaim(deps.stateDir);
    } catch (err) {
      log.warn('claim state unreadable; a new code replaces it', { error: err });
    }
    const owners = allOwners();
    if (owners.length > 0) {
      if (state?.state === 'open') {
        writeClaim(deps.stateDir, { state: 'done', at: now });
        log.info('claim code withdrawn: the gateway has owners', { owners: owners.length });
      }
      return;
    }
    if (state?.state === 'open' && state.expires === undefined) {
      // Made by `image`: its time starts now, at the first start.
      state = { ...state, expires: now + state.ttlMs };
      writeClaim(deps.stateDir, state);
    }
    if (state?.state !== 'open' || state.expires! <= now) {
      if (state?.state === 'done') log.warn('the gateway was claimed, but no owner is stored (a new state database?): a new claim code is open', { claimedBy: state.by });
      state = { state: 'open', code: makeCode(random), created: now, expires: now + deps.claim.codeTtlMs, ttlMs: deps.claim.codeTtlMs };
      writeClaim(deps.stateDir, state);
    }
    deps.notice(claimNotice({ jid: self, code: state.code, expires: state.expires }));
    // The one log line that holds the code: it is meant for the person at the device (journalctl -u xmpp-iot-agent).
    log.info('claim code open: the first person to send "claim <code>" becomes the owner', { code: state.code, uri: claimUri(self, state.code), expires: new Date(state.expires!).toISOString() });
  }

  function claim(from: string, text: string): Outcome | undefined {
    const sender = bareOf(from);
    const now = deps.clock.now();
    if (allOwners().includes(sender)) return { ok: false, text: 'You already own this gateway.' };
    if (sender === self) return { ok: false, text: "The gateway's own account cannot claim it." };
    const until = attempts.blockedUntil(sender, now);
    if (until !== undefined) {
      if ((told.get(sender) ?? 0) >= until) return undefined; // told already: silence, so a bot cannot make us talk
      if (told.size > 1000) told.clear();
      told.set(sender, until);
      log.info('claim refused: too many wrong codes', { from: sender, untilMs: until - now });
      return { ok: false, text: `Too many wrong codes. Try again in ${minutes(until - now)} min.` };
    }
    if (allOwners().length > 0) {
      attempts.fail(sender, now); // not a guess, but counted, so asking again and again is quiet soon
      return { ok: false, text: 'This gateway already has an owner. Ask them to invite you (they type: invite <your address>).' };
    }
    let state: ClaimState | undefined;
    try {
      state = readClaim(deps.stateDir);
    } catch (err) {
      log.error('claim state unreadable', { error: err });
      return { ok: false, text: `The gateway cannot read its claim code. At the device, run: ${CLAIM_COMMAND_HINT}` };
    }
    const code = normalizeCode(text);
    if (state?.state !== 'open') return { ok: false, text: `No claim code is open on this gateway. At the device, run: ${CLAIM_COMMAND_HINT}` };
    const right = code !== undefined && sameCode(code, state.code);
    if (right && state.expires !== undefined && state.expires <= now) {
      log.info('claim refused: the code has expired', { from: sender });
      return { ok: false, text: `That code expired at ${new Date(state.expires).toISOString().slice(0, 16).replace('T', ' ')} UTC. At the device, run ${CLAIM_COMMAND_HINT} for a new one.` };
    }
    if (!right) {
      attempts.fail(sender, now);
      log.info('claim refused: wrong code', { from: sender });
      return { ok: false, text: code === undefined ? `Usage: claim <code>, the code shown at the device (${formatCode('X'.repeat(12))}).` : 'That is not the code shown at the device.' };
    }
    const table = deps.table();
    if (!table) return { ok: false, text: 'The gateway is starting; try again in a moment.' };
    // The owner first, then the code dies: a crash between the two leaves an owner and a code the next start withdraws.
    table.put({ jid: sender, role: 'owner', source: 'claim', since: now });
    writeClaim(deps.stateDir, { state: 'done', at: now, by: sender });
    log.info('claimed: a new owner', { owner: sender });
    return { ok: true, text: `✓ You own this gateway now. Type help for its commands; invite others with: invite <address> [viewer|owner].` };
  }

  function invite(by: string, who: string, role: StoredRole): Outcome {
    const t = target(who);
    if (!('jid' in t)) return t;
    const { jid } = t;
    const named = fromConfig(jid);
    if (named) {
      return named === role
        ? { ok: true, text: `${jid} is already ${named === 'owner' ? 'an owner' : 'a viewer'} (named in agent.yaml).` }
        : { ok: false, text: `${jid} is ${named === 'owner' ? 'an owner' : 'a viewer'} by agent.yaml; only the file can change that.` };
    }
    const table = deps.table();
    if (!table) return { ok: false, text: 'The gateway is starting; try again in a moment.' };
    const before = table.get(jid);
    if (before?.role === role) return { ok: true, text: `${jid} is already ${role === 'owner' ? 'an owner' : 'a viewer'}.` };
    if (before?.role === 'owner' && allOwners().length === 1) return { ok: false, text: `${jid} is the only owner; invite another owner first.` };
    table.put({ jid, role, source: 'invite', by: bareOf(by), since: deps.clock.now() });
    log.info('person invited', { jid, role, by: bareOf(by) });
    // No RFC 6121 §3.4 pre-approval: Prosody 0.12 keeps one after "unsubscribed", so a revoked
    // person's request would still be approved by the server while the gateway is offline.
    const may = role === 'owner' ? 'read and control' : 'read';
    return { ok: true, text: `✓ ${jid} may now ${may} this gateway (${role}). When they add ${self} to their contacts, their request is approved.` };
  }

  function revoke(by: string, who: string): Outcome {
    const t = target(who);
    if (!('jid' in t)) return t;
    const { jid } = t;
    const named = fromConfig(jid);
    if (named) return { ok: false, text: `${jid} is named in agent.yaml (${named}s) and cannot be revoked from chat: take them out of the file and restart the agent.` };
    const table = deps.table();
    const before = table?.get(jid);
    if (!table || !before) return { ok: false, text: `${jid} has no rights on this gateway.` };
    if (before.role === 'owner' && allOwners().length === 1) return { ok: false, text: `${jid} is the only owner; invite another owner first.` };
    table.remove(jid);
    log.info('person revoked', { jid, by: bareOf(by) });
    // Their view of the readings goes now, not at the next connect.
    void deps.send(xml('presence', { type: 'unsubscribed', to: jid })).catch(() => {});
    return { ok: true, text: `✓ ${jid} can no longer ${before.role === 'owner' ? 'read or control' : 'read'} this gateway; their subscription to its presence is taken back.` };
  }

  return {
    name: 'people',
    claimEnabled: deps.claim.enabled,
    /** Config first (the root of trust), then the store. The gateway's own account never gets a stored role. */
    roleOf(bare: string): StoredRole | undefined {
      const b = bareOf(bare);
      return fromConfig(b) ?? (b === self ? undefined : deps.table()?.get(b)?.role);
    },
    owners: allOwners,
    list,
    claim,
    invite,
    revoke,
    /** The reply to "owners": everyone, by role, and where each comes from. */
    listText(): string {
      const all = list();
      const section = (role: StoredRole, title: string): string[] => {
        const ps = all.filter((p) => p.role === role);
        return [`${title}:`, ...(ps.length > 0 ? ps.map((p) => `  ${describe(p)}`) : ['  none'])];
      };
      const note = 'People named in agent.yaml cannot be revoked from chat.';
      return [...section('owner', 'Owners'), ...section('viewer', 'Viewers'), note].join('\n');
    },
    /** One line for "Agent status". */
    summary(): string {
      const all = list();
      const part = (role: StoredRole): string => {
        const ps = all.filter((p) => p.role === role);
        const names = ps.map((p) => `${p.jid} (${p.source === 'config' ? 'agent.yaml' : p.source === 'claim' ? 'claimed' : `invited by ${p.by ?? 'an owner'}`})`);
        return `${role}s: ${names.length > 0 ? names.join(', ') : 'none'}`;
      };
      const open = deps.claim.enabled && allOwners().length === 0 ? ' · unclaimed: a claim code is open' : '';
      return `${part('owner')} · ${part('viewer')}${open}`;
    },
    start(): void {
      if (deps.claim.enabled) reconcile(deps.clock.now());
    },
    stop(): void {},
  };
}

export type People = ReturnType<typeof people>;
