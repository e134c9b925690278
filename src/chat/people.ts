// Chat commands about people: "claim <code>" (anyone, while the gateway has
// no owner), and for owners "owners", "invite <jid> [viewer|owner]" and
// "revoke <jid>". Runs before the device chat; returns false for anything
// else, which then goes on to it (strangers get its one-line refusal).

import type { Element } from 'ltx';
import type { Role } from '../core/authority.js';
import { canActuate } from '../core/authority.js';
import type { Logger } from '../runtime/log.js';
import type { People } from '../services/people.js';
import { chatMessage } from '../xmpp/stanza.js';

export { PEOPLE_WORDS } from '../core/claim.js';

export const INVITE_USAGE = 'Usage: invite <address> [viewer|owner], e.g. invite bob@example.org viewer (viewer when not said)';
export const REVOKE_USAGE = 'Usage: revoke <address>, e.g. revoke bob@example.org';

export type PeopleCommand =
  | { kind: 'claim'; code: string }
  | { kind: 'list' }
  | { kind: 'invite'; jid: string; role: 'owner' | 'viewer' }
  | { kind: 'revoke'; jid: string }
  | { kind: 'usage'; text: string };

/** A people command, or undefined for anything else. Pure. */
export function parsePeople(text: string): PeopleCommand | undefined {
  const words = text.trim().split(/\s+/).filter(Boolean);
  const head = words[0]?.toLowerCase();
  const rest = words.slice(1);
  switch (head) {
    case 'claim':
      return { kind: 'claim', code: rest.join(' ') };
    case 'owners':
    case 'people':
      return rest.length === 0 ? { kind: 'list' } : undefined;
    case 'invite': {
      const role = rest[1]?.toLowerCase() ?? 'viewer';
      if (rest.length < 1 || rest.length > 2 || (role !== 'viewer' && role !== 'owner')) return { kind: 'usage', text: INVITE_USAGE };
      return { kind: 'invite', jid: rest[0]!, role };
    }
    case 'revoke':
      return rest.length === 1 ? { kind: 'revoke', jid: rest[0]! } : { kind: 'usage', text: REVOKE_USAGE };
    default:
      return undefined;
  }
}

export function peopleChat(deps: { people: People; send: (m: Element) => Promise<void>; log: Logger }) {
  /** True when the message was a people command (answered or deliberately not). */
  return async (stanza: Element, role: Role): Promise<boolean> => {
    const type = stanza.attrs.type ?? 'normal';
    if (type !== 'chat' && type !== 'normal') return false;
    const body = stanza.getChildText('body');
    const from = stanza.attrs.from;
    if (body === null || !from || role === 'server') return false;
    const cmd = parsePeople(body);
    if (!cmd) return false;
    let reply: string | undefined;
    if (cmd.kind === 'claim') {
      if (!deps.people.claimEnabled) return false;
      reply = deps.people.claim(from, cmd.code)?.text;
    } else {
      // Only owners manage people; to anyone else these are ordinary words (strangers get the usual refusal).
      if (role === 'stranger') return false;
      if (!canActuate(role)) reply = 'Only owners can manage who may use this gateway.';
      else if (cmd.kind === 'usage') reply = cmd.text;
      else if (cmd.kind === 'list') reply = deps.people.listText();
      else if (cmd.kind === 'invite') reply = deps.people.invite(from, cmd.jid, cmd.role).text;
      else reply = deps.people.revoke(from, cmd.jid).text;
    }
    if (reply !== undefined) await deps.send(chatMessage(from, reply, stanza.getChildText('thread') ?? undefined));
    return true;
  };
}
