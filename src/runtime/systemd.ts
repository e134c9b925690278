// systemd integration when run as a Type=notify service: READY=1 once started,
// STATUS= with the connection state, WATCHDOG=1 at half the watchdog interval
// while the event loop runs, STOPPING=1 on shutdown. Node cannot send unix
// datagrams itself, so this uses systemd-notify (the unit sets NotifyAccess=all).
// Without NOTIFY_SOCKET (not under systemd) everything here does nothing.

import { spawn } from 'node:child_process';
import type { Logger } from './log.js';

export interface Notifier {
  ready(status: string): void;
  status(text: string): void;
  stopping(): void;
  stop(): void;
}

export function systemdNotifier(env: NodeJS.ProcessEnv, log: Logger): Notifier {
  const socket = env.NOTIFY_SOCKET;
  if (!socket) return { ready: () => {}, status: () => {}, stopping: () => {}, stop: () => {} };
  const send = (...args: string[]): void => {
    const p = spawn('systemd-notify', [`--pid=${process.pid}`, ...args], { stdio: 'ignore', env });
    p.on('error', (err) => log.warn('systemd-notify failed', { error: err }));
  };
  let watchdog: NodeJS.Timeout | undefined;
  const usec = Number(env.WATCHDOG_USEC);
  const watchdogPid = env.WATCHDOG_PID ? Number(env.WATCHDOG_PID) : process.pid;
  return {
    ready(status) {
      send('--ready', `--status=${status}`);
      if (usec > 0 && watchdogPid === process.pid) {
        watchdog = setInterval(() => send('WATCHDOG=1'), Math.max(100, usec / 2000));
        watchdog.unref();
        log.info('systemd watchdog on', { intervalMs: usec / 1000 });
      }
    },
    status: (text) => send(`--status=${text}`),
    stopping: () => send('STOPPING=1'),
    stop: () => clearInterval(watchdog),
  };
}
