// XEP-0363 HTTP File Upload, the stanzas: which disco#info answer is an
// upload service (and its max-file-size), the slot request, and the slot
// reply read strictly (HTTPS URLs only, only the headers the XEP allows,
// without line breaks). The HTTP side is src/services/uploader.ts. Pure.

import type { Element } from 'ltx';
import xml from '@xmpp/xml';
import { NS_DATA } from './forms.js';

export const NS_UPLOAD = 'urn:xmpp:http:upload:0';

export interface UploadService {
  jid: string;
  /** Bytes; undefined when the service does not say. */
  maxFileSize?: number;
}

/** The upload service a disco#info result describes, or undefined when it is none. */
export function uploadServiceOf(jid: string, info: Element): UploadService | undefined {
  const query = info.getChild('query');
  if (!query?.getChildren('feature').some((f) => f.attrs.var === NS_UPLOAD)) return undefined;
  // The limit is in the form whose FORM_TYPE is the upload namespace (XEP-0128 extended info).
  for (const x of query.getChildren('x', NS_DATA)) {
    const fields = x.getChildren('field');
    const formType = fields.find((f) => f.attrs.var === 'FORM_TYPE')?.getChildText('value');
    if (formType !== NS_UPLOAD) continue;
    const raw = fields.find((f) => f.attrs.var === 'max-file-size')?.getChildText('value')?.trim();
    const max = raw && /^\d{1,15}$/.test(raw) ? Number(raw) : undefined;
    return { jid, maxFileSize: max };
  }
  return { jid };
}

/** The slot request: an IQ get to the service. */
export function slotRequest(service: string, file: { name: string; size: number; contentType: string }): Element {
  return xml('iq', { type: 'get', to: service }, xml('request', { xmlns: NS_UPLOAD, filename: file.name, size: String(file.size), 'content-type': file.contentType }));
}

export interface Slot {
  put: string;
  get: string;
  /** Headers to send with the PUT (Authorization, Cookie, Expires only). */
  headers: Record<string, string>;
}

/** XEP-0363 §5: the only headers a client sends with the PUT; any others are ignored. */
const ALLOWED_HEADERS = ['authorization', 'cookie', 'expires'];

export class SlotError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SlotError';
  }
}

function httpsUrl(raw: string | undefined, what: string): string {
  let url: URL;
  try {
    url = new URL(raw ?? '');
  } catch {
    throw new SlotError(`the slot's ${what} URL is not a URL`);
  }
  if (url.protocol !== 'https:') throw new SlotError(`the slot's ${what} URL is not HTTPS`);
  return url.href;
}

/** The slot in an IQ result; throws SlotError when it is missing or not HTTPS. */
export function parseSlot(reply: Element): Slot {
  const slot = reply.getChild('slot', NS_UPLOAD);
  const put = slot?.getChild('put');
  const get = slot?.getChild('get');
  if (!slot || !put || !get) throw new SlotError('the reply holds no slot');
  const headers: Record<string, string> = {};
  for (const h of put.getChildren('header')) {
    const name = h.attrs.name?.trim();
    if (!name || !ALLOWED_HEADERS.includes(name.toLowerCase())) continue;
    headers[name] = h.getText().replace(/[\r\n]+/g, ' ').trim();
  }
  return { put: httpsUrl(put.attrs.url, 'PUT'), get: httpsUrl(get.attrs.url, 'GET'), headers };
}
