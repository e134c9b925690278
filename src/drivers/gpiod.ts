// The real GPIO backend: libgpiod's command-line tools (Debian package gpiod, v1 or v2 syntax), which speak the
// kernel's character-device uAPI and need no native addon in the agent; tests
// use a fake behind the same interface, and the real one against fake tools.
//
// gpioset holds a line only while it runs (the kernel frees the line when the
// process exits), so the real backend keeps one gpioset per output line:
// - gpioset with an interactive mode (v2 built with libedit): the same process
//   for good; a new value is a `set` on its stdin, confirmed by its answer to
//   the `get` that follows.
// - otherwise (v1; v2 as Debian builds it, without -i): a new value stops the
//   holder, waits for it to exit (only then is the line free), starts the next
//   and confirms it holds the line: v2 prints its --banner once the request
//   succeeded; v1 prints nothing, so gpioinfo must show the line used as an
//   output by gpioset while it still runs. Between the two the line is
//   released for a moment; the pull resistor decides its level meanwhile.
// Writes to one line are serialised; a failure is what the tool says (exit
// status, stderr such as "Device or resource busy"), never a guess from time.
//
// Over 300 lines on purpose: one holder state machine serves both tool
// versions (v1 and v2, with and without interactive mode), and splitting it
// would put the two halves of one protocol in different files.

import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { systemClock, type Clock } from '../core/clock.js';
import type { GpioBackend } from './gpio.js';

export type GpioErrorCode = 'missing-tools' | 'busy' | 'failed' | 'timeout';

export class GpioError extends Error {
  constructor(
    readonly code: GpioErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'GpioError';
  }
}

export const isGpioError = (err: unknown): err is GpioError => err instanceof GpioError;

/** Cuts a text stream into lines however it is chunked: a line may come in pieces, several in one chunk. */
export function lineSplitter(onLine: (line: string) => void): (chunk: string) => void {
  let rest = '';
  return (chunk) => {
    const parts = (rest + chunk).split('\n');
    rest = parts.pop() ?? '';
    for (const l of parts) onLine(l.endsWith('\r') ? l.slice(0, -1) : l);
  };
}

/** One line of `gpiomon --format=%e`: 1 is a rising edge, 0 (v1) or 2 (v2) a falling one. */
export function parseEdge(line: string): boolean | undefined {
  const t = line.trim();
  return t === '1' ? true : t === '0' || t === '2' ? false : undefined;
}

export interface LineInfo {
  used: boolean;
  /** Who requested it: a consumer name, 'kernel', or 'unused'. */
  consumer: string;
  output: boolean;
}

/** A line of v1 `gpioinfo CHIP`: `line  17:  "GPIO17"  "gpioset"  output  active-high [used]`. */
export function parseGpioinfoV1(text: string, offset: number): LineInfo | undefined {
  for (const l of text.split('\n')) {
    const m = /^\s*line\s+(\d+):\s+(?:"[^"]*"|unnamed)\s+("[^"]*"|unused|kernel)\s+(input|output)\b/.exec(l);
    if (m && Number(m[1]) === offset) return { used: m[2] !== 'unused', consumer: m[2]!.replace(/^"(.*)"$/, '$1'), output: m[3] === 'output' };
  }
  return undefined;
}

export interface GpiodOptions {
  clock?: Clock;
  /** How long a tool may take to answer, and a holder to exit before it is killed. */
  timeoutMs?: number;
  /** v1 only: how often gpioinfo is asked whether a new holder has the line yet. */
  pollMs?: number;
}

interface Tools {
  v2: boolean;
  interactive: boolean;
}

interface Exit {
  code: number | null;
  signal: string | null;
  error?: GpioError;
}

interface Child {
  proc: ChildProcessWithoutNullStreams;
  /** Resolves (never rejects) once the process has exited and its output is read. */
  exited: Promise<Exit>;
  running(): boolean;
  stderr(): string;
}

interface Holder {
  high: boolean;
  child: Child;
  /** Interactive holders take a new value; the others are replaced. */
  change?(high: boolean): Promise<void>;
  stop(): Promise<void>;
}

const PROMPT = 'gpioset> ';
const TIMEOUT = Symbol('timeout');
const noop = (): void => {};
/** One turn of the event loop: output the tool wrote before (stderr before stdout) has been read by then. */
const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function missing(cmd: string, err: NodeJS.ErrnoException): GpioError {
  return err.code === 'ENOENT'
    ? new GpioError('missing-tools', `${cmd} not found: libgpiod's tools are missing (apt-get install gpiod)`)
    : new GpioError('failed', `${cmd}: ${err.message}`);
}

function complaint(cmd: string, stderr: string, x: { code: number | null; signal: string | null }): GpioError {
  const text = stderr.trim().split('\n').join('; ');
  return new GpioError(/resource busy/i.test(text) ? 'busy' : 'failed', text || `${cmd} exited (${x.signal ?? x.code})`);
}

function launch(cmd: string, args: string[]): Child {
  const proc = spawn(cmd, args, { stdio: 'pipe' });
  let err = '';
  let alive = true;
  proc.stdout.setEncoding('utf8');
  proc.stderr.setEncoding('utf8').on('data', (d: string) => (err = (err + d).slice(-4000)));
  proc.stdin.on('error', noop); // EPIPE once it has gone: its exit says why
  const exited = new Promise<Exit>((resolve) => {
    proc.on('error', (e) => {
      if (proc.pid !== undefined) return; // a failed kill: the process lives on
      alive = false;
      resolve({ code: null, signal: null, error: missing(cmd, e) });
    });
    proc.once('exit', () => (alive = false));
    proc.once('close', (code, signal) => resolve({ code, signal }));
  });
  return { proc, exited, running: () => alive, stderr: () => err };
}

/** libgpiod's tools: gpioset holds a line while it runs; gpiomon streams edges. */
export function gpiodCli({ clock = systemClock, timeoutMs = 3000, pollMs = 10 }: GpiodOptions = {}): GpioBackend {
  const slots = new Map<string, { queue: Promise<void>; holder?: Holder }>();
  const watchers = new Set<Child>();
  let detected: Promise<Tools> | undefined;

  const within = <T>(p: Promise<T>, ms = timeoutMs): Promise<T | typeof TIMEOUT> =>
    new Promise((resolve, reject) => {
      const t = clock.setTimeout(() => resolve(TIMEOUT), ms, { unref: true });
      p.then(
        (v) => (clock.clearTimeout(t), resolve(v)),
        (e: unknown) => (clock.clearTimeout(t), reject(e)),
      );
    });

  const answer = async <T>(what: string, p: Promise<T>): Promise<T> => {
    const v = await within(p);
    if (v === TIMEOUT) throw new GpioError('timeout', `${what}: no answer within ${timeoutMs} ms`);
    return v;
  };

  /** Run a tool that answers and exits (gpioinfo, gpioget, gpioset --version). */
  const run = (cmd: string, args: string[]): Promise<{ stdout: string }> => {
    const c = launch(cmd, args);
    c.proc.stdin.end();
    let stdout = '';
    c.proc.stdout.on('data', (d: string) => (stdout += d));
    return answer(`${cmd} ${args.join(' ')}`, c.exited).then(
      (x) => {
        if (x.error) throw x.error;
        if (x.code !== 0) throw complaint(cmd, c.stderr(), x);
        return { stdout };
      },
      (e: unknown) => {
        c.proc.kill('SIGKILL');
        throw e;
      },
    );
  };

  const tools = (): Promise<Tools> =>
    (detected ??= (async () => {
      const { stdout } = await run('gpioset', ['--version']);
      const m = /\bv(\d+)\.\d+/.exec(stdout);
      if (!m) throw new GpioError('failed', `gpioset --version: unrecognised answer "${stdout.trim().split('\n')[0] ?? ''}"`);
      const v2 = Number(m[1]) >= 2;
      return { v2, interactive: v2 && /--interactive\b/.test((await run('gpioset', ['--help'])).stdout) };
    })().catch((e: unknown) => {
      detected = undefined; // try again next time (gpiod installed meanwhile)
      throw e;
    }));

  /** Ask the process to go, wait for its exit; kill it if it does not go in time. */
  const stopChild = async (c: Child, ask: (c: Child) => void): Promise<void> => {
    if (c.running()) {
      ask(c);
      if ((await within(c.exited)) === TIMEOUT) c.proc.kill('SIGKILL');
    }
    await c.exited;
  };

  const holder = (child: Child, high: boolean, ask: (c: Child) => void): Holder => ({ high, child, stop: () => stopChild(child, ask) });

  const failure = async (cmd: string, c: Child): Promise<GpioError> => {
    const x = await c.exited;
    return x.error ?? complaint(cmd, c.stderr(), x);
  };

  const lineInfo = async (chip: string, line: number): Promise<LineInfo> => {
    const info = parseGpioinfoV1((await run('gpioinfo', [chip])).stdout, line);
    if (!info) throw new GpioError('failed', `gpioinfo shows no line ${line} on ${chip}`);
    return info;
  };

  /** v1: gpioset --mode=wait holds until a newline (or end) on its stdin; it says nothing on success. */
  const holdV1 = async (chip: string, line: number, high: boolean): Promise<Holder> => {
    const before = await lineInfo(chip, line);
    if (before.used) throw new GpioError('busy', `${chip} line ${line} is busy (used by ${before.consumer})`);
    const c = launch('gpioset', ['--mode=wait', chip, `${line}=${high ? 1 : 0}`]);
    const h = holder(c, high, (c) => c.proc.stdin.end('\n'));
    let expired = false;
    const t = clock.setTimeout(() => (expired = true), timeoutMs, { unref: true });
    try {
      for (;;) {
        const info = await lineInfo(chip, line);
        if (!c.running()) throw await failure('gpioset', c);
        if (info.used && info.output && info.consumer === 'gpioset') return h;
        if (expired) throw new GpioError('timeout', `gpioset did not take ${chip} line ${line} within ${timeoutMs} ms`);
        await within(c.exited, pollMs);
      }
    } catch (e) {
      await h.stop();
      throw e;
    } finally {
      clock.clearTimeout(t);
    }
  };

  /** v2 without an interactive mode: --banner says the request succeeded; it holds until SIGTERM. */
  const holdV2 = async (chip: string, line: number, high: boolean): Promise<Holder> => {
    const c = launch('gpioset', ['--banner', '-c', chip, `${line}=${high ? 1 : 0}`]);
    const h = holder(c, high, (c) => c.proc.kill('SIGTERM'));
    try {
      await answer(
        'gpioset',
        new Promise<void>((resolve, reject) => {
          c.proc.stdout.on('data', lineSplitter((l) => l.startsWith('Setting line') && resolve()));
          void failure('gpioset', c).then(reject);
        }),
      );
      return h;
    } catch (e) {
      await h.stop();
      throw e;
    }
  };

  /** v2 interactive: a prompt follows every answer; `set` says nothing when it worked, `get` says `17=active`. */
  const holdInteractive = async (chip: string, line: number, high: boolean): Promise<Holder> => {
    const c = launch('gpioset', ['--interactive', '--unquoted', '-c', chip, `${line}=${high ? 1 : 0}`]);
    const replies: string[] = [];
    const waiting: Array<{ resolve: (reply: string) => void; reject: (err: Error) => void }> = [];
    let text = '';
    let gone: GpioError | undefined;
    c.proc.stdout.on('data', (d: string) => {
      text += d;
      for (let i = text.indexOf(PROMPT); i >= 0; i = text.indexOf(PROMPT)) {
        const reply = text.slice(0, i);
        text = text.slice(i + PROMPT.length);
        const w = waiting.shift();
        if (w) w.resolve(reply);
        else replies.push(reply);
      }
    });
    void failure('gpioset', c).then((err) => {
      gone = err;
      for (const w of waiting.splice(0)) w.reject(err);
    });
    const next = (): Promise<string> => {
      const r = replies.shift();
      if (r !== undefined) return Promise.resolve(r);
      if (gone) return Promise.reject(gone);
      return new Promise((resolve, reject) => waiting.push({ resolve, reject }));
    };
    // Never end its stdin first: at end of input gpioset v2 prompts again and again.
    const h = holder(c, high, (c) => c.proc.stdin.end('exit\n'));
    h.change = async (value) => {
      const before = c.stderr().length;
      c.proc.stdin.write(`set ${line}=${value ? 1 : 0}\nget ${line}\n`);
      const [onSet, onGet] = await answer('gpioset set/get', Promise.all([next(), next()]));
      await turn();
      // A refused command is answered on stdout; a failed ioctl is reported on stderr (already "gpioset: ...").
      const said = onSet.trim() ? `gpioset: ${onSet.trim()}` : c.stderr().slice(before).trim();
      if (said) throw complaint('gpioset', said, { code: null, signal: null });
      if (onGet.trim() !== `${line}=${value ? 'active' : 'inactive'}`) throw new GpioError('failed', `gpioset answered "get ${line}" with "${onGet.trim()}"`);
    };
    try {
      const banner = await answer('gpioset', next());
      if (banner.trim()) throw new GpioError('failed', `gpioset: ${banner.trim()}`);
      return h;
    } catch (e) {
      await h.stop();
      throw e;
    }
  };

  const serial = (slot: { queue: Promise<void> }, job: () => Promise<void>): Promise<void> => {
    const done = slot.queue.then(job);
    slot.queue = done.then(noop, noop);
    return done;
  };

  return {
    set(chip, line, high) {
      const key = `${chip}:${line}`;
      let slot = slots.get(key);
      if (!slot) slots.set(key, (slot = { queue: Promise.resolve() }));
      const s = slot;
      return serial(s, async () => {
        const t = await tools();
        const h = s.holder;
        if (h?.child.running()) {
          if (h.high === high) return;
          if (h.change) {
            try {
              await h.change(high);
              h.high = high;
              return;
            } catch (e) {
              // A refusal leaves it holding the old value; a silence or an exit leaves nothing to trust.
              if (!isGpioError(e) || e.code === 'timeout' || !h.child.running()) {
                s.holder = undefined;
                await h.stop();
              }
              throw e;
            }
          }
        }
        s.holder = undefined;
        await h?.stop(); // the line is free only once the previous holder has exited
        s.holder = await (t.interactive ? holdInteractive : t.v2 ? holdV2 : holdV1)(chip, line, high);
      });
    },
    async get(chip, line) {
      const t = await tools();
      const { stdout } = await run('gpioget', t.v2 ? ['-c', chip, '--numeric', String(line)] : [chip, String(line)]);
      const v = stdout.trim();
      if (v === '1' || v === '0') return v === '1';
      throw new GpioError('failed', `gpioget answered "${v}"`);
    },
    watch(chip, line, onEdge, onError) {
      let stopped = false;
      let child: Child | undefined;
      tools().then(
        (t) => {
          if (stopped) return;
          // v1 gpiomon buffers its output in a pipe unless told to flush every line (-b).
          const c = (child = launch('gpiomon', t.v2 ? ['-c', chip, '--format=%e', String(line)] : ['-b', '--format=%e', chip, String(line)]));
          watchers.add(c);
          c.proc.stdout.on(
            'data',
            lineSplitter((l) => {
              const high = parseEdge(l);
              if (high !== undefined && !stopped) onEdge(high);
            }),
          );
          void failure('gpiomon', c).then((err) => {
            watchers.delete(c);
            if (!stopped) onError(err);
          });
        },
        (err: unknown) => stopped || onError(isGpioError(err) ? err : new GpioError('failed', String(err))),
      );
      return () => {
        stopped = true;
        if (child) void stopChild(child, (c) => c.proc.kill('SIGTERM'));
      };
    },
    async close() {
      const jobs = [...slots.values()].map((s) =>
        serial(s, async () => {
          const h = s.holder;
          s.holder = undefined;
          await h?.stop();
        }),
      );
      for (const w of watchers) jobs.push(stopChild(w, (c) => c.proc.kill('SIGTERM')));
      await Promise.allSettled(jobs);
    },
  };
}
