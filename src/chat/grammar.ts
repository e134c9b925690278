// Chat command grammar: what a person types, as data. Pure.

import { closest } from '../core/words.js';
import { DEFAULT_WINDOW_MS, parseWindow } from '../core/history.js';

export type Command =
  | { kind: 'help' }
  | { kind: 'status' }
  | { kind: 'get'; id: string }
  | { kind: 'set'; id: string; value: string }
  /** windowMs: how far back from now; 24 h unless given ("30m", "6h", "7d", "2w"). chart: typed as "chart". */
  | { kind: 'history'; id: string; windowMs: number; chart?: boolean }
  | { kind: 'usage'; text: string }
  | { kind: 'unknown'; word: string; suggestion?: string }
  | { kind: 'empty' };

export const HISTORY_USAGE = 'Usage: history <device> [window], window e.g. 30m, 6h, 24h, 7d, 2w (default 24h)';

export const WORDS = ['help', 'status', 'get', 'set', 'history', 'chart'];

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
    case 'chart': {
      if (rest.length === 0) return { kind: 'usage', text: HISTORY_USAGE };
      // "6h" or "6 h": everything after the device is the window.
      const windowMs = rest.length === 1 ? DEFAULT_WINDOW_MS : parseWindow(rest.slice(1).join(''));
      if (windowMs === undefined) return { kind: 'usage', text: HISTORY_USAGE };
      return { kind: 'history', id: rest[0]!.toLowerCase(), windowMs, ...(head === 'chart' ? { chart: true } : {}) };
    }
  }

  const id = device(head);
  if (id) {
    if (rest.length === 0) return { kind: 'get', id };
    return { kind: 'set', id, value: rest.join(' ') };
  }
  return { kind: 'unknown', word: words[0]!, suggestion: closest(head, [...WORDS, ...deviceIds]) };
}
