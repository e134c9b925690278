// The LAN advertising component: keeps the mDNS advert's status and readings
// in step with the devices, re-announced on a device change but no more often
// than presence's min interval, whether or not the XMPP server is reachable.
// Its status comes from the same show as presence (dnd while an alarm is
// active, away for a stale reading or a faulty source).

import { hostname } from 'node:os';
import type { Clock, TimerHandle } from '../core/clock.js';
import type { Devices } from '../core/devices.js';
import { summary, type Show } from '../core/format.js';
import type { Logger } from '../runtime/log.js';
import type { Advert, AdvertOptions } from '../mdns/responder.js';

/** What puts the advert on the network: mdns/responder.ts's advertise, or a fake in tests. */
export type Advertiser = (options: AdvertOptions) => Advert;

/** XEP-0174 knows avail, away and dnd; a down source (xa) reads as away. */
export function advertStatus(show: Show): 'avail' | 'away' | 'dnd' {
  return show === undefined ? 'avail' : show === 'dnd' ? 'dnd' : 'away';
}

export function lanAdvertising(deps: {
  devices: Devices;
  clock: Clock;
  /** The gateway's show at a time: the function the presence reporter is handed. */
  show: (now: number) => Show;
  user: string;
  jid: string;
  caps: () => { node: string; ver: string };
  minIntervalMs: number;
  readings: boolean;
  log: Logger;
  /** Default: the real responder, loaded on start (multicast-dns costs ~1 MiB, so only when advertising). */
  advertise?: Advertiser;
}) {
  const { clock } = deps;
  let advert: Advert | undefined;
  let unsubscribe: (() => void) | undefined;
  let timer: TimerHandle | undefined;
  let last = 0;

  const publish = (): void => {
    timer = undefined;
    last = clock.mono();
    advert?.update({ status: advertStatus(deps.show(last)), msg: deps.readings ? summary(deps.devices) : '' });
  };

  return {
    name: 'LAN advertising (mDNS)',
    async start(): Promise<void> {
      const advertise = deps.advertise ?? (await import('../mdns/responder.js')).advertise;
      advert = advertise({ user: deps.user, host: hostname().split('.')[0] || deps.user, jid: deps.jid, caps: deps.caps(), log: deps.log });
      publish();
      unsubscribe = deps.devices.onChange(() => {
        timer ??= clock.setTimeout(publish, Math.max(0, last + deps.minIntervalMs - clock.mono()));
      });
    },
    async stop(): Promise<void> {
      unsubscribe?.();
      clock.clearTimeout(timer);
      timer = undefined;
      await advert?.stop();
    },
  };
}
