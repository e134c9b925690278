// The archive search a restart relies on, against a scripted archive: pages
// (XEP-0059) newest first, results only from our own archive, and its bound.

import xml from '@xmpp/xml';
import type { Element } from 'ltx';
import { describe, expect, it } from 'vitest';
import { archiveSearch, NS_FORWARD, NS_MAM, NS_RSM } from '../src/xep/mam.js';

const SELF = 'gw@iot.test';

/** An archive of our messages with these ids; each query's results are fed back as a server would, before its fin. */
function archive(ids: string[], opts: { from?: string; innerFrom?: string; pageLimit?: number } = {}) {
  const queries: Element[] = [];
  const search = archiveSearch({
    self: SELF,
    pageSize: 3,
    maxPages: opts.pageLimit ?? 20,
    request: async (iq) => {
      queries.push(iq);
      const q = iq.getChild('query', NS_MAM)!;
      // Paged backwards: <before/> is the last page, <before>id</before> the one ending just before id.
      const before = q.getChild('set', NS_RSM)?.getChildText('before');
      const end = before ? ids.indexOf(before) : ids.length;
      const start = Math.max(0, end - 3);
      const page = ids.slice(start, end);
      for (const id of page) {
        search.handle(
          xml('message', { from: opts.from ?? SELF, to: `${SELF}/agent` },
            xml('result', { xmlns: NS_MAM, queryid: q.attrs.queryid, id: `a-${id}` },
              xml('forwarded', { xmlns: NS_FORWARD }, xml('message', { from: opts.innerFrom ?? `${SELF}/agent`, to: 'alice@iot.test', id }, xml('origin-id', { xmlns: 'urn:xmpp:sid:0', id }))))),
        );
      }
      const complete = start === 0;
      return xml('iq', { type: 'result' }, xml('fin', { xmlns: NS_MAM, ...(complete ? { complete: 'true' } : {}) }, xml('set', { xmlns: NS_RSM }, xml('first', {}, page[0] ?? ''), xml('last', {}, page.at(-1) ?? ''))));
    },
  });
  return { search, queries };
}

const ids = (n: number): string[] => Array.from({ length: n }, (_, i) => `xia-t-${i + 1}`);

describe('archive search', () => {
  it('pages through the archive and finds what it holds of the ids asked', async () => {
    const a = archive(ids(10));
    const r = await a.search.find(new Set(['xia-t-2', 'xia-t-9', 'xia-t-11']), 0);
    expect([...r.found].sort()).toEqual(['xia-t-2', 'xia-t-9']);
    expect(r.complete).toBe(true);
    expect(a.queries).toHaveLength(4);
  });

  it('starts from the newest and stops paging once every id asked for is found', async () => {
    const a = archive(ids(30));
    const r = await a.search.find(new Set(['xia-t-30', 'xia-t-26']), 0);
    expect(r.found.size).toBe(2);
    expect(a.queries).toHaveLength(2);
    expect(a.queries[0]!.getChild('query', NS_MAM)!.getChild('set', NS_RSM)!.getChild('before')!.text()).toBe('');
  });

  it('says it is incomplete when its page bound stops it', async () => {
    const a = archive(ids(30), { pageLimit: 2 });
    const r = await a.search.find(new Set(['xia-t-1']), 0);
    expect(r).toEqual({ found: new Set(), complete: false });
  });

  it('takes results only from our own archive, of messages we sent', async () => {
    expect((await archive(ids(3), { from: 'eve@iot.test' }).search.find(new Set(['xia-t-1']), 0)).found.size).toBe(0);
    expect((await archive(ids(3), { innerFrom: 'eve@iot.test/x' }).search.find(new Set(['xia-t-1']), 0)).found.size).toBe(0);
  });

  it('asks from the given time, in the query form', async () => {
    const a = archive(ids(1));
    await a.search.find(new Set(['xia-t-1']), Date.parse('2026-12-01T10:00:00Z'));
    const start = a.queries[0]!.getChild('query', NS_MAM)!.getChild('x', 'jabber:x:data')!.getChildren('field').find((f) => f.attrs.var === 'start');
    expect(start?.getChildText('value')).toBe('2026-12-01T10:00:00.000Z');
  });
});
