// The real GPIO backend (libgpiod's command-line tools) against real processes:
// fake gpioset/gpiomon/gpioget/gpioinfo first on PATH (test/fixtures/fake-gpiod.mjs)
// act out libgpiod v1 (Debian 12), v2 as Debian builds it (no interactive mode)
// and v2 with its interactive mode, including a holder that is slow to let go of
// its line and gpiomon output cut across chunks. The installed tools, when
// there are any, are checked for accepting the arguments the backend passes.
// (The kernel's gpio-sim would allow a test on a simulated chip; this machine's
// kernel has neither configfs nor GPIO support, so there is none here.)

import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { GpioBackend } from '../src/drivers/gpio.js';
import { gpiodCli, lineSplitter, parseEdge, parseGpioinfoV1, type GpiodOptions } from '../src/drivers/gpiod.js';

const FAKE = fileURLToPath(new URL('./fixtures/fake-gpiod.mjs', import.meta.url));
const PATH = process.env.PATH ?? '';
const TOOLS = ['gpioset', 'gpiomon', 'gpioget', 'gpioinfo'] as const;

type Flavour = 'v1' | 'v2' | 'v2i';
interface Event {
  tool: string;
  pid: number;
  what: string;
}

const backends: GpioBackend[] = [];
const rigs: Array<{ dir: string; events: () => Event[] }> = [];

/** A temp dir with the fake tools first on PATH and the state of one chip, gpiochip0. */
function rig(flavour: Flavour, { only = TOOLS, ...opts }: GpiodOptions & { only?: readonly string[] } = {}) {
  const dir = mkdtempSync(join(tmpdir(), `xia-gpiod-${flavour}-`));
  const bin = join(dir, 'bin');
  const state = join(dir, 'state');
  mkdirSync(bin);
  mkdirSync(join(state, 'gpiochip0'), { recursive: true });
  for (const tool of only) {
    const q = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;
    writeFileSync(join(bin, tool), `#!/bin/sh\nFAKE_GPIOD_STATE=${q(state)} FAKE_GPIOD_FLAVOUR=${flavour} exec ${q(process.execPath)} ${q(FAKE)} ${tool} "$@"\n`);
    chmodSync(join(bin, tool), 0o755);
  }
  process.env.PATH = `${bin}${delimiter}${PATH}`;
  const backend = gpiodCli(opts);
  backends.push(backend);
  const events = (): Event[] => {
    const file = join(state, 'events.log');
    if (!existsSync(file)) return [];
    return readFileSync(file, 'utf8')
      .trim()
      .split('\n')
      .map((l) => {
        const [tool = '', pid = '', ...what] = l.split(' ');
        return { tool, pid: Number(pid), what: what.join(' ') };
      });
  };
  rigs.push({ dir, events });
  return {
    backend,
    events,
    /** Another process holds the line (a person with gpioset, a second agent): this one, alive. */
    takeByOther(line: number) {
      writeFileSync(join(state, 'gpiochip0', `line-${line}.json`), JSON.stringify({ pid: process.pid, consumer: 'someone-else', value: 0, output: true }));
    },
    addChip: (name: string) => mkdirSync(join(state, name)),
    /** What the "kernel" says of a line: who holds it, at which value. */
    held(line: number): { pid: number; value: number } | undefined {
      const file = join(state, 'gpiochip0', `line-${line}.json`);
      if (!existsSync(file)) return undefined;
      const h = JSON.parse(readFileSync(file, 'utf8')) as { pid: number; value: number };
      return alive(h.pid) ? { pid: h.pid, value: h.value } : undefined;
    },
    knob: (name: string, value = '') => writeFileSync(join(state, name), value),
    /** Lets the fake gpiomon write its chunk k. */
    ack: (k: number) => writeFileSync(join(state, `ack-${k}`), ''),
    holders: () => events().filter((e) => e.tool === 'gpioset' && e.what.startsWith('start')),
  };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Index of the first event matching, -1 if none. */
const at = (events: Event[], pid: number, what: string) => events.findIndex((e) => e.pid === pid && e.what.startsWith(what));

afterEach(async () => {
  await Promise.all(backends.splice(0).map((b) => b.close()));
  process.env.PATH = PATH;
  // Every tool the tests started has gone once its backend is closed.
  for (const { dir, events } of rigs.splice(0)) {
    for (const e of events()) expect(alive(e.pid), `fake ${e.tool} ${e.pid} still running`).toBe(false);
    rmSync(dir, { recursive: true, force: true });
  }
});

describe('gpiod output parsing', () => {
  it('parses gpiomon events split across chunks (a line in two chunks, two lines in one)', () => {
    const lines: string[] = [];
    const push = lineSplitter((l) => lines.push(l));
    for (const chunk of ['1\n2', '\n', '1', '\n2\n1\r\n', '2']) push(chunk);
    expect(lines).toEqual(['1', '2', '1', '2', '1']); // the last '2' has no end of line yet
    expect(lines.map(parseEdge)).toEqual([true, false, true, false, true]);
    expect(['0', '2', '', 'garbage'].map(parseEdge)).toEqual([false, false, undefined, undefined]);
  });

  it('reads who holds a line from v1 gpioinfo', () => {
    const text = 'gpiochip0 - 54 lines:\n\tline  16:     "GPIO16"       unused   input  active-high \n\tline  17:     "GPIO17"    "gpioset"  output  active-high [used]\n\tline  18:      unnamed     "kernel"   input  active-low [used]\n';
    expect(parseGpioinfoV1(text, 16)).toEqual({ used: false, consumer: 'unused', output: false });
    expect(parseGpioinfoV1(text, 17)).toEqual({ used: true, consumer: 'gpioset', output: true });
    expect(parseGpioinfoV1(text, 18)).toEqual({ used: true, consumer: 'kernel', output: false });
    expect(parseGpioinfoV1(text, 7)).toBeUndefined();
  });
});

describe('gpiodCli with libgpiod v1 (gpioset --mode=wait, confirmed by gpioinfo)', () => {
  it('waits for the previous gpioset to exit before driving the line again', async () => {
    const r = rig('v1');
    r.knob('release-delay-ms', '300'); // the old holder lets go of the line only 300 ms after being asked
    await r.backend.set('gpiochip0', 17, true);
    const first = r.held(17);
    expect(first?.value).toBe(1);
    await r.backend.set('gpiochip0', 17, false);
    const second = r.held(17);
    expect(second?.value).toBe(0);
    expect(second?.pid).not.toBe(first?.pid);
    const ev = r.events();
    expect(ev.some((e) => e.what === 'busy')).toBe(false);
    expect(at(ev, first!.pid, 'released')).toBeGreaterThanOrEqual(0);
    expect(at(ev, first!.pid, 'released')).toBeLessThan(at(ev, second!.pid, 'start'));
  });

  it('serialises writes to one line: a set while one is in flight waits for it', async () => {
    const r = rig('v1');
    r.knob('release-delay-ms', '100');
    await Promise.all([r.backend.set('gpiochip0', 17, true), r.backend.set('gpiochip0', 17, false), r.backend.set('gpiochip0', 17, true)]);
    expect(r.held(17)?.value).toBe(1);
    // One holder at a time, in the order the writes were made.
    let holding = 0;
    const values: string[] = [];
    for (const e of r.events().filter((e) => e.tool === 'gpioset')) {
      if (e.what.startsWith('held')) {
        holding++;
        values.push(e.what);
      }
      if (e.what === 'released') holding--;
      expect(holding).toBeLessThanOrEqual(1);
    }
    expect(values).toEqual(['held 17=1', 'held 17=0', 'held 17=1']);
  });

  it('does not take a gpioset that still runs for one that holds the line', async () => {
    const r = rig('v1', { timeoutMs: 600 });
    r.knob('stall'); // runs, never requests the line (the old code waited 150 ms and called that success)
    await expect(r.backend.set('gpiochip0', 17, true)).rejects.toMatchObject({ code: 'timeout' });
    const [holder] = r.holders();
    expect(holder).toBeDefined();
    expect(alive(holder!.pid)).toBe(false); // and it was stopped
  });

  it('reports "Device or resource busy" when the request fails, with gpioset\'s own words', async () => {
    const r = rig('v1');
    r.knob('busy-on-request');
    const err = await r.backend.set('gpiochip0', 17, true).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'busy', message: 'gpioset: error setting the GPIO line values: Device or resource busy' });
  });

  it('refuses a line that another process holds, without starting gpioset', async () => {
    const r = rig('v1');
    r.takeByOther(17);
    await expect(r.backend.set('gpiochip0', 17, true)).rejects.toMatchObject({ code: 'busy', message: 'gpiochip0 line 17 is busy (used by someone-else)' });
    expect(r.holders()).toEqual([]);
  });

  it('keeps the holder when the value does not change', async () => {
    const r = rig('v1');
    await r.backend.set('gpiochip0', 17, true);
    await r.backend.set('gpiochip0', 17, true);
    expect(r.holders()).toHaveLength(1);
  });

  it('close() stops every holder and waits for it to exit', async () => {
    const r = rig('v1');
    r.knob('release-delay-ms', '200');
    await r.backend.set('gpiochip0', 17, true);
    await r.backend.set('gpiochip0', 22, false);
    const pids = r.holders().map((e) => e.pid);
    expect(pids).toHaveLength(2);
    await r.backend.close();
    for (const pid of pids) expect(alive(pid)).toBe(false);
    expect(r.held(17)).toBeUndefined();
    expect(r.held(22)).toBeUndefined();
    expect(r.events().filter((e) => e.what === 'released')).toHaveLength(2);
  });

  it('asks gpiomon to flush every line (-b): v1 buffers its output in a pipe otherwise', async () => {
    const r = rig('v1');
    r.knob('gpiomon.json', JSON.stringify(['1\n', '0\n']));
    const edges: boolean[] = [];
    const errors: Error[] = [];
    const stop = r.backend.watch('gpiochip0', 27, (h) => edges.push(h), (e) => errors.push(e));
    await vi.waitFor(() => expect(edges).toEqual([true]), { timeout: 5000 });
    r.ack(1);
    await vi.waitFor(() => expect(edges).toEqual([true, false]), { timeout: 5000 });
    stop();
    expect(errors).toEqual([]);
  });

  it('reads an input with gpioget CHIP LINE', async () => {
    const r = rig('v1');
    expect(await r.backend.get('gpiochip0', 27)).toBe(false);
    r.knob('gpiochip0/level-27', '1');
    expect(await r.backend.get('gpiochip0', 27)).toBe(true);
  });
});

describe('gpiodCli with libgpiod v2 without interactive mode (as Debian builds it; confirmed by --banner)', () => {
  it('waits for the previous gpioset to exit before driving the line again', async () => {
    const r = rig('v2');
    r.knob('release-delay-ms', '300'); // SIGTERM, then the line stays held for 300 ms
    await r.backend.set('gpiochip0', 17, true);
    const first = r.held(17);
    await r.backend.set('gpiochip0', 17, false);
    const second = r.held(17);
    expect([first?.value, second?.value]).toEqual([1, 0]);
    const ev = r.events();
    expect(ev.some((e) => e.what === 'busy')).toBe(false);
    expect(at(ev, first!.pid, 'released')).toBeLessThan(at(ev, second!.pid, 'start'));
  });

  it('reports "Device or resource busy" while another process holds the line', async () => {
    const r = rig('v2');
    r.takeByOther(17);
    await expect(r.backend.set('gpiochip0', 17, true)).rejects.toMatchObject({ code: 'busy', message: "gpioset: unable to request lines on chip '/dev/gpiochip0': Device or resource busy" });
    expect(r.events().map((e) => e.what)).toEqual(['start --banner -c gpiochip0 17=1', 'busy']);
  });

  it('parses gpiomon events split across chunks', async () => {
    const r = rig('v2');
    // Each chunk is written once the previous one has been read: '2' arrives in two pieces,
    // a chunk is only an end of line, another holds one and a half.
    const chunks = ['1\n2', '\n1\n2', '\n', '1\n'];
    const after = [1, 3, 4, 5]; // edges complete once chunk k has arrived
    r.knob('gpiomon.json', JSON.stringify(chunks));
    const edges: boolean[] = [];
    const errors: Error[] = [];
    const stop = r.backend.watch('gpiochip0', 27, (h) => edges.push(h), (e) => errors.push(e));
    for (let k = 0; k < chunks.length; k++) {
      await vi.waitFor(() => expect(edges).toHaveLength(after[k]!), { timeout: 5000 });
      if (k + 1 < chunks.length) r.ack(k + 1);
    }
    expect(edges).toEqual([true, false, true, false, true]);
    stop();
    expect(errors).toEqual([]);
  });

  it('reports gpiomon failing, and not its exit after stop()', async () => {
    const r = rig('v2');
    r.knob('gpiomon-fails');
    const errors: Error[] = [];
    r.backend.watch('gpiochip0', 27, () => {}, (e) => errors.push(e));
    await vi.waitFor(() => expect(errors.map((e) => e.message)).toEqual(['gpiomon: error waiting for events: No such device']), { timeout: 5000 });

    const quiet = rig('v2');
    const seen: Error[] = [];
    const stop = quiet.backend.watch('gpiochip0', 27, () => {}, (e) => seen.push(e));
    await vi.waitFor(() => expect(quiet.events().some((e) => e.tool === 'gpiomon')).toBe(true), { timeout: 5000 });
    stop();
    await quiet.backend.close(); // waits for gpiomon's exit
    expect(quiet.events().filter((e) => e.tool === 'gpiomon').map((e) => e.what)).toEqual(['start -c gpiochip0 --format=%e 27', 'released']);
    expect(seen).toEqual([]);
  });

  it('reads an input with gpioget -c CHIP --numeric LINE', async () => {
    const r = rig('v2');
    r.knob('gpiochip0/level-27', '1');
    expect(await r.backend.get('gpiochip0', 27)).toBe(true);
  });
});

describe('gpiodCli with libgpiod v2 in interactive mode', () => {
  it('keeps one gpioset per line and writes new values to its stdin, confirmed by its answer to get', async () => {
    const r = rig('v2i');
    await r.backend.set('gpiochip0', 17, true);
    expect(r.held(17)?.value).toBe(1);
    await r.backend.set('gpiochip0', 17, false);
    expect(r.held(17)?.value).toBe(0);
    await r.backend.set('gpiochip0', 17, true);
    expect(r.held(17)?.value).toBe(1);
    expect(r.holders().map((e) => e.what)).toEqual(['start --interactive --unquoted -c gpiochip0 17=1']);
    expect(r.events().filter((e) => e.what.startsWith('set')).map((e) => e.what)).toEqual(['set 17=0', 'set 17=1']);
  });

  it('fails a set that gpioset refuses (its stderr) and keeps holding the old value', async () => {
    const r = rig('v2i');
    await r.backend.set('gpiochip0', 17, true);
    r.knob('set-fails');
    await expect(r.backend.set('gpiochip0', 17, false)).rejects.toMatchObject({ code: 'failed', message: "gpioset: unable to set values on 'gpiochip0': Input/output error" });
    expect(r.held(17)?.value).toBe(1);
    expect(r.holders()).toHaveLength(1);
  });

  it('close() ends gpioset with its exit command (it never exits at the end of its input) and waits for it', async () => {
    const r = rig('v2i');
    r.knob('release-delay-ms', '200');
    await r.backend.set('gpiochip0', 17, true);
    const [holder] = r.holders();
    await r.backend.close();
    expect(alive(holder!.pid)).toBe(false);
    expect(r.events().filter((e) => e.pid === holder!.pid).map((e) => e.what)).toEqual([expect.stringMatching(/^start/), 'held 17=1', 'released']);
  });
});

describe('gpiodCli without the tools', () => {
  it("turns a missing gpioset or gpiomon (spawn's 'error' event) into a typed error, not a crash", async () => {
    const empty = mkdtempSync(join(tmpdir(), 'xia-nogpiod-'));
    rigs.push({ dir: empty, events: () => [] });
    process.env.PATH = empty;
    const b = gpiodCli();
    backends.push(b);
    await expect(b.set('gpiochip0', 17, true)).rejects.toMatchObject({ code: 'missing-tools', message: expect.stringContaining('apt-get install gpiod') });
    await expect(b.get('gpiochip0', 27)).rejects.toMatchObject({ code: 'missing-tools' });
    const errors: Error[] = [];
    b.watch('gpiochip0', 27, () => {}, (e) => errors.push(e));
    await vi.waitFor(() => expect(errors).toMatchObject([{ code: 'missing-tools' }]));
  });
});

// The tools installed on this machine, if any, on a chip that does not exist:
// each must fail for the missing chip, never for the arguments it was given.
const installed = spawnSync('gpioset', ['--version'], { encoding: 'utf8' });
const realMajor = /\bv(\d+)\./.exec(installed.stdout ?? '')?.[1];
const NOCHIP = 'gpiochip99';
describe.skipIf(!realMajor || existsSync(`/dev/${NOCHIP}`))(`the installed libgpiod tools (v${realMajor ?? '?'}; skipped when gpiod is not installed)`, () => {
  const usage = /invalid|unrecognized|--help|usage/i;

  it('gpioget and gpiomon accept the arguments the backend passes', async () => {
    const b = gpiodCli();
    backends.push(b);
    const err = (await b.get(NOCHIP, 27).catch((e: unknown) => e)) as Error;
    expect(err.message).not.toMatch(usage);
    expect(err.message).toMatch(realMajor === '1' ? /^gpioget: error reading GPIO values: No such file or directory$/ : /gpiochip99|No such file/);
    const errors: Error[] = [];
    b.watch(NOCHIP, 27, () => {}, (e) => errors.push(e));
    await vi.waitFor(() => expect(errors).toHaveLength(1), { timeout: 5000 });
    expect(errors[0]!.message).not.toMatch(usage);
    if (realMajor === '1') expect(errors[0]!.message).toBe('gpiomon: error waiting for events: No such file or directory');
  });

  it('gpioset accepts the arguments the backend passes', async () => {
    // v1: the real gpioset behind a fake gpioinfo that shows the line free (gpioinfo itself is checked below).
    const r = rig('v1', { only: realMajor === '1' ? ['gpioinfo'] : [] });
    r.addChip(NOCHIP);
    const err = (await r.backend.set(NOCHIP, 17, true).catch((e: unknown) => e)) as Error;
    expect(err.message).not.toMatch(usage);
    if (realMajor === '1') {
      expect(err.message).toBe('gpioset: error setting the GPIO line values: No such file or directory');
      process.env.PATH = PATH;
      const real = gpiodCli();
      backends.push(real);
      await expect(real.set(NOCHIP, 17, true)).rejects.toThrow(`gpioinfo: looking up chip ${NOCHIP}: No such file or directory`);
    }
  });
});
