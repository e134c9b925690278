// Baseline: the smallest gateway agent one would write with the stock
// @xmpp/client: log in, send presence with a status, answer ping (built in)
// and software version. `--native` swaps in native-PBKDF2 SCRAM. Without
// XEP-0198 unless `--sm`: the floor is a client that counts nothing (the stock
// stream management would also enable itself whenever the server offers it).
//   node dist-tools/bench/baseline-xmpp.js JID PASSWORD SERVICE [--native] [--sm]

import { client, xml } from '@xmpp/client';
import type { Element } from 'ltx';
import { nativeScramMechanism } from './native-scram.js';

const [jid, password, service] = process.argv.slice(2);
const [username, domain] = jid!.split('@') as [string, string];
const xmpp = client({ service: service!, domain, username, password: password!, resource: 'baseline' });
xmpp.reconnect.stop();
if (!process.argv.includes('--sm')) {
  // Before the stream-features middleware sees it: the server's <sm/> offer is taken out.
  xmpp.prependListener('element', (el: Element) => {
    if (el.is('features', 'http://etherx.jabber.org/streams')) el.children = el.children.filter((c) => typeof c === 'string' || c.getName() !== 'sm');
  });
}
if (process.argv.includes('--native')) {
  const factory = (xmpp as unknown as { saslFactory: { _mechs: unknown[]; use(m: unknown): void } }).saslFactory;
  factory._mechs.length = 0;
  factory.use(nativeScramMechanism());
}
(xmpp as unknown as { iqCallee: { get(ns: string, name: string, h: () => unknown): void } }).iqCallee.get('jabber:iq:version', 'query', () =>
  xml('query', { xmlns: 'jabber:iq:version' }, xml('name', {}, 'baseline'), xml('version', {}, '1')),
);
xmpp.on('error', (err: Error) => process.stderr.write(`${err.message}\n`));
xmpp.on('online', async () => {
  await xmpp.send(xml('presence', {}, xml('status', {}, 'temperature 21.4 °C · fan off')));
  process.stdout.write('online\n');
});
process.on('SIGTERM', () => void xmpp.stop().finally(() => process.exit(0)));
await xmpp.start();
