// Files to the server's HTTP File Upload service (XEP-0363): finds the
// service (disco#info of the domain, then of each item of its disco#items;
// Prosody's mod_http_file_share and ejabberd's mod_http_upload are such
// items), remembers it for the session, asks for a slot within the
// advertised max-file-size, and PUTs the file over HTTPS trusting the same
// CA as the XMPP connection (xmpp.tls.ca_file; the system's without it).
// Failures are UploadErrors with a code and a short reason a person can read.

import type { Element } from 'ltx';
import xml from '@xmpp/xml';
import type { Logger } from '../runtime/log.js';
import { isStanzaError } from '../core/errors.js';
import { NS_DISCO_INFO, NS_DISCO_ITEMS } from '../xep/disco.js';
import { parseSlot, slotRequest, uploadServiceOf, type Slot, type UploadService } from '../xep/upload.js';

/** Items of the domain asked about; a server lists a handful (upload, MUC, proxy, pubsub). */
const MAX_ITEMS = 20;
const DISCO_TIMEOUT_MS = 10_000;
const SLOT_TIMEOUT_MS = 10_000;
const PUT_TIMEOUT_MS = 20_000;

export type UploadFailure = 'no-service' | 'too-large' | 'refused' | 'http' | 'unreachable';

export class UploadError extends Error {
  constructor(
    readonly code: UploadFailure,
    /** Short, for the person who asked: "the server refused the upload (Daily quota reached)". */
    readonly reason: string,
  ) {
    super(reason);
    this.name = 'UploadError';
  }
}

export function isUploadError(err: unknown): err is UploadError {
  return err instanceof UploadError;
}

export interface UploadFile {
  name: string;
  bytes: Buffer;
  contentType: string;
}

/** An HTTPS PUT; resolves with the status code. */
export type Put = (url: string, body: Buffer, headers: Record<string, string>, ca: string | undefined) => Promise<number>;

export const httpsPut: Put = async (url, body, headers, ca) => {
  // Loaded at the first upload, not at start: Node's HTTP stack is not needed to come online.
  const https = await import('node:https');
  return new Promise((resolve, reject) => {
    const req = https.request(
      url,
      {
        method: 'PUT',
        headers: { ...headers, 'Content-Length': String(body.length) },
        ...(ca ? { ca } : {}),
        minVersion: 'TLSv1.2',
        agent: false, // one connection, closed after: nothing lingers on the Pi
        timeout: PUT_TIMEOUT_MS,
      },
      (res) => {
        res.resume();
        res.once('end', () => resolve(res.statusCode ?? 0));
        res.once('error', reject);
      },
    );
    req.once('timeout', () => req.destroy(new Error(`no answer within ${PUT_TIMEOUT_MS / 1000} s`)));
    req.once('error', reject);
    req.end(body);
  });
};

export interface UploaderDeps {
  request(iq: Element, timeoutMs?: number): Promise<Element>;
  /** The account's domain, where the service is looked for. */
  domain: string;
  /** PEM text to trust for the PUT (xmpp.tls.ca_file). */
  ca?: string;
  session: { on(event: 'online', fn: (jid: string, resumed: boolean) => void): unknown };
  log: Logger;
  put?: Put;
}

export function uploader(deps: UploaderDeps) {
  const put = deps.put ?? httpsPut;
  const info = (jid: string): Promise<Element> => deps.request(xml('iq', { type: 'get', to: jid }, xml('query', { xmlns: NS_DISCO_INFO })), DISCO_TIMEOUT_MS);

  const discover = async (): Promise<UploadService | undefined> => {
    const [own, items] = await Promise.all([
      info(deps.domain).catch(() => undefined),
      // A server that refuses disco#items has no items to offer; one that does not answer is not known yet.
      deps.request(xml('iq', { type: 'get', to: deps.domain }, xml('query', { xmlns: NS_DISCO_ITEMS })), DISCO_TIMEOUT_MS).catch((err: unknown) => {
        if (isStanzaError(err)) return undefined;
        throw err;
      }),
    ]);
    const onDomain = own && uploadServiceOf(deps.domain, own);
    if (onDomain) return onDomain;
    const jids = [...new Set(items?.getChild('query')?.getChildren('item').map((i) => i.attrs.jid).filter((j): j is string => typeof j === 'string' && j.length > 0) ?? [])].slice(0, MAX_ITEMS);
    // All at once; the first in the server's order that offers upload wins.
    const answers = await Promise.all(jids.map((j) => info(j).then((el) => uploadServiceOf(j, el), () => undefined)));
    return answers.find((a) => a !== undefined);
  };

  // One lookup per session: a new session (not a resumed one) may be on a server configured anew.
  let found: Promise<UploadService | undefined> | undefined;
  deps.session.on('online', (_jid, resumed) => {
    if (!resumed) found = undefined;
  });

  const service = (): Promise<UploadService | undefined> => {
    found ??= discover().then(
      (s) => {
        deps.log.info(s ? 'file upload service found' : 'the server offers no file upload', s ? { service: s.jid, maxFileSize: s.maxFileSize } : {});
        return s;
      },
      (err: unknown) => {
        found = undefined; // not known: asked again next time
        throw new UploadError('unreachable', `the server's upload service could not be looked up (${isStanzaError(err) ? err.condition : (err as Error).message})`);
      },
    );
    return found;
  };

  return {
    /** The upload service, looked up once per session; undefined when the server has none. */
    service,
    /** Uploads a file; resolves with the URL to share. Throws UploadError. */
    async upload(file: UploadFile): Promise<string> {
      const s = await service();
      if (!s) throw new UploadError('no-service', 'this server offers no file upload (XEP-0363)');
      if (s.maxFileSize !== undefined && file.bytes.length > s.maxFileSize) {
        throw new UploadError('too-large', `the image (${kib(file.bytes.length)}) is larger than the server's upload limit (${kib(s.maxFileSize)})`);
      }
      let slot: Slot;
      try {
        slot = parseSlot(await deps.request(slotRequest(s.jid, { name: file.name, size: file.bytes.length, contentType: file.contentType }), SLOT_TIMEOUT_MS));
      } catch (err) {
        if (isStanzaError(err)) throw new UploadError(err.condition === 'not-acceptable' ? 'too-large' : 'refused', `the server refused the upload (${err.text ?? err.condition})`);
        throw new UploadError('refused', `no upload slot (${(err as Error).message})`);
      }
      let status: number;
      try {
        status = await put(slot.put, file.bytes, { ...slot.headers, 'Content-Type': file.contentType }, deps.ca);
      } catch (err) {
        throw new UploadError('unreachable', `the upload did not get through (${(err as Error).message})`);
      }
      if (status !== 200 && status !== 201) throw new UploadError('http', `the upload was refused (HTTP ${status})`);
      deps.log.debug('uploaded', { service: s.jid, bytes: file.bytes.length });
      return slot.get;
    },
  };
}

export type Uploader = ReturnType<typeof uploader>;

function kib(n: number): string {
  return n < 1024 ? `${n} bytes` : `${Math.round(n / 1024)} KiB`;
}
