// Findable on the LAN without a server: DNS-SD over multicast DNS, as XEP-0174
// link-local presence (_presence._tcp). The TXT record carries the JID, the
// status (avail/away/dnd) and, unless turned off, the readings summary, and is
// re-announced when they change. A goodbye (TTL 0) goes out on stop.
//
// multicast-dns does the packets; the responder is ours (~100 lines), because
// the libraries measured here split TXT values at dots (mdns-js), or cannot
// update a TXT record in place (bonjour-service). Not done: name-conflict
// probing, and serving link-local chat on the advertised port (presence only).

import { networkInterfaces } from 'node:os';
import multicastDns, { type MdnsRecord, type MulticastDns } from 'multicast-dns';
import type { Logger } from '../runtime/log.js';

export const PRESENCE_TYPE = '_presence._tcp.local';
export const SERVICES = '_services._dns-sd._udp.local';
/** XEP-0174's registered port; advertised, though this agent does not serve link-local streams. */
export const LINK_LOCAL_PORT = 5298;

export interface AdvertOptions {
  /** Instance name before @: XEP-0174 uses user@machine. */
  user: string;
  host: string;
  jid: string;
  caps?: { node: string; ver: string };
  log: Logger;
  /** For tests: interfaces to read addresses from. */
  addresses?: () => string[];
}

export interface Advert {
  update(state: { status: 'avail' | 'away' | 'dnd'; msg: string }): void;
  stop(): Promise<void>;
  /** Records currently advertised (for diagnostics). */
  txt(): Record<string, string>;
}

function ipv4Addresses(): string[] {
  return Object.values(networkInterfaces())
    .flat()
    .filter((a) => a !== undefined && a.family === 'IPv4' && !a.internal)
    .map((a) => a!.address);
}

export function advertise(o: AdvertOptions): Advert {
  const instance = `${o.user}@${o.host}.${PRESENCE_TYPE}`;
  const target = `${o.host}.local`;
  let txt: Record<string, string> = { txtvers: '1', status: 'avail', msg: '', jid: o.jid, '1st': o.user, ...(o.caps ? { hash: 'sha-1', node: o.caps.node, ver: o.caps.ver } : {}) };
  const addresses = o.addresses ?? ipv4Addresses;

  const records = (ttl = 1) => ({
    ptr: { name: PRESENCE_TYPE, type: 'PTR', ttl: 4500 * ttl, data: instance } as MdnsRecord,
    srv: { name: instance, type: 'SRV', ttl: 120 * ttl, flush: true, data: { port: LINK_LOCAL_PORT, target } } as MdnsRecord,
    // Each TXT string built here as one key=value buffer: no splitting at dots.
    txt: { name: instance, type: 'TXT', ttl: 4500 * ttl, flush: true, data: Object.entries(txt).map(([k, v]) => Buffer.from(`${k}=${v}`, 'utf8')) } as MdnsRecord,
    a: addresses().map((ip) => ({ name: target, type: 'A', ttl: 120 * ttl, flush: true, data: ip }) as MdnsRecord),
    services: { name: SERVICES, type: 'PTR', ttl: 4500 * ttl, data: PRESENCE_TYPE } as MdnsRecord,
  });

  const m: MulticastDns = multicastDns();
  let stopped = false;
  const timers = new Set<NodeJS.Timeout>();
  m.on('error', (err) => o.log.warn('mDNS unavailable', { error: err }));
  m.on('warning', (err) => o.log.debug('mDNS warning', { error: err }));

  const send = (answers: MdnsRecord[], additionals: MdnsRecord[] = []): void => {
    if (!stopped) m.respond({ answers, additionals }, null, () => {});
  };
  /** RFC 6762 §8.3: announce twice, a second apart. */
  const announce = (answers: MdnsRecord[]): void => {
    send(answers);
    const t = setTimeout(() => {
      timers.delete(t);
      send(answers);
    }, 1000);
    t.unref();
    timers.add(t);
  };

  m.on('query', (q, rinfo) => {
    const r = records();
    const answers: MdnsRecord[] = [];
    const additionals: MdnsRecord[] = [];
    for (const { name, type } of q.questions) {
      const n = name.toLowerCase();
      const any = type === 'ANY';
      if (n === SERVICES && (type === 'PTR' || any)) answers.push(r.services);
      else if (n === PRESENCE_TYPE && (type === 'PTR' || any)) {
        answers.push(r.ptr);
        additionals.push(r.srv, r.txt, ...r.a);
      } else if (n === instance.toLowerCase()) {
        if (type === 'SRV' || any) answers.push(r.srv);
        if (type === 'TXT' || any) answers.push(r.txt);
        additionals.push(...r.a);
      } else if (n === target.toLowerCase() && (type === 'A' || any)) answers.push(...r.a);
    }
    if (answers.length === 0) return;
    // Legacy unicast queries (source port not 5353) are answered directly.
    m.respond({ answers, additionals }, rinfo.port !== 5353 ? { address: rinfo.address, port: rinfo.port } : null, () => {});
  });
  m.on('ready', () => {
    const r = records();
    announce([r.ptr, r.srv, r.txt, ...r.a]);
    o.log.info('advertised on the LAN', { instance, jid: o.jid });
  });

  return {
    update(state) {
      if (txt.status === state.status && txt.msg === state.msg) return;
      txt = { ...txt, ...state };
      const r = records();
      // PTR and SRV ride along: some browsers only act on packets that carry the PTR.
      announce([r.ptr, r.srv, r.txt]);
    },
    txt: () => ({ ...txt }),
    stop() {
      return new Promise((resolve) => {
        for (const t of timers) clearTimeout(t);
        const done = (): void => {
          if (stopped) return;
          stopped = true;
          m.destroy(() => resolve());
        };
        const r = records(0); // TTL 0: goodbye
        m.respond([r.ptr, r.srv, r.txt, ...r.a], null, done);
        setTimeout(done, 1000).unref(); // a socket that never opened never calls back
      });
    },
  };
}
