// LAN discovery for real, inside a network namespace of our own (unshare -n:
// loopback and a veth pair, nothing leaves it): the agent, with its XMPP server
// unreachable, advertises XEP-0174 presence; a neutral browser hears the
// JID intact, the readings, an updated TXT, and a goodbye when it stops.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir, hostname } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(__dirname, '..');
const canUnshare = spawnSync('unshare', ['-n', 'true']).status === 0 && spawnSync('sh', ['-c', 'command -v ip']).status === 0;
if (!canUnshare) console.warn('mDNS test skipped: needs unshare -n (root) and ip (iproute2)');

interface Rec {
  name: string;
  type: string;
  ttl: number;
  flush: boolean;
  data: unknown;
}

describe.skipIf(!canUnshare)('mDNS / XEP-0174 link-local presence', () => {
  it('advertises the gateway with an intact JID and its readings, updates them, and says goodbye', () => {
    const dir = mkdtempSync(join(tmpdir(), 'xia-mdns-'));
    writeFileSync(
      join(dir, 'agent.yaml'),
      `xmpp:
  jid: kitchen@iot.example.org
  resource: rpi-kitchen
  password: unused
  service: xmpp://127.0.0.1:9
  reconnect: { initial_delay: 5s }
owners: [alice@iot.example.org]
devices:
  - { id: temperature, driver: simulated, type: number, unit: "°C", min: 15, max: 30, initial: 21.4, interval: 200ms }
  - { id: fan, driver: simulated, type: boolean, writable: true }
presence:
  min_interval: 300ms
mdns:
  readings: true   # opt-in: by default the LAN sees no readings
`,
    );
    const script = `
set -e
ip link set lo up
ip link set lo multicast on
ip route add 224.0.0.0/4 dev lo src 127.0.0.1
ip link add v0 type veth peer name v1
ip addr add 192.0.2.10/24 dev v0
ip link set v0 up
ip link set v1 up
node ${ROOT}/test/interop/mdns-browse.mjs > ${dir}/browse.out 2>&1 &
B=$!
sleep 0.5
node ${ROOT}/dist/cli.js run --config ${dir}/agent.yaml > ${dir}/agent.out 2>&1 &
A=$!
sleep 4
kill -TERM $A
wait $A || true
sleep 1
kill -TERM $B
wait $B || true
`;
    const r = spawnSync('unshare', ['-n', 'sh', '-c', script], { encoding: 'utf8', timeout: 30_000, cwd: ROOT });
    expect(r.status, r.stderr).toBe(0);
    const records = readFileSync(join(dir, 'browse.out'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Rec);
    const host = hostname().split('.')[0];
    const instance = `rpi-kitchen@${host}._presence._tcp.local`;

    const txts = records.filter((x) => x.type === 'TXT' && x.name === instance && x.ttl > 0).map((x) => x.data as string[]);
    expect(txts.length).toBeGreaterThan(0);
    const first = Object.fromEntries(txts[0]!.map((s) => [s.slice(0, s.indexOf('=')), s.slice(s.indexOf('=') + 1)]));
    expect(first).toMatchObject({ txtvers: '1', status: 'avail', jid: 'kitchen@iot.example.org', '1st': 'rpi-kitchen', hash: 'sha-1' });
    expect(first.msg).toMatch(/^temperature \d+\.\d °C · fan off$/);
    const msgs = new Set(txts.map((t) => t.find((s) => s.startsWith('msg='))));
    expect(msgs.size).toBeGreaterThan(1); // re-announced as the readings changed

    const srv = records.find((x) => x.type === 'SRV' && x.name === instance)!;
    expect(srv.data).toMatchObject({ port: 5298, target: `${host}.local` });
    expect(records.some((x) => x.type === 'A' && x.name === `${host}.local` && x.data === '192.0.2.10')).toBe(true);
    expect(records.some((x) => x.type === 'PTR' && x.name === '_presence._tcp.local' && x.data === instance && x.ttl === 0)).toBe(true);

    const log = readFileSync(join(dir, 'agent.out'), 'utf8');
    expect(log).toContain('"msg":"advertised on the LAN"');
    expect(log).toContain('"msg":"stopped"');
  });
});
