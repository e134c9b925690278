// One private Prosody for the whole suite (own config, data, ports, self-signed
// certificate, TLS required). Test peers (stock @xmpp/client) trust its
// certificate through NODE_EXTRA_CA_CERTS, set here before workers start.
// The agent's own trust (xmpp.tls.ca_file) is tested in a child process
// without that variable (test/cli.test.ts).
//
// Everything a run writes goes in one directory: TMPDIR is pointed at it here,
// before the workers start, so os.tmpdir() in every test file (and in every
// process they spawn: agents, Prosody, socat, Python) lands inside it, and
// teardown removes it. KEEP_TEST_SERVER=1 keeps it (the server's log, every
// test's state). Keep the base short: a unix socket path inside it (the systemd
// test's notify socket, about 40 characters from /tmp) must stay under ~100.

import { chmodSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
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
let run: string | undefined;

export async function setup(project: TestProject): Promise<void> {
  run = mkdtempSync(join(tmpdir(), 'xia-run-'));
  // Traversable, as /tmp is: a test runs a child as an unprivileged user on a directory in here (test/store.test.ts).
  chmodSync(run, 0o755);
  process.env.TMPDIR = run;
  const dir = join(run, 'prosody');
  mkdirSync(dir);
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
  if (!run) return;
  if (process.env.KEEP_TEST_SERVER) {
    console.log(`KEEP_TEST_SERVER: kept ${run}`);
    return;
  }
  try {
    rmSync(run, { recursive: true, force: true, maxRetries: 3 });
  } catch (err) {
    console.warn(`could not remove the test run's directory ${run}: ${(err as Error).message}`);
  }
}
