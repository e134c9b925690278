// Digital GPIO through the Linux GPIO character device. Outputs (relays) are
// writable boolean devices; inputs (contacts, buttons) are boolean sensors
// with debounce. The backend is an interface: the real one drives libgpiod's
// command-line tools (Debian package gpiod, v1 or v2 syntax), which speak the
// kernel's character-device uAPI and need no native addon in the agent; tests
// use a fake behind the same interface.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import type { DeviceConfig } from '../config/schema.js';
import type { Driver, DriverContext } from './driver.js';

export interface GpioBackend {
  /** Drive an output and hold it until the next set or close. */
  set(chip: string, line: number, high: boolean): Promise<void>;
  /** Current level of an input. */
  get(chip: string, line: number): Promise<boolean>;
  /** Level changes of an input; returns a function that stops watching. */
  watch(chip: string, line: number, onEdge: (high: boolean) => void, onError: (err: Error) => void): () => void;
  close(): Promise<void>;
}

/** libgpiod's tools: gpioset holds a line while it runs; gpiomon streams edges. */
export function gpiodCli(): GpioBackend {
  const held = new Map<string, ChildProcess>();
  const v2 = /v2\./.test(spawnSync('gpioset', ['--version'], { encoding: 'utf8' }).stdout ?? '');
  const missing = (err: NodeJS.ErrnoException): Error =>
    err.code === 'ENOENT' ? new Error('libgpiod tools are missing: apt-get install gpiod') : err;
  return {
    async set(chip, line, high) {
      const key = `${chip}:${line}`;
      held.get(key)?.kill('SIGTERM');
      const args = v2 ? ['-c', chip, `${line}=${high ? 1 : 0}`] : ['--mode=signal', chip, `${line}=${high ? 1 : 0}`];
      const p = spawn('gpioset', args, { stdio: ['ignore', 'ignore', 'pipe'] });
      held.set(key, p);
      await new Promise<void>((resolve, reject) => {
        let err = '';
        p.stderr!.on('data', (d: Buffer) => (err += d.toString()));
        p.once('error', (e) => reject(missing(e)));
        p.once('exit', (code) => (code ? reject(new Error(`gpioset: ${err.trim() || `exit ${code}`}`)) : resolve()));
        setTimeout(resolve, 150); // still running after a moment: it holds the line
      });
    },
    async get(chip, line) {
      const r = spawnSync('gpioget', v2 ? ['-c', chip, '--numeric', String(line)] : [chip, String(line)], { encoding: 'utf8' });
      if (r.error) throw missing(r.error as NodeJS.ErrnoException);
      if (r.status !== 0) throw new Error(`gpioget: ${r.stderr.trim()}`);
      return r.stdout.trim().endsWith('1');
    },
    watch(chip, line, onEdge, onError) {
      const args = v2 ? ['-c', chip, '--format=%e', String(line)] : ['--format=%e', chip, String(line)];
      const p = spawn('gpiomon', args, { stdio: ['ignore', 'pipe', 'pipe'] });
      p.on('error', (e) => onError(missing(e)));
      p.stdout!.on('data', (d: Buffer) => {
        for (const ev of d.toString().trim().split('\n')) onEdge(ev.trim() === '1' || ev.includes('RISING') || ev.includes('rising'));
      });
      p.on('exit', (code) => code && onError(new Error(`gpiomon exited (${code})`)));
      return () => p.kill('SIGTERM');
    },
    async close() {
      for (const p of held.values()) p.kill('SIGTERM');
      held.clear();
    },
  };
}

export function gpio(device: DeviceConfig, backend: GpioBackend = gpiodCli()): Driver {
  const o = device.options;
  if (o.driver !== 'gpio') throw new Error('not a gpio device');
  let ctx: DriverContext | undefined;
  let stopWatch: (() => void) | undefined;
  let debounce: NodeJS.Timeout | undefined;
  let level: boolean | undefined;
  const logical = (high: boolean): boolean => (o.activeLow ? !high : high);

  return {
    kind: 'gpio',
    async start(c) {
      ctx = c;
      try {
        if (o.direction === 'out') {
          const initial = device.initial === true;
          await backend.set(o.chip, o.line, o.activeLow ? !initial : initial);
          ctx.report(device.id, initial);
          return;
        }
        level = logical(await backend.get(o.chip, o.line));
        ctx.report(device.id, level);
        stopWatch = backend.watch(
          o.chip,
          o.line,
          (high) => {
            // Debounce: report a level only once it has held for `debounce`.
            clearTimeout(debounce);
            debounce = setTimeout(() => {
              const v = logical(high);
              if (v !== level) {
                level = v;
                ctx?.report(device.id, v);
              }
            }, o.debounceMs);
          },
          (err) => ctx?.fault(device.id, err.message),
        );
      } catch (err) {
        ctx.fault(device.id, (err as Error).message);
      }
    },
    async stop() {
      clearTimeout(debounce);
      stopWatch?.();
      await backend.close();
      ctx = undefined;
    },
    async write(_id, value) {
      if (o.direction !== 'out') throw new Error('an input cannot be set');
      await backend.set(o.chip, o.line, o.activeLow ? !value : Boolean(value));
      return Boolean(value);
    },
  };
}
