// XEP-0199 pings from the owner through Prosody to a contender and back: one
// in flight (latency) and 50 in flight (throughput, tail latency). Run against
// each server setting, since Nagle on the server decides whether a small
// write waits for the peer's delayed ACK.

import xml from '@xmpp/xml';
import { load, start, stop, type Load } from './lib.js';
import type { Command, Server } from './setup.js';

export interface PingFigures {
  sequential: Load;
  inFlight50: Load;
}

export async function pings(s: Server, jid: string, cmd: Command, n: { sequential: number; window: number }): Promise<PingFigures> {
  const seen = s.o.seen((st) => st.name === 'presence' && st.attrs.from?.split('/')[0] === jid && !st.attrs.type);
  const child = start(cmd[0], cmd[1], cmd[2]);
  try {
    const full = (await seen).attrs.from!;
    const ping = () => s.o.session.request(xml('iq', { type: 'get', to: full }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
    await load(50, 5, ping); // warm-up: connections, JIT
    const sequential = await load(n.sequential, 1, ping);
    const inFlight50 = await load(n.window, 50, ping);
    return { sequential, inFlight50 };
  } finally {
    await stop(child);
  }
}
