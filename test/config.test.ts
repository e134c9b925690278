import { mkdtempSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfigText } from '../src/config/load.js';
import { checkConfig, isLoopbackService } from '../src/config/schema.js';
import { parseDuration } from '../src/config/validate.js';

const GOOD = {
  xmpp: { jid: 'gw@iot.example.org', password: 'pw' },
  owners: ['alice@iot.example.org'],
  devices: [
    { id: 'temperature', driver: 'simulated', type: 'number', unit: '°C' },
    { id: 'fan', driver: 'simulated', type: 'boolean', writable: true },
  ],
};

const issues = (raw: unknown): string[] => checkConfig(raw, { hostname: 'pi' }).issues.map((i) => `${i.path}: ${i.message}`);

describe('config schema', () => {
  it('accepts the contract example and fills defaults', () => {
    const { config, issues } = checkConfig(GOOD, { hostname: 'rpi-kitchen' });
    expect(issues).toEqual([]);
    expect(config!.xmpp.resource).toBe('rpi-kitchen');
    expect(config!.xmpp.tls.allowPlaintext).toBe(false);
    expect(config!.viewers).toEqual([]);
    expect(config!.devices[1]).toMatchObject({ id: 'fan', writable: true, name: 'fan', deadband: 0 });
    expect(config!.presence).toEqual({ minIntervalMs: 10_000, heartbeatMs: 300_000 });
    // The LAN advertisement carries no readings unless asked to (anyone on the network can read it).
    expect(config!.mdns).toEqual({ enabled: true, readings: false });
  });

  it('collects every problem at once, each naming its key', () => {
    const out = issues({
      xmpp: { jid: 'gw', service: 'http://x' },
      owners: 'alice',
      devices: [{ id: 'Fan', driver: 'simulated', type: 'number', deadband: -1 }, { driver: 'simulated', type: 'boolean', deadband: 1 }],
      presence: { min_interval: 'soon' },
    });
    expect(out).toEqual(
      expect.arrayContaining([
        'xmpp.jid: expected a bare JID such as gateway@iot.example.org, got "gw"',
        expect.stringMatching(/^xmpp\.service: expected a URI such as xmpp:\/\/host:5222/),
        'owners: expected a list, got "alice"',
        expect.stringMatching(/^devices\[0\]\.id: expected a lower-case id/),
        'devices[0].deadband: expected a number ≥ 0, got -1',
        'devices[1].id: is required (a lower-case id (letters, digits, - and _, starting with a letter))',
        'devices[1].deadband: only applies to type number (this device is boolean)',
        'presence.min_interval: expected a duration such as 30, "30s", "5m" or "1h", got "soon"',
      ]),
    );
    expect(out.length).toBeGreaterThanOrEqual(8);
  });

  it('never echoes a password, not even an unquoted number', () => {
    const out = issues({ ...GOOD, xmpp: { jid: 'gw@iot.example.org', password: 84736251 } });
    expect(out).toEqual(['xmpp.password: expected a string; got a number (put the password in quotes)']);
    expect(out.join()).not.toContain('84736251');
  });

  it('keeps state in /var/lib/xmpp-iot-agent unless told otherwise, and checks the durability keys', () => {
    const { config } = checkConfig(GOOD, { hostname: 'pi' });
    expect(config!.store).toEqual({
      stateDir: '/var/lib/xmpp-iot-agent',
      outbox: { maxMessages: 1000 },
      history: { retentionMs: 7 * 86_400_000, intervalMs: 60_000, flushIntervalMs: 30_000 },
    });
    expect(config!.xmpp.streamManagement).toMatchObject({ enabled: true, ackTimeoutMs: 30_000, requestEvery: 10, maxQueue: 500 });
    expect(
      issues({
        ...GOOD,
        xmpp: { ...GOOD.xmpp, stream_management: { enabled: 'yes', max_queue: 5, ack_tiemout: '1s' } },
        outbox: { max_messages: 0 },
        history: { retention: '30s', interval: 'often' },
      }),
    ).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^xmpp\.stream_management\.enabled: /),
        expect.stringMatching(/^xmpp\.stream_management\.max_queue: /),
        expect.stringMatching(/^xmpp\.stream_management\.ack_tiemout: unknown key \(did you mean "ack_timeout"\?\)/),
        expect.stringMatching(/^outbox\.max_messages: /),
        expect.stringMatching(/^history\.retention: /),
        expect.stringMatching(/^history\.interval: /),
      ]),
    );
  });

  it('checks the link for real every 5 minutes by default, whitespace between, and names xmpp.keepalive.check when it is wrong', () => {
    const keepalive = (k: unknown) => checkConfig({ ...GOOD, xmpp: { ...GOOD.xmpp, keepalive: k } }, { hostname: 'pi' });
    expect(checkConfig(GOOD, { hostname: 'pi' }).config!.xmpp.keepalive).toEqual({ intervalMs: 60_000, timeoutMs: 20_000, checkMs: 300_000 });
    expect(keepalive({ check: '10m' }).config!.xmpp.keepalive.checkMs).toBe(600_000);
    // An interval longer than the default check period: the check goes every interval, as before.
    expect(keepalive({ interval: '15m' }).config!.xmpp.keepalive).toMatchObject({ intervalMs: 900_000, checkMs: 900_000 });
    expect(issues({ ...GOOD, xmpp: { ...GOOD.xmpp, keepalive: { interval: '2m', check: '1m' } } })).toEqual(['xmpp.keepalive.check: must not be shorter than xmpp.keepalive.interval (120 s)']);
    expect(issues({ ...GOOD, xmpp: { ...GOOD.xmpp, keepalive: { check: 'hourly' } } })).toEqual(['xmpp.keepalive.check: expected a duration such as 30, "30s", "5m" or "1h", got "hourly"']);
    expect(issues({ ...GOOD, xmpp: { ...GOOD.xmpp, keepalive: { chek: '5m' } } })).toEqual([expect.stringMatching(/^xmpp\.keepalive\.chek: unknown key \(did you mean "check"\?\)/)]);
  });

  it('reads a relative state_dir relative to the config file', () => {
    const yaml = `state_dir: ./state\nxmpp:\n  jid: gw@iot.example.org\n  password: pw\nowners: [alice@iot.example.org]\ndevices:\n  - { id: t, driver: simulated, type: number }\n`;
    expect(loadConfigText(yaml, { baseDir: '/etc/xmpp-iot-agent', env: {} }).config.store.stateDir).toBe('/etc/xmpp-iot-agent/state');
  });

  it('suggests the key meant by a typo', () => {
    expect(issues({ ...GOOD, ownres: [] })).toContain('ownres: unknown key (did you mean "owners"?); expected one of xmpp, owners, viewers, devices, alarms, presence, log, mdns, state_dir, outbox, history, claim, charts');
  });

  it('refuses duplicate ids, command words as ids, and unknown drivers', () => {
    const out = issues({
      ...GOOD,
      devices: [
        { id: 'fan', driver: 'simulated', type: 'boolean' },
        { id: 'fan', driver: 'simulated', type: 'boolean' },
        { id: 'status', driver: 'simulated', type: 'string' },
        { id: 'relay', driver: 'relay', type: 'boolean' },
      ],
    });
    expect(out).toContain('devices[1].id: duplicate id "fan"');
    expect(out).toContain('devices[2].id: "status" is a chat command word; choose another id');
    expect(out).toContain('devices[3].driver: expected one of simulated, serial-bridge, dht, ds18b20, gpio, replay, got "relay"');
  });

  it('takes a serial bridge with its port, and names what it lacks', () => {
    const { config } = checkConfig({ ...GOOD, devices: [...GOOD.devices, { id: 'bridge', driver: 'serial-bridge', port: '/dev/ttyUSB0' }] }, { hostname: 'pi' });
    expect(config!.bridges).toEqual([{ id: 'bridge', port: '/dev/ttyUSB0', baud: 115200, ackTimeoutMs: 2000 }]);
    expect(config!.devices.map((d) => d.id)).toEqual(['temperature', 'fan']);
    expect(issues({ ...GOOD, devices: [{ id: 'bridge', driver: 'serial-bridge', baud: 12, type: 'number' }] })).toEqual([
      'devices[0].type: unknown key; expected one of id, driver, port, baud, ack_timeout',
      expect.stringMatching(/^devices\[0\]\.port: is required/),
      'devices[0].baud: expected an integer from 300 to 4000000, got 12',
    ]);
  });

  it('allows plaintext only for a loopback service', () => {
    expect(issues({ ...GOOD, xmpp: { ...GOOD.xmpp, service: 'xmpp://10.0.0.5:5222', tls: { allow_plaintext: true } } })).toEqual([
      'xmpp.tls.allow_plaintext: plaintext is only allowed when xmpp.service is on loopback (xmpp://127.0.0.1:PORT), got "xmpp://10.0.0.5:5222"',
    ]);
    expect(issues({ ...GOOD, xmpp: { ...GOOD.xmpp, tls: { allow_plaintext: true } } })[0]).toMatch(/got no service$/);
    expect(issues({ ...GOOD, xmpp: { ...GOOD.xmpp, service: 'xmpp://127.0.0.1:5222', tls: { allow_plaintext: true } } })).toEqual([]);
    expect(isLoopbackService('xmpp://localhost:5222')).toBe(true);
    expect(isLoopbackService('xmpp://[::1]:5222')).toBe(true);
    expect(isLoopbackService('xmpp://127.evil.com:5222')).toBe(false);
  });

  it('refuses durations longer than a timer can hold (they would silently fire every millisecond)', () => {
    expect(issues({ ...GOOD, presence: { heartbeat: '30d' } })).toEqual(['presence.heartbeat: expected at most 24 days, got "30d"']);
  });

  it('checks an initial value against the device type', () => {
    expect(issues({ ...GOOD, devices: [{ id: 'fan', driver: 'simulated', type: 'boolean', initial: 'on' }] })).toEqual([
      'devices[0].initial: expected a boolean (the device\'s type), got "on"',
    ]);
  });

  it('reads durations as seconds or with a unit', () => {
    expect(parseDuration(30)).toBe(30_000);
    expect(parseDuration('500ms')).toBe(500);
    expect(parseDuration('5m')).toBe(300_000);
    expect(parseDuration('1.5h')).toBe(5_400_000);
    expect(parseDuration('-1')).toBeUndefined();
    expect(parseDuration('5 minutes')).toBeUndefined();
  });
});

describe('reading the YAML', () => {
  const issuesOf = (text: string): string[] => {
    try {
      loadConfigText(text, { baseDir: '/etc/xmpp-iot-agent', env: {} });
    } catch (err) {
      if (err instanceof ConfigError) return err.issues.map((i) => `${i.path}: ${i.message}`);
      throw err;
    }
    return [];
  };
  const good = 'xmpp:\n  jid: gw@iot.example.org\n  password: s3cret-pw\nowners: [alice@iot.example.org]\ndevices:\n  - { id: t, driver: simulated, type: number }\n';

  it('names the line of a syntax error and of a key given twice, and quotes none of the file', () => {
    const broken = issuesOf(good.replace('owners: [alice@iot.example.org]', 'owners: [alice@iot.example.org'));
    expect(broken).toHaveLength(1);
    expect(broken[0]).toMatch(/^\(yaml line \d+\): /);
    const twice = issuesOf(`${good}owners: [bob@iot.example.org]\n`);
    expect(twice).toEqual(['(yaml line 7): duplicated mapping key']);
    for (const text of [...broken, ...twice]) expect(text).not.toContain('s3cret-pw');
  });

  it('reads YAML 1.2: yes and on stay words, 0x10 and 1e3 are numbers', () => {
    const { config } = loadConfigText(
      `${good}devices:\n  - { id: t, driver: simulated, type: string, initial: yes }\n  - { id: u, driver: simulated, type: string, initial: on }\n  - { id: n, driver: simulated, type: number, initial: 0x10 }\n  - { id: m, driver: simulated, type: number, initial: 1e3 }\n`.replace(/devices:\n  - \{ id: t, driver: simulated, type: number \}\n/, ''),
      { baseDir: '/etc/xmpp-iot-agent', env: {} },
    );
    expect(config.devices.map((d) => [d.id, d.initial])).toEqual([['t', 'yes'], ['u', 'on'], ['n', 16], ['m', 1000]]);
  });

  it('refuses an empty file or one of comments only, by what it lacks', () => {
    for (const text of ['', '# nothing yet\n\n']) {
      const issues = issuesOf(text);
      expect(issues.length).toBeGreaterThan(0);
      expect(issues.join('\n')).not.toMatch(/yaml line/);
    }
  });
});

describe('config loading and secrets', () => {
  const yaml = (xmpp: string): string => `xmpp:\n  jid: gw@iot.example.org\n${xmpp}owners: [alice@iot.example.org]\ndevices:\n  - {id: fan, driver: simulated, type: boolean}\n`;

  it('takes the password from the environment first, then the file, then the config', () => {
    const dir = mkdtempSync(join(tmpdir(), 'xia-cfg-'));
    writeFileSync(join(dir, 'pw'), 'from-file\n');
    chmodSync(join(dir, 'pw'), 0o600);
    const fromFile = loadConfigText(yaml('  password_file: pw\n'), { baseDir: dir, env: {} });
    expect(fromFile).toMatchObject({ password: 'from-file', passwordSource: 'password_file', warnings: [] });
    const fromEnv = loadConfigText(yaml('  password_file: pw\n'), { baseDir: dir, env: { XMPP_IOT_AGENT_PASSWORD: 'from-env' } });
    expect(fromEnv).toMatchObject({ password: 'from-env', passwordSource: 'environment' });
    expect(loadConfigText(yaml('  password: inline\n'), { baseDir: dir, env: {} }).password).toBe('inline');
  });

  it('explains a missing password and an unreadable file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'xia-cfg-'));
    const err = (() => {
      try {
        loadConfigText(yaml(''), { baseDir: dir, env: {} });
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).issues[0]!.message).toContain('XMPP_IOT_AGENT_PASSWORD');
    expect(() => loadConfigText(yaml('  password_file: missing\n'), { baseDir: dir, env: {} })).toThrow(/xmpp.password_file: cannot read .*missing: ENOENT/);
    expect(() => loadConfigText(yaml('  password: x\n  tls:\n    ca_file: nope.pem\n'), { baseDir: dir, env: {} })).toThrow(/xmpp.tls.ca_file: cannot read/);
  });

  it('warns when every user can read the password file, not when only the service group can', () => {
    const dir = mkdtempSync(join(tmpdir(), 'xia-cfg-'));
    writeFileSync(join(dir, 'pw'), 'x');
    chmodSync(join(dir, 'pw'), 0o644);
    const { warnings } = loadConfigText(yaml('  password_file: pw\n'), { baseDir: dir, env: {} });
    expect(warnings[0]).toMatch(/readable by every user \(mode 644\); run: chmod 640/);
    chmodSync(join(dir, 'pw'), 0o640);
    expect(loadConfigText(yaml('  password_file: pw\n'), { baseDir: dir, env: {} }).warnings).toEqual([]);
  });

  it('reads a systemd credential named by XMPP_IOT_AGENT_PASSWORD_FILE before xmpp.password_file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'xia-cfg-'));
    writeFileSync(join(dir, 'cred'), 'from-credential');
    writeFileSync(join(dir, 'pw'), 'from-file');
    const loaded = loadConfigText(yaml('  password_file: pw\n'), { baseDir: dir, env: { XMPP_IOT_AGENT_PASSWORD_FILE: join(dir, 'cred') } });
    expect(loaded).toMatchObject({ password: 'from-credential', passwordSource: 'credential' });
  });
});
