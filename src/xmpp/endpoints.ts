// Which server to connect to next. The config may list several endpoints (in
// order of preference: a cluster's nodes, the gateway's own node first);
// without a list, DNS SRV of the JID's domain gives them (RFC 6120 §3.2):
// _xmpps-client (direct TLS, XEP-0368) and _xmpp-client (STARTTLS) records in
// one list, by priority and then weight (RFC 2782), and the domain itself on
// 5222 when there are none. A failed connect, or a link lost while online,
// moves on to the next endpoint (the reconnect delay in between is the usual
// jittered backoff); a link lost while on a less preferred endpoint goes back
// to the most preferred one, so a gateway returns to its own node at its next
// reconnect instead of being moved while it is up.

import { promises as dns } from 'node:dns';

export interface SrvRecord {
  name: string;
  port: number;
  priority: number;
  weight: number;
}

/** Looks up one SRV name (e.g. _xmpp-client._tcp.example.org); [] when there is none. */
export type SrvResolver = (name: string) => Promise<SrvRecord[]>;

export interface Endpoint {
  /** xmpp://host:port (STARTTLS) or xmpps://host:port (direct TLS). */
  uri: string;
  source: 'config' | 'srv' | 'domain';
}

/** How long a resolved SRV list is used before a new cycle looks it up again. */
export const SRV_TTL_MS = 60_000;

/** Node's resolver; "no such name" and "no data" are an empty answer, not an error. */
export const systemSrv: SrvResolver = async (name) => {
  try {
    return await dns.resolveSrv(name);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOTFOUND' || code === 'ENODATA') return [];
    throw err;
  }
};

/**
 * RFC 2782 order: ascending priority; within one priority, records of weight 0
 * first, then repeatedly: a whole number from 0 to the sum of the weights left,
 * and the first record whose running sum reaches it (so a record is picked with
 * a chance proportional to its weight, one of weight 0 only rarely).
 */
export function orderSrv<T extends Pick<SrvRecord, 'priority' | 'weight'>>(records: readonly T[], random: () => number = Math.random): T[] {
  const priorities = [...new Set(records.map((r) => r.priority))].sort((a, b) => a - b);
  const out: T[] = [];
  for (const p of priorities) {
    const same = records.filter((r) => r.priority === p);
    const left = [...same.filter((r) => r.weight === 0), ...same.filter((r) => r.weight > 0)];
    while (left.length > 0) {
      const total = left.reduce((n, r) => n + r.weight, 0);
      const pick = Math.min(total, Math.floor(random() * (total + 1)));
      let sum = 0;
      const i = left.findIndex((r) => (sum += r.weight) >= pick);
      out.push(left.splice(Math.max(0, i), 1)[0]!);
    }
  }
  return out;
}

/** RFC 6120 §3.2 with XEP-0368: the SRV endpoints of a domain, best first; the domain on 5222 when it publishes none. */
export async function srvEndpoints(domain: string, resolveSrv: SrvResolver, random: () => number = Math.random): Promise<Endpoint[]> {
  const [direct, starttls] = await Promise.all([
    resolveSrv(`_xmpps-client._tcp.${domain}`).catch(() => []),
    resolveSrv(`_xmpp-client._tcp.${domain}`).catch(() => []),
  ]);
  // A single record whose target is "." says the service is decidedly not offered there (RFC 2782).
  const usable = (rs: SrvRecord[]): SrvRecord[] => (rs.length === 1 && (rs[0]!.name === '.' || rs[0]!.name === '') ? [] : rs);
  const all = [...usable(direct).map((r) => ({ ...r, direct: true })), ...usable(starttls).map((r) => ({ ...r, direct: false }))];
  if (all.length === 0) return [{ uri: `xmpp://${domain}:5222`, source: 'domain' }];
  const seen = new Set<string>();
  const out: Endpoint[] = [];
  for (const r of orderSrv(all, random)) {
    const host = r.name.replace(/\.$/, '');
    const uri = `${r.direct ? 'xmpps' : 'xmpp'}://${host.includes(':') ? `[${host}]` : host}:${r.port}`;
    if (seen.has(uri)) continue;
    seen.add(uri);
    out.push({ uri, source: 'srv' });
  }
  return out;
}

export interface EndpointsOptions {
  /** Configured endpoints, most preferred first; empty or absent: DNS SRV of the domain. */
  services?: readonly string[];
  domain: string;
  resolveSrv?: SrvResolver;
  random?: () => number;
  now?: () => number;
}

export class Endpoints {
  private list: Endpoint[];
  private index = 0;
  /** An attempt on list[index] is under way and has not reached online. */
  private trying = false;
  private up = false;
  private resolvedAt = -Infinity;
  private readonly fromSrv: boolean;
  private readonly now: () => number;

  constructor(private readonly o: EndpointsOptions) {
    this.fromSrv = !o.services || o.services.length === 0;
    this.list = this.fromSrv ? [] : o.services!.map((uri) => ({ uri, source: 'config' }));
    this.now = o.now ?? Date.now;
  }

  /** The endpoint of the current (or last) attempt. */
  get current(): Endpoint | undefined {
    return this.list[this.index];
  }

  /** 1-based rank of the current endpoint in the list, and the list's length. */
  get rank(): { position: number; of: number } {
    return { position: this.index + 1, of: this.list.length };
  }

  /** Every endpoint, most preferred first (empty until SRV was looked up). */
  get all(): readonly Endpoint[] {
    return this.list;
  }

  /** The endpoint for the next attempt; at the start of a cycle through an SRV list, looked up again when old. */
  async next(): Promise<Endpoint> {
    if (this.fromSrv && this.index === 0 && this.now() - this.resolvedAt >= SRV_TTL_MS) {
      try {
        this.list = await srvEndpoints(this.o.domain, this.o.resolveSrv ?? systemSrv, this.o.random);
        this.resolvedAt = this.now();
      } catch {
        // The resolver failed outright: keep the last list, or try the domain itself.
        if (this.list.length === 0) this.list = [{ uri: `xmpp://${this.o.domain}:5222`, source: 'domain' }];
      }
    }
    this.trying = true;
    this.up = false;
    return this.list[this.index]!;
  }

  /** The attempt did not reach online (refused, TLS or login failed, timed out): the next endpoint. Once per attempt. */
  failed(): void {
    if (!this.trying) return;
    this.trying = false;
    this.advance();
  }

  online(): void {
    this.trying = false;
    this.up = true;
  }

  /** The link was lost while online: on the preferred endpoint, try the next; elsewhere, back to the preferred one. */
  lost(): void {
    if (!this.up) return;
    this.up = false;
    if (this.index > 0) this.index = 0;
    else this.advance();
  }

  private advance(): void {
    if (this.list.length === 0) return;
    this.index = (this.index + 1) % this.list.length;
  }
}
