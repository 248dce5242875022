// The Activity Log page in a real browser (Debian's Chromium, driven by playwright-core) against
// the local stack as scripts/dev starts it: the local OpenID Connect provider, cargo lambda
// watch, the emulator and the demo data. Screenshots and figures go to web/test-output/.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import axe from 'axe-core';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';

import { dayIn, monthBefore } from '../src/period';
import { hideAnchors, truncateTail } from './emulator';

const WEB = process.env.ACTIVITY_LOG_WEB_URL ?? 'http://127.0.0.1:8080';
const OUT = new URL('../test-output/', import.meta.url).pathname;
const ZONE = 'Asia/Taipei';
const PASSWORD = 'demo';
const figures: Record<string, number | string> = {};
/** Conditions are checked every 20 ms (not per animation frame, which a busy machine slows). */
const POLL = { polling: 20 };

let browser: Browser;

beforeAll(async () => {
  mkdirSync(OUT, { recursive: true });
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
});

afterAll(async () => {
  await browser?.close();
  writeFileSync(join(OUT, 'figures.json'), `${JSON.stringify(figures, null, 2)}\n`);
  console.log('browser test figures:', figures);
});

async function newContext(lang = 'en-US'): Promise<BrowserContext> {
  return browser.newContext({
    timezoneId: ZONE,
    locale: lang,
    acceptDownloads: true,
    viewport: { width: 1360, height: 900 },
  });
}

/** Signs in through the local provider's form; returns the page showing the log (or its
 * message) and the milliseconds from submitting the form to the first rows on screen. */
async function signIn(context: BrowserContext, email: string, path = '/'): Promise<{ page: Page; submitToRows: number }> {
  const page = await context.newPage();
  await page.goto(WEB + path);
  await page.getByRole('button', { name: /^(Sign in|登入)$/ }).click();
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(PASSWORD);
  const started = Date.now();
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL((u) => u.origin === new URL(WEB).origin && !u.pathname.startsWith('/auth/'));
  try {
    await page.locator('table.log tbody tr[data-key], .message').first().waitFor();
  } catch (e) {
    await shot(page, `sign-in-failed-${email}`);
    throw e;
  }
  return { page, submitToRows: Date.now() - started };
}

async function shot(page: Page, name: string) {
  await page.screenshot({ path: join(OUT, `${name}.png`), fullPage: false });
}

const rows = (page: Page) => page.locator('table.log tbody tr[data-key]');
const keys = (page: Page) => rows(page).evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-key') ?? ''));

/** Clicks Load more until the period is exhausted. */
async function loadAll(page: Page) {
  const more = page.getByRole('button', { name: /^(Load more|載入更多)$/ });
  for (let i = 0; i < 50 && (await more.count()) > 0; i++) {
    const before = await rows(page).count();
    await more.click();
    await page.waitForFunction((n) => document.querySelectorAll('table.log tbody tr[data-key]').length > n || !document.querySelector('.footer-line button'), before, POLL);
  }
  expect(await more.count()).toBe(0);
}

/** The access token the page holds (sessionStorage), to ask the API what the view should hold. */
async function accessToken(page: Page): Promise<string> {
  return page.evaluate(() => {
    for (let i = 0; i < sessionStorage.length; i++) {
      const k = sessionStorage.key(i) ?? '';
      if (k.startsWith('oidc.user:')) return JSON.parse(sessionStorage.getItem(k) ?? '{}').access_token as string;
    }
    return '';
  });
}

/** Every activity of a query, page by page through the API. */
async function allFromApi(token: string, params: Record<string, string>): Promise<string[]> {
  const out: string[] = [];
  let cursor: string | null = null;
  do {
    const p = new URLSearchParams({ ...params, limit: '200', ...(cursor ? { cursor } : {}) });
    const r = await fetch(`${WEB}/activities?${p}`, { headers: { authorization: `Bearer ${token}` } });
    expect(r.status).toBe(200);
    const page = (await r.json()) as { items: { customerId: string; id: string }[]; nextCursor: string | null };
    out.push(...page.items.map((a) => `${a.customerId}/${a.id}`));
    cursor = page.nextCursor;
  } while (cursor);
  return out;
}

async function axeCheck(page: Page, state: string) {
  await page.addScriptTag({ content: axe.source });
  const result = await page.evaluate(async () => {
    const r = await (window as unknown as { axe: typeof axe }).axe.run(document, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.length, help: v.help }));
  });
  const bad = result.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  figures[`axe ${state}: violations (serious+critical / all)`] = `${bad.length} / ${result.length}${result.length ? ` (${result.map((v) => `${v.id}:${v.impact}`).join(', ')})` : ''}`;
  expect(bad, `${state}: ${JSON.stringify(bad)}`).toEqual([]);
}

/** An export's CSV: every cell quoted, CRLF, a BOM first. */
function parseCsv(text: string): string[][] {
  const out: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let quoted = false;
  const s = text.replace(/^\uFEFF/, '');
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (quoted) {
      if (c === '"' && s[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      row.push(cell);
      cell = '';
    } else if (c === '\n') {
      row.push(cell);
      out.push(row);
      row = [];
      cell = '';
    } else if (c !== '\r') cell += c;
  }
  if (cell || row.length) {
    row.push(cell);
    out.push(row);
  }
  return out;
}

async function exportAndDownload(page: Page, name: string): Promise<string> {
  const downloading = page.waitForEvent('download', { timeout: 120_000 });
  const started = Date.now();
  await page.getByRole('button', { name: /^(Export log|匯出記錄)$/ }).click();
  const download = await downloading;
  figures[`export ${name}: click to download (ms)`] = Date.now() - started;
  const file = join(OUT, `${name}-${download.suggestedFilename()}`);
  await download.saveAs(file);
  return readFileSync(file, 'utf8');
}

describe('the Activity Log page', () => {
  let context: BrowserContext;
  let page: Page;

  beforeAll(async () => {
    context = await newContext();
    ({ page } = await signIn(context, 'globaladmin@demo-partner.example'));
  });
  afterAll(async () => context?.close());

  test('opens on the most recent month, newest first, within a second of sign-in', async () => {
    await expect(page.getByRole('heading', { level: 1, name: 'Activity log' }).isVisible()).resolves.toBe(true);
    const today = dayIn(new Date(), ZONE);
    expect(await page.getByLabel('From', { exact: true }).inputValue()).toBe(monthBefore(today));
    expect(await page.getByLabel('To', { exact: true }).inputValue()).toBe(today);
    await expect(page.locator('table.log thead th').allInnerTexts()).resolves.toEqual([
      'Details',
      'Date-Time',
      'Affected customer',
      'Action',
      'Partner user',
      'Status',
      'Sequence',
    ].map((h, i) => (i === 0 ? '' : h)).map((h, i) => (i === 0 ? expect.any(String) : h)));
    const times = await page.locator('table.log tbody tr[data-key] time').evaluateAll((ts) => ts.map((t) => t.getAttribute('datetime') ?? ''));
    expect(times.length).toBeGreaterThan(0);
    expect([...times].sort().reverse()).toEqual(times);
    const signedInToRows = await page.evaluate(() => performance.measure('first rows after sign-in', 'signed-in', 'first-rows').duration);
    figures['first rows after sign-in, in the page (ms)'] = Math.round(signedInToRows);
    expect(signedInToRows).toBeLessThanOrEqual(1000);
    expect(await page.locator('#zone option:checked').innerText()).toContain('Asia/Taipei');
    await shot(page, 'en-list');
    await axeCheck(page, 'list');
  });

  test('Load more reaches every row of the period once', async () => {
    await page.getByRole('button', { name: 'Last 90 days' }).click();
    await page.waitForURL(/range=90d/);
    await rows(page).first().waitFor();
    await loadAll(page);
    const shown = await keys(page);
    expect(new Set(shown).size).toBe(shown.length);
    const from = await page.locator('table.log time').last().getAttribute('datetime');
    expect(from).not.toBeNull();
    const token = await accessToken(page);
    const url = new URL(page.url());
    expect(url.searchParams.get('range')).toBe('90d');
    const now = Date.now();
    const expected = await allFromApi(token, {
      from: new Date(now - 90 * 24 * 3600 * 1000 + 60_000).toISOString(),
      to: new Date(now).toISOString(),
    });
    // The page's period started a little earlier; everything the API holds from a minute later on is shown.
    for (const k of expected) expect(shown).toContain(k);
    expect(shown.length).toBeGreaterThan(100);
    await expect(page.getByTestId('row-count').innerText()).resolves.toMatch(new RegExp(`^${shown.length} activities loaded · all of the period$`));
    figures['rows over 90 days, loaded with Load more'] = shown.length;
  });

  test('filters narrow and widen, and the view lives in the URL', async () => {
    await page.getByLabel('Customer', { exact: true }).fill('taipei-cloud');
    await page.getByRole('button', { name: 'Apply' }).click();
    await page.waitForURL(/customer=taipei-cloud/);
    await page.waitForFunction(() => [...document.querySelectorAll('table.log tbody tr[data-key]')].length > 0 && [...document.querySelectorAll('table.log tbody tr[data-key]')].every((tr) => tr.getAttribute('data-key')?.startsWith('taipei-cloud/')), null, POLL);
    const customerOnly = await keys(page);
    expect(customerOnly.every((k) => k.startsWith('taipei-cloud/'))).toBe(true);
    await page.getByLabel('Status', { exact: true }).selectOption('failed');
    await page.getByRole('button', { name: 'Apply' }).click();
    await page.waitForURL(/status=failed/);
    await page.waitForFunction(() => new URL(location.href).searchParams.get('status') === 'failed' && !document.querySelector('table.log[aria-busy="true"]'), null, POLL);
    const both = await keys(page);
    expect(both.length).toBeGreaterThan(0);
    expect(both.length).toBeLessThan(customerOnly.length);
    const statuses = await page.locator('table.log tbody tr[data-key] .badge').allInnerTexts();
    expect(new Set(statuses)).toEqual(new Set(['Failed']));

    // Reload and a shared link show the same view.
    const link = page.url();
    await page.reload();
    await rows(page).first().waitFor();
    expect(await keys(page)).toEqual(both);
    expect(await page.getByLabel('Customer', { exact: true }).inputValue()).toBe('taipei-cloud');
    // Another tab holds no tokens (they are kept per tab): it signs in, without the form while
    // the provider's session lasts, and comes back to the link's view.
    const other = await context.newPage();
    await other.goto(link);
    await other.getByRole('button', { name: 'Sign in' }).click();
    await other.locator('table.log tbody tr[data-key]').first().waitFor();
    expect(other.url()).toBe(link);
    expect(await keys(other)).toEqual(both);
    await other.close();

    // Back: the customer filter alone again; forward: both.
    await page.goBack();
    await page.waitForFunction(() => !new URL(location.href).searchParams.has('status'), null, POLL);
    await page.waitForFunction((n) => document.querySelectorAll('table.log tbody tr[data-key]').length === n, customerOnly.length, POLL);
    expect(await keys(page)).toEqual(customerOnly);
    await page.goForward();
    await page.waitForFunction((n) => document.querySelectorAll('table.log tbody tr[data-key]').length === n, both.length, POLL);

    // Clear widens to the whole period again.
    await page.getByRole('button', { name: 'Clear filters' }).click();
    await page.waitForFunction(() => !new URL(location.href).searchParams.has('customer'), null, POLL);
    await page.waitForFunction((n) => document.querySelectorAll('table.log tbody tr[data-key]').length > n, customerOnly.length, POLL);
  });

  test('the 400-product order opens in well under a second, and the Subscriptions link is right', async () => {
    await page.goto(`${WEB}/?range=7d&customer=taipei-cloud&lang=en`);
    const row = page.locator('tr[data-key="taipei-cloud/demo-taipei-cloud-big-order"]');
    await row.waitFor();
    const link = row.getByRole('link');
    expect(await link.getAttribute('href')).toBe('https://partner.example.com/customers/taipei-cloud/subscriptions');
    expect(await link.innerText()).toContain('台北雲端科技股份有限公司');
    const button = row.getByRole('button', { name: 'Show details' });
    expect(await button.getAttribute('aria-expanded')).toBe('false');
    const started = Date.now();
    await button.click();
    const products = page.locator('.details-row .tree-table tbody tr');
    await page.waitForFunction(() => document.querySelectorAll('.details-row .tree-table tbody tr').length === 400, null, POLL);
    const wall = Date.now() - started;
    expect(await button.getAttribute('aria-expanded')).toBe('true');
    expect(await products.count()).toBe(400);
    const measure = 'details:taipei-cloud/demo-taipei-cloud-big-order';
    await page.waitForFunction((name) => performance.getEntriesByName(name).length > 0, measure, POLL);
    const inPage = await page.evaluate((name) => performance.getEntriesByName(name).at(-1)?.duration ?? -1, measure);
    figures['400-product details: click to tree, in the page (ms)'] = Math.round(inPage);
    figures['400-product details: click to 400 rows, measured by the test (ms)'] = wall;
    expect(inPage).toBeGreaterThanOrEqual(0);
    expect(inPage).toBeLessThan(500);
    expect(wall).toBeLessThan(1000);
    await expect(page.getByText('ORD-2026-0042').isVisible()).resolves.toBe(true);
    // Its place in the tenant's feed: the stream pump of scripts/dev had the sequencer place it.
    const position = page.locator('.details-row .chain-meta dt', { hasText: 'Feed position' }).locator('xpath=following-sibling::dd[1]');
    expect(await position.innerText()).toMatch(/^[1-9][0-9]*$/);
    await shot(page, 'en-details');
    await axeCheck(page, 'details open');
    await button.click();
    expect(await button.getAttribute('aria-expanded')).toBe('false');
  });

  test('works from the keyboard', async () => {
    await page.goto(`${WEB}/?range=7d&customer=contoso&lang=en`);
    await rows(page).first().waitFor();
    let focused = '';
    for (let i = 0; i < 40 && focused !== 'Show details'; i++) {
      await page.keyboard.press('Tab');
      focused = await page.evaluate(() => (document.activeElement?.hasAttribute('aria-expanded') ? document.activeElement.textContent?.replace('▸', '').trim() : '') ?? '');
    }
    expect(focused).toBe('Show details');
    await page.keyboard.press('Enter');
    await page.locator('.details-row').first().waitFor();
    expect(await page.evaluate(() => document.activeElement?.getAttribute('aria-expanded'))).toBe('true');
    await page.keyboard.press('Space');
    expect(await page.locator('.details-row').count()).toBe(0);
  });

  test('Export log downloads a CSV holding exactly the view', async () => {
    await page.goto(`${WEB}/?range=90d&customer=fabrikam&lang=en`);
    await rows(page).first().waitFor();
    await loadAll(page);
    const shown = await keys(page);
    const csv = parseCsv(await exportAndDownload(page, 'en'));
    expect(csv[0]).toEqual(['Date-Time', 'Affected customer', 'Action', 'Partner user', 'Customer ID', 'Resource type', 'Status', 'Activity ID', 'Details', 'Recorded by', 'Sequence', 'Hash']);
    const body = csv.slice(1);
    expect(body.map((r) => `${r[4]}/${r[7]}`)).toEqual(shown);
    // Dates in the view's zone (Asia/Taipei, +08:00).
    expect(body.every((r) => r[0].endsWith('+08:00'))).toBe(true);
    await expect(page.getByText(/Export ready: \d+ rows/).isVisible()).resolves.toBe(true);
    figures['CSV export rows (fabrikam, 90 days)'] = body.length;
  });

  test('Verify checks a customer’s loaded rows against a fresh signed checkpoint, in the browser', async () => {
    await page.goto(`${WEB}/?range=90d&customer=taipei-cloud&lang=en`);
    await rows(page).first().waitFor();
    await loadAll(page);
    // Each row shows its place in the customer's chain.
    const sequences = await page.locator('table.log tbody tr[data-key] td:last-child').allInnerTexts();
    expect(sequences.length).toBeGreaterThan(0);
    expect(sequences.every((s) => /^\d+$/.test(s.trim()))).toBe(true);
    const started = Date.now();
    await page.getByRole('button', { name: 'Verify' }).click();
    const status = page.locator('.verify-line [role="status"]');
    await page.waitForFunction(() => /^(Verified|Verification)/.test(document.querySelector('.verify-line [role="status"]')?.textContent ?? ''), null, POLL);
    figures['Verify of a customer’s 90 days, in the page (ms)'] = Date.now() - started;
    const said = await status.innerText();
    expect(said).toMatch(/^Verified: \d+ activities \(sequences \d+–\d+\) match their hashes( and the signed checkpoint at \d+\.|; the signed checkpoint is at \d+ \(newer activities are not loaded\)\.)/);
    expect(await page.locator('tr.row-tampered').count()).toBe(0);
    await shot(page, 'verify-en');
    await axeCheck(page, 'verified');
  });

  test('Streaming: an admin sees the demo destination, its progress and Pause', async () => {
    await page.goto(`${WEB}/?range=7d&lang=en`);
    const heading = page.getByRole('heading', { level: 2, name: 'Streaming' });
    await heading.waitFor();
    const table = page.getByRole('table', { name: 'Streaming' });
    const row = table.getByRole('row').filter({ has: page.getByRole('rowheader', { name: 'Security SIEM', exact: true }) });
    expect(await row.count()).toBe(1);
    const [type, where, state, delivered, lag] = await row.getByRole('cell').allInnerTexts();
    expect([type, where]).toEqual(['HTTPS webhook', 'https://siem.demo-partner.example/hooks/activity']);
    expect(state).toMatch(/^(Active|Failing since .+|Paused by (you|delivery) since .+)$/);
    expect(delivered).toMatch(/^[\d,]+ of [\d,]+$/);
    expect(lag).toMatch(/^(up to date|[\d,]+ activit(y|ies)(, .+)?)$/);
    // Not clicked: a pause is recorded in the demo partner's log.
    const pause = row.getByRole('button', { name: 'Pause Security SIEM', exact: true });
    await expect(pause.isVisible()).resolves.toBe(true);
    expect(await pause.innerText()).toBe('Pause');
    await heading.scrollIntoViewIfNeeded();
    await shot(page, 'en-streaming');
    await axeCheck(page, 'streaming');
  });

  test('Traditional Chinese: the seed’s words in the page and in the exported file', async () => {
    await page.goto(`${WEB}/?range=30d&customer=northwind&lang=en`);
    await rows(page).first().waitFor();
    await page.getByLabel('Language').selectOption('zh-TW');
    await page.waitForURL(/lang=zh-TW/);
    await expect(page.getByRole('heading', { level: 1 }).innerText()).resolves.toBe('活動記錄');
    await page.getByRole('heading', { level: 2, name: '串流', exact: true }).waitFor();
    expect(await page.locator('table.log thead th').allInnerTexts()).toEqual([expect.any(String), '日期 / 時間', '受影響客戶', '動作', '合作夥伴使用者', '狀態', '序號']);
    await expect(page.getByLabel('從', { exact: true }).isVisible()).resolves.toBe(true);
    await expect(page.getByLabel('到', { exact: true }).isVisible()).resolves.toBe(true);
    expect(await page.evaluate(() => document.documentElement.lang)).toBe('zh-TW');
    // Dates as Traditional Chinese writes them.
    expect(await rows(page).first().locator('time').innerText()).toMatch(/\d{4}年\d{1,2}月\d{1,2}日/);
    const link = rows(page).first().getByRole('link');
    expect(await link.innerText()).toContain('Northwind');
    await shot(page, 'zh-TW-list');
    await axeCheck(page, 'zh-TW');
    const csv = parseCsv(await exportAndDownload(page, 'zh-TW'));
    expect(csv[0]).toEqual(['日期 / 時間', '受影響客戶', '動作', '合作夥伴使用者', '客戶識別碼', '資源類型', '狀態', '活動識別碼', '詳細資料', '記錄者', '序號', '雜湊']);
    expect(csv.length - 1).toBe(await rows(page).count());
    await page.getByLabel('語言').selectOption('en');
    await page.waitForURL(/lang=en/);
  });

  test('the zone in use is shown and switches to UTC; times follow it', async () => {
    await page.goto(`${WEB}/?range=7d&customer=contoso&lang=en`);
    await rows(page).first().waitFor();
    const local = await rows(page).first().locator('time').innerText();
    await page.getByLabel('Time zone').selectOption('UTC');
    await page.waitForURL(/tz=UTC/);
    await page.waitForFunction((before) => document.querySelector('table.log tbody tr[data-key] time')?.textContent !== before, local, POLL);
    const utc = await rows(page).first().locator('time').innerText();
    const iso = (await rows(page).first().locator('time').getAttribute('datetime')) ?? '';
    expect(utc).toBe(new Intl.DateTimeFormat('en', { dateStyle: 'medium', timeStyle: 'medium', timeZone: 'UTC' }).format(new Date(iso)));
    expect(local).toBe(new Intl.DateTimeFormat('en', { dateStyle: 'medium', timeStyle: 'medium', timeZone: ZONE }).format(new Date(iso)));
    expect(await page.locator('#zone option:checked').innerText()).toBe('UTC');
  });

  test('a failed export says why', async () => {
    // The worker's failure is injected at the network: the job's status answer says failed.
    await page.route('**/exports/*', async (route) => {
      const r = await route.fetch();
      const job = await r.json();
      await route.fulfill({ response: r, json: { ...job, status: 'failed', error: 'the export could not be written; try again', downloadUrl: undefined } });
    });
    await page.getByRole('button', { name: 'Export log' }).click();
    await page.getByText('Export failed: the export could not be written; try again').waitFor();
    await page.unroute('**/exports/*');
    await shot(page, 'en-export-failed');
  });

  test('a refused token leads to "sign in again", not a broken table', async () => {
    await page.evaluate(() => {
      for (let i = 0; i < sessionStorage.length; i++) {
        const k = sessionStorage.key(i) ?? '';
        if (k.startsWith('oidc.user:')) {
          const u = JSON.parse(sessionStorage.getItem(k) ?? '{}');
          u.access_token = `${u.access_token}x`;
          sessionStorage.setItem(k, JSON.stringify(u));
        }
      }
    });
    await page.reload();
    await page.getByText('Your session has ended. Sign in again to go on.').waitFor();
    expect(await rows(page).count()).toBe(0);
    await shot(page, 'en-session-ended');
    await page.getByRole('button', { name: 'Sign in again' }).click();
    // The provider still knows the user: straight back to the log, no form.
    await rows(page).first().waitFor();
  });

  test('tokens are kept out of localStorage; sign-out ends the session', async () => {
    const stored = await page.evaluate(() => Object.keys(localStorage).map((k) => `${k}=${localStorage.getItem(k)}`).join('\n'));
    expect(stored).not.toMatch(/eyJ|access_token|id_token/);
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('button', { name: 'Sign out' }).click(); // the provider's confirmation
    await page.waitForURL((u) => u.origin === new URL(WEB).origin);
    await page.getByRole('button', { name: 'Sign in' }).waitFor();
    expect(await page.evaluate(() => Object.keys(sessionStorage).filter((k) => k.startsWith('oidc.user:')).length)).toBe(0);
    await shot(page, 'en-signed-out');
    // Signing in again asks for the password again.
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByLabel('Password').waitFor();
  });
});

describe('other users', () => {
  test('a writer without a reader role is told so, not shown an empty table', async () => {
    const context = await newContext();
    const { page } = await signIn(context, 'writer@demo-partner.example');
    await page.getByText('You don’t have access to the activity log.').waitFor();
    expect(await page.locator('table.log').count()).toBe(0);
    await shot(page, 'en-no-access');
    await axeCheck(page, 'no access');
    await context.close();
  });

  test('another partner sees none of demo-partner’s rows', async () => {
    const context = await newContext();
    const { page } = await signIn(context, 'admin@other-partner.example', '/?range=90d');
    await loadAll(page);
    const shown = await keys(page);
    expect(shown.length).toBe(3);
    expect(shown.every((k) => k.startsWith('adatum/'))).toBe(true);
    await context.close();
  });

  test('a helpdesk agent reads the log; the first visit follows the browser’s language', async () => {
    const context = await newContext('zh-TW');
    const { page, submitToRows } = await signIn(context, 'helpdesk@demo-partner.example');
    figures['helpdesk: form submitted to first rows, measured by the test (ms)'] = submitToRows;
    await expect(page.getByRole('heading', { level: 1 }).innerText()).resolves.toBe('活動記錄');
    expect(await rows(page).count()).toBeGreaterThan(0);
    await context.close();
  });
});

// Last: it changes the stored log of one demo customer behind the service's back.
describe('tampering with storage', () => {
  test('Verify names a refused head, then history changed since the checkpoint this browser holds', async () => {
    const context = await newContext();
    const { page } = await signIn(context, 'globaladmin@demo-partner.example');
    const verify = async () => {
      await page.goto(`${WEB}/?range=90d&customer=northwind&lang=en`);
      await rows(page).first().waitFor();
      await loadAll(page);
      await page.getByRole('button', { name: 'Verify' }).click();
      await page.waitForFunction(() => /^(Verified|Verification)/.test(document.querySelector('.verify-line [role="status"]')?.textContent ?? ''), null, POLL);
      return page.locator('.verify-line [role="status"]').innerText();
    };
    // Verified once: the service anchors the head, and this browser keeps the checkpoint.
    expect(await verify()).toMatch(/^Verified: /);
    const held = await page.evaluate(() => Object.keys(window.localStorage).filter((k) => k.startsWith('activity-log.checkpoint.')));
    expect(held.some((k) => k.includes('northwind'))).toBe(true);

    // The last two activities deleted and the head set back: the service will not sign it.
    expect(await truncateTail('demo-partner', 'northwind', 2)).toBeGreaterThan(0);
    expect(await verify()).toBe(
      'Verification failed: the service refused to sign this customer’s log, because it no longer extends what the service signed before (it was changed in storage).',
    );
    await shot(page, 'verify-refused');

    // Someone who can also change the anchor bucket's policy hides its anchors: the service
    // signs the truncated head, and the checkpoint this browser holds says no.
    expect(await hideAnchors('demo-partner', 'northwind')).toBeGreaterThan(0);
    const said = await verify();
    // The held checkpoint's time, as the page writes times (in the zone it shows).
    expect(said).toMatch(/^Verification failed: history changed since \d{4}-\d\d-\d\d \d\d:\d\d \S+\. The log no longer extends the checkpoint verified in this browser then\.$/);
    await shot(page, 'verify-history-changed');
    await axeCheck(page, 'history changed');
    await context.close();
  });
});
