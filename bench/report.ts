// Writes BENCHMARKS.md from a results object.

import { existsSync, readFileSync, writeFileSync } from 'node:fs';

import type { Results } from './run.js';

const kib = (k: number): string => `${(k / 1024).toFixed(1)} MiB`;

export function writeReport(r: Results, path: string): void {
  const names = Object.keys(r.online);
  const agent = r.online['xmpp-iot-agent']!;
  const lines: string[] = [];
  lines.push('# Benchmarks', '');
  lines.push(`Measured ${r.when.slice(0, 10)} with \`npm run bench${r.quick ? ' -- --quick' : ''}\` on ${r.machine.cpus} × ${r.machine.model}, Node ${r.machine.node}, Prosody 0.12 on loopback (private instance, no \`limits\`, Nagle off). Everything below comes from one run; machines here are noisy, so read ratios and orders of magnitude, not the last digit.`, '');
  lines.push('Baselines (in `bench/`): the smallest gateway agent one would write with the stock @xmpp/client (log in, presence with a status, answer ping and version), once with its stock SCRAM and once with native PBKDF2 swapped in; and the same agent with Debian\'s slixmpp.', '');
  lines.push('## Time to online and memory', '');
  lines.push('Process start → the owner sees its available presence (median); CPU used by then; memory after 10 s idle. The agent runs 8 simulated devices. RssAnon is the private memory, what a small board pays; VmRSS also counts the runtime\'s shared file pages.', '');
  lines.push('| agent | online after | CPU to online | VmRSS idle | RssAnon idle | RssAnon vs agent |', '| --- | ---: | ---: | ---: | ---: | ---: |');
  for (const n of names) {
    const v = r.online[n]!;
    const idle = v.idle ?? { vmRssKiB: NaN, rssAnonKiB: NaN };
    lines.push(`| ${n} | ${v.medianMs} ms | ${v.cpuSecondsToOnline} s | ${kib(idle.vmRssKiB)} | ${kib(idle.rssAnonKiB)} | ${(idle.rssAnonKiB / (agent.idle?.rssAnonKiB ?? NaN)).toFixed(2)}× |`);
  }
  lines.push('', `After ${r.afterReadings.readings.toLocaleString('en')} readings (8 replayed traces, as fast as timers go): VmRSS ${kib(r.afterReadings.vmRssKiB)}, RssAnon ${kib(r.afterReadings.rssAnonKiB)}. The growth is not a leak: the replay driver keeps its traces (100,000 samples) in memory, and V8 keeps the pages its heap grew into while garbage piled up between collections; after a forced collection the heap holds 6.6 MB more than before the run, about the traces' size (measured once, 2026-11-25, with --expose-gc). The systemd unit caps the heap at 96 MB (\`--max-old-space-size\`), so on a small board the collector runs sooner.`, '');
  lines.push('Since the durable store (SQLite through better-sqlite3) the agent\'s idle RssAnon is about 7 MiB higher than the 12.2 MiB measured before it. Opening the store alone costs about 0.7 MiB (measured in a bare process); fixing glibc\'s mmap threshold (`MALLOC_MMAP_THRESHOLD_=131072`) takes back about 3 MiB, so much of the rest is malloc keeping freed memory rather than live data. Not yet attributed further.', '');
  lines.push('The baselines load less: no YAML, no device registry, no XEP handlers. The stock SCRAM baseline carries its WebCrypto PBKDF2 garbage; with native PBKDF2 it is the floor for "an @xmpp/client process that is online".', '');
  lines.push('## CPU per login', '', 'One SCRAM-SHA-1 client computation (the PBKDF2 key derivation dominates), median:', '', '| mechanism | CPU seconds |', '| --- | ---: |');
  for (const [k, v] of Object.entries(r.loginCpuSeconds)) lines.push(`| ${k} | ${v} |`);
  lines.push('', 'The agent also keeps the salted password, so a reconnect runs no PBKDF2 at all.', '');
  lines.push('## Control round trip', '', 'Owner → Prosody → agent → firmware simulator on a pty (SET, ACK) → agent → owner, against XEP-0199 pings as the floor:', '', '| request | p50 | p99 |', '| --- | ---: | ---: |');
  for (const [k, v] of Object.entries(r.controlRoundTripMs)) lines.push(`| ${k} | ${v.p50} ms | ${v.p99} ms |`);
  lines.push('', 'At 50 in flight the requests queue behind one another at the firmware, which applies one SET at a time: the figure is the time to drain the queue, not a slow reply.', '');
  lines.push('Baselines\' ping throughput through the same Prosody (sequential pings): ' + Object.entries(r.pingThroughputPerSecond).map(([k, v]) => `${k} ${v}/s`).join(', ') + '.', '');
  lines.push('The private Prosody loads mod_smacks (XEP-0198), and the stock @xmpp/client enables stream management whenever a server offers it. Its rate was about 800/s in runs before mod_smacks was loaded; with it every stanza draws an `<r/>` from the server and an `<a/>` back, and the stock socket keeps Nagle\'s algorithm on, so a reply can wait for a delayed ACK: the ~45 ms per ping is that signature. The agent sets TCP_NODELAY; pings through its session code stay under a millisecond at the median (the floors above).', '');
  const w = r.wire;
  lines.push('## Wire bytes on a real trace', '');
  lines.push(`The hourly Seattle normals (vega-datasets), interpolated to one sample a minute, ${w.days} days (${w.samplesPerSensor.toLocaleString('en')} samples × temperature, pressure, wind), fed through the agent on a fake clock. Bytes the agent wrote to its socket (TLS included):`, '');
  lines.push('| publisher | bytes | presences | largest owner-vs-truth difference |', '| --- | ---: | ---: | --- |');
  const err = (e: { temperature: number; pressure: number; wind: number }): string => `${e.temperature} °C, ${e.pressure} hPa, ${e.wind} m/s`;
  lines.push(`| agent, deadbands 0.2 °C / 0.5 hPa / 0.2 m/s | ${w.filtered.bytes.toLocaleString('en')} | ${w.filtered.presences.toLocaleString('en')} | ${err(w.filtered.maxError)} |`);
  lines.push(`| same agent, every sample | ${w.everySample.bytes.toLocaleString('en')} | ${w.everySample.presences.toLocaleString('en')} | ${err(w.everySample.maxError)} |`);
  lines.push(`| naive MQTT 3.1.1, every sample (computed, no TLS, no TCP) | ${w.mqttEverySampleBytes.toLocaleString('en')} | — | 0 |`);
  lines.push('', 'Every sample feeds three readings; with no deadband each can change the status, so the every-sample agent sends up to three presences per sample (each carrying all three values), like the MQTT publisher\'s three messages.', '');
  lines.push(`With deadbands the agent sends ${(w.everySample.bytes / w.filtered.bytes).toFixed(1)}× fewer bytes than publishing every sample and ${(w.mqttEverySampleBytes / w.filtered.bytes).toFixed(1)}× fewer than the naive MQTT publisher, while an owner's view is never further from the truth than the deadband. CPU per 10,000 readings processed: ${w.filtered.cpuSecondsPer10kReadings} s (with deadbands), ${w.everySample.cpuSecondsPer10kReadings} s (every sample).`, '');
  const f = r.fleet;
  lines.push('## Fleet', '', `${f.agents} gateway sessions (the agent's own session code: STARTTLS, SCRAM-SHA-1, bind, one presence) started at once against one Prosody: ${f.online} online after ${f.allOnlineMs} ms, ${f.failures} failures; Prosody's RSS ${kib(f.prosodyRssIdleKiB)} idle → ${kib(f.prosodyRssFleetKiB)}, about ${f.prosodyKiBPerAgent} KiB per gateway.`, '');
  lines.push('## Reproduce', '', '```sh', 'npm run bench            # about 5 minutes; --quick for a one-minute smoke run, --agents N for the fleet', '```', '', 'Raw figures: `bench/results.json` (not committed).', '');
  // The soak (npm run soak) writes its own section; a bench run keeps it.
  writeFileSync(path, lines.join('\n') + (soakSection(path) ?? ''));
}

const SOAK_BEGIN = '<!-- soak:begin -->';
const SOAK_END = '<!-- soak:end -->';

function soakSection(path: string): string | undefined {
  if (!existsSync(path)) return undefined;
  const text = readFileSync(path, 'utf8');
  const a = text.indexOf(SOAK_BEGIN);
  const b = text.indexOf(SOAK_END);
  return a >= 0 && b > a ? '\n' + text.slice(a, b + SOAK_END.length) + '\n' : undefined;
}

export interface SoakFigures {
  when: string;
  minutes: number;
  alarms: { sent: number; received: number; lost: number; duplicates: number; reordered: number; outboxLeft: number; droppedWhenFull: number };
  faults: { serverRestartsGraceful: number; serverRestartsKilled: number; agentKills: number; networkCuts: number; serialCuts: number };
  recoveryMs: { serverGraceful: string; serverKilled: string; agentKilled: string; network: string; serial: string };
  sessions: { newSessions: number; resumed: number };
  rss: { startKiB: number; endKiB: number; vmRssStartKiB: number; vmRssEndKiB: number };
  /** The Pi's own faults (bench/pi-faults.ts), where the machine allowed them. */
  piFaults?: {
    bootWithoutNetwork: number;
    clockJumps: number;
    clockJumpsLogged: number;
    diskFull: number;
    /** Of those, the times the agent had to write meanwhile and was refused. */
    diskFullRefused?: number;
    readOnly: number;
    certRenewals: number;
    renewalsNoticed: number;
    recoveryMs: { bootWithoutNetwork: string; diskFull: string; readOnly: string };
    skipped: string[];
  };
  /** One agent process from minute 5 to the end (soaks of 10 minutes or more). */
  drift?: { fromMinute: number; toMinute: number; rssAnonKiB: { from: number; to: number; drift: number }; sdWriteBytes: number; sdWriteBytesPerHour: number; alarmsPerHour: number; quietWriteBytesPerHour?: number };
}

/** The Pi's own faults and the one-process figures, as lines of the soak section (empty when the run had none). */
function piLines(r: SoakFigures): string[] {
  const out: string[] = [];
  const p = r.piFaults;
  if (p) {
    out.push(
      '',
      `The Pi's own faults in the same run: ${p.bootWithoutNetwork} starts with the network down (8 s), ${p.clockJumps} clock jumps by NTP (6 h forward, 2 h back, then right: ${p.clockJumpsLogged} jumps logged), ${p.diskFull} times the SD card full (5 s${p.diskFullRefused !== undefined ? `; ${p.diskFullRefused} of them refused a write of the agent's` : ''}), ${p.readOnly} times the card read-only (ext4 after an I/O error; then fsck and mounted again under the running agent), ${p.certRenewals} server certificate renewals (${p.renewalsNoticed} noticed on the next connection).${p.skipped.length ? ` Skipped on this machine: ${p.skipped.join('; ')}.` : ''}`,
      '',
      '| recovery | time |',
      '| --- | --- |',
      `| online after a start without network, from the network's return | ${p.recoveryMs.bootWithoutNetwork} |`,
      `| the store writing again after the card had room again | ${p.recoveryMs.diskFull} |`,
      `| the store writing again after the read-only card was mounted again | ${p.recoveryMs.readOnly} |`,
    );
  }
  const d = r.drift;
  if (d) {
    const mib = (k: number): string => (k / 1024).toFixed(2);
    out.push(
      '',
      `One agent process from minute ${d.fromMinute} to minute ${d.toMinute} (no agent kills after minute 5): RssAnon ${mib(d.rssAnonKiB.from)} → ${mib(d.rssAnonKiB.to)} MiB, **drift ${d.rssAnonKiB.drift >= 0 ? '+' : ''}${mib(d.rssAnonKiB.drift)} MiB** (goal: under 2 MiB). Written to the SD card (\`/proc/PID/io\` write_bytes, the block layer): ${(d.sdWriteBytes / 1_048_576).toFixed(1)} MiB, **${(d.sdWriteBytesPerHour / 1_048_576).toFixed(1)} MiB per hour** at ${d.alarmsPerHour.toLocaleString('en')} alarm messages an hour (the flapping tank; each one written, marked tried and deleted, fsynced), about ${d.alarmsPerHour > 0 ? Math.round(d.sdWriteBytesPerHour / d.alarmsPerHour / 1024) : '—'} KiB per alarm with the history and the rest.${d.quietWriteBytesPerHour !== undefined ? ` With nothing alarming (two quiet minutes at the end: readings, history and presence only): ${(d.quietWriteBytesPerHour / 1024).toFixed(0)} KiB per hour.` : ''}`,
    );
  }
  return out;
}

/** Replace (or add) the soak section of BENCHMARKS.md. */
export function writeSoakSection(path: string, r: SoakFigures, pass: boolean): void {
  const f = r.faults;
  const a = r.alarms;
  const body = [
    SOAK_BEGIN,
    '## Soak: losing nothing when the network drops',
    '',
    `Measured ${r.when.slice(0, 10)} with \`npm run soak${r.minutes === 2 ? '' : ` -- --minutes ${r.minutes}`}\` (${r.minutes} min): the agent as its own process, a private Prosody, the firmware simulator on a pty, and a tank level crossing its alarm threshold every 0.6 s. On a schedule: ${f.serverRestartsGraceful} graceful Prosody restarts (SIGTERM), ${f.serverRestartsKilled} Prosody kills (SIGKILL, then start), ${f.agentKills} agent kills (SIGKILL, then start on the same state; the server archives messages, XEP-0313), ${f.networkCuts} network cuts of 2 s (a TCP proxy drops both sides and refuses connections), ${f.serialCuts} serial cable pulls of 2 s. The owner counts alarms by message id. **${pass ? 'Pass' : 'FAIL'}.**`,
    '',
    '| alarms raised | received by the owner | lost | duplicated | out of order | left in the outbox | dropped (outbox full) |',
    '| ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    `| ${a.sent} | ${a.received} | ${a.lost} | ${a.duplicates} | ${a.reordered} | ${a.outboxLeft} | ${a.droppedWhenFull} |`,
    '',
    '| recovery | time to online again |',
    '| --- | --- |',
    `| Prosody restarted (SIGTERM), from listening again | ${r.recoveryMs.serverGraceful} |`,
    `| Prosody killed (SIGKILL) and started, from listening again | ${r.recoveryMs.serverKilled} |`,
    `| agent killed (SIGKILL) and started again | ${r.recoveryMs.agentKilled} |`,
    `| network back after a 2 s cut | ${r.recoveryMs.network} |`,
    `| serial cable back (to the board's HELLO) | ${r.recoveryMs.serial} |`,
    '',
    `Sessions: ${r.sessions.newSessions} new, ${r.sessions.resumed} resumed (XEP-0198). Agent memory (the last agent process): RssAnon ${(r.rss.startKiB / 1024).toFixed(1)} MiB at start → ${(r.rss.endKiB / 1024).toFixed(1)} MiB at the end (VmRSS ${(r.rss.vmRssStartKiB / 1024).toFixed(1)} → ${(r.rss.vmRssEndKiB / 1024).toFixed(1)} MiB).`,
    ...piLines(r),
    '',
    'Recovery times include the agent\'s reconnect backoff (200 ms doubling to 2 s in this config, jittered). "Out of order" counts owner-side arrivals whose outbox sequence number is lower than the one before; while the owner itself is reconnecting after a server restart, the server hands over its stored messages and live ones as they come.',
    SOAK_END,
  ].join('\n');
  const text = existsSync(path) ? readFileSync(path, 'utf8') : '# Benchmarks\n';
  const a0 = text.indexOf(SOAK_BEGIN);
  const b0 = text.indexOf(SOAK_END);
  const out = a0 >= 0 && b0 > a0 ? text.slice(0, a0) + body + text.slice(b0 + SOAK_END.length) : text.replace(/\n*$/, '\n\n') + body + '\n';
  writeFileSync(path, out);
}
