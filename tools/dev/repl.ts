// The demo's terminal chat: logs in as the owner (with the agent's own session
// code), subscribes to the gateway, shows its status line, and sends what you type.

import { createInterface } from 'node:readline';
import { appendFileSync, readFileSync } from 'node:fs';
import xml from '@xmpp/xml';
import type { Element } from 'ltx';
import { createLogger, createSink } from '../../src/runtime/log.js';
import { Session } from '../../src/xmpp/session.js';
import type { Prosody } from './prosody.js';

export interface ChatOptions {
  prosody: Prosody;
  jid: string;
  password: string;
  gateway: string;
  logFile: string;
  agentExited(): number | null;
}

export async function chat(o: ChatOptions): Promise<number> {
  const sink = createSink('info', (l) => appendFileSync(o.logFile, l + '\n'));
  const session = new Session({
    jid: o.jid,
    resource: 'terminal',
    password: o.password,
    service: o.prosody.service,
    ca: readFileSync(o.prosody.caFile, 'utf8'),
    allowPlaintext: false,
    reconnect: { initialDelayMs: 500, maxDelayMs: 5000 },
    log: createLogger(sink, 'owner'),
  });
  const gatewayBare = o.gateway.split('/')[0]!;
  const interactive = process.stdin.isTTY === true;
  let rl: ReturnType<typeof createInterface> | undefined;
  let seenOnline = false;
  const print = (text: string): void => {
    if (interactive) process.stdout.write('\r\x1b[K');
    process.stdout.write(text + '\n');
    if (interactive) rl?.prompt(true);
  };
  let replyWaiter: (() => void) | undefined;

  session.on('stanza', (s: Element) => {
    const from = s.attrs.from ?? '';
    if (from.split('/')[0] !== gatewayBare) return;
    if (s.name === 'message' && s.getChildText('body') !== null) {
      print(`gateway> ${s.getChildText('body')!.split('\n').join('\n         ')}`);
      // Claimed (npm run demo -- --claim): ask again for the readings, refused while we were a stranger.
      if (s.getChildText('body')!.startsWith('✓ You own this gateway')) void session.send(xml('presence', { type: 'subscribe', to: gatewayBare }));
      replyWaiter?.();
    } else if (s.name === 'presence' && s.attrs.type === undefined) {
      seenOnline = true;
      const show = s.getChildText('show');
      print(`  · status: ${s.getChildText('status') ?? ''}${show ? ` [${show}]` : ''}`);
    } else if (s.name === 'presence' && s.attrs.type === 'unavailable' && seenOnline) {
      seenOnline = false;
      print('  · gateway went offline');
    } else if (s.name === 'presence' && s.attrs.type === 'subscribe') {
      void session.send(xml('presence', { type: 'subscribed', to: gatewayBare }));
    }
  });

  const online = new Promise<void>((resolve, reject) => {
    session.once('online', () => resolve());
    session.once('fatal', reject);
  });
  session.start();
  const timeout = setTimeout(() => print('  (still connecting… is Prosody running? see the owner log)'), 5000);
  await online;
  clearTimeout(timeout);
  await session.request(xml('iq', { type: 'get' }, xml('query', { xmlns: 'jabber:iq:roster' })));
  await session.send(xml('presence'));
  await session.send(xml('presence', { type: 'subscribe', to: gatewayBare }));

  // Read input only now: piped lines wait in stdin until we are connected.
  rl = createInterface({ input: process.stdin, output: process.stdout, terminal: interactive });
  rl.on('SIGINT', () => rl?.close()); // Ctrl-C leaves cleanly, like Ctrl-D and quit
  print(`Connected as ${o.jid}. Chat with the gateway: try "status", "fan on", "set setpoint 22", "help". Type quit to leave.`);
  rl.setPrompt('you> ');
  if (interactive) rl.prompt();

  for await (const line of rl) {
    const text = line.trim();
    if (text === 'quit' || text === 'exit') break;
    if (o.agentExited() !== null) {
      print(`the agent has exited (code ${o.agentExited()}); see its log`);
      break;
    }
    if (text) {
      if (!interactive) process.stdout.write(`you> ${text}\n`);
      const replied = new Promise<void>((r) => {
        replyWaiter = r;
        setTimeout(r, 5000);
      });
      await session.send(xml('message', { type: 'chat', to: o.gateway }, xml('body', {}, text)));
      await replied; // one reply per line keeps piped input in order
      replyWaiter = undefined;
    }
    if (interactive) rl.prompt();
  }
  rl.close();
  await session.stop();
  return 0;
}
