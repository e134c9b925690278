#!/usr/bin/env node
// The command line: `run --config agent.yaml`, `check-config agent.yaml`.

import { Agent } from './agent.js';
import { ConfigError, loadConfigFile, type LoadedConfig } from './config/load.js';
import { createLogger, createSink } from './runtime/log.js';
import { PRODUCT } from './runtime/version.js';
import { systemdNotifier } from './runtime/systemd.js';
import { compactor } from './runtime/compactor.js';
import { systemClock } from './core/clock.js';
import { readFileSync } from 'node:fs';
import { StoreError } from './store/db.js';

const USAGE = `Usage:
  xmpp-iot-agent run --config <agent.yaml>     run the agent
  xmpp-iot-agent check-config <agent.yaml>     validate a config; prints every problem, exit 1 if any
  xmpp-iot-agent image --image <raspios.img> --config <agent.yaml> [--deb <package.deb>]
                 [--hostname <name>] [--wifi <ssid> --wifi-password-file <file> --wifi-country <CC>]
                                               prepare a Raspberry Pi OS image to install and start the agent at first boot
  xmpp-iot-agent claim --config <agent.yaml> [--new] [--invert]
                                               show the claim QR code of a gateway without owners (claim.enabled)
  xmpp-iot-agent --version`;

/** Hard limit for a clean shutdown; past it the process exits anyway. */
const STOP_TIMEOUT_MS = 5000;
/** The memory compactor starts when the agent is first online, or this long after starting if it is not. */
const MEMORY_FALLBACK_MS = 60_000;

/**
 * Exit codes of `run` (sysexits.h), so a supervisor can tell "fix the config"
 * from "try again": systemd's RestartPreventExitStatus lists the first two.
 */
export const EXIT = { config: 78, login: 77, store: 73, software: 70 } as const;

function configPath(args: string[]): string | undefined {
  const i = args.findIndex((a) => a === '--config' || a === '-c');
  if (i >= 0) return args[i + 1];
  const eq = args.find((a) => a.startsWith('--config='));
  if (eq) return eq.slice('--config='.length);
  return args.find((a) => !a.startsWith('-'));
}

function load(path: string): LoadedConfig | undefined {
  try {
    return loadConfigFile(path);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${path}: invalid configuration\n`);
      for (const i of err.issues) process.stderr.write(`  ${i.path}: ${i.message}\n`);
      return undefined;
    }
    throw err;
  }
}

async function checkConfig(args: string[]): Promise<number> {
  const path = configPath(args);
  if (!path) {
    process.stderr.write(`${USAGE}\n`);
    return 2;
  }
  const loaded = load(path);
  if (!loaded) return 1;
  for (const w of loaded.warnings) process.stderr.write(`warning: ${w}\n`);
  const { config } = loaded;
  process.stdout.write(
    `${path}: ok — ${config.xmpp.jid}/${config.xmpp.resource}, ${config.devices.length} device(s): ${config.devices.map((d) => d.id).join(', ')}; password from ${loaded.passwordSource}\n`,
  );
  return 0;
}

async function run(args: string[]): Promise<number> {
  const path = configPath(args);
  if (!path) {
    process.stderr.write(`${USAGE}\n`);
    return 2;
  }
  const loaded = load(path);
  if (!loaded) return EXIT.config;
  const sink = createSink(loaded.config.log.level);
  sink.secrets.add(loaded.password);
  sink.secrets.add(JSON.stringify(loaded.password).slice(1, -1)); // as it appears inside a JSON log line
  const log = createLogger(sink);
  for (const w of loaded.warnings) log.warn(w);
  log.info('starting', { version: PRODUCT.version, config: path, jid: loaded.config.xmpp.jid, passwordFrom: loaded.passwordSource });

  const agent = new Agent({ loaded, log });
  const systemd = systemdNotifier(process.env, log.child('systemd'));
  agent.session.on('online', (jid) => systemd.status(`online as ${jid}`));
  agent.session.on('offline', () => systemd.status('offline, reconnecting'));
  // One process, one heap: memory is given back here, not by the agent (tests run many agents in one process).
  // It starts once the agent is first online, so the login's own garbage is not taken for a burst;
  // an agent that cannot get online still gets it a minute after starting.
  const memory = compactor({ clock: systemClock, log: log.child('memory') });
  const startMemory = (): void => {
    if (!stopping) memory.start();
  };
  agent.session.once('online', startMemory);
  let stopping: Promise<number> | undefined;
  const shutdown = (why: string, code: number): Promise<number> => {
    stopping ??= (async () => {
      log.info('shutting down', { reason: why });
      systemd.stopping();
      systemd.stop();
      memory.stop();
      const hard = setTimeout(() => {
        log.error('shutdown took too long; exiting', { limitMs: STOP_TIMEOUT_MS });
        process.exit(code || 1);
      }, STOP_TIMEOUT_MS);
      hard.unref();
      await agent.stop();
      clearTimeout(hard);
      return code;
    })();
    return stopping;
  };

  process.on('uncaughtException', (err) => {
    log.error('uncaught exception; exiting so the supervisor restarts us', { error: err, stack: err.stack });
    process.exit(EXIT.software);
  });
  process.on('unhandledRejection', (err) => {
    log.error('unhandled rejection; exiting so the supervisor restarts us', { error: err });
    process.exit(EXIT.software);
  });

  return new Promise<number>((resolve) => {
    process.once('SIGTERM', () => void shutdown('SIGTERM', 0).then(resolve));
    process.once('SIGINT', () => void shutdown('SIGINT', 0).then(resolve));
    agent.on('fatal', (err) => void shutdown(`login failed: ${err.message}`, EXIT.login).then(resolve));
    agent.start().then(
      () => {
        systemd.ready('started, connecting');
        setTimeout(startMemory, MEMORY_FALLBACK_MS).unref();
      },
      (err: unknown) => {
        const cause = err instanceof Error ? err.cause : undefined;
        if (cause instanceof StoreError) {
          // Never start over an unreadable or busy store: that would lose what it holds.
          log.error(cause.message, { hint: cause.hint });
          process.stderr.write(`${cause.message}\n${cause.hint}\n`);
          return resolve(EXIT.store);
        }
        log.error('start failed', { error: err });
        resolve(EXIT.software);
      },
    );
  });
}

function options(args: string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (!a.startsWith('--')) continue;
    const eq = a.indexOf('=');
    if (eq > 0) out.set(a.slice(2, eq), a.slice(eq + 1));
    else out.set(a.slice(2), args[++i] ?? '');
  }
  return out;
}

// `image` and `claim` are loaded only when asked for: a running gateway never needs them (nor the QR
// and PNG encoders and the YAML Document API they bring), and a module once loaded stays in memory.
async function image(args: string[]): Promise<number> {
  const { defaultDeb, ImageError, writeImage } = await import('./deploy/image.js');
  const o = options(args);
  const img = o.get('image');
  const config = o.get('config');
  const root = new URL('..', import.meta.url).pathname;
  const deb = o.get('deb') ?? defaultDeb(root);
  const problems: string[] = [];
  if (!img) problems.push('--image <raspios.img> is required (an uncompressed Raspberry Pi OS image)');
  if (!config) problems.push('--config <agent.yaml> is required');
  if (!deb) problems.push('--deb <xmpp-iot-agent_*.deb> is required (build one with npm run package:deb)');
  let wifi: { ssid: string; password: string; country: string } | undefined;
  if (o.has('wifi')) {
    const pwFile = o.get('wifi-password-file');
    let password = process.env.WIFI_PASSWORD ?? '';
    if (pwFile) {
      try {
        password = readFileSync(pwFile, 'utf8').trim();
      } catch (err) {
        problems.push(`--wifi-password-file: cannot read ${pwFile} (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
      }
    }
    const country = o.get('wifi-country') ?? '';
    if (!password && !problems.some((p) => p.startsWith('--wifi-password-file'))) problems.push('--wifi needs --wifi-password-file <file> (or WIFI_PASSWORD in the environment)');
    if (!/^[A-Z]{2}$/.test(country)) problems.push('--wifi needs --wifi-country <two capital letters, e.g. DE> (the radio may not start without it)');
    wifi = { ssid: o.get('wifi')!, password, country };
  }
  const hostname = o.get('hostname');
  if (hostname !== undefined && !/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/i.test(hostname)) problems.push(`--hostname "${hostname}" is not a valid host name`);
  if (problems.length > 0) {
    for (const p of problems) process.stderr.write(`${p}\n`);
    return 2;
  }
  try {
    if (!load(config!)) return 1;
    writeImage({ image: img!, config: config!, deb: deb!, hostname, wifi, log: (l) => process.stdout.write(`${l}\n`) });
    process.stdout.write(`${img}: ready. Write it to the SD card; at first boot the gateway installs the agent and comes online.\n`);
    return 0;
  } catch (err) {
    if (err instanceof ImageError) {
      process.stderr.write(`${err.message}\n`);
      return 1;
    }
    throw err;
  }
}

async function main(argv: string[]): Promise<number> {
  const [cmd, ...args] = argv;
  switch (cmd) {
    case 'run':
      return run(args);
    case 'check-config':
      return checkConfig(args);
    case 'image':
      return image(args);
    case 'claim':
      return (await import('./deploy/claim.js')).claimCommand(args, { stdout: (s) => void process.stdout.write(s), stderr: (s) => void process.stderr.write(s) });
    case '--version':
    case 'version':
      process.stdout.write(`${PRODUCT.name} ${PRODUCT.version}\n`);
      return 0;
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(`${USAGE}\n`);
      return cmd === undefined ? 2 : 0;
    default:
      process.stderr.write(`unknown command "${cmd}"\n${USAGE}\n`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    // Whatever escaped (a bug, or a file that vanished under us) still exits with the documented code, not 1.
    process.stderr.write(`xmpp-iot-agent: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(EXIT.software);
  },
);
