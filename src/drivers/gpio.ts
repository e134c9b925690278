// Digital GPIO through the Linux GPIO character device. Outputs (relays) are
// writable boolean devices; inputs (contacts, buttons) are boolean sensors
// with debounce. The backend is an interface: the real one (gpiod.ts) drives
// libgpiod's command-line tools; tests use a fake behind the same interface,
// and the real one against fake tools.

import type { DeviceConfig } from '../config/schema.js';
import type { Driver, DriverContext } from './driver.js';
import { gpiodCli } from './gpiod.js';

export interface GpioBackend {
  /** Drive an output and hold it until the next set or close; resolves once the line holds the value. */
  set(chip: string, line: number, high: boolean): Promise<void>;
  /** Current level of an input. */
  get(chip: string, line: number): Promise<boolean>;
  /** Level changes of an input; returns a function that stops watching. */
  watch(chip: string, line: number, onEdge: (high: boolean) => void, onError: (err: Error) => void): () => void;
  /** Release every line: stops all holders and watchers and waits until they have exited. */
  close(): Promise<void>;
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
