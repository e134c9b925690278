// The LAN advertising component: keeps the mDNS advert's status and readings
// in step with the devices, at the same pace as presence, whether or not the
// XMPP server is reachable.

import { hostname } from 'node:os';
import type { Clock } from '../core/clock.js';
import type { Devices } from '../core/devices.js';
import { healthShow, summary } from '../core/format.js';
import type { Logger } from '../runtime/log.js';
import type { Advert } from '../mdns/responder.js';

export function lanAdvertising(deps: {
  devices: Devices;
  clock: Clock;
  user: string;
  jid: string;
  caps: () => { node: string; ver: string };
  minIntervalMs: number;
  readings: boolean;
  log: Logger;
}) {
  let advert: Advert | undefined;
  let unsubscribe: (() => void) | undefined;
  let timer: NodeJS.Timeout | undefined;
  let last = 0;

  const publish = (): void => {
    timer = undefined;
    last = deps.clock.now();
    const show = healthShow(deps.devices, last);
    advert?.update({ status: show === undefined ? 'avail' : show === 'dnd' ? 'dnd' : 'away', msg: deps.readings ? summary(deps.devices) : '' });
  };

  return {
    name: 'LAN advertising (mDNS)',
    async start(): Promise<void> {
      const { advertise } = await import('../mdns/responder.js'); // multicast-dns only when advertising
      advert = advertise({ user: deps.user, host: hostname().split('.')[0] || deps.user, jid: deps.jid, caps: deps.caps(), log: deps.log });
      publish();
      unsubscribe = deps.devices.onChange(() => {
        timer ??= setTimeout(publish, Math.max(0, last + deps.minIntervalMs - deps.clock.now()));
      });
    },
    async stop(): Promise<void> {
      unsubscribe?.();
      clearTimeout(timer);
      await advert?.stop();
    },
  };
}
