// Types for the untyped JavaScript packages we use: only the surface we call.

declare module 'ltx' {
  export type Attrs = Record<string, string | number | boolean | undefined | null>;
  export type Node = Element | string;
  export class Element {
    constructor(name: string, attrs?: Attrs);
    name: string;
    attrs: Record<string, string>;
    children: Node[];
    parent: Element | null;
    is(name: string, xmlns?: string): boolean;
    getName(): string;
    getNS(): string | undefined;
    getChild(name: string, xmlns?: string): Element | undefined;
    getChildren(name: string, xmlns?: string): Element[];
    getChildElements(): Element[];
    getChildText(name: string, xmlns?: string): string | null;
    getText(): string;
    text(): string;
    c(name: string, attrs?: Attrs): Element;
    t(text: string): Element;
    up(): Element;
    root(): Element;
    cnode(child: Element): Element;
    append(...children: Node[]): void;
    toString(): string;
  }
  export function createElement(name: string, attrs?: Attrs | null, ...children: (Node | undefined | null | false)[]): Element;
  export function parse(xml: string): Element;
}

declare module '@xmpp/xml' {
  import type { Element, Attrs, Node } from 'ltx';
  export default function xml(name: string, attrs?: Attrs | null, ...children: (Node | undefined | null | false)[]): Element;
}

declare module '@xmpp/jid' {
  export class JID {
    local: string;
    domain: string;
    resource: string;
    bare(): JID;
    toString(): string;
    equals(other: JID): boolean;
  }
  export function jid(s: string): JID;
  export default jid;
}

declare module '@xmpp/events' {
  import { EventEmitter } from 'node:events';
  export function promise<T = unknown>(target: EventEmitter, event: string, rejectEvent?: string | null, timeout?: number): Promise<T>;
  export function procedure(entity: unknown, stanza: unknown, handler: unknown): Promise<unknown>;
}

declare module '@xmpp/client-core' {
  import type { EventEmitter } from 'node:events';
  import type { Element } from 'ltx';
  import type { JID } from '@xmpp/jid';
  export interface ClientOptions { service?: string; domain: string; lang?: string; timeout?: number }
  export interface TransportSocket extends EventEmitter {
    secure?: boolean;
    socket?: unknown;
    connect(params: unknown): void;
    end(): void;
    write(data: string, cb?: (err?: Error) => void): void;
  }
  export class Client {
    constructor(options: ClientOptions);
    jid: JID | null;
    status: string;
    options: ClientOptions & { service?: string };
    socket: TransportSocket | null;
    transports: unknown[];
    timeout: number;
    on(event: string, fn: (...args: any[]) => void): this;
    once(event: string, fn: (...args: any[]) => void): this;
    off(event: string, fn: (...args: any[]) => void): this;
    removeListener(event: string, fn: (...args: any[]) => void): this;
    emit(event: string, ...args: unknown[]): boolean;
    isSecure(): boolean;
    connect(service?: string): Promise<void>;
    open(options: { domain: string; lang?: string }): Promise<Element>;
    restart(): Promise<Element>;
    start(): Promise<JID>;
    stop(): Promise<void>;
    disconnect(): Promise<void>;
    send(element: Element): Promise<void>;
    sendReceive(element: Element, timeout?: number): Promise<Element>;
    write(data: string): Promise<void>;
    _attachSocket(socket: unknown): void;
    _status(status: string, ...args: unknown[]): void;
    _jid(jid: string): JID;
    _ready(resumed?: boolean): void;
  }
}

declare module '@xmpp/tcp' {
  const tcp: (deps: { entity: unknown }) => void;
  export default tcp;
}
declare module '@xmpp/tls/lib/Connection.js' {
  class ConnectionTLS {
    constructor(...args: unknown[]);
    socketParameters(service: string): { port: number; host: string } | undefined;
  }
  export default ConnectionTLS;
}
declare module '@xmpp/tls/lib/Socket.js' {
  import type { TransportSocket } from '@xmpp/client-core';
  const Socket: { new (): TransportSocket & { _attachSocket(s: unknown): void } };
  export default Socket;
}

declare module '@xmpp/middleware' {
  import type { Element } from 'ltx';
  import type { Client } from '@xmpp/client-core';
  import type { JID } from '@xmpp/jid';
  export interface Context { stanza: Element; entity: Client; name: string; id: string; type: string; from: JID | null; to: JID | null }
  export type Middleware = (ctx: Context, next: () => Promise<unknown>) => unknown;
  export interface MiddlewareApi { use(fn: Middleware): Middleware; filter(fn: Middleware): Middleware }
  export default function middleware(deps: { entity: Client }): MiddlewareApi;
}

declare module '@xmpp/stream-features' {
  import type { Element } from 'ltx';
  import type { Context, MiddlewareApi } from '@xmpp/middleware';
  export interface StreamFeatures {
    use(name: string, xmlns: string, handler: (ctx: Context, next: () => Promise<unknown>, feature: Element) => unknown): void;
  }
  export default function streamFeatures(deps: { middleware: MiddlewareApi }): StreamFeatures;
}

declare module '@xmpp/iq/caller.js' {
  import type { Element } from 'ltx';
  import type { Client } from '@xmpp/client-core';
  import type { MiddlewareApi } from '@xmpp/middleware';
  export interface IqCaller {
    request(stanza: Element, timeout?: number): Promise<Element>;
    get(element: Element, to?: string, timeout?: number): Promise<Element>;
    set(element: Element, to?: string, timeout?: number): Promise<Element>;
  }
  export default function iqCaller(deps: { middleware: MiddlewareApi; entity: Client }): IqCaller;
}

declare module '@xmpp/resource-binding' {
  import type { IqCaller } from '@xmpp/iq/caller.js';
  import type { StreamFeatures } from '@xmpp/stream-features';
  export default function resourceBinding(deps: { streamFeatures: StreamFeatures; iqCaller: IqCaller }, resource?: string): void;
}

declare module '@xmpp/resolve' {
  export default function resolve(deps: { entity: unknown }): void;
}

// The stock client, used only by tests and benchmarks as an independent peer.
declare module '@xmpp/client' {
  import type { Element } from 'ltx';
  import type { Client as Core } from '@xmpp/client-core';
  import type { IqCaller } from '@xmpp/iq/caller.js';
  export interface StockClient extends Core {
    iqCaller: IqCaller;
    reconnect: { stop(): void; delay: number };
    streamManagement: unknown;
  }
  export function client(options: { service: string; domain?: string; username: string; password: string; resource?: string }): StockClient;
  export function xml(name: string, attrs?: Record<string, string | undefined> | null, ...children: (Element | string | undefined)[]): Element;
}

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
    type: string;
  }
  export interface MdnsPacket {
    type: 'query' | 'response';
    questions: MdnsQuestion[];
    answers: MdnsRecord[];
    additionals: MdnsRecord[];
  }
  export interface MulticastDns extends EventEmitter {
    query(questions: MdnsQuestion[], cb?: (err?: Error) => void): void;
    respond(res: MdnsRecord[] | { answers: MdnsRecord[]; additionals?: MdnsRecord[] }, rinfo?: { address: string; port: number } | null, cb?: (err?: Error) => void): void;
    destroy(cb?: () => void): void;
    on(event: 'query' | 'response', fn: (packet: MdnsPacket, rinfo: RemoteInfo) => void): this;
    on(event: 'ready', fn: () => void): this;
    on(event: 'error' | 'warning', fn: (err: Error) => void): this;
  }
  export default function multicastDns(opts?: { port?: number; ip?: string; interface?: string; loopback?: boolean; reuseAddr?: boolean }): MulticastDns;
}

// The stock client's SCRAM-SHA-1 mechanism (benchmarks only).
declare module 'sasl-scram-sha-1' {
  class Mechanism {
    response(cred: { username: string; password: string }): string | Promise<string>;
    challenge(chal: string): unknown;
  }
  export default Mechanism;
}
