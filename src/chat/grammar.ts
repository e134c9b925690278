// Chat command grammar: what a person types, as data. Pure.

import { closest } from '../core/words.js';

export type Command =
  | { kind: 'help' }
  | { kind: 'status' }
  | { kind: 'get'; id: string }
  | { kind: 'set'; id: string; value: string }
  | { kind: 'history'; id?: string }
  | { kind: 'usage'; text: string }
  | { kind: 'unknown'; word: string; suggestion?: string }
  | { kind: 'empty' };

export const WORDS = ['help', 'status', 'get', 'set', 'history'];

export function parse(text: string, deviceIds: readonly string[]): Command {
  const words = text.trim().split(/\s+/).filter(Boolean);
  if (words.length === 0) return { kind: 'empty' };
  const head = words[0]!.toLowerCase().replace(/[?!.]+$/, '') || words[0]!.toLowerCase();
  const rest = words.slice(1);
  const device = (w: string | undefined): string | undefined => (w === undefined ? undefined : deviceIds.find((id) => id === w.toLowerCase()));

  switch (head) {
    case 'help':
    case '?':
    case 'commands':
      return { kind: 'help' };
    case 'status':
    case 'all':
      return { kind: 'status' };
    case 'get':
    case 'read':
      if (rest.length !== 1) return { kind: 'usage', text: 'Usage: get <device>' };
      return { kind: 'get', id: rest[0]!.toLowerCase() };
    case 'set':
      if (rest.length < 2) return { kind: 'usage', text: 'Usage: set <device> <value>' };
      return { kind: 'set', id: rest[0]!.toLowerCase(), value: rest.slice(1).join(' ') };
    case 'history':
      return { kind: 'history', id: rest[0]?.toLowerCase() };
  }

  const id = device(head);
  if (id) {
    if (rest.length === 0) return { kind: 'get', id };
    return { kind: 'set', id, value: rest.join(' ') };
  }
  return { kind: 'unknown', word: words[0]!, suggestion: closest(head, [...WORDS, ...deviceIds]) };
}
