// `xmpp-iot-agent claim` and `image` for a gateway to be claimed, as a user
// runs them (the shipped dist/cli.js): the QR code on the terminal read back
// to the URI, the code kept until it expires, the refusals; and the QR code
// PNG, the code and its install step on a synthetic SD-card image.

import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { claimUri } from '../src/core/claim.js';
import { readClaim, writeClaim } from '../src/store/claim-file.js';
import { findBinary } from '../tools/dev/prosody.js';
import { extractBoot, imageTools, makeImage, readBoot } from './helpers/image.js';
import { pngToModules, readQr, textToModules } from './helpers/qr-read.js';

const CLI = join(__dirname, '..', 'dist', 'cli.js');
const JID = 'kitchen@iot.example.org';

function cli(args: string[]) {
  const env = { ...process.env };
  delete env.XMPP_IOT_AGENT_PASSWORD;
  return spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env });
}

/** A config dir with agent.yaml (no password file: claim needs none) and its state dir. */
function gateway(body: string): { dir: string; config: string; state: string } {
  const dir = mkdtempSync(join(tmpdir(), 'xia-claim-cli-'));
  const config = join(dir, 'agent.yaml');
  writeFileSync(config, `xmpp:\n  jid: ${JID}\n  password_file: pw\nstate_dir: state\nmdns:\n  enabled: false\ndevices:\n  - { id: fan, driver: simulated, type: boolean, writable: true }\n${body}`);
  return { dir, config, state: join(dir, 'state') };
}
const UNCLAIMED = 'claim:\n  enabled: true\n  code_ttl: 2h\n';
const qrOf = (stdout: string, inverted = false): string => {
  const block = stdout.split('\n').filter((l) => /^[█▀▄ ]{20,}$/.test(l)).join('\n');
  const m = textToModules(block, { inverted });
  return readQr(m.size, m.dark).text;
};

describe('xmpp-iot-agent claim', () => {
  it('prints a QR code of the xmpp: URI, the URI and the code, and keeps the code until it expires', () => {
    const g = gateway(UNCLAIMED);
    const r = cli(['claim', '--config', g.config]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const state = readClaim(g.state);
    if (state?.state !== 'open') throw new Error('no code written');
    const uri = claimUri(JID, state.code);
    expect(qrOf(r.stdout)).toBe(uri);
    expect(r.stdout).toContain(`  ${uri}\n`);
    expect(r.stdout).toContain(`or send the message "claim ${state.code}" to ${JID}`);
    expect(r.stdout).toMatch(/The code works once, until \d{4}-\d\d-\d\d \d\d:\d\d UTC\./);
    expect(state.expires! - state.created).toBe(2 * 3_600_000);

    const again = cli(['claim', '--config', g.config]);
    expect(again.stdout).toContain(`claim ${state.code}`);
    expect(r.stdout).not.toContain('a new code');
    expect(again.stdout).not.toContain('a new code');
    // For a terminal with a light background.
    expect(qrOf(cli(['claim', '--config', g.config, '--invert']).stdout, true)).toBe(uri);

    writeClaim(g.state, { ...state, expires: Date.now() - 1 });
    const renewed = cli(['claim', '--config', g.config]);
    const next = readClaim(g.state);
    expect(next?.state === 'open' && next.code).not.toBe(state.code);
    expect(renewed.stdout).toContain('(a new code: the one before it no longer works)');
    expect(qrOf(renewed.stdout)).toBe(claimUri(JID, (next as { code: string }).code));
  });

  it('refuses a gateway with owners, without claim, or already claimed; --new reopens one', () => {
    const owned = gateway('owners: [alice@iot.example.org]\nclaim:\n  enabled: true\n');
    expect(cli(['claim', '--config', owned.config])).toMatchObject({ status: 1, stdout: '' });
    expect(cli(['claim', '--config', owned.config]).stderr).toContain('the config names owners (alice@iot.example.org): claiming is for a gateway without owners');
    const off = gateway('owners: [alice@iot.example.org]\n');
    expect(cli(['claim', '--config', off.config]).stderr).toContain('claim is not enabled for this gateway: set claim.enabled: true');
    const claimed = gateway(UNCLAIMED);
    writeClaim(claimed.state, { state: 'done', at: Date.UTC(2026, 10, 25), by: 'carol@iot.example.org' });
    const r = cli(['claim', '--config', claimed.config]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`${JID} was claimed by carol@iot.example.org on 2026-11-25`);
    expect(cli(['claim', '--config', claimed.config, '--new']).status).toBe(0);
    expect(readClaim(claimed.state)?.state).toBe('open');
    expect(cli(['claim']).status).toBe(2);
  });

  it('check-config accepts a gateway without owners only when claim is enabled', () => {
    const none = gateway('');
    writeFileSync(join(none.dir, 'pw'), 'x\n');
    chmodSync(join(none.dir, 'pw'), 0o600);
    const bad = cli(['check-config', none.config]);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toContain('owners: is required: list the bare JIDs allowed to control the gateway, e.g. [alice@iot.example.org]; or set claim.enabled: true');
    const ok = gateway(UNCLAIMED);
    writeFileSync(join(ok.dir, 'pw'), 'x\n');
    chmodSync(join(ok.dir, 'pw'), 0o600);
    expect(cli(['check-config', ok.config]).status).toBe(0);
  });
});

describe.skipIf(!imageTools)('image, for a gateway to be claimed', () => {
  it('writes the QR code as a PNG into the boot partition, the code for first boot, and its install step', () => {
    const g = gateway(UNCLAIMED);
    writeFileSync(join(g.dir, 'pw'), 'gateway-secret\n');
    chmodSync(join(g.dir, 'pw'), 0o600);
    writeFileSync(join(g.dir, 'pkg.deb'), Buffer.from('!<arch>\nfake\n'));
    const img = makeImage(g.dir);
    const r = cli(['image', '--image', img, '--config', g.config, '--deb', join(g.dir, 'pkg.deb')]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('wrote /xmpp-iot-agent-claim.png');

    const state = JSON.parse(readBoot(img, '/xmpp-iot-agent/claim.json')) as { state: string; code: string; ttlMs: number; expires?: number };
    expect(state).toMatchObject({ state: 'open', ttlMs: 2 * 3_600_000 });
    expect(state.expires).toBeUndefined(); // its time starts at the gateway's first start
    expect(r.stdout).not.toContain(state.code); // the code is on the card, not in the build log

    const out = mkdtempSync(join(tmpdir(), 'xia-boot-'));
    extractBoot(img, '/xmpp-iot-agent-claim.png', out);
    const png = readFileSync(join(out, 'xmpp-iot-agent-claim.png'));
    const m = pngToModules(png);
    expect(readQr(m.size, m.dark).text).toBe(claimUri(JID, state.code));
    const zbarimg = findBinary('zbarimg');
    if (zbarimg) {
      const z = spawnSync(zbarimg, ['-q', '--raw', '-Sdisable', '-Sqrcode.enable', join(out, 'xmpp-iot-agent-claim.png')], { encoding: 'utf8' });
      expect(z.stdout.trim()).toBe(claimUri(JID, state.code));
    }
    expect(readBoot(img, '/xmpp-iot-agent-claim.txt')).toContain(`claim ${state.code}`);

    const script = readBoot(img, '/xmpp-iot-agent/install.sh');
    // state_dir: state, relative to the config, which lives in /etc/xmpp-iot-agent on the Pi.
    expect(script).toContain(`install -m 0600 -o xmpp-iot-agent -g xmpp-iot-agent "$SRC/claim.json" '/etc/xmpp-iot-agent/state/claim.json'`);
    expect(script.indexOf('claim.json')).toBeGreaterThan(script.indexOf('dpkg -i'));
    expect(script.indexOf('claim.json')).toBeLessThan(script.indexOf('systemctl enable'));
    writeFileSync(join(g.dir, 'install.sh'), script);
    expect(spawnSync('sh', ['-n', join(g.dir, 'install.sh')]).status).toBe(0);
  });

  it('writes no claim files for a gateway whose config names owners', () => {
    const g = gateway('owners: [alice@iot.example.org]\n');
    writeFileSync(join(g.dir, 'pw'), 'gateway-secret\n');
    chmodSync(join(g.dir, 'pw'), 0o600);
    writeFileSync(join(g.dir, 'pkg.deb'), Buffer.from('!<arch>\nfake\n'));
    const img = makeImage(g.dir);
    const r = cli(['image', '--image', img, '--config', g.config, '--deb', join(g.dir, 'pkg.deb')]);
    expect(r.status).toBe(0);
    expect(r.stdout).not.toContain('xmpp-iot-agent-claim');
    expect(r.stdout).not.toContain('claim.json');
  });
});
