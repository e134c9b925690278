// multicast-dns 7.2.5 (packets by dns-packet 5.6.1): only what
// src/mdns/responder.ts calls. Kept by hand rather than @types/multicast-dns
// 7.2.4 with @types/dns-packet 5.6.5, which are wrong for this use in two
// places: a question's type cannot be 'ANY' there (dns-packet decodes QTYPE
// 255 as 'ANY', and DNS-SD browsers ask ANY), and respond() refuses a null
// rinfo (multicast-dns sends to the group for any falsy rinfo).
// Check index.js (send, respond) again before bumping multicast-dns.

declare module 'multicast-dns' {
  import type { EventEmitter } from 'node:events';
  import type { RemoteInfo } from 'node:dgram';
  export interface MdnsRecord {
    name: string;
    type: string;
    ttl?: number;
    flush?: boolean;
    data?: unknown;
  }
  export interface MdnsQuestion {
    name: string;
    /** 'PTR', 'SRV', 'TXT', 'A', … or 'ANY'. */
    type: string;
  }
  export interface MdnsPacket {
    type: 'query' | 'response';
    questions: MdnsQuestion[];
    answers: MdnsRecord[];
    additionals: MdnsRecord[];
  }
  export interface MulticastDns extends EventEmitter {
    /** rinfo null: to the multicast group; else unicast to that address and port. */
    respond(res: MdnsRecord[] | { answers: MdnsRecord[]; additionals?: MdnsRecord[] }, rinfo: { address: string; port: number } | null, cb: (err?: Error | null) => void): void;
    destroy(cb?: () => void): void;
    on(event: 'query' | 'response', fn: (packet: MdnsPacket, rinfo: RemoteInfo) => void): this;
    on(event: 'ready', fn: () => void): this;
    on(event: 'error' | 'warning', fn: (err: Error) => void): this;
  }
  export default function multicastDns(): MulticastDns;
}
