// XEP-0066 Out of Band Data in a message: how Conversations, Gajim and Dino
// know to show a shared file inline. They do so only when the body is exactly
// the URL, so the text that goes with it is a message of its own.

import type { Element } from 'ltx';
import xml from '@xmpp/xml';

export const NS_OOB = 'jabber:x:oob';

export function oobMessage(to: string, url: string, thread?: string): Element {
  return xml(
    'message',
    { type: 'chat', to },
    xml('body', {}, url),
    xml('x', { xmlns: NS_OOB }, xml('url', {}, url)),
    thread ? xml('thread', {}, thread) : undefined,
  );
}
