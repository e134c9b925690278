// Router rules that a server never lets through (Prosody answers id-less IQs
// itself), so they are tested on the router directly.

import { describe, expect, it } from 'vitest';
import xml from '@xmpp/xml';
import type { Element } from 'ltx';
import { createAuthority } from '../src/core/authority.js';
import { silentLogger } from '../src/runtime/log.js';
import { Router } from '../src/xmpp/router.js';

function router() {
  const sent: Element[] = [];
  const r = new Router({ send: async (s) => void sent.push(s), authority: createAuthority({ self: 'gw@x', owners: ['a@x'], viewers: [] }), log: silentLogger });
  r.get('urn:xmpp:ping', 'ping', () => undefined);
  return { r, sent };
}

describe('router', () => {
  it('drops an IQ without an id: no reply could be matched, and an id-less error is invalid too', async () => {
    const { r, sent } = router();
    await r.handle(xml('iq', { type: 'get', from: 'a@x/p' }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
    expect(sent).toEqual([]);
    await r.handle(xml('iq', { type: 'get', from: 'a@x/p', id: '1' }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
    expect(sent.map((s) => s.attrs.type)).toEqual(['result']);
  });

  it('keeps going when a message handler throws', async () => {
    const { r, sent } = router();
    r.onMessage(() => {
      throw new Error('boom');
    });
    await r.handle(xml('message', { from: 'a@x/p' }, xml('body', {}, 'x')));
    expect(r.stats.handlerFailures).toBe(1);
    await r.handle(xml('iq', { type: 'get', from: 'a@x/p', id: '2' }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
    expect(sent).toHaveLength(1);
  });
});
