// The claim code on disk: claim.json in the state dir, beside agent.db. Not
// in the SQLite file, because the running agent holds that exclusively and
// the code must also be read and made by `xmpp-iot-agent claim` while the
// agent runs, and written onto an SD card by `image` before any state exists.
// The agent reads it on every claim, so a code made by the CLI counts at once.

import { chownSync, closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';

export const CLAIM_FILE = 'claim.json';

export type ClaimState =
  /** A code waiting for its person. `expires` undefined: made by `image`, its clock starts at the agent's first start (ttlMs). */
  | { state: 'open'; code: string; created: number; expires?: number; ttlMs: number }
  /** No code: claimed (by whom, when), or closed because the gateway has owners. */
  | { state: 'done'; at: number; by?: string };

export class ClaimFileError extends Error {
  constructor(
    message: string,
    readonly path: string,
  ) {
    super(message);
    this.name = 'ClaimFileError';
  }
}

export const claimPath = (stateDir: string): string => join(stateDir, CLAIM_FILE);

function parse(text: string, path: string): ClaimState {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new ClaimFileError(`${path} is not JSON`, path);
  }
  const o = (v ?? {}) as Record<string, unknown>;
  if (o.state === 'open' && typeof o.code === 'string' && typeof o.created === 'number' && typeof o.ttlMs === 'number' && (o.expires === undefined || typeof o.expires === 'number')) {
    return { state: 'open', code: o.code, created: o.created, ttlMs: o.ttlMs, ...(o.expires !== undefined ? { expires: o.expires as number } : {}) };
  }
  if (o.state === 'done' && typeof o.at === 'number' && (o.by === undefined || typeof o.by === 'string')) {
    return { state: 'done', at: o.at, ...(o.by !== undefined ? { by: o.by as string } : {}) };
  }
  throw new ClaimFileError(`${path} holds no claim state`, path);
}

/** The claim state, or undefined when there is none yet. */
export function readClaim(stateDir: string): ClaimState | undefined {
  const path = claimPath(stateDir);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    throw new ClaimFileError(`cannot read ${path}: ${code ?? String(err)}`, path);
  }
  return parse(text, path);
}

/** The state as file content (also what `image` puts on the card). */
export const claimJson = (s: ClaimState): string => `${JSON.stringify(s)}\n`;

/**
 * Writes the state whole or not at all (a temporary file, synced, renamed
 * over), readable by its owner only. Run as root (sudo xmpp-iot-agent claim),
 * the file is given to the state dir's owner, so the agent's user can read it.
 */
export function writeClaim(stateDir: string, s: ClaimState): void {
  const path = claimPath(stateDir);
  try {
    mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    const tmp = `${path}.${process.pid}.tmp`;
    const fd = openSync(tmp, 'w', 0o600);
    try {
      writeSync(fd, claimJson(s));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    if (typeof process.getuid === 'function' && process.getuid() === 0) {
      const dir = statSync(stateDir);
      if (dir.uid !== 0) chownSync(tmp, dir.uid, dir.gid);
    }
    renameSync(tmp, path);
  } catch (err) {
    if (err instanceof ClaimFileError) throw err;
    throw new ClaimFileError(`cannot write ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, path);
  }
}
