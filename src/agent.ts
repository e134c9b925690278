// The composition root: builds every component from the config, wires them,
// starts them in order (each named in the log if it fails), stops them in reverse.

import { EventEmitter } from 'node:events';
import type { Element } from 'ltx';
import type { LoadedConfig } from './config/load.js';
import type { DeviceConfig } from './config/schema.js';
import { createAuthority, canRead } from './core/authority.js';
import { systemClock, type Clock } from './core/clock.js';
import { Devices, type Value } from './core/devices.js';
import { createDriver, lazyDriver } from './drivers/index.js';
import type { Driver, DriverContext, DriverStats } from './drivers/driver.js';
import type { Logger } from './runtime/log.js';
import { reporter, type Reporter } from './services/presence.js';
import { chatHandler } from './chat/handler.js';
import { Router } from './xmpp/router.js';
import { roster } from './xmpp/roster.js';
import { Session } from './xmpp/session.js';
import { keepalive } from './xmpp/keepalive.js';
import { lanAdvertising } from './services/lan-advert.js';
import { alerter } from './services/alerter.js';
import { courier, type Courier } from './services/courier.js';
import { recorder } from './services/recorder.js';
import { reconciler, type Reconciler } from './services/reconcile.js';
import { archiveSearch } from './xep/mam.js';
import { openStore, type Store } from './store/db.js';
import { gatewayShow, type Show } from './core/format.js';
import type { AuthError } from './xmpp/sasl.js';
import { capsElement, capsVer, CAPS_NODE, type Identity } from './xep/caps.js';
import { commands, NS_COMMANDS, type StatusField } from './xep/commands.js';
import { deviceNodes, discoInfo, discoItems, ownFeatures, NS_DISCO_INFO, NS_DISCO_ITEMS, type DiscoDeps } from './xep/disco.js';
import { controlForm, controlMessage, controlSet, NS_CONTROL } from './xep/control.js';
import { NS_PING, ping } from './xep/ping.js';
import { NS_SENSORDATA, sensorDataCancel, sensorDataRequest } from './xep/sensordata.js';
import { NS_VERSION, version } from './xep/version.js';
import { PRODUCT } from './runtime/version.js';
import { statusFields } from './services/status.js';
import { people, type People } from './services/people.js';
import { peopleChat } from './chat/people.js';
import { peopleCommands } from './xep/people-commands.js';
import { uploader } from './services/uploader.js';
import { charts } from './services/charts.js';
import { CLOCK_FLOOR } from './runtime/build-time.js';
import { clockWatch, type ClockWatch } from './services/clock-watch.js';
import { storageGuard, type StorageGuard } from './services/storage.js';

export interface AgentOptions {
  loaded: LoadedConfig;
  log: Logger;
  clock?: Clock;
  driverFor?: (device: DeviceConfig) => Driver;
  /** Where the claim notice (QR code, URI, code) for the person at the device goes; default stderr (the journal). */
  claimNotice?: (text: string) => void;
}

interface Component {
  name: string;
  start(): Promise<void> | void;
  stop(): Promise<void> | void;
}

export class Agent extends EventEmitter<{ fatal: [AuthError] }> {
  readonly devices: Devices;
  readonly session: Session;
  readonly router: Router;
  readonly reporter: Reporter;
  readonly courier: Courier;
  /** What survives the process: exactly once with the server's message archive, at least once without. */
  readonly delivery: Reconciler;
  /** Owners and viewers: the config's, and those claimed or invited from chat (in the store). */
  readonly people: People;
  private readonly components: Component[] = [];
  private started: Component[] = [];
  private readonly log: Logger;
  private readonly drivers: Driver[] = [];
  private startedAt = 0;
  private opened?: Store;
  private readonly clock: Clock;
  /** The wall clock of a Pi without a real-time clock: believable yet? */
  readonly clockWatch: ClockWatch;
  /** The SD card: full, read-only, or fine. */
  readonly storage: StorageGuard;
  private readonly openOwnStore: () => Store;
  /** stop() was called: a start() still under way starts nothing more. */
  private halted = false;
  /** Stanzas for the router that came before start() finished, in order; undefined once it has. */
  private early: Element[] | undefined = [];

  constructor(opts: AgentOptions) {
    super();
    const { config, password, ca } = opts.loaded;
    const clock = (this.clock = opts.clock ?? systemClock);
    const log = (this.log = opts.log);
    const self = config.xmpp.jid;

    // Nothing here touches the disk, the network or a device: start() acquires, in order, and a
    // failure half-way stops what had started (the store's exclusive lock included).
    const storeLog = log.child('store');
    const watch = (this.clockWatch = clockWatch({ clock, floor: CLOCK_FLOOR, log: log.child('clock') }));
    const storage = (this.storage = storageGuard({
      dir: config.store.stateDir,
      clock,
      log: storeLog,
      waiting: () => {
        const readings = this.opened?.history.stats().buffered ?? 0;
        const held = this.courier.heldCount();
        return [...(held ? [`${held} alarm message${held > 1 ? 's' : ''} (sent all the same)`] : []), ...(readings ? [`${readings} readings for the history`] : [])];
      },
      reopen: () => this.reopenStore(),
    }));
    this.openOwnStore = () =>
      openStore({
        dir: config.store.stateDir,
        outboxMax: config.store.outbox.maxMessages,
        historyRetentionMs: config.store.history.retentionMs,
        historyFlushMs: config.store.history.flushIntervalMs,
        now: () => clock.now(),
        mono: () => clock.mono(),
        trusted: () => watch.trusted(),
        onError: (err) => storage.failed(err, 'the history'),
      });
    // The session first: DNS, TCP and TLS go on in the kernel and the event loop while the store
    // opens and the drivers start. It cannot come online before the store is open: that opens
    // synchronously in the same turn (a roster check or a claim before it would not see the
    // people in the store), and whatever starts after the first await copes with an online session.
    let sessionStopped: Promise<void> | undefined;
    const stopSession = (): Promise<void> => (sessionStopped ??= this.session.stop());
    const connect = async (): Promise<void> => {
      this.session.start();
      // One turn of the event loop, so that the DNS lookup or the socket's connect is under way before the
      // store opens synchronously (else the attempt only begins after it). Far too short to come online:
      // that takes several round trips with the server, each needing a turn of its own.
      await new Promise<void>((resolve) => setImmediate(resolve));
    };
    this.components.push(watch, storage, { name: 'xmpp session', start: connect, stop: stopSession }, {
      // A locked or damaged database stops the agent here, before anything but the connection moves.
      name: 'state store',
      start: () => {
        this.opened = this.openOwnStore();
      },
      stop: () => {
        this.opened?.close();
        this.opened = undefined;
      },
    });
    // Right after the store (its people table) and before the drivers: a gateway without owners opens its claim code and shows it first.
    this.components.push({ name: 'people', start: () => this.people.start(), stop: () => this.people.stop() });
    const history = { query: (device: string, from: number, to: number) => this.store.history.query(device, from, to) };

    this.devices = new Devices({ clock, onListenerError: (err) => log.error('change listener failed', { error: err }) });
    // Before the drivers, so that their first readings are stored too.
    const record = recorder({ devices: this.devices, history: { record: (d, t, v) => this.store.history.record(d, t, v) }, clock, intervalMs: config.store.history.intervalMs, log: storeLog, trust: watch });
    watch.onTrusted(() => record.release());
    this.components.push(record);
    const configured = new Set(config.devices.map((d) => d.id));
    const context = (name: string): DriverContext => ({
      report: (id, value, at) => this.devices.report(id, value, at),
      fault: (id, message) => this.devices.fault(id, message),
      add: (info, actuator) => this.devices.add(info, actuator),
      remove: (id) => this.devices.remove(id),
      taken: (id) => configured.has(id) || this.devices.get(id) !== undefined,
      log: log.child(`driver:${name}`),
    });
    const addDriver = (name: string, driver: Driver, safe?: Value): void => {
      this.drivers.push(driver);
      // A device with a safe state goes to it when the agent starts and before it stops.
      const toSafe = async (): Promise<void> => {
        if (safe === undefined) return;
        await this.devices.set(name, safe).then(
          () => log.info('set to its safe state', { device: name, value: safe }),
          (err: unknown) => log.error('could not set the safe state', { device: name, error: err }),
        );
      };
      this.components.push({
        name: `driver ${name} (${driver.kind})`,
        start: async () => {
          await driver.start(context(name));
          await toSafe();
        },
        stop: async () => {
          await toSafe();
          await driver.stop();
        },
      });
    };
    for (const device of config.devices) {
      const driver = (opts.driverFor ?? createDriver)(device);
      const { id, name, type, unit, writable, deadband, decimals, min, max, staleAfterMs } = device;
      this.devices.add({ id, name, type, unit, writable, deadband, decimals, min, max, staleAfterMs }, driver);
      addDriver(device.id, driver, device.safe);
    }
    for (const bridge of config.bridges) addDriver(bridge.id, lazyDriver('serial-bridge', async () => (await import('./drivers/serial-bridge/index.js')).serialBridge(bridge, { clock })));

    this.session = new Session({
      jid: self,
      resource: config.xmpp.resource,
      password,
      service: config.xmpp.service,
      services: config.xmpp.services,
      ca,
      allowPlaintext: config.xmpp.tls.allowPlaintext,
      reconnect: config.xmpp.reconnect,
      log: log.child('xmpp'),
      traceXml: config.log.xml,
      streamManagement: config.xmpp.streamManagement,
    });
    const send = (s: Parameters<Session['send']>[0]): Promise<void> => this.session.send(s);
    this.people = people({
      self,
      owners: config.owners,
      viewers: config.viewers,
      claim: config.claim,
      stateDir: config.store.stateDir,
      table: () => this.opened?.people,
      clock,
      log: log.child('claim'),
      send,
      notice: opts.claimNotice ?? ((text) => void process.stderr.write(text)),
    });
    const authority = createAuthority({ self, owners: config.owners, viewers: config.viewers, people: (bare) => this.people.roleOf(bare) });
    this.router = new Router({ send, authority, log: log.child('router') });
    // Exactly once across crashes: before re-sending, the courier asks the server's archive of our messages what it already has.
    const archive = archiveSearch({ request: (iq, ms) => this.session.request(iq, ms), self });
    // Results of our archive queries are taken here, in arrival order, before the query's final IQ result
    // resolves it (the router's handlers run asynchronously and would see the last ones too late).
    this.session.on('stanza', (s) => {
      if (s.name === 'message' && archive.handle(s)) return;
      // The session connects while the drivers start: a request that arrives before every component has
      // started waits for them (a device's safe state is set first, a readout has its driver's reading).
      if (this.early) this.early.push(s);
      else void this.router.handle(s);
    });
    this.session.on('fatal', (err) => this.emit('fatal', err));

    // Protocol surface: each XEP's handlers, registered here and nowhere else.
    const selfJid = (): string => this.session.jid ?? `${self}/${config.xmpp.resource}`;
    const adhoc = commands({ devices: this.devices, clock, self: selfJid, status: () => this.statusFields(), extra: peopleCommands(this.people) });
    const identity: Identity = { category: 'client', type: 'bot', name: 'xmpp-iot-agent' };
    let ver: string | undefined;
    const caps = (): string => (ver ??= capsVer([identity], ownFeatures(disco)));
    const disco: DiscoDeps = {
      devices: this.devices,
      identity,
      features: () => this.router.features(),
      self: selfJid,
      capsNode: () => `${CAPS_NODE}#${caps()}`,
      providers: [
        { info: (node) => adhoc.info(node), items: (node, role) => (node === NS_COMMANDS ? adhoc.items(role) : undefined) },
        deviceNodes(this.devices),
      ],
    };
    // Our server may ping us and ask who we are (caps, features), nothing more.
    this.router.get(NS_DISCO_INFO, 'query', discoInfo(disco), { allow: ['owner', 'viewer', 'server'] });
    this.router.get(NS_DISCO_ITEMS, 'query', discoItems(disco));
    this.router.get(NS_PING, 'ping', ping, { allow: ['owner', 'viewer', 'server'] });
    this.router.get(NS_VERSION, 'query', version(PRODUCT.name, PRODUCT.version));
    this.router.set(NS_COMMANDS, 'command', adhoc.execute, { allow: ['owner', 'viewer'] });
    const past = { history, historyRetentionMs: config.store.history.retentionMs };
    this.router.get(NS_SENSORDATA, 'req', sensorDataRequest({ devices: this.devices, clock, send, ...past }));
    this.router.get(NS_SENSORDATA, 'cancel', sensorDataCancel);
    // Viewers reach the handler so that they get the draft's setResponse too; it refuses them.
    this.router.set(NS_CONTROL, 'set', controlSet(this.devices), { allow: ['owner', 'viewer'] });
    this.router.get(NS_CONTROL, 'getForm', controlForm(this.devices));
    this.router.onMessage(controlMessage({ devices: this.devices, clock, log: log.child('control') }));
    // History and alarms as chart images, where the server offers HTTP File Upload (XEP-0363).
    const uploads = uploader({ request: (iq, ms) => this.session.request(iq, ms), domain: self.slice(self.indexOf('@') + 1), ca, session: this.session, log: log.child('upload') });
    const chartsOut = charts({ config: config.charts, devices: this.devices, ...past, historyIntervalMs: config.store.history.intervalMs, rules: config.alarms, owners: () => this.people.owners(), uploads, send, online: () => this.session.online, clock, log: log.child('charts') });
    const deviceChat = chatHandler({ devices: this.devices, clock, send, log: log.child('chat'), ...past, charts: chartsOut, notices: () => this.notices() });
    const peopleWords = peopleChat({ people: this.people, send, log: log.child('chat') });
    this.router.onMessage(async (s, role) => {
      if (!(await peopleWords(s, role))) await deviceChat(s, role);
    });
    roster({
      router: this.router,
      session: this.session,
      allowed: (bare) => canRead(authority.roleOf(bare)),
      self,
      log: log.child('roster'),
    });

    // Alarms first: their listener must see a reading before the reporter does.
    const storeOf = (): Store => this.store;
    this.delivery = reconciler({ request: (iq, ms) => this.session.request(iq, ms), search: archive, self, log: log.child('outbox'), floor: CLOCK_FLOOR, now: () => clock.now() });
    this.courier = courier({
      store: { get outbox() { return storeOf().outbox; } },
      session: this.session,
      clock,
      log: log.child('outbox'),
      alreadyDelivered: (tried) => this.delivery.alreadyDelivered(tried),
      trust: { trusted: () => watch.trusted(), offset: () => watch.offset(), floor: CLOCK_FLOOR },
      health: storage,
    });
    // What the disk refused goes to it, in this order, once it takes writes again (first: does the database itself write?).
    storage.retry(() => this.store.probe());
    storage.retry(() => this.store.history.flush());
    storage.retry(() => this.courier.persist());
    const alarms = alerter({ devices: this.devices, rules: config.alarms, owners: () => this.people.owners(), enqueue: this.courier.enqueue, log: log.child('alarms'), onAlarm: (e) => { if (e.kind === 'raised') chartsOut.afterAlarm(e.device); } });
    // One show for presence and the LAN advert: dnd while an alarm is active, else health.
    const show = (now: number): Show => gatewayShow(this.devices, alarms.active(), now);

    this.reporter = reporter({
      devices: this.devices,
      session: this.session,
      clock,
      policy: config.presence,
      log: log.child('presence'),
      show,
    });
    this.reporter.decorate((p) => p.append(capsElement(caps())));
    // Started in this order, stopped in reverse: the reporter says goodbye
    // (unavailable presence) while the session is still up. The people (and a claim code
    // when there are no owners) were started right after the store, before the drivers.
    this.components.push(
      // Stopped here, as when it started here: after the courier and the reporter (their goodbyes and the
      // acks of what they sent still reach the store), before the drivers and the store. The first
      // entry stops it only if the start fails before this point.
      { name: 'xmpp session', start: () => {}, stop: stopSession },
      this.courier,
      { name: 'presence reporter', start: () => this.reporter.start(), stop: () => this.reporter.stop() },
    );
    if (config.xmpp.keepalive.intervalMs > 0) {
      const domain = self.slice(self.indexOf('@') + 1);
      this.components.push(keepalive({ session: this.session, clock, domain, ...config.xmpp.keepalive, log: log.child('keepalive') }));
    }
    if (config.mdns.enabled) {
      this.components.push(
        lanAdvertising({
          devices: this.devices,
          clock,
          show,
          user: config.xmpp.resource,
          jid: self,
          caps: () => ({ node: CAPS_NODE, ver: caps() }),
          minIntervalMs: config.presence.minIntervalMs,
          readings: config.mdns.readings,
          log: log.child('mdns'),
        }),
      );
    }
  }

  /** The state store (outbox and history), open from start() to stop(). */
  get store(): Store {
    if (!this.opened) throw new Error('the state store is not open (the agent has not started)');
    return this.opened;
  }

  /** What is wrong with the gateway itself (its clock, its SD card), one line each with what to do. */
  notices(): string[] {
    return [this.clockWatch.notice(), this.storage.notice()].filter((n): n is string => n !== undefined);
  }

  /** The disk writes again but the database handle does not (its filesystem was remounted): open the store again, keeping unflushed readings. */
  private reopenStore(): void {
    const old = this.opened;
    this.opened = undefined;
    const buffered = old?.history.drain() ?? [];
    try {
      old?.close();
    } catch (err) {
      this.log.debug('closing the old store', { error: err });
    }
    this.opened = this.openOwnStore();
    for (const r of buffered) this.opened.history.record(r.device, r.t, r.value);
    this.log.info('state store opened again', { readings: buffered.length });
  }

  /** The counters of each driver that keeps them (a bridge's frames and drops), read-only. */
  driverStats(): { kind: string; stats: DriverStats }[] {
    return this.drivers.flatMap((d) => (d.stats ? [{ kind: d.kind, stats: d.stats() }] : []));
  }

  /** Live figures for the "Agent status" command. */
  statusFields(): StatusField[] {
    return statusFields({
      clock: this.clock,
      startedAt: () => this.startedAt,
      session: this.session,
      devices: this.devices,
      drivers: this.drivers,
      presencesSent: () => this.reporter.stats.presencesSent,
      stanzaErrorsSent: () => this.router.stats.errorsOut,
      outbox: () => this.opened?.outbox.stats(),
      delivered: () => this.courier.stats.delivered,
      guarantee: () => this.delivery.guarantee(),
      people: () => this.people.summary(),
      held: () => this.courier.heldCount(),
      storage: () => this.storage.notice(),
      clockNotice: () => this.clockWatch.notice(),
    });
  }

  async start(): Promise<void> {
    this.startedAt = this.clock.mono();
    this.halted = false;
    this.early ??= [];
    for (const c of this.components) {
      try {
        await c.start();
        if (this.halted) {
          // Stopped while this one started (the session connects early, so a refused login can land here): undo it, start no more.
          await c.stop();
          return;
        }
        this.started.push(c);
      } catch (err) {
        this.log.error(`failed to start ${c.name}`, { error: err });
        await this.stop();
        throw new Error(`failed to start ${c.name}: ${(err as Error).message}`, { cause: err });
      }
    }
    this.log.info('started', { devices: this.devices.ids(), version: PRODUCT.version });
    const early = this.early ?? [];
    this.early = undefined;
    if (early.length > 0) this.log.debug('handling what arrived while starting', { stanzas: early.length });
    for (const s of early) void this.router.handle(s);
  }

  async stop(): Promise<void> {
    this.halted = true;
    this.early = undefined; // a start cut short: nothing waits for it
    const order = [...this.started].reverse();
    this.started = [];
    for (const c of order) {
      try {
        await c.stop();
      } catch (err) {
        this.log.warn(`failed to stop ${c.name}`, { error: err });
      }
    }
    this.log.info('stopped');
  }
}
