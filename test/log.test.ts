import { describe, expect, it } from 'vitest';
import { createLogger, createSink } from '../src/runtime/log.js';

describe('log', () => {
  it('writes one JSON object per line, namespaced, with error fields', () => {
    const lines: string[] = [];
    const log = createLogger(createSink('info', (l) => lines.push(l))).child('xmpp');
    log.warn('connection error', { error: Object.assign(new Error('refused'), { code: 'ECONNREFUSED' }) });
    expect(JSON.parse(lines[0]!)).toMatchObject({ level: 'warn', ns: 'agent:xmpp', msg: 'connection error', error: { message: 'refused', code: 'ECONNREFUSED' } });
  });

  it('builds debug fields only when debug is on', () => {
    const lines: string[] = [];
    let built = 0;
    const log = createLogger(createSink('info', (l) => lines.push(l)));
    log.debug('x', () => (built++, {}));
    expect(built).toBe(0);
    expect(lines).toHaveLength(0);
  });

  it('masks registered secrets wherever they appear', () => {
    const lines: string[] = [];
    const sink = createSink('debug', (l) => lines.push(l));
    sink.secrets.add('hunter2');
    createLogger(sink).info('oops hunter2', { nested: { value: 'xhunter2x' } });
    expect(lines[0]).not.toContain('hunter2');
    expect(lines[0]).toContain('***');
  });
});
