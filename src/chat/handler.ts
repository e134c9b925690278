// Chat messages in, replies out: the router's message handler for people.

import type { Element } from 'ltx';
import type { Devices } from '../core/devices.js';
import { clip } from '../util/text.js';
import type { Clock } from '../core/clock.js';
import { bareOf, canRead, type Role } from '../core/authority.js';
import type { Logger } from '../runtime/log.js';
import { chatMessage } from '../xmpp/stanza.js';
import { parse } from './grammar.js';
import { execute } from './commands.js';
import { heldFor, MAX_COMMAND_DELAY_MS } from '../xmpp/delay.js';
import type { HistoryReader } from '../core/history.js';
import type { Charts } from '../services/charts.js';

/** A stranger is refused once per this interval, so two bots cannot ping-pong refusals. */
export const REFUSAL_INTERVAL_MS = 10 * 60_000;

export interface ChatDeps {
  devices: Devices;
  clock: Clock;
  send: (m: Element) => Promise<void>;
  log: Logger;
  /** Stored readings for "history <device>"; without it the command says none are kept. */
  history?: HistoryReader;
  /** The gateway's own troubles, shown under `status` (see ChatContext.notices). */
  notices?: () => readonly string[];
  /** The store's retention; longer windows are cut to it (and the reply says so). */
  historyRetentionMs?: number;
  /** History answered with a chart image as well (services/charts.ts); without it, text only. */
  charts?: Pick<Charts, 'answer'>;
}

export function chatHandler(deps: ChatDeps) {
  const refused = new Map<string, number>();
  return async (stanza: Element, role: Role): Promise<void> => {
    const type = stanza.attrs.type ?? 'normal';
    if (type !== 'chat' && type !== 'normal') return;
    const body = stanza.getChildText('body');
    const from = stanza.attrs.from;
    if (body === null || !from) return;
    if (role === 'server') return; // server notices (MOTD, welcome) are not commands
    const now = deps.clock.now();
    if (role === 'stranger') {
      const bare = bareOf(from);
      const last = refused.get(bare);
      const mono = deps.clock.mono();
      if (last !== undefined && mono - last < REFUSAL_INTERVAL_MS) return;
      if (refused.size > 1000) refused.clear();
      refused.set(bare, mono);
      deps.log.info('refused chat from a stranger', { from: bare });
    }
    const cmd = parse(body, deps.devices.ids());
    const held = heldFor(stanza, now);
    if (cmd.kind === 'set' && held > MAX_COMMAND_DELAY_MS) {
      deps.log.warn('stale command not applied', { from: bareOf(from), heldMs: held });
      const minutes = Math.round(held / 60_000);
      await deps.send(chatMessage(from, `✗ "${clip(body)}" waited ${minutes} min on the server while the gateway was offline; not applied. Send it again if you still want it.`));
      return;
    }
    const reply = await execute(cmd, { devices: deps.devices, role, now, history: deps.history, historyRetentionMs: deps.historyRetentionMs, notices: deps.notices });
    if (reply === undefined) return;
    deps.log.debug('chat', () => ({ from: bareOf(from), command: body.slice(0, 80) }));
    const thread = stanza.getChildText('thread') ?? undefined;
    if (cmd.kind === 'history' && deps.charts && canRead(role)) {
      return deps.charts.answer({ to: from, text: reply, device: cmd.id, windowMs: cmd.windowMs, explicit: cmd.chart === true, thread });
    }
    await deps.send(chatMessage(from, reply, thread));
  };
}
