// What our own server may ask of the gateway: stanzas with no 'from', from the
// bare domain or from the account's bare JID. A client connection cannot send
// those (the server stamps every client's 'from'), so they are fed to a real,
// unstarted agent's router; replies are caught at the session.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import xml from '@xmpp/xml';
import type { Element } from 'ltx';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { Agent } from '../src/agent.js';
import { loadConfigText } from '../src/config/load.js';
import { silentLogger } from '../src/runtime/log.js';

const dir = mkdtempSync(join(tmpdir(), 'xia-server-role-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function agent() {
  const loaded = loadConfigText(
    `xmpp: { jid: gw@iot.test, password: x, service: "xmpp://127.0.0.1:9" }
owners: [alice@iot.test]
mdns: { enabled: false }
state_dir: ${dir}
devices:
  - { id: fan, driver: simulated, type: boolean, writable: true }
`,
    { baseDir: dir },
  );
  const a = new Agent({ loaded, log: silentLogger });
  const sent: Element[] = [];
  vi.spyOn(a.session, 'send').mockImplementation(async (s: Element) => void sent.push(s));
  const ask = async (from: string | undefined, child: Element, type: 'get' | 'set' = 'get'): Promise<string | undefined> => {
    const id = `q${sent.length}`;
    await a.router.handle(xml('iq', { type, id, ...(from === undefined ? {} : { from }) }, child));
    const reply = sent.find((s) => s.attrs.id === id);
    return reply?.attrs.type === 'error' ? reply.getChild('error')!.getChildElements()[0]!.name : reply?.attrs.type;
  };
  return { ask };
}

const ping = () => xml('ping', { xmlns: 'urn:xmpp:ping' });
const info = (node?: string) => xml('query', { xmlns: 'http://jabber.org/protocol/disco#info', ...(node ? { node } : {}) });
const items = () => xml('query', { xmlns: 'http://jabber.org/protocol/disco#items' });
const readout = () => xml('req', { xmlns: 'urn:xmpp:iot:sensordata', seqnr: '1', momentary: 'true' });
const control = () => xml('set', { xmlns: 'urn:xmpp:iot:control' }, xml('boolean', { name: 'fan', value: 'true' }));

describe('our server', () => {
  for (const from of [undefined, 'iot.test', 'gw@iot.test']) {
    it(`from ${from ?? 'no from'}: may ping and read the gateway's identity, may not read devices or actuate`, async () => {
      const { ask } = agent();
      expect(await ask(from, ping())).toBe('result');
      expect(await ask(from, info())).toBe('result');
      expect(await ask(from, info('fan'))).toBe('forbidden');
      expect(await ask(from, items())).toBe('forbidden');
      expect(await ask(from, readout())).toBe('forbidden');
      expect(await ask(from, control(), 'set')).toBe('forbidden');
      expect(await ask(from, xml('query', { xmlns: 'jabber:iq:version' }))).toBe('forbidden');
    });
  }

  it('an owner may do all of it (the same agent, for contrast)', async () => {
    const { ask } = agent();
    expect(await ask('alice@iot.test/phone', items())).toBe('result');
    expect(await ask('alice@iot.test/phone', info('fan'))).toBe('result');
  });
});
