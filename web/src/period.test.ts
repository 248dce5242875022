import { describe, expect, test } from 'vitest';

import { dayBounds, dayIn, formatDateTime, isDay, monthBefore, periodOf } from './period';

describe('days and zones', () => {
  test('the day of an instant depends on the zone', () => {
    const at = new Date('2026-11-27T18:30:00Z');
    expect(dayIn(at, 'UTC')).toBe('2026-11-27');
    expect(dayIn(at, 'Asia/Taipei')).toBe('2026-11-28');
    expect(dayIn(at, 'America/Los_Angeles')).toBe('2026-11-27');
  });

  test('a day runs from its first to its last millisecond in the zone', () => {
    const taipei = dayBounds('2026-11-28', 'Asia/Taipei');
    expect(taipei.start.toISOString()).toBe('2026-11-27T16:00:00.000Z');
    expect(taipei.end.toISOString()).toBe('2026-11-28T15:59:59.999Z');
    // A day of 23 hours: New York's clocks went forward on 2026-03-08.
    const ny = dayBounds('2026-03-08', 'America/New_York');
    expect(ny.start.toISOString()).toBe('2026-03-08T05:00:00.000Z');
    expect(ny.end.toISOString()).toBe('2026-03-09T03:59:59.999Z');
  });

  test('one calendar month before, kept inside the shorter month', () => {
    expect(monthBefore('2026-11-28')).toBe('2026-10-28');
    expect(monthBefore('2026-03-31')).toBe('2026-02-28');
    expect(monthBefore('2028-03-30')).toBe('2028-02-29');
    expect(monthBefore('2026-01-15')).toBe('2025-12-15');
  });

  test('only real days count as days', () => {
    expect(isDay('2026-02-28')).toBe(true);
    for (const bad of ['2026-02-29', '2026-13-01', '26-01-01', '2026-1-1', '', '1969-12-31']) expect(isDay(bad)).toBe(false);
  });

  test('the default period is one month before today to today, in the zone', () => {
    const now = new Date('2026-11-27T18:30:00Z');
    const p = periodOf({ from: '', to: '' }, 'Asia/Taipei', now);
    expect([p.fromDay, p.toDay]).toEqual(['2026-10-28', '2026-11-28']);
    expect(p.from).toBe('2026-10-27T16:00:00.000Z');
    expect(p.to).toBe('2026-11-28T15:59:59.999Z');
  });

  test('a quick range ends now', () => {
    const now = new Date('2026-11-28T12:00:00Z');
    const p = periodOf({ from: '2020-01-01', to: '2020-01-02', quick: '24h' }, 'UTC', now);
    expect([p.from, p.to]).toEqual(['2026-11-27T12:00:00.000Z', '2026-11-28T12:00:00.000Z']);
    expect(periodOf({ from: '', to: '', quick: '90d' }, 'UTC', now).fromDay).toBe('2026-08-30');
  });

  test('dates are written the way each language writes them, in the zone in use', () => {
    const iso = '2026-11-27T18:30:05Z';
    expect(formatDateTime(iso, 'en', 'UTC')).toMatch(/Nov 27, 2026.*6:30:05\sPM/);
    expect(formatDateTime(iso, 'zh-TW', 'Asia/Taipei')).toMatch(/2026年11月28日.*2:30:05/);
  });
});
