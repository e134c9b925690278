// A slow link between the agent and its server, as a mobile or satellite
// uplink is: a TCP proxy on loopback that holds everything the server sends
// for a while before passing it on (in order). What the agent sends goes
// through at once, so the server has a message well before the agent hears
// that it does: the window in which a crash used to mean a copy.

import net from 'node:net';

export interface SlowLink {
  /** Point the agent here: xmpp://127.0.0.1:PORT */
  port: number;
  close(): Promise<void>;
}

export async function slowLink(target: { host: string; port: number }, downstreamDelayMs: number): Promise<SlowLink> {
  const sockets = new Set<net.Socket>();
  const proxy = net.createServer((agent) => {
    const upstream = net.connect(target.port, target.host);
    sockets.add(agent).add(upstream);
    agent.on('data', (d) => upstream.write(d));
    upstream.on('data', (d) => {
      setTimeout(() => {
        if (!agent.destroyed) agent.write(d);
      }, downstreamDelayMs);
    });
    const end = (): void => {
      agent.destroy();
      upstream.destroy();
      sockets.delete(agent);
      sockets.delete(upstream);
    };
    agent.on('close', end).on('error', end);
    upstream.on('close', () => setTimeout(end, downstreamDelayMs)).on('error', end);
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  return {
    port: (proxy.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        proxy.close(() => r());
      }),
  };
}
