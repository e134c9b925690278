// The agent.yaml contract: every key checked at start-up, all problems at once.
// Pure: file reads (password_file, ca_file) happen in load.ts.

import { Checker, join, type Issue } from './validate.js';
import type { DeviceInfo } from '../core/devices.js';
import type { AlarmRule } from '../core/alarms.js';
import { checkHardware, HARDWARE_KEYS, type HardwareOptions } from './hardware.js';
import { checkDurability, checkStreamManagement, DURABILITY_KEYS, type DurabilityConfig, type StreamManagementConfig } from './durability.js';
import { checkClaim, OWNERS_HINT, type ClaimConfig } from './claim.js';
import { PEOPLE_WORDS } from '../core/claim.js';
import { checkCharts, CHARTS_KEYS, type ChartsConfig } from './charts.js';

export const DRIVERS = ['simulated', 'serial-bridge', 'dht', 'ds18b20', 'gpio', 'replay'] as const;
export type DriverName = (typeof DRIVERS)[number];
/** Drivers this build can run; the rest are named in the contract and refused clearly. */
export const AVAILABLE_DRIVERS: readonly DriverName[] = DRIVERS;

export const RESERVED_IDS = ['help', 'status', 'get', 'set', 'history', 'all', 'on', 'off', 'chart', ...PEOPLE_WORDS];
export const LEVELS = ['debug', 'info', 'warn', 'error'] as const;

/** A configured device: what the core keeps of it (DeviceInfo), plus how it is driven. */
export interface DeviceConfig extends DeviceInfo {
  driver: DriverName;
  initial?: number | boolean | string;
  /** Applied at start and at shutdown (a writable device's fail-safe position). */
  safe?: number | boolean | string;
  /** How often the driver produces a reading. */
  intervalMs: number;
  /** Driver-specific settings. */
  options: HardwareOptions;
}

/** A firmware bridge on a serial port: its channels become devices when it says hello. */
export interface BridgeConfig {
  id: string;
  port: string;
  baud: number;
  ackTimeoutMs: number;
}

export interface XmppConfig {
  jid: string;
  resource: string;
  password?: string;
  passwordFile?: string;
  /** The first of services (the most preferred), kept for callers that take one. */
  service?: string;
  /** xmpp.service as a list, most preferred first; empty: DNS SRV of the JID's domain. */
  services: string[];
  tls: { caFile?: string; allowPlaintext: boolean };
  reconnect: { initialDelayMs: number; maxDelayMs: number };
  /** XEP-0199 pings to the server; intervalMs 0 = off. */
  keepalive: { intervalMs: number; timeoutMs: number; checkMs: number };
  streamManagement: StreamManagementConfig;
}

export interface AgentConfig {
  xmpp: XmppConfig;
  owners: string[];
  viewers: string[];
  devices: DeviceConfig[];
  bridges: BridgeConfig[];
  presence: { minIntervalMs: number; heartbeatMs: number };
  log: { level: (typeof LEVELS)[number]; xml: boolean };
  alarms: AlarmRule[];
  /** DNS-SD / XEP-0174 advertising on the LAN. */
  mdns: { enabled: boolean; readings: boolean };
  /** State directory, outbox and history. */
  store: DurabilityConfig;
  /** Claim by a one-time code (owners may then be empty). */
  claim: ClaimConfig;
  /** History and alarms as chart images (XEP-0363). */
  charts: ChartsConfig;
}

const BARE_JID = /^[^@/\s"&'<>:]+@[^@/\s]+$/;

const DEVICE_ID = /^[a-z][a-z0-9_-]{0,31}$/;
const SERVICE = /^(xmpp|xmpps):\/\/(\[[0-9a-f:]+\]|[a-z0-9.-]+)(:\d{1,5})?\/?$/i;

export function isLoopbackService(service: string | undefined): boolean {
  if (!service) return false;
  const m = SERVICE.exec(service);
  const host = m?.[2]?.toLowerCase();
  if (!host) return false;
  return host === 'localhost' || host === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

export function checkConfig(raw: unknown, defaults: { hostname: string }): { config?: AgentConfig; issues: Issue[] } {
  const c = new Checker();
  const root = c.object('', raw, ['xmpp', 'owners', 'viewers', 'devices', 'alarms', 'presence', 'log', 'mdns', ...DURABILITY_KEYS, 'claim', ...CHARTS_KEYS]);
  if (!root) return { issues: c.issues.map((i) => (i.path ? i : { ...i, path: '(root)' })) };

  const xmpp = checkXmpp(c, root.xmpp, defaults);
  const claim = checkClaim(c, root.claim);
  const owners = checkJids(c, 'owners', root.owners, !claim.enabled);
  const viewers = checkJids(c, 'viewers', root.viewers, false);
  const bridges: BridgeConfig[] = [];
  const devices = checkDevices(c, root.devices, bridges);

  const p = c.object('presence', root.presence, ['min_interval', 'heartbeat'], false) ?? {};
  const minIntervalMs = c.duration('presence.min_interval', p.min_interval) ?? 10_000;
  const heartbeatMs = c.duration('presence.heartbeat', p.heartbeat, { minMs: 1000 }) ?? 300_000;
  if (heartbeatMs < minIntervalMs) c.fail('presence.heartbeat', `must not be shorter than presence.min_interval (${minIntervalMs / 1000} s)`);

  const l = c.object('log', root.log, ['level', 'xml'], false) ?? {};
  const log = { level: c.oneOf('log.level', l.level, LEVELS) ?? 'info', xml: c.boolean('log.xml', l.xml) ?? false };

  const alarms = checkAlarms(c, root.alarms, devices ?? []);
  const m = c.object('mdns', root.mdns, ['enabled', 'readings'], false) ?? {};
  const mdns = { enabled: c.boolean('mdns.enabled', m.enabled) ?? true, readings: c.boolean('mdns.readings', m.readings) ?? false };

  const store = checkDurability(c, root);
  const charts = checkCharts(c, root.charts);

  if (c.issues.length > 0 || !xmpp || !owners || !devices) return { issues: c.issues };
  return { config: { xmpp, owners, viewers: viewers ?? [], devices, bridges, alarms, presence: { minIntervalMs, heartbeatMs }, log, mdns, store, claim, charts }, issues: [] };
}

function checkXmpp(c: Checker, raw: unknown, defaults: { hostname: string }): XmppConfig | undefined {
  const x = c.object('xmpp', raw, ['jid', 'resource', 'password', 'password_file', 'service', 'tls', 'reconnect', 'keepalive', 'stream_management']);
  if (!x) return undefined;
  const jid = c.string('xmpp.jid', x.jid, { required: true, pattern: BARE_JID, what: 'a bare JID such as gateway@iot.example.org' });
  const resource = c.string('xmpp.resource', x.resource, { pattern: /^[^\s/]{1,64}$/, what: 'a resource name without spaces or slashes' }) ?? defaults.hostname;
  // Never echo a password, not even a mistyped one (an unquoted number is read as a number).
  const password = typeof x.password === 'string' || x.password === undefined || x.password === null ? c.string('xmpp.password', x.password) : c.fail('xmpp.password', `expected a string; got a ${typeof x.password} (put the password in quotes)`);
  const password_file = c.string('xmpp.password_file', x.password_file, { what: 'a file path' });
  if (password !== undefined && password_file !== undefined) c.fail('xmpp.password', 'set either xmpp.password or xmpp.password_file, not both');
  const services = checkServices(c, x.service);
  const service = services[0];

  const t = c.object('xmpp.tls', x.tls, ['ca_file', 'allow_plaintext'], false) ?? {};
  const ca_file = c.string('xmpp.tls.ca_file', t.ca_file, { what: 'a PEM file path' });
  const allow_plaintext = c.boolean('xmpp.tls.allow_plaintext', t.allow_plaintext) ?? false;
  const remote = services.find((s) => !isLoopbackService(s));
  if (allow_plaintext && (services.length === 0 || remote !== undefined)) {
    c.fail('xmpp.tls.allow_plaintext', `plaintext is only allowed when xmpp.service is on loopback (xmpp://127.0.0.1:PORT), got ${remote ? JSON.stringify(remote) : 'no service'}`);
  }

  const r = c.object('xmpp.reconnect', x.reconnect, ['initial_delay', 'max_delay'], false) ?? {};
  const initialDelayMs = c.duration('xmpp.reconnect.initial_delay', r.initial_delay, { minMs: 10 }) ?? 1000;
  const maxDelayMs = c.duration('xmpp.reconnect.max_delay', r.max_delay, { minMs: 100 }) ?? 300_000;
  if (maxDelayMs < initialDelayMs) c.fail('xmpp.reconnect.max_delay', 'must not be shorter than xmpp.reconnect.initial_delay');

  const k = c.object('xmpp.keepalive', x.keepalive, ['interval', 'timeout', 'check'], false) ?? {};
  const intervalMs = c.duration('xmpp.keepalive.interval', k.interval) ?? 60_000;
  const timeoutMs = c.duration('xmpp.keepalive.timeout', k.timeout, { minMs: 100 }) ?? 20_000;
  // The real liveness check (an ack request or a ping) once the link went unproven this long; whitespace in between.
  const check = c.duration('xmpp.keepalive.check', k.check, { minMs: 100 });
  if (check !== undefined && intervalMs > 0 && check < intervalMs) c.fail('xmpp.keepalive.check', `must not be shorter than xmpp.keepalive.interval (${intervalMs / 1000} s)`);
  const checkMs = check ?? Math.max(300_000, intervalMs);
  const streamManagement = checkStreamManagement(c, x.stream_management);

  if (!jid) return undefined;
  return { jid, resource, password, passwordFile: password_file, service, services, tls: { caFile: ca_file, allowPlaintext: allow_plaintext }, reconnect: { initialDelayMs, maxDelayMs }, keepalive: { intervalMs, timeoutMs, checkMs }, streamManagement };
}

const SERVICE_WHAT = 'a URI such as xmpp://host:5222 (STARTTLS) or xmpps://host:5223 (direct TLS)';

/** xmpp.service: one URI, or a list of them in order of preference (a cluster's nodes). */
function checkServices(c: Checker, raw: unknown): string[] {
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw)) {
    const one = c.string('xmpp.service', raw, { pattern: SERVICE, what: `${SERVICE_WHAT}, or a list of them` });
    return one ? [one] : [];
  }
  if (raw.length === 0) c.fail('xmpp.service', 'must name at least one endpoint (leave it out to use DNS SRV)');
  const out: string[] = [];
  raw.forEach((v, i) => {
    const s = c.string(join('xmpp.service', i), v, { pattern: SERVICE, what: SERVICE_WHAT });
    if (s && out.includes(s)) c.fail(join('xmpp.service', i), `${JSON.stringify(s)} is listed twice`);
    else if (s) out.push(s);
  });
  return out;
}

function checkJids(c: Checker, path: string, raw: unknown, required: boolean): string[] | undefined {
  if (raw === undefined || raw === null) {
    if (required) c.fail(path, 'is required: list the bare JIDs allowed to control the gateway, e.g. [alice@iot.example.org]; ' + OWNERS_HINT);
    return required ? undefined : [];
  }
  const list = c.array(path, raw);
  if (!list) return undefined;
  if (required && list.length === 0) c.fail(path, `must name at least one bare JID, ${OWNERS_HINT}`);
  const out: string[] = [];
  list.forEach((v, i) => {
    const s = c.string(join(path, i), v, { pattern: BARE_JID, what: 'a bare JID such as alice@iot.example.org' });
    if (s) out.push(s.toLowerCase());
  });
  return out;
}

const DEVICE_KEYS = ['id', 'name', 'driver', 'type', 'unit', 'writable', 'deadband', 'decimals', 'min', 'max', 'initial', 'safe', 'interval', 'stale_after'];
const BRIDGE_KEYS = ['id', 'driver', 'port', 'baud', 'ack_timeout'];

function checkBridge(c: Checker, path: string, item: unknown): BridgeConfig | undefined {
  const d = c.object(path, item, BRIDGE_KEYS);
  if (!d) return undefined;
  const id = c.string(`${path}.id`, d.id, { required: true, pattern: DEVICE_ID, what: 'a lower-case id (letters, digits, - and _, starting with a letter)' });
  const port = c.string(`${path}.port`, d.port, { required: true, what: 'a serial port path such as /dev/serial/by-id/usb-…' });
  const baud = c.number(`${path}.baud`, d.baud, { integer: true, min: 300, max: 4_000_000 }) ?? 115_200;
  const ackTimeoutMs = c.duration(`${path}.ack_timeout`, d.ack_timeout, { minMs: 50 }) ?? 2000;
  return id && port ? { id, port, baud, ackTimeoutMs } : undefined;
}

function checkDevices(c: Checker, raw: unknown, bridges: BridgeConfig[]): DeviceConfig[] | undefined {
  if (raw === undefined || raw === null) {
    c.fail('devices', 'is required: list at least one device (driver: simulated works everywhere)');
    return undefined;
  }
  const list = c.array('devices', raw);
  if (!list) return undefined;
  const seen = new Set<string>();
  const out: DeviceConfig[] = [];
  list.forEach((item, i) => {
    const path = join('devices', i);
    if (item && typeof item === 'object' && (item as Record<string, unknown>).driver === 'serial-bridge') {
      const b = checkBridge(c, path, item);
      if (b && seen.has(b.id)) c.fail(`${path}.id`, `duplicate id "${b.id}"`);
      if (b) {
        seen.add(b.id);
        bridges.push(b);
      }
      return;
    }
    const drv = (item as Record<string, unknown> | null)?.driver;
    const d = c.object(path, item, [...DEVICE_KEYS, ...(typeof drv === 'string' ? (HARDWARE_KEYS[drv] ?? []) : [])]);
    if (!d) return;
    const id = c.string(`${path}.id`, d.id, { required: true, pattern: DEVICE_ID, what: 'a lower-case id (letters, digits, - and _, starting with a letter)' });
    if (id && RESERVED_IDS.includes(id)) c.fail(`${path}.id`, `"${id}" is a chat command word; choose another id`);
    if (id && seen.has(id)) c.fail(`${path}.id`, `duplicate id "${id}"`);
    if (id) seen.add(id);
    const driver = c.oneOf(`${path}.driver`, d.driver, DRIVERS, true);
    if (driver && !AVAILABLE_DRIVERS.includes(driver)) {
      c.fail(`${path}.driver`, `driver "${driver}" is not available in this version (available: ${AVAILABLE_DRIVERS.join(', ')})`);
    }
    const hw = checkHardware(c, path, driver ?? 'simulated', d);
    const type = hw.implied.type ?? c.oneOf(`${path}.type`, d.type, ['number', 'boolean', 'string'] as const, true);
    if (hw.implied.type && d.type !== undefined && d.type !== hw.implied.type) c.fail(`${path}.type`, `a ${driver} device is a ${hw.implied.type}`);
    const unit = c.string(`${path}.unit`, d.unit) ?? hw.implied.unit ?? '';
    const name = c.string(`${path}.name`, d.name) ?? id ?? '';
    const writable = hw.implied.writable ?? c.boolean(`${path}.writable`, d.writable) ?? false;
    if (hw.implied.writable !== undefined && d.writable !== undefined && d.writable !== hw.implied.writable) {
      c.fail(`${path}.writable`, driver === 'gpio' ? 'set by direction (out is writable, in is not)' : `a ${driver} device is read-only`);
    }
    const deadband = c.number(`${path}.deadband`, d.deadband, { min: 0 }) ?? 0;
    const decimals = c.number(`${path}.decimals`, d.decimals, { min: 0, max: 6, integer: true }) ?? 1;
    const min = c.number(`${path}.min`, d.min);
    const max = c.number(`${path}.max`, d.max);
    if (min !== undefined && max !== undefined && min > max) c.fail(`${path}.max`, `must be ≥ min (${min})`);
    if (type && type !== 'number') {
      for (const k of ['deadband', 'decimals', 'min', 'max'] as const) {
        if (d[k] !== undefined) c.fail(`${path}.${k}`, `only applies to type number (this device is ${type})`);
      }
    }
    let initial: number | boolean | string | undefined;
    if (d.initial !== undefined && type) {
      if (typeof d.initial !== type) c.fail(`${path}.initial`, `expected a ${type} (the device's type), got ${JSON.stringify(d.initial)}`);
      else initial = d.initial as number | boolean | string;
    }
    let safe: number | boolean | string | undefined;
    if (d.safe !== undefined && type) {
      if (!writable) c.fail(`${path}.safe`, 'only applies to writable devices');
      else if (typeof d.safe !== type) c.fail(`${path}.safe`, `expected a ${type} (the device's type), got ${JSON.stringify(d.safe)}`);
      else safe = d.safe as number | boolean | string;
    }
    const intervalMs = c.duration(`${path}.interval`, d.interval, { minMs: 50 }) ?? 5000;
    const staleAfterMs = c.duration(`${path}.stale_after`, d.stale_after, { minMs: 100 }) ?? Math.max(30_000, 3 * intervalMs);
    if (driver === 'dht' && intervalMs < 2000) c.fail(`${path}.interval`, 'a DHT sensor must not be read more often than every 2 s');
    if (id && driver && type && hw.options) {
      out.push({ id, name, driver, type, unit, writable, deadband, decimals, min, max, initial, safe, intervalMs, staleAfterMs, options: hw.options });
    }
  });
  if (list.length === 0) c.fail('devices', 'must list at least one device');
  return out;
}

function checkAlarms(c: Checker, raw: unknown, devices: DeviceConfig[]): AlarmRule[] {
  const list = c.array('alarms', raw) ?? [];
  const out: AlarmRule[] = [];
  list.forEach((item, i) => {
    const path = join('alarms', i);
    const a = c.object(path, item, ['device', 'above', 'below', 'hysteresis']);
    if (!a) return;
    // Bridge channels are not known until the board says hello, so any id is accepted;
    // a configured device must be a number.
    const device = c.string(`${path}.device`, a.device, { required: true, pattern: DEVICE_ID, what: 'a device id' });
    const configured = devices.find((d) => d.id === device);
    if (configured && configured.type !== 'number') c.fail(`${path}.device`, `alarms need a number device; ${device} is ${configured.type}`);
    const above = c.number(`${path}.above`, a.above);
    const below = c.number(`${path}.below`, a.below);
    const hysteresis = c.number(`${path}.hysteresis`, a.hysteresis, { min: 0 }) ?? 0;
    if (above === undefined && below === undefined) c.fail(path, 'needs above, below or both');
    if (above !== undefined && below !== undefined && below >= above) c.fail(`${path}.below`, `must be lower than above (${above})`);
    if (device) out.push({ device, above, below, hysteresis });
  });
  return out;
}
