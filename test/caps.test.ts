import { describe, expect, it } from 'vitest';
import { capsVer } from '../src/xep/caps.js';

describe('XEP-0115 caps', () => {
  it('computes the XEP\'s own simple example (§5.2)', () => {
    const ver = capsVer(
      [{ category: 'client', type: 'pc', name: 'Exodus 0.9.1' }],
      ['http://jabber.org/protocol/disco#info', 'http://jabber.org/protocol/disco#items', 'http://jabber.org/protocol/muc', 'http://jabber.org/protocol/caps'],
    );
    expect(ver).toBe('QgayPKawpkPSDYmwT/WM94uAlu0=');
  });

  it('does not depend on the order features are given in', () => {
    const a = capsVer([{ category: 'client', type: 'bot', name: 'x' }], ['b', 'a', 'c']);
    const b = capsVer([{ category: 'client', type: 'bot', name: 'x' }], ['c', 'a', 'b']);
    expect(a).toBe(b);
  });
});
