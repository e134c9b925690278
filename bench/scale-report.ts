// Writes the fleet-at-scale section of BENCHMARKS.md (npm run bench:fleet)
// between its own markers, leaving every other section as it is.

import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import type { FleetRun, ScaleResult, StormRun } from './scale.js';

export const SCALE_BEGIN = '<!-- fleet-scale:begin -->';
export const SCALE_END = '<!-- fleet-scale:end -->';

const s = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

function fleetRow(f: FleetRun): string {
  const nodes = f.perNode ? ` (${Object.entries(f.perNode).map(([k, v]) => `${k}: ${v}`).join(', ')})` : '';
  return `| ${f.server} | ${f.online} / ${f.gateways}${nodes} | ${f.failures} (${f.loginRetries} retries) | ${s(f.allOnlineMs)} | ${f.serverRssIdleMiB} → ${f.serverRssFleetMiB} MiB | ${f.serverKiBPerGateway} KiB | ${s(f.accountsMs)} |`;
}

function stormRow(r: StormRun): string {
  return `| ${r.reconnect} | ${r.back} / ${r.gateways} | ${s(r.allBackMs)} | ${r.peakCpuPercent} % | ${r.serverCpuS} s | ${r.attempts} |`;
}

export function scaleSection(r: ScaleResult): string {
  const lines = [
    SCALE_BEGIN,
    '## Fleet at scale',
    '',
    `Measured ${r.date} with \`npm run bench:fleet\` on the 2-core machine: ${r.gateways} gateway sessions, each the agent's own session code (TLS, SCRAM-SHA-1 with its cached salted password, bind, XEP-0198, a presence), all in one Node process (a machine of 2 cores cannot run ${r.gateways} agent processes; the sessions and the server share those 2 cores). Server memory is VmRSS from /proc (for the cluster, both nodes added up).`,
    '',
    '| server | online | failures | all online after | server RSS, idle → with the fleet | per gateway | accounts created (bulk) |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
    fleetRow(r.prosody),
    ...(r.cluster ? [fleetRow(r.cluster)] : []),
    '',
    'Accounts: Prosody through `prosodyctl register`, four at a time; ejabberd through one `ejabberdctl import_piefxis` of an XEP-0227 file. On the cluster every gateway was given both nodes, half preferring each.',
    '',
    `### Login storm: Prosody restarted under ${r.gateways} connected gateways`,
    '',
    'The fleet has been online longer than the agent\'s 10 s stability window (so its backoff starts over at the shortest delay, as for a fleet that has run for hours). The server is stopped (SIGTERM: it closes every stream) and started again; times are from it listening again to the last gateway online with a new session. Peak CPU is the server\'s highest use over a 250 ms window (100 % is one core); attempts counts the reconnects the gateways scheduled, failed ones included. Prosody runs its connections on one core, so 100 % is all of it.',
    '',
    '| reconnect policy | back | all back after | server peak CPU | server CPU until all back | reconnect attempts |',
    '| --- | ---: | ---: | ---: | ---: | ---: |',
    ...r.storms.map(stormRow),
    SCALE_END,
  ];
  return lines.join('\n');
}

/** Replace (or add, at the end) the fleet-at-scale section. */
export function writeScaleSection(path: string, r: ScaleResult): void {
  const body = scaleSection(r);
  const text = existsSync(path) ? readFileSync(path, 'utf8') : '# Benchmarks\n';
  const a = text.indexOf(SCALE_BEGIN);
  const b = text.indexOf(SCALE_END);
  const out = a >= 0 && b > a ? text.slice(0, a) + body + text.slice(b + SCALE_END.length) : text.replace(/\n*$/, '\n\n') + body + '\n';
  writeFileSync(path, out);
}
