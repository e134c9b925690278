// Structured JSON logging: one object per line on stdout (journald keeps it),
// a namespace per component, debug fields built lazily, secrets never written.

export type Level = 'debug' | 'info' | 'warn' | 'error';
const RANK: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export type Fields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: Fields | (() => Fields)): void;
  info(msg: string, fields?: Fields): void;
  warn(msg: string, fields?: Fields): void;
  error(msg: string, fields?: Fields): void;
  child(ns: string): Logger;
}

export interface LogSink {
  level: Level;
  write(line: string): void;
  /** Strings that must never appear in a log line (passwords). */
  secrets: Set<string>;
}

export function createSink(level: Level = 'info', write: (line: string) => void = (l) => process.stdout.write(l + '\n')): LogSink {
  return { level, write, secrets: new Set() };
}

function redact(line: string, secrets: Set<string>): string {
  for (const s of secrets) {
    if (s.length > 0 && line.includes(s)) line = line.split(s).join('***');
  }
  return line;
}

function errorFields(value: unknown): unknown {
  if (value instanceof Error) {
    const out: Fields = { message: value.message, name: value.name };
    const code = (value as { code?: unknown }).code;
    if (code !== undefined) out.code = code;
    return out;
  }
  return value;
}

export function createLogger(sink: LogSink, ns = 'agent'): Logger {
  const emit = (level: Level, msg: string, fields?: Fields | (() => Fields)): void => {
    if (RANK[level] < RANK[sink.level]) return;
    const extra = typeof fields === 'function' ? fields() : fields;
    const record: Fields = { time: new Date().toISOString(), level, ns, msg };
    if (extra) for (const [k, v] of Object.entries(extra)) record[k] = errorFields(v);
    let line: string;
    try {
      line = JSON.stringify(record);
    } catch {
      line = JSON.stringify({ time: record.time, level, ns, msg, note: 'fields not serialisable' });
    }
    sink.write(redact(line, sink.secrets));
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    child: (sub) => createLogger(sink, `${ns}:${sub}`),
  };
}

/** A logger that writes nothing, for tests and library use. */
export const silentLogger: Logger = createLogger({ level: 'error', write: () => {}, secrets: new Set() });
