// One private Prosody for the whole suite (own config, data, ports, self-signed
// certificate, TLS required). Test peers (stock @xmpp/client) trust its
// certificate through NODE_EXTRA_CA_CERTS, set here before workers start.
// The agent's own trust (xmpp.tls.ca_file) is tested in a child process
// without that variable (test/tls.test.ts).

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { startProsody, type Prosody } from '../tools/dev/prosody.js';

declare module 'vitest' {
  export interface ProvidedContext {
    prosody: { domain: string; port: number; tlsPort: number; caFile: string; dir: string; cfg: string; logFile: string };
  }
}

let server: Prosody | undefined;
let dir: string | undefined;

export async function setup(project: TestProject): Promise<void> {
  dir = mkdtempSync(join(tmpdir(), 'xia-prosody-'));
  server = await startProsody({ dir });
  process.env.NODE_EXTRA_CA_CERTS = server.caFile;
  project.provide('prosody', {
    domain: server.domain,
    port: server.port,
    tlsPort: server.tlsPort,
    caFile: server.caFile,
    dir: server.dir,
    cfg: join(server.dir, 'prosody.cfg.lua'),
    logFile: server.logFile,
  });
}

export async function teardown(): Promise<void> {
  await server?.stop();
  if (dir && !process.env.KEEP_TEST_SERVER) rmSync(dir, { recursive: true, force: true });
}
