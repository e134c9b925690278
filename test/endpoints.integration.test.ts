// The endpoint list against the suite's real Prosody: the preferred endpoint
// refuses connections, so the agent logs in on the next one, says so in its
// log and in "Agent status", and goes back to the preferred one first when
// that link is lost.

import net from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { server, startAgent, type RunningAgent } from './helpers/peers.js';
import { until } from './helpers/until.js';

/** A loopback port nobody listens on (bound, then closed). */
async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const { port } = s.address() as net.AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}

describe('a list of endpoints', () => {
  let a: RunningAgent | undefined;
  afterAll(async () => a?.stop());

  it('skips an endpoint that refuses, logs in on the next, and shows which one it is on', async () => {
    const dead = `xmpp://127.0.0.1:${await closedPort()}`;
    const live = `xmpp://127.0.0.1:${server().port}`;
    a = await startAgent({ owners: ['alice@iot.test'], service: `[${dead}, ${live}]` });
    expect(a.agent.session.stats.endpoint).toBe(live);
    const online = a.logs.map((l) => JSON.parse(l) as { msg: string; endpoint?: string; preference?: string }).find((r) => r.msg === 'online');
    expect(online).toMatchObject({ endpoint: live, preference: '2 of 2' });
    expect(a.logs.some((l) => l.includes('"msg":"connection attempt failed"') && l.includes(dead))).toBe(true);
    expect(a.agent.statusFields().find((f) => f.var === 'server')?.value).toBe(`${live} (fallback 1 of 2)`);

    // Lost while on a fallback: the next attempt is the preferred endpoint again (refused), then back here.
    const attempts = a.logs.length;
    a.agent.session.dropConnection();
    await until(() => a!.logs.slice(attempts).some((l) => l.includes('"msg":"online')), 'online again', { timeoutMs: 15_000 });
    const after = a.logs.slice(attempts);
    const refused = after.findIndex((l) => l.includes('"msg":"connection attempt failed"') && l.includes(dead));
    const back = after.findIndex((l) => l.includes('"msg":"online') && l.includes(`"endpoint":"${live}"`));
    expect(refused).toBeGreaterThan(-1);
    expect(refused).toBeLessThan(back);
  });
});
