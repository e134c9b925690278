// `npm run demo`: a private Prosody on loopback, a gateway account and an
// owner account, the agent with simulated devices, and a terminal chat as the
// owner. Everything lives in ./.demo and is stopped on exit.
// `npm run demo -- --claim`: the gateway starts without owners and shows its
// claim QR code; you chat as alice, who becomes the owner by sending the code.

import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ProsodyMissingError, startProsody } from './prosody.js';
import { chat } from './repl.js';
import { DEMO_CHANNELS, FirmwareSim } from './firmware-sim.js';
import { ptyPair } from './pty.js';

const here = fileURLToPath(new URL('.', import.meta.url));
// The agent as it ships (dist/), not the tools build's copy of src.
const cli = resolve(here, '..', '..', '..', 'dist', 'cli.js');

const HELP = `Usage: npm run demo [-- --claim]
  (no option)  the gateway with alice@iot.test as its owner, and a chat as alice
  --claim      the gateway without owners: it prints its claim QR code (as
               "xmpp-iot-agent claim --config .demo/agent.yaml" does) and you, as
               alice, type the claim message to become its owner
`;

async function main(): Promise<number> {
  if (process.argv.includes('--help') || process.argv.includes('-h')) {
    process.stdout.write(HELP);
    return 0;
  }
  const claim = process.argv.includes('--claim');
  const dir = resolve(process.env.DEMO_DIR ?? '.demo');
  mkdirSync(dir, { recursive: true });
  process.stdout.write('Starting a private Prosody on 127.0.0.1 …\n');
  const prosody = await startProsody({ dir: join(dir, 'prosody'), port: 5222 });

  const pwFile = join(dir, 'gateway.password');
  const gwPassword = existsSync(pwFile) ? readFileSync(pwFile, 'utf8').trim() : randomBytes(12).toString('base64url');
  writeFileSync(pwFile, gwPassword + '\n');
  chmodSync(pwFile, 0o600);
  const gateway = await prosody.register('gateway', gwPassword);
  const owner = await prosody.register('alice', 'alice');

  const pty = await ptyPair(dir);
  const sim = new FirmwareSim({ path: pty.firmware, channels: DEMO_CHANNELS.map((c) => ({ ...c })) });
  await sim.start();

  const configFile = join(dir, 'agent.yaml');
  writeFileSync(
    configFile,
    `# Written by npm run demo; a full reference is in README.md.
xmpp:
  jid: ${gateway}
  resource: demo
  password_file: gateway.password
  service: ${prosody.service}
  tls:
    ca_file: ${prosody.caFile}
${claim ? 'claim:\n  enabled: true   # no owners: the first person to send the code shown at the start becomes one\n  code_ttl: 1h' : `owners: [${owner}]`}
devices:
  # The firmware bridge (played by the simulator on a pseudo-terminal): its
  # channels temperature, humidity, fan and setpoint appear by themselves.
  - id: bridge
    driver: serial-bridge
    port: ${pty.agent}
  - id: light
    driver: simulated
    type: boolean
    writable: true
presence:
  min_interval: 5s
  heartbeat: 5m
mdns:
  enabled: false   # a loopback demo has nothing to announce on your LAN
state_dir: ${claim ? 'state-claim   # a fresh, unclaimed gateway on every --claim run' : 'state   # outbox and history (SQLite), next to this file'}
alarms:
  - device: temperature
    above: 25
    hysteresis: 0.5
`,
  );

  let claimText = '';
  if (claim) {
    rmSync(join(dir, 'state-claim'), { recursive: true, force: true });
    // The command the person at a real gateway runs; the agent then finds the code it made.
    const shown = spawnSync(process.execPath, [cli, 'claim', '--config', configFile], { encoding: 'utf8' });
    if (shown.status !== 0) throw new Error(`xmpp-iot-agent claim failed: ${shown.stderr}`);
    claimText = shown.stdout;
  }

  const logFile = join(dir, 'agent.log');
  const out = openSync(logFile, 'a');
  const agent = spawn(process.execPath, [cli, 'run', '--config', configFile], { stdio: ['ignore', out, out] });
  let agentExit: number | null = null;
  agent.on('exit', (code) => (agentExit = code));

  process.stdout.write(
    `
  Server   127.0.0.1:${prosody.port} (STARTTLS), ${prosody.tlsPort} (direct TLS), domain ${prosody.domain}
  Gateway  ${gateway}/demo   (agent log: ${logFile})
  Bridge   firmware simulator on ${pty.firmware} ↔ agent on ${pty.agent}
  You      ${owner}, password: alice${claim ? ' (not an owner yet: send the claim message below)' : ''}

  To use a real client instead (Gajim, Dino): add the account ${owner} with
  password "alice", set its server to 127.0.0.1 port ${prosody.port} (Gajim: account
  settings → connection → custom host), accept the self-signed certificate
  (${prosody.caFile}), and add ${gateway} to your roster.

`,
  );
  if (claim) process.stdout.write(`${claimText}\n  A phone signed in to this server can scan the code; here, type the claim message.\n\n`);

  let code = 0;
  try {
    code = await chat({ prosody, jid: owner, password: 'alice', gateway: `${gateway}/demo`, logFile: join(dir, 'owner.log'), agentExited: () => agentExit });
  } finally {
    agent.kill('SIGTERM');
    await new Promise((r) => (agentExit === null ? agent.once('exit', r) : r(null)));
    await sim.stop();
    await pty.stop();
    await prosody.stop();
  }
  return code;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    if (err instanceof ProsodyMissingError) process.stderr.write(`${err.message}\n`);
    else process.stderr.write(`demo failed: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  },
);
