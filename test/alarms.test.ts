import { describe, expect, it } from 'vitest';
import { Alarms } from '../src/core/alarms.js';

describe('alarms', () => {
  it('raises once on crossing, holds through the hysteresis band, clears once', () => {
    const a = new Alarms([{ device: 't', above: 30, hysteresis: 0.5 }]);
    const seq = [29, 30.2, 31, 29.8, 30.4, 29.6, 29.4, 30.1];
    const events = seq.flatMap((v) => a.evaluate('t', v).map((e) => `${e.kind}@${v}`));
    expect(events).toEqual(['raised@30.2', 'cleared@29.4', 'raised@30.1']);
    expect(a.active()).toEqual(['t']);
  });

  it('watches both sides, ignores other devices and non-numbers', () => {
    const a = new Alarms([{ device: 't', above: 30, below: 5, hysteresis: 1 }]);
    expect(a.evaluate('t', 4).map((e) => e.side)).toEqual(['below']);
    expect(a.evaluate('t', 5.5)).toEqual([]);
    expect(a.evaluate('t', 6.1).map((e) => e.kind)).toEqual(['cleared']);
    expect(a.evaluate('other', 100)).toEqual([]);
    expect(a.evaluate('t', true)).toEqual([]);
    expect(a.active()).toEqual([]);
  });

  it('forgets a removed device: its active alarms are returned once and no longer active', () => {
    const a = new Alarms([
      { device: 't', above: 30, hysteresis: 1 },
      { device: 'u', below: 5, hysteresis: 1 },
    ]);
    a.evaluate('t', 31);
    a.evaluate('u', 4);
    expect(a.forget('t')).toEqual([{ device: 't', side: 'above', threshold: 30 }]);
    expect(a.active()).toEqual(['u']);
    expect(a.forget('t')).toEqual([]);
    expect(a.forget('never-seen')).toEqual([]);
  });
});
