import { closest } from '../core/words.js';

// A tiny schema checker: walks untrusted YAML, collects every problem as
// `path: message` (never stops at the first), and returns typed values.

export interface Issue {
  path: string;
  message: string;
}

export class Checker {
  readonly issues: Issue[] = [];

  fail(path: string, message: string): undefined {
    this.issues.push({ path, message });
    return undefined;
  }

  /** An object; reports keys not in `known` (typos are the commonest config error). */
  object(path: string, value: unknown, known: readonly string[], required = true): Record<string, unknown> | undefined {
    if (value === undefined || value === null) {
      if (required) this.fail(path, 'is required');
      return undefined;
    }
    if (typeof value !== 'object' || Array.isArray(value)) {
      return this.fail(path, `expected a mapping, got ${show(value)}`);
    }
    const rec = value as Record<string, unknown>;
    for (const key of Object.keys(rec)) {
      if (!known.includes(key)) {
        const hint = closest(key, known);
        this.fail(join(path, key), `unknown key${hint ? ` (did you mean "${hint}"?)` : ''}; expected one of ${known.join(', ')}`);
      }
    }
    return rec;
  }

  string(path: string, value: unknown, opts: { required?: boolean; pattern?: RegExp; what?: string } = {}): string | undefined {
    if (value === undefined || value === null) {
      if (opts.required) this.fail(path, `is required (${opts.what ?? 'a string'})`);
      return undefined;
    }
    if (typeof value !== 'string' || value.length === 0) {
      return this.fail(path, `expected ${opts.what ?? 'a non-empty string'}, got ${show(value)}`);
    }
    if (opts.pattern && !opts.pattern.test(value)) {
      return this.fail(path, `expected ${opts.what ?? `a string matching ${opts.pattern}`}, got ${show(value)}`);
    }
    return value;
  }

  number(path: string, value: unknown, opts: { min?: number; max?: number; integer?: boolean } = {}): number | undefined {
    if (value === undefined || value === null) return undefined;
    const what = `${opts.integer ? 'an integer' : 'a number'}${range(opts)}`;
    if (typeof value !== 'number' || !Number.isFinite(value)) return this.fail(path, `expected ${what}, got ${show(value)}`);
    if (opts.integer && !Number.isInteger(value)) return this.fail(path, `expected ${what}, got ${show(value)}`);
    if ((opts.min !== undefined && value < opts.min) || (opts.max !== undefined && value > opts.max)) {
      return this.fail(path, `expected ${what}, got ${show(value)}`);
    }
    return value;
  }

  boolean(path: string, value: unknown): boolean | undefined {
    if (value === undefined || value === null) return undefined;
    if (typeof value !== 'boolean') return this.fail(path, `expected true or false, got ${show(value)}`);
    return value;
  }

  oneOf<T extends string>(path: string, value: unknown, choices: readonly T[], required = false): T | undefined {
    if (value === undefined || value === null) {
      if (required) this.fail(path, `is required (one of ${choices.join(', ')})`);
      return undefined;
    }
    if (typeof value !== 'string' || !(choices as readonly string[]).includes(value)) {
      return this.fail(path, `expected one of ${choices.join(', ')}, got ${show(value)}`);
    }
    return value as T;
  }

  array(path: string, value: unknown): unknown[] | undefined {
    if (value === undefined || value === null) return undefined;
    if (!Array.isArray(value)) return this.fail(path, `expected a list, got ${show(value)}`);
    return value;
  }

  /** A duration: a number of seconds or a string like "500ms", "30s", "5m", "1h". Returns milliseconds. */
  duration(path: string, value: unknown, opts: { minMs?: number } = {}): number | undefined {
    if (value === undefined || value === null) return undefined;
    const ms = parseDuration(value);
    if (ms === undefined) return this.fail(path, `expected a duration such as 30, "30s", "5m" or "1h", got ${show(value)}`);
    if (opts.minMs !== undefined && ms < opts.minMs) return this.fail(path, `expected at least ${opts.minMs} ms, got ${show(value)}`);
    // Node's timers hold at most 2^31-1 ms; a longer delay would silently become 1 ms.
    if (ms > MAX_DURATION_MS) return this.fail(path, `expected at most 24 days, got ${show(value)}`);
    return ms;
  }
}

export const MAX_DURATION_MS = 2_147_483_647;

export function parseDuration(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? value * 1000 : undefined;
  if (typeof value !== 'string') return undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/.exec(value);
  if (!m) return undefined;
  const n = Number(m[1]);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[(m[2] ?? 's') as 'ms' | 's' | 'm' | 'h' | 'd'];
  return n * unit;
}

export function join(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`;
  return path ? `${path}.${key}` : key;
}

export function show(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'string') return JSON.stringify(value);
  return String(value);
}

function range(o: { min?: number; max?: number }): string {
  if (o.min !== undefined && o.max !== undefined) return ` from ${o.min} to ${o.max}`;
  if (o.min !== undefined) return ` ≥ ${o.min}`;
  if (o.max !== undefined) return ` ≤ ${o.max}`;
  return '';
}
