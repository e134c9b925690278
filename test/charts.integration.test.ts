// Charts over a real Prosody with mod_http_file_share (XEP-0363) on loopback,
// HTTPS with the server's own certificate (not the one the test peers trust
// by default: the agent's PUT works only with xmpp.tls.ca_file). People ask
// for a chart; the test fetches the URL with that CA, decodes the PNG, and
// checks the size and that the line follows the stored readings. Viewers get
// one too, strangers the usual refusal; an alarm brings a chart of the last
// hour; a refused slot (daily quota) and a file over the advertised limit
// fall back to the text with the reason; the suite's server, without upload,
// gets the text alone. Last, the built agent is run as its own process to
// show the renderer's chunk is loaded only by the first chart.

import { spawn, type ChildProcess } from 'node:child_process';
import https from 'node:https';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Element } from 'ltx';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startProsody, type Prosody } from '../tools/dev/prosody.js';
import { Session } from '../src/xmpp/session.js';
import { createLogger, createSink } from '../src/runtime/log.js';
import { NS_OOB } from '../src/xep/oob.js';
import { ENVELOPE, LINE } from '../src/chart/render.js';
import { account, agentYaml, peer, startAgent, xml, type RunningAgent } from './helpers/peers.js';
import { decodePng, pixelsOf, type Decoded } from './helpers/png.js';
import { until } from './helpers/until.js';

const CLI = join(__dirname, '..', 'dist', 'cli.js');
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DEVICES = `  - id: temperature
    driver: simulated
    type: number
    unit: "°C"
    initial: 21
    interval: 1h
    stale_after: 5m
`;
const ALARM = `alarms:
  - device: temperature
    above: 28
`;

let upload: Prosody;
let quota: Prosody;
let small: Prosody;
const cleanup: (() => Promise<unknown>)[] = [];
const PEOPLE = ['gw', 'gw2', 'alice', 'bob', 'eve'];

beforeAll(async () => {
  const dir = (name: string): string => mkdtempSync(join(tmpdir(), `xia-${name}-`));
  [upload, quota, small] = await Promise.all([
    startProsody({ dir: dir('upload'), upload: {} }),
    // Every slot refused: "Daily quota reached".
    startProsody({ dir: dir('quota'), upload: { dailyQuota: 1 } }),
    // Advertises max-file-size 1000: smaller than any chart.
    startProsody({ dir: dir('small'), upload: { sizeLimit: 1000 } }),
  ]);
  for (const s of [upload, quota, small]) for (const u of PEOPLE) await s.register(u, `${u}-secret`);
}, 60_000);

afterAll(async () => {
  for (const c of cleanup.reverse()) await c().catch(() => {});
  await Promise.all([upload?.stop(), quota?.stop(), small?.stop()]);
});

interface Person {
  jid: string;
  messages: Element[];
  /** Send a chat message and resolve with the next `count` messages from `to`'s bare JID. */
  ask(to: string, body: string, count: number, timeoutMs?: number): Promise<Element[]>;
}

/** Someone on one of our servers: our own Session, trusting that server's certificate. */
let phones = 0;
async function person(server: Prosody, user: string): Promise<Person> {
  const s = new Session({
    jid: `${user}@${server.domain}`,
    // A resource of its own: two sessions of one person on one resource would take it from each other in turn.
    resource: `phone-${++phones}`,
    password: `${user}-secret`,
    service: server.service,
    ca: readFileSync(server.caFile, 'utf8'),
    allowPlaintext: false,
    reconnect: { initialDelayMs: 50, maxDelayMs: 300 },
    log: createLogger(createSink('error', () => {})),
  });
  const messages: Element[] = [];
  s.on('stanza', (st) => {
    if (st.name === 'message' && st.getChild('body')) messages.push(st);
  });
  s.on('online', (_j, resumed) => {
    if (!resumed) void s.send(xml('presence'));
  });
  s.start();
  cleanup.push(() => s.stop());
  await new Promise((r) => s.once('online', r));
  const bare = (j: string | undefined): string => (j ?? '').split('/')[0]!;
  return {
    jid: `${user}@${server.domain}`,
    messages,
    async ask(to, body, count, timeoutMs = 10_000) {
      const seen = messages.length;
      await s.send(xml('message', { type: 'chat', to }, xml('body', {}, body)));
      const from = (): Element[] => messages.slice(seen).filter((m) => bare(m.attrs.from) === bare(to));
      await until(() => from().length >= count, `${count} answer(s) to "${body}"`, { timeoutMs, got: () => from().map((m) => m.getChildText('body')) });
      return from().slice(0, count);
    },
  };
}

async function agentOn(server: Prosody, user: string, opts: { extra?: string; viewers?: string[] } = {}): Promise<RunningAgent> {
  const a = await startAgent({
    owners: [`alice@${server.domain}`],
    viewers: opts.viewers,
    account: { user, jid: `${user}@${server.domain}`, password: `${user}-secret` },
    service: server.service,
    caFile: server.caFile,
    devices: DEVICES,
    extra: opts.extra,
  });
  cleanup.push(() => a.stop());
  return a;
}

const T0 = Date.now();
/** When the highest reading was taken. */
const T_MAX = T0 - 6 * HOUR;
const GAP: [number, number] = [T0 - 14 * HOUR, T0 - 12 * HOUR];

/** A day of readings a minute apart, a two-hour gap, one peak of 27.5 °C six hours ago. */
function fillHistory(a: RunningAgent): void {
  for (let t = T0 - 24 * HOUR + 2 * MINUTE; t <= T0 - 3 * MINUTE; t += MINUTE) {
    if (t >= GAP[0] && t < GAP[1]) continue;
    a.agent.store.history.record('temperature', t, t === T_MAX ? 27.5 : 20 + 2 * Math.sin(((t - T0) / (24 * HOUR)) * 2 * Math.PI));
  }
  a.agent.store.history.flush();
}

/** The file behind a chart URL, fetched over HTTPS trusting only that server's certificate. */
function fetchPng(url: string, server: Prosody): Promise<{ status: number; type: string | undefined; body: Buffer }> {
  return new Promise((resolve, reject) => {
    https
      .get(url, { ca: readFileSync(server.caFile), agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, type: res.headers['content-type'], body: Buffer.concat(chunks) }));
        res.on('error', reject);
      })
      .on('error', reject);
  });
}

/** The image message of an answer: its body is exactly the URL the oob element names. */
function imageUrl(m: Element): string {
  const url = m.getChild('x', NS_OOB)?.getChildText('url');
  expect(url).toBeTruthy();
  expect(m.getChildText('body')).toBe(url);
  return url!;
}

const dataPixels = (img: Decoded) => pixelsOf(img, [LINE, ENVELOPE]);

describe('charts through HTTP File Upload', () => {
  let gw: RunningAgent;
  let alice: Person;
  beforeAll(async () => {
    gw = await agentOn(upload, 'gw', { extra: ALARM, viewers: [`bob@${upload.domain}`] });
    fillHistory(gw);
    alice = await person(upload, 'alice');
  });

  it('answers the owner with the sparkline text, then a PNG whose line follows the stored readings', async () => {
    const [text, image] = await alice.ask(gw.fullJid, 'history temperature', 2);
    expect(text!.getChildText('body')).toMatch(/^temperature, last 24 h: \S+ min .* max 27\.5 °C \(\d{1},?\d{3} readings\)$/);
    expect(text!.getChild('x', NS_OOB)).toBeUndefined();
    const url = imageUrl(image!);
    expect(url).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/file_share\/[^/]+\/temperature-24h-\d{8}-\d{6}\.png$/);
    const got = await fetchPng(url, upload);
    expect([got.status, got.type]).toEqual([200, 'image/png']);
    const img = decodePng(got.body);
    expect([img.width, img.height]).toEqual([800, 400]);

    // The highest plotted pixels are in the column of the highest reading: place it between the
    // first and the last stored readings, whose columns are the ends of the plotted data.
    const stored = gw.agent.store.history.query('temperature', 0, Date.now());
    const px = dataPixels(img);
    const x0 = Math.min(...px.map((p) => p.x));
    const x1 = Math.max(...px.map((p) => p.x));
    const column = (t: number): number => x0 + ((t - stored[0]!.t) / (stored.at(-1)!.t - stored[0]!.t)) * (x1 - x0);
    const top = Math.min(...px.map((p) => p.y));
    for (const p of px.filter((q) => q.y === top)) expect(Math.abs(p.x - column(T_MAX))).toBeLessThanOrEqual(2);
    // Nothing is drawn across the two hours without readings.
    expect(pixelsOf(img, [LINE, ENVELOPE], { x0: Math.round(column(GAP[0])) + 3, x1: Math.round(column(GAP[1])) - 3, y0: 0, y1: 400 })).toHaveLength(0);
  });

  it('gives a viewer the chart too, since viewers may read the history', async () => {
    const bob = await person(upload, 'bob');
    const [text, image] = await bob.ask(gw.fullJid, 'chart temperature 6h', 2);
    expect(text!.getChildText('body')).toMatch(/^temperature, last 6 h: /);
    const got = await fetchPng(imageUrl(image!), upload);
    expect(decodePng(got.body)).toMatchObject({ width: 800, height: 400 });
  });

  it('refuses a stranger as always, with no chart', async () => {
    const eve = await person(upload, 'eve');
    const [refusal] = await eve.ask(gw.fullJid, 'chart temperature', 1);
    expect(refusal!.getChildText('body')).toBe('Sorry, this gateway only answers its owners.');
    // The owner's next answer has come; nothing else went to the stranger meanwhile.
    await alice.ask(gw.fullJid, 'get temperature', 1);
    expect(eve.messages.filter((m) => m.getChild('x', NS_OOB))).toHaveLength(0);
    expect(eve.messages).toHaveLength(1);
  });

  it("follows an alarm with a chart of the device's last hour, the alarm first", async () => {
    const seen = alice.messages.length;
    gw.agent.devices.report('temperature', 31);
    const mine = (): Element[] => alice.messages.slice(seen);
    await until(() => mine().some((m) => m.getChild('x', NS_OOB)), 'the alarm chart', { got: () => mine().map((m) => m.getChildText('body')) });
    const bodies = mine().map((m) => m.getChildText('body') ?? '');
    const alarm = bodies.indexOf('⚠ temperature 31.0 °C above 28.0 °C');
    const chart = mine().findIndex((m) => m.getChild('x', NS_OOB));
    expect(alarm).toBeGreaterThanOrEqual(0);
    expect(chart).toBeGreaterThan(alarm);
    const url = imageUrl(mine()[chart]!);
    expect(url).toMatch(/temperature-1h-/);
    const img = decodePng((await fetchPng(url, upload)).body);
    // The last hour holds the start-up reading and the alarm's 31 °C, the highest, at the right end.
    const px = dataPixels(img);
    const top = Math.min(...px.map((p) => p.y));
    expect(Math.max(...px.filter((p) => p.y === top).map((p) => p.x))).toBeGreaterThan(Math.max(...px.map((p) => p.x)) - 4);
  });
});

describe('charts that cannot be uploaded', () => {
  it('says the server refused the upload slot (daily quota), in the text answer', async () => {
    const gw = await agentOn(quota, 'gw');
    fillHistory(gw);
    const alice = await person(quota, 'alice');
    const [answer] = await alice.ask(gw.fullJid, 'history temperature', 1);
    expect(answer!.getChildText('body')).toMatch(/^temperature, last 24 h: .*\nNo chart image: the server refused the upload \(Daily quota reached\)\.$/);
    expect(answer!.getChild('x', NS_OOB)).toBeUndefined();
  });

  it("keeps to the server's advertised max-file-size, and says so", async () => {
    const gw = await agentOn(small, 'gw');
    fillHistory(gw);
    const alice = await person(small, 'alice');
    const [answer] = await alice.ask(gw.fullJid, 'history temperature', 1);
    expect(answer!.getChildText('body')).toMatch(/\nNo chart image: the image \(\d+ KiB\) is larger than the server's upload limit \(1000 bytes\)\.$/);
  });

  it('answers with the text alone on a server without upload, and says why when "chart" was asked', async () => {
    const o = await account('alice');
    const a = await startAgent({ owners: [o.jid], devices: DEVICES });
    cleanup.push(() => a.stop());
    fillHistory(a);
    const owner = await peer(o);
    cleanup.push(() => owner.stop());
    const plain = await owner.chat(a.fullJid, 'history temperature');
    expect(plain).toMatch(/^temperature, last 24 h: \S+ min [^\n]+ readings\)$/);
    const explicit = await owner.chat(a.fullJid, 'chart temperature');
    expect(explicit).toBe(`${plain}\nNo chart image: this server offers no file upload (XEP-0363).`);
  });
});

describe('the renderer chunk', () => {
  it('is not loaded by the running agent until the first chart is asked for', async () => {
    expect(existsSync(CLI)).toBe(true);
    const chunk = readdirSync(join(CLI, '..', 'chunks')).find((f) => /^render-[A-Z0-9]+\.js$/.test(f));
    expect(chunk).toBeDefined();
    // The bundle reaches it only through import(): no static import of it at the top of cli.js.
    const cli = readFileSync(CLI, 'utf8');
    expect(cli).toContain(`import("./chunks/${chunk}")`);
    expect(cli).not.toMatch(new RegExp(`from"\\./chunks/${chunk!.replace('.', '\\.')}"`));

    // Run the built agent with a loader hook that logs every module it loads.
    const dir = mkdtempSync(join(tmpdir(), 'xia-chunk-'));
    const loadLog = join(dir, 'loaded.txt');
    writeFileSync(loadLog, '');
    writeFileSync(join(dir, 'hooks.mjs'), "import { appendFileSync } from 'node:fs';\nexport async function load(url, context, next) { appendFileSync(process.env.XIA_LOAD_LOG, url + '\\n'); return next(url, context); }\n");
    writeFileSync(join(dir, 'register.mjs'), "import { register } from 'node:module';\nregister('./hooks.mjs', import.meta.url);\n");
    const yaml = agentYaml({ account: { user: 'gw2', jid: `gw2@${upload.domain}`, password: '' }, owners: [`alice@${upload.domain}`], service: upload.service, caFile: upload.caFile, devices: DEVICES });
    writeFileSync(join(dir, 'agent.yaml'), yaml);
    const child: ChildProcess = spawn(process.execPath, ['--import', join(dir, 'register.mjs'), CLI, 'run', '--config', join(dir, 'agent.yaml')], {
      env: { ...process.env, XIA_LOAD_LOG: loadLog, XMPP_IOT_AGENT_PASSWORD: 'gw2-secret' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    cleanup.push(async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
    });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    await until(() => /"msg":"online"/.test(out), 'the agent online', { timeoutMs: 20_000, got: () => out.slice(-500) });
    const loaded = (): string => readFileSync(loadLog, 'utf8');
    expect(loaded()).toContain('dist/cli.js');
    expect(loaded()).not.toContain(`chunks/${chunk}`);

    const alice = await person(upload, 'alice');
    // If the answers never come, say what the agent said.
    const answers = await alice.ask(`gw2@${upload.domain}/agent`, 'chart temperature', 2).catch((err: unknown) => {
      throw new Error(`${(err as Error).message}\nthe agent said:\n${out.split('\n').slice(-15).join('\n')}`);
    });
    imageUrl(answers[1]!);
    expect(loaded()).toContain(`chunks/${chunk}`);
  });
});
