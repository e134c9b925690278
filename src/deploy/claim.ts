// `xmpp-iot-agent claim --config agent.yaml`: shows the person at the device
// the gateway's claim code (a QR code of the xmpp: URI, the URI and the code),
// making a new one when none is open or it has expired; and the files that
// `image` puts on the SD card so the person can open the QR code from it.

import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { ConfigError, parseYaml } from '../config/load.js';
import { checkConfig, type AgentConfig } from '../config/schema.js';
import { claimMessage, claimNotice, claimUri, makeCode } from '../core/claim.js';
import { ClaimFileError, claimJson, readClaim, writeClaim, type ClaimState } from '../store/claim-file.js';
import { encodeQr, QrTooLongError, qrToRgb } from '../util/qr.js';
import { encodePng } from '../util/png.js';

/** The config, checked like `run` checks it but without reading the password (the claim needs none). */
export function loadForClaim(path: string): AgentConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError([{ path: '(file)', message: `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}` }]);
  }
  const parsed = parseYaml(text);
  if (parsed.issues.length > 0) throw new ConfigError(parsed.issues);
  const { config, issues } = checkConfig(parsed.value, { hostname: hostname().split('.')[0] || 'gateway' });
  if (!config) throw new ConfigError(issues);
  config.store.stateDir = resolve(dirname(resolve(path)), config.store.stateDir);
  return config;
}

/** `replaced`: a new code took the place of an open one (expired, or --new). */
export type ClaimShown = { ok: true; text: string; state: Extract<ClaimState, { state: 'open' }>; replaced: boolean } | { ok: false; text: string };

/** Why this config cannot be claimed, or undefined if it can. */
function refusal(config: AgentConfig): string | undefined {
  if (!config.claim.enabled) return 'claim is not enabled for this gateway: set claim.enabled: true in its config (and leave owners out)';
  if (config.owners.length > 0) {
    return `the config names owners (${config.owners.join(', ')}): claiming is for a gateway without owners; owners let others in from chat with "invite <address>"`;
  }
  return undefined;
}

/** The notice for the open code, or a new code when none is open, it has expired, or `renew` asks for one. */
export function showClaim(config: AgentConfig, opts: { renew?: boolean; invert?: boolean; now?: number; random?: (n: number) => Uint8Array } = {}): ClaimShown {
  const why = refusal(config);
  if (why) return { ok: false, text: why };
  const now = opts.now ?? Date.now();
  const dir = config.store.stateDir;
  const state = readClaim(dir);
  if (state?.state === 'done' && state.by && !opts.renew) {
    return { ok: false, text: `${config.xmpp.jid} was claimed by ${state.by} on ${new Date(state.at).toISOString().slice(0, 10)}; its owners let others in from chat with "invite <address>". (--new opens a new code for a gateway that has lost its owners.)` };
  }
  let open = state?.state === 'open' && (state.expires === undefined || state.expires > now) && !opts.renew ? state : undefined;
  const replaced = !open && state?.state === 'open';
  if (!open) {
    open = { state: 'open', code: makeCode(opts.random ?? ((n) => new Uint8Array(randomBytes(n)))), created: now, expires: now + config.claim.codeTtlMs, ttlMs: config.claim.codeTtlMs };
    writeClaim(dir, open);
  }
  return { ok: true, text: claimNotice({ jid: config.xmpp.jid, code: open.code, expires: open.expires, ttlMs: open.ttlMs, invert: opts.invert }), state: open, replaced };
}

/** The boot partition's claim files for an unclaimed gateway: the state for install.sh, the QR code as a PNG, the URI and code as text. */
export function claimImageFiles(config: AgentConfig, opts: { now?: number; random?: (n: number) => Uint8Array } = {}): { json: string; png?: Buffer; text: string } | undefined {
  if (refusal(config)) return undefined;
  const code = makeCode(opts.random ?? ((n) => new Uint8Array(randomBytes(n))));
  // No expiry yet: the card may wait weeks; the code's time starts when the gateway first starts.
  const state: ClaimState = { state: 'open', code, created: opts.now ?? Date.now(), ttlMs: config.claim.codeTtlMs };
  const uri = claimUri(config.xmpp.jid, code);
  const text = [
    `Claim the gateway ${config.xmpp.jid}`,
    '',
    'Open xmpp-iot-agent-claim.png beside this file and scan it with your phone: your XMPP app',
    'opens a chat with the gateway with the message ready to send. Send it once the gateway is',
    'online, and you are its owner. Or send the message yourself:',
    '',
    `  ${claimMessage(code)}`,
    '',
    `to ${config.xmpp.jid}, or open ${uri}`,
    `The code works once, for ${Math.round(config.claim.codeTtlMs / 3_600_000)} h from the gateway's first start.`,
    '',
  ].join('\r\n'); // read on any computer the card is put into
  let png: Buffer | undefined;
  try {
    png = encodePng(qrToRgb(encodeQr(uri), { scale: 10 }));
  } catch (err) {
    if (!(err instanceof QrTooLongError)) throw err; // a JID too long for a QR code: the text file still has the message
  }
  return { json: claimJson(state), png, text };
}

/** The `claim` command: 0 with the notice on stdout, 1 with the reason on stderr, 2 for bad arguments. */
export function claimCommand(args: string[], out: { stdout: (s: string) => void; stderr: (s: string) => void }): number {
  const i = args.findIndex((a) => a === '--config' || a === '-c');
  const path = i >= 0 ? args[i + 1] : (args.find((a) => a.startsWith('--config='))?.slice('--config='.length) ?? args.find((a) => !a.startsWith('-')));
  if (!path) {
    out.stderr('Usage: xmpp-iot-agent claim --config <agent.yaml> [--new] [--invert]\n');
    return 2;
  }
  let config: AgentConfig;
  try {
    config = loadForClaim(path);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    out.stderr(`${path}: invalid configuration\n${err.issues.map((x) => `  ${x.path}: ${x.message}\n`).join('')}`);
    return 1;
  }
  try {
    const shown = showClaim(config, { renew: args.includes('--new'), invert: args.includes('--invert') });
    if (!shown.ok) {
      out.stderr(`${shown.text}\n`);
      return 1;
    }
    out.stdout(shown.text);
    if (shown.replaced) out.stdout('  (a new code: the one before it no longer works)\n');
    return 0;
  } catch (err) {
    if (err instanceof ClaimFileError) {
      out.stderr(`${err.message}\n${err.message.includes('EACCES') ? 'run it as the agent\'s user or with sudo\n' : ''}`);
      return 1;
    }
    throw err;
  }
}
