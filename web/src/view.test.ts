import { describe, expect, test } from 'vitest';

import { defaultView, fromSearch, toSearch, type View } from './view';

describe('the view in the URL', () => {
  test('defaults are left out of the URL; the language is always written', () => {
    expect(toSearch(defaultView('en'))).toBe('?lang=en');
    expect(fromSearch('', 'zh-TW')).toEqual(defaultView('zh-TW'));
  });

  test('every part of a view goes through the URL and back', () => {
    const view: View = {
      from: '2026-10-01',
      to: '2026-10-31',
      customer: '台北雲端 & co',
      action: 'placed an order',
      partnerUser: 'ann@partner.example',
      status: 'failed',
      zone: 'UTC',
      lang: 'zh-TW',
    };
    const search = toSearch(view);
    expect(search).toContain('tz=UTC');
    expect(fromSearch(search, 'en')).toEqual(view);
    const quick: View = { ...defaultView('en'), quick: '7d' };
    expect(toSearch(quick)).toBe('?range=7d&lang=en');
    expect(fromSearch(toSearch(quick), 'en')).toEqual(quick);
  });

  test('what is not understood falls back to the default, never to an error', () => {
    const v = fromSearch('?from=2026-02-30&to=yesterday&status=done&tz=Mars&lang=fr&range=5y&extra=1', 'en');
    expect(v).toEqual(defaultView('en'));
  });

  test('a quick range wins over days', () => {
    const v = fromSearch('?range=24h&from=2026-01-01&to=2026-01-31', 'en');
    expect(v.quick).toBe('24h');
    expect([v.from, v.to]).toEqual(['', '']);
  });
});
