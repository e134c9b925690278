// Claim by code (the idea of XEP-0347, without a Thing Registry): the code's
// form, its comparison, the xmpp: URI that carries it (RFC 5122), the limits
// on wrong guesses, and the notice the person at the device reads. No I/O.

import { encodeQr, QrTooLongError, qrToText } from '../util/qr.js';

/** Crockford's base 32: no I, L, O or U, so a code read off a screen is not mistyped. */
export const CODE_ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
/** Symbols in a code: 12 × 5 = 60 bits, shown in groups of four. */
export const CODE_LENGTH = 12;

/** The chat words about people (claim, and the owners' owners/invite/revoke); device ids may not use them. */
export const PEOPLE_WORDS = ['claim', 'owners', 'people', 'invite', 'revoke'];

/** Wrong codes a sender may try per window before being refused until it ends. */
export const PER_SENDER = { max: 5, windowMs: 15 * 60_000 } as const;
/** Wrong codes from everyone together per window, before every claim is refused until it ends. */
export const OVERALL = { max: 20, windowMs: 60 * 60_000 } as const;

/** A new code from `random` bytes (one byte per symbol; 256 is a multiple of 32, so no symbol is favoured). */
export function makeCode(random: (n: number) => Uint8Array): string {
  const bytes = random(CODE_LENGTH);
  let raw = '';
  for (let i = 0; i < CODE_LENGTH; i++) raw += CODE_ALPHABET[bytes[i]! & 31];
  return formatCode(raw);
}

/** ABCDEFGHJKMN → ABCD-EFGH-JKMN */
export function formatCode(raw: string): string {
  return raw.match(/.{1,4}/g)!.join('-');
}

/** What a person typed, as a code: case, spaces and dashes ignored, O read as 0 and I, L as 1; undefined if it cannot be one. */
export function normalizeCode(text: string): string | undefined {
  const raw = text
    .toUpperCase()
    .replace(/[\s-]/g, '')
    .replace(/O/g, '0')
    .replace(/[IL]/g, '1');
  if (raw.length !== CODE_LENGTH || ![...raw].every((c) => CODE_ALPHABET.includes(c))) return undefined;
  return formatCode(raw);
}

/** Compares two normalized codes in time that does not depend on where they differ. */
export function sameCode(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

// RFC 5122: what a node (localpart) or domain may hold unencoded in an xmpp: URI.
const NODE_SAFE = /[A-Za-z0-9\-._~!$()*+,;=]/;
const HOST_SAFE = /[A-Za-z0-9\-._~]/;
const pct = (s: string, safe: RegExp): string =>
  [...new TextEncoder().encode(s)].map((b) => (b < 0x80 && safe.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`)).join('');

/** The message a person sends to claim the gateway. */
export const claimMessage = (code: string): string => `claim ${code}`;

/** xmpp:gateway@domain?message;body=claim%20CODE — opens a chat with the message ready to send (RFC 5122, XEP-0147 "message"). */
export function claimUri(jid: string, code: string): string {
  const at = jid.indexOf('@');
  const node = pct(jid.slice(0, at), NODE_SAFE);
  const domain = pct(jid.slice(at + 1), HOST_SAFE);
  return `xmpp:${node}@${domain}?message;body=${encodeURIComponent(claimMessage(code))}`;
}

/**
 * Wrong guesses in sliding windows, per sender and overall. A sender over its
 * limit, or everyone once the overall limit is reached, is refused until the
 * window has moved on, whatever code they send; the right code included, or
 * the overall limit would not stop guessing spread over many accounts.
 */
export class ClaimAttempts {
  private readonly bySender = new Map<string, number[]>();
  private all: number[] = [];

  constructor(private readonly limits: { perSender: { max: number; windowMs: number }; overall: { max: number; windowMs: number } } = { perSender: PER_SENDER, overall: OVERALL }) {}

  /** When the sender may try again, or undefined if they may now. */
  blockedUntil(sender: string, now: number): number | undefined {
    const { perSender, overall } = this.limits;
    this.all = this.all.filter((t) => now - t < overall.windowMs);
    const mine = (this.bySender.get(sender) ?? []).filter((t) => now - t < perSender.windowMs);
    if (mine.length === 0) this.bySender.delete(sender);
    else this.bySender.set(sender, mine);
    const until: number[] = [];
    if (mine.length >= perSender.max) until.push(mine[mine.length - perSender.max]! + perSender.windowMs);
    if (this.all.length >= overall.max) until.push(this.all[this.all.length - overall.max]! + overall.windowMs);
    return until.length > 0 ? Math.max(...until) : undefined;
  }

  fail(sender: string, now: number): void {
    if (this.bySender.size > 10_000) this.bySender.clear(); // a flood of fresh accounts cannot grow this without bound; the overall limit still holds
    this.bySender.set(sender, [...(this.bySender.get(sender) ?? []), now]);
    this.all.push(now);
  }
}

/** The notice for the person at the device: what to do, the QR code (when the URI fits one), the URI and the code as text. */
export function claimNotice(args: { jid: string; code: string; expires?: number; ttlMs?: number; invert?: boolean }): string {
  const uri = claimUri(args.jid, args.code);
  let qr: string;
  try {
    qr = qrToText(encodeQr(uri), { invert: args.invert });
  } catch (err) {
    if (!(err instanceof QrTooLongError)) throw err;
    qr = '  (the address is too long for a QR code: send the message below instead)';
  }
  const until =
    args.expires !== undefined
      ? `until ${new Date(args.expires).toISOString().slice(0, 16).replace('T', ' ')} UTC`
      : args.ttlMs !== undefined
        ? `for ${Math.round(args.ttlMs / 3_600_000)} h from the gateway's first start`
        : 'until it expires';
  return [
    `Claim the gateway ${args.jid}`,
    'Scan this with your phone: your XMPP app (Conversations, Monal, Gajim, Dino …) opens a chat with',
    'the gateway and the message ready to send. Send it, and you are the gateway\'s owner.',
    '',
    qr,
    '',
    `  ${uri}`,
    `  or send the message "${claimMessage(args.code)}" to ${args.jid}`,
    `  The code works once, ${until}.`,
    '',
  ].join('\n');
}
