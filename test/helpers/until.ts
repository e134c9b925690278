// The one way a test waits for something to become true: poll a condition
// until it holds, or fail after a bounded time saying what was awaited (and,
// when given, what was seen instead). Tests wait on events and state with
// this, never with a fixed sleep.

export interface UntilOptions {
  /** Give up after this long (default 10 s: generous, for two loaded cores). */
  timeoutMs?: number;
  /** What the condition looked at, for the failure message. */
  got?: () => unknown;
}

const POLL_MS = 20;

export async function until(cond: () => boolean | Promise<boolean>, what: string, opts: UntilOptions = {}): Promise<void> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    // Checked once more after the deadline, so a slow last poll does not fail a condition that holds.
    if (await cond()) return;
    if (Date.now() >= deadline) {
      const got = opts.got ? `; got ${JSON.stringify(opts.got())}` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${got}`);
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}
