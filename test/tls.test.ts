// TLS contexts: one per CA for the life of the process, not one per connection (each
// connection's own SSL_CTX left memory behind: src/xmpp/tls.ts). Verification itself is
// the agent's real path in test/fault-certificate.integration.test.ts.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { describe, expect, it } from 'vitest';
import { secureContextFor } from '../src/xmpp/tls.js';

function selfSigned(name: string): { key: string; cert: string } {
  const dir = mkdtempSync(join(tmpdir(), 'xia-tls-'));
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', join(dir, 'k.pem'), '-out', join(dir, 'c.pem'), '-days', '2', '-subj', `/CN=${name}`, '-addext', `subjectAltName=DNS:${name}`], { stdio: 'ignore' });
  return { key: readFileSync(join(dir, 'k.pem'), 'utf8'), cert: readFileSync(join(dir, 'c.pem'), 'utf8') };
}

describe('TLS contexts', () => {
  it('builds one secure context per CA and hands it to every connection, which still verifies each time', async () => {
    const site = selfSigned('iot.test');
    const other = selfSigned('iot.test');
    expect(secureContextFor(site.cert)).toBe(secureContextFor(site.cert));
    expect(secureContextFor(other.cert)).not.toBe(secureContextFor(site.cert));
    expect(secureContextFor(undefined)).toBe(secureContextFor(undefined));

    const server = tls.createServer({ key: site.key, cert: site.cert }, (s) => s.end());
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    const attempt = (ca: string): Promise<string> =>
      new Promise((resolve) => {
        const s = tls.connect({ host: '127.0.0.1', port, servername: 'iot.test', secureContext: secureContextFor(ca) }, () => resolve(s.authorized ? 'verified' : 'not verified'));
        s.on('error', (err: Error & { code?: string }) => resolve(err.code ?? err.message));
        s.resume();
      });
    try {
      // The shared context verifies every connection, and one that trusts another CA is refused every time.
      expect(await attempt(site.cert)).toBe('verified');
      expect(await attempt(site.cert)).toBe('verified');
      expect(await attempt(other.cert)).not.toBe('verified');
      expect(await attempt(other.cert)).not.toBe('verified');
    } finally {
      server.close();
    }
  });
});
