// What the agent sends to a bridge: every frame gets the next sequence number
// (one counter for all of them, as PROTOCOL.md has it), and a SET waits for the
// ACK or NAK that carries its number, or gives up after the ack timeout.

import type { Clock, TimerHandle } from '../../core/clock.js';
import { encode, type Frame } from './protocol.js';

interface Pending {
  resolve: () => void;
  reject: (e: Error) => void;
  timer: TimerHandle;
}

export interface RequestsDeps {
  /** Puts a line on the wire (dropped if the port is not open: the sequence number is used all the same). */
  write(line: string): void;
  clock: Clock;
  /** How long a SET waits for its ACK or NAK. */
  timeoutMs: number;
}

export interface Requests {
  /** Sends a frame that expects no answer (WHO, HB); returns its sequence number. */
  send(type: string, ...fields: string[]): number;
  /** Sends SET and settles when the bridge answers: resolves on ACK, rejects on NAK (with its reason) or timeout. */
  set(id: string, raw: string): Promise<void>;
  /** An ACK or NAK from the bridge. */
  answer(f: Extract<Frame, { type: 'ACK' | 'NAK' }>): void;
  /** Rejects every SET still waiting (the port closed, the agent stops). */
  failAll(why: string): void;
}

export function requests(deps: RequestsDeps): Requests {
  const { clock, timeoutMs } = deps;
  let txSeq = 0;
  const pending = new Map<number, Pending>();

  const send = (type: string, ...fields: string[]): number => {
    const seq = txSeq;
    txSeq = (txSeq + 1) & 0xff;
    deps.write(encode(seq, type, ...fields));
    return seq;
  };

  return {
    send,
    set(id, raw) {
      return new Promise((resolve, reject) => {
        const seq = send('SET', id, raw);
        const timer = clock.setTimeout(() => {
          if (pending.get(seq)?.timer === timer) pending.delete(seq);
          reject(new Error(`no answer from the bridge within ${timeoutMs} ms`));
        }, timeoutMs);
        // 256 frames later the counter is back on this number: an older SET still waiting on it can no longer be told apart.
        const older = pending.get(seq);
        if (older) {
          clock.clearTimeout(older.timer);
          older.reject(new Error('superseded'));
        }
        pending.set(seq, { resolve, reject, timer });
      });
    },
    answer(f) {
      const p = pending.get(f.ref);
      if (!p) return; // late, or for a SET that already timed out
      pending.delete(f.ref);
      clock.clearTimeout(p.timer);
      if (f.type === 'ACK') p.resolve();
      else p.reject(new Error(`the bridge refused it (${f.reason})`));
    },
    failAll(why) {
      for (const [, p] of pending) {
        clock.clearTimeout(p.timer);
        p.reject(new Error(why));
      }
      pending.clear();
    },
  };
}
