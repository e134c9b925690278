// SASL (RFC 6120 §6) with our SCRAM: SCRAM-SHA-256, then SCRAM-SHA-1, then
// PLAIN only inside TLS. The server's final signature is verified.

import type { Client } from '@xmpp/client-core';
import type { StreamFeatures } from '@xmpp/stream-features';
import xml from '@xmpp/xml';
import { ScramClient, SCRAM_MECHANISMS, type SaltCache } from './scram.js';
import { nextElement } from './wait.js';

export const NS_SASL = 'urn:ietf:params:xml:ns:xmpp-sasl';

export type AuthErrorKind = 'not-authorized' | 'no-mechanism' | 'tls-required' | 'protocol';

export class AuthError extends Error {
  constructor(
    readonly kind: AuthErrorKind,
    message: string,
  ) {
    super(message);
    this.name = 'AuthError';
  }
}

export interface SaslOptions {
  streamFeatures: StreamFeatures<Client>;
  username: string;
  password: string;
  cache: SaltCache;
  allowPlaintext: boolean;
  onResult(result: { mechanism: string; derived: boolean } | { error: AuthError }): void;
}

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');
const unb64 = (el: { text(): string }): string => Buffer.from(el.text(), 'base64').toString('utf8');

export function chooseMechanism(offered: string[], secure: boolean): string | undefined {
  for (const m of ['SCRAM-SHA-256', 'SCRAM-SHA-1']) if (offered.includes(m)) return m;
  if (secure && offered.includes('PLAIN')) return 'PLAIN';
  return undefined;
}

async function exchange(entity: Client, opts: SaslOptions, mechanism: string): Promise<{ derived: boolean }> {
  const timeout = 10_000;
  const fail = (el: { getChildElements(): { name: string }[]; getChildText(n: string): string | null }): AuthError => {
    const condition = el.getChildElements()[0]?.name ?? 'failure';
    const text = el.getChildText('text');
    return new AuthError(condition === 'not-authorized' ? 'not-authorized' : 'protocol', `login refused by the server: ${condition}${text ? ` (${text})` : ''}`);
  };

  if (mechanism === 'PLAIN') {
    const answer = nextElement(entity, NS_SASL, timeout);
    await entity.send(xml('auth', { xmlns: NS_SASL, mechanism }, b64(`\0${opts.username}\0${opts.password}`)));
    const el = await answer;
    if (!el.is('success')) throw fail(el);
    return { derived: false };
  }

  const hash = SCRAM_MECHANISMS[mechanism]!;
  const scram = new ScramClient(hash, opts.username, opts.password, opts.cache);
  let answer = nextElement(entity, NS_SASL, timeout);
  await entity.send(xml('auth', { xmlns: NS_SASL, mechanism }, b64(scram.first())));
  let el = await answer;
  if (!el.is('challenge')) throw el.is('failure') ? fail(el) : new AuthError('protocol', `unexpected <${el.name}/> during login`);
  let reply: string;
  try {
    reply = await scram.final(unb64(el));
  } catch (err) {
    await entity.send(xml('abort', { xmlns: NS_SASL })).catch(() => {});
    throw new AuthError('protocol', (err as Error).message);
  }
  answer = nextElement(entity, NS_SASL, timeout);
  await entity.send(xml('response', { xmlns: NS_SASL }, b64(reply)));
  el = await answer;
  if (el.is('challenge')) {
    // Some servers send server-final as a challenge, then success with no data.
    const serverFinal = unb64(el);
    answer = nextElement(entity, NS_SASL, timeout);
    await entity.send(xml('response', { xmlns: NS_SASL }));
    el = await answer;
    if (!el.is('success')) throw fail(el);
    verify(scram, serverFinal);
  } else if (el.is('success')) {
    verify(scram, unb64(el));
  } else {
    throw fail(el);
  }
  return { derived: scram.derived };
}

function verify(scram: ScramClient, serverFinal: string): void {
  try {
    scram.verify(serverFinal);
  } catch (err) {
    throw new AuthError('protocol', (err as Error).message);
  }
}

export function sasl(opts: SaslOptions): void {
  opts.streamFeatures.use('mechanisms', NS_SASL, async ({ entity }, _next, feature) => {
    try {
      const secure = entity.isSecure();
      if (!secure && !opts.allowPlaintext) {
        throw new AuthError('tls-required', 'the server offered no TLS; refusing to log in over plaintext (set xmpp.tls.allow_plaintext only for a loopback server)');
      }
      const offered = feature.getChildren('mechanism', NS_SASL).map((m) => m.text());
      const mechanism = chooseMechanism(offered, secure);
      if (!mechanism) throw new AuthError('no-mechanism', `no usable login mechanism (server offers ${offered.join(', ') || 'none'})`);
      const { derived } = await exchange(entity, opts, mechanism);
      opts.onResult({ mechanism, derived });
      await entity.restart();
    } catch (err) {
      const error = err instanceof AuthError ? err : new AuthError('protocol', (err as Error).message);
      opts.onResult({ error });
    }
  });
}
