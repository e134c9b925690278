// SCRAM client (RFC 5802, RFC 7677) on Node's native PBKDF2. The stock
// xmpp.js mechanism runs 4096+ WebCrypto HMACs in JavaScript (~550 ms of CPU a
// login on x86, seconds on a Pi); crypto.pbkdf2 does it in under a millisecond.
// Salted passwords are cached per (hash, salt, iterations), so reconnects skip PBKDF2.

import { createHash, createHmac, pbkdf2, randomBytes, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';

const pbkdf2Async = promisify(pbkdf2);

export type ScramHash = 'sha1' | 'sha256';
export const SCRAM_MECHANISMS: Record<string, ScramHash> = { 'SCRAM-SHA-256': 'sha256', 'SCRAM-SHA-1': 'sha1' };
const KEY_LENGTH: Record<ScramHash, number> = { sha1: 20, sha256: 32 };
/** RFC 5802 §5.1 asks for at least 4096; fewer is a downgrade by the server. */
export const MIN_ITERATIONS = 4096;

export class ScramError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ScramError';
  }
}

/** Salted passwords by `hash:salt:iterations`; lives as long as the session. */
export type SaltCache = Map<string, Buffer>;

/** RFC 5802 §5.1: "=" and "," in the user name are escaped. */
export function saslName(username: string): string {
  return username.normalize('NFKC').replace(/=/g, '=3D').replace(/,/g, '=2C');
}

function parseAttributes(message: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of message.split(',')) {
    const eq = part.indexOf('=');
    if (eq === 1) out.set(part[0]!, part.slice(2));
  }
  return out;
}

function hmac(hash: ScramHash, key: Buffer, data: string | Buffer): Buffer {
  return createHmac(hash, key).update(data).digest();
}

/**
 * One SCRAM exchange. Call `first()`, then `final(serverFirst)`, then
 * `verify(serverFinal)`; each throws ScramError on anything off.
 */
export class ScramClient {
  private readonly clientNonce: string;
  private clientFirstBare = '';
  private serverSignature?: Buffer;
  /** Whether the last `final()` had to run PBKDF2 (false = cache hit). */
  derived = false;

  constructor(
    private readonly hash: ScramHash,
    private readonly username: string,
    private readonly password: string,
    private readonly cache: SaltCache,
    nonce?: string,
  ) {
    this.clientNonce = nonce ?? randomBytes(18).toString('base64');
  }

  first(): string {
    this.clientFirstBare = `n=${saslName(this.username)},r=${this.clientNonce}`;
    return `n,,${this.clientFirstBare}`;
  }

  async final(serverFirst: string): Promise<string> {
    const attrs = parseAttributes(serverFirst);
    const nonce = attrs.get('r');
    const salt = attrs.get('s');
    const iterations = Number(attrs.get('i'));
    if (attrs.has('m')) throw new ScramError('server requires an unsupported SCRAM extension');
    if (!nonce || !nonce.startsWith(this.clientNonce) || nonce.length === this.clientNonce.length) {
      throw new ScramError('server nonce does not extend ours');
    }
    if (!salt) throw new ScramError('server sent no salt');
    if (!Number.isInteger(iterations) || iterations < MIN_ITERATIONS) {
      throw new ScramError(`server asked for ${attrs.get('i')} iterations; at least ${MIN_ITERATIONS} are required`);
    }

    const key = `${this.hash}:${salt}:${iterations}`;
    let salted = this.cache.get(key);
    this.derived = !salted;
    if (!salted) {
      salted = await pbkdf2Async(this.password.normalize('NFKC'), Buffer.from(salt, 'base64'), iterations, KEY_LENGTH[this.hash], this.hash);
      this.cache.clear(); // one entry: a changed salt means the old one is useless
      this.cache.set(key, salted);
    }

    const withoutProof = `c=biws,r=${nonce}`;
    const authMessage = `${this.clientFirstBare},${serverFirst},${withoutProof}`;
    const clientKey = hmac(this.hash, salted, 'Client Key');
    const storedKey = createHash(this.hash).update(clientKey).digest();
    const signature = hmac(this.hash, storedKey, authMessage);
    const proof = Buffer.alloc(clientKey.length);
    for (let i = 0; i < clientKey.length; i++) proof[i] = clientKey[i]! ^ signature[i]!;
    this.serverSignature = hmac(this.hash, hmac(this.hash, salted, 'Server Key'), authMessage);
    return `${withoutProof},p=${proof.toString('base64')}`;
  }

  /** Mutual authentication: the server proves it knows the password too. */
  verify(serverFinal: string): void {
    const attrs = parseAttributes(serverFinal);
    const err = attrs.get('e');
    if (err) throw new ScramError(`server rejected the proof: ${err}`);
    const v = attrs.get('v');
    if (!v || !this.serverSignature) throw new ScramError('server sent no signature');
    const got = Buffer.from(v, 'base64');
    if (got.length !== this.serverSignature.length || !timingSafeEqual(got, this.serverSignature)) {
      throw new ScramError('server signature is wrong: the server does not know this account (possible impostor)');
    }
  }
}
