import { describe, expect, test } from 'vitest';

import { tableColumns } from './details';
import { WORDS, langFromBrowser } from './i18n';

describe('languages', () => {
  test('the first visit follows the browser', () => {
    expect(langFromBrowser(['zh-TW', 'en'])).toBe('zh-TW');
    expect(langFromBrowser(['zh-Hant-HK'])).toBe('zh-TW');
    expect(langFromBrowser(['en-GB', 'zh-TW'])).toBe('en');
    expect(langFromBrowser(['fr-FR', 'de'])).toBe('en');
    expect(langFromBrowser([])).toBe('en');
  });

  test('Traditional Chinese uses the portal page’s own words', () => {
    const t = WORDS['zh-TW'];
    expect([t.title, t.from, t.to, t.dateTime, t.affectedCustomer, t.action, t.partnerUser, t.exportLog, t.subscriptions]).toEqual([
      '活動記錄', '從', '到', '日期 / 時間', '受影響客戶', '動作', '合作夥伴使用者', '匯出記錄', '訂閱',
    ]);
  });

  test('a destination’s lag: how many activities, and how long the oldest has waited', () => {
    const [en, zh] = [WORDS.en, WORDS['zh-TW']];
    expect([en.lag(1, 45), en.lag(12, 180), en.lag(3, 7200), en.lag(1500, 90_061), en.lag(2, null)]).toEqual([
      '1 activity, 45 s', '12 activities, 3 min', '3 activities, 2 h', '1,500 activities, 1 d 1 h', '2 activities',
    ]);
    expect([zh.lag(1, 45), zh.lag(12, 3700), zh.lag(1500, 90_061)]).toEqual(['1 筆活動，45 秒', '12 筆活動，1 小時 1 分鐘', '1,500 筆活動，1 天 1 小時']);
  });

  test('both languages have every word', () => {
    expect(Object.keys(WORDS['zh-TW']).sort()).toEqual(Object.keys(WORDS.en).sort());
  });
});

describe('the details tree', () => {
  test('an array of like objects reads as a table; anything else as a tree', () => {
    expect(tableColumns([{ sku: 'a', qty: 1 }, { sku: 'b', qty: 2 }])).toEqual(['sku', 'qty']);
    expect(tableColumns([{ sku: 'a' }])).toBeNull();
    expect(tableColumns([{ sku: 'a' }, { qty: 2 }])).toBeNull();
    expect(tableColumns([{ sku: 'a', tags: ['x'] }, { sku: 'b', tags: [] }])).toBeNull();
    expect(tableColumns([1, 2])).toBeNull();
  });
});
