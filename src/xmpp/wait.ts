import type { Client } from '@xmpp/client-core';
import type { Element } from 'ltx';

/** The next top-level element in `ns` (listener set before the caller sends). */
export function nextElement(entity: Client, ns: string, timeoutMs: number): Promise<Element> {
  const answer = new Promise<Element>((resolve, reject) => {
    const cleanup = (): void => {
      clearTimeout(timer);
      entity.removeListener('element', onElement);
      entity.removeListener('disconnect', onGone);
    };
    const onElement = (el: Element): void => {
      if (el.getNS() !== ns) return;
      cleanup();
      resolve(el);
    };
    const onGone = (): void => {
      cleanup();
      reject(new Error('connection closed'));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`no answer from the server within ${timeoutMs} ms`));
    }, timeoutMs);
    entity.on('element', onElement);
    entity.on('disconnect', onGone);
  });
  // The caller may never await it (its send failed first): a rejection must not go unhandled.
  answer.catch(() => {});
  return answer;
}
