// Under systemd (Type=notify): READY=1 once started, STATUS= with the
// connection, WATCHDOG=1 at half the watchdog interval, STOPPING=1 on SIGTERM.
// A small Python listener plays systemd's notify socket.

import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { findBinary } from '../tools/dev/prosody.js';
import { account, agentYaml } from './helpers/peers.js';
import { until } from './helpers/until.js';

const CLI = join(__dirname, '..', 'dist', 'cli.js');
const LISTENER = `
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], 'a') as out:
    while True:
        data = s.recv(4096).decode()
        out.write(data.replace('\\n', '|') + '\\n')
        out.flush()
`;

describe.skipIf(!findBinary('systemd-notify') || !findBinary('python3'))('systemd notify and watchdog', () => {
  it('tells systemd it is ready, how it is connected, that it lives, and that it stops', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'xia-sd-'));
    const sock = join(dir, 'notify');
    const log = join(dir, 'messages');
    writeFileSync(join(dir, 'listen.py'), LISTENER);
    const listener = spawn('python3', [join(dir, 'listen.py'), sock, log], { stdio: 'ignore' });
    await until(() => existsSync(sock), 'the notify socket');
    const gw = await account('gw');
    writeFileSync(join(dir, 'agent.yaml'), agentYaml({ account: gw, owners: ['alice@iot.test'] }));
    const env = { ...process.env, NOTIFY_SOCKET: sock, WATCHDOG_USEC: '400000', XMPP_IOT_AGENT_PASSWORD: gw.password };
    const agent = spawn(process.execPath, [CLI, 'run', '--config', join(dir, 'agent.yaml')], { env, stdio: 'ignore' });
    const messages = (): string => (existsSync(log) ? readFileSync(log, 'utf8') : '');
    const told = (re: RegExp): Promise<void> => until(() => re.test(messages()), `${re} at the notify socket`, { timeoutMs: 15_000, got: messages });
    try {
      await told(/online as /);
      await told(/WATCHDOG=1[\s\S]*WATCHDOG=1/);
      agent.kill('SIGTERM');
      await new Promise((r) => agent.once('exit', r));
      await told(/STOPPING=1/);
      const m = messages();
      expect(m).toMatch(/READY=1/);
      expect(m).toMatch(/STATUS=online as .*\/agent/);
      expect(m.match(/WATCHDOG=1/g)!.length).toBeGreaterThanOrEqual(2);
      expect(m).toMatch(/STOPPING=1/);
      expect(m).toMatch(new RegExp(`MAINPID=${agent.pid}`));
    } finally {
      agent.kill('SIGKILL');
      listener.kill();
    }
  }, 30_000);
});
