// @vitest-environment happy-dom
// The page's hooks on their own, against a fake API: what each keeps and when it asks.
import { h, render } from 'preact';
import { act } from 'preact/test-utils';
import { afterEach, describe, expect, test } from 'vitest';

import { ApiError, SignInRequired, type ActivityPage } from '../api';
import type { Api } from './useApi';
import { useDetails } from './useDetails';
import { useExport } from './useExport';
import { usePages } from './usePages';
import { useView, type ViewState } from './useView';

const roots: HTMLElement[] = [];
afterEach(() => roots.splice(0).forEach((root) => render(null, root)));

/** Renders `hook(props)` in a component (its effects run at once); `current` is its latest answer. */
function renderHook<P, T>(hook: (p: P) => T, props: P) {
  const out = { current: undefined as T, rerender: (p: P) => act(() => render(h(Probe, { p }), root)) };
  function Probe({ p }: { p: P }) {
    out.current = hook(p);
    return null;
  }
  const root = document.createElement('div');
  roots.push(root);
  out.rerender(props);
  return out;
}

async function until(what: () => unknown, ms = 2000) {
  const end = Date.now() + ms;
  while (!what()) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** An API that answers with `answer(path, init)` (thrown errors reject) and notes what it was asked. */
function fakeApi(answer: (path: string, init?: RequestInit) => unknown) {
  const asked: string[] = [];
  const api: Api = {
    get: async <T>(path: string, init?: RequestInit) => {
      asked.push(init?.body ? `${init.method} ${path} ${init.body}` : path);
      return (await answer(path, init)) as T;
    },
    notice: '',
    clearNotice: () => {},
  };
  return { api, asked };
}

type Listed = ActivityPage['items'][number];

/** An activity as a page of the list holds it. */
const activity = (id: string, extra: Partial<Listed> = {}): Listed => ({
  id,
  customerId: 'c1',
  customerName: 'Contoso',
  action: 'placed an order',
  partnerUser: 'ann@partner.example',
  occurredAt: '2026-11-25T01:02:03.000Z',
  recordedAt: '2026-11-25T01:02:03.500Z',
  recordedBy: null,
  resourceType: null,
  status: 'succeeded',
  details: { n: 1 },
  detailsSize: 8,
  detailsIncluded: true,
  sequence: null,
  hash: null,
  previousHash: null,
  previousRecordedAt: null,
  feedPosition: null,
  links: { self: `/activities/c1/${id}`, subscriptions: '/s' },
  ...extra,
});

const page = (items: Listed[], nextCursor: string | null): ActivityPage => ({ items, nextCursor });
const QUERY = { from: '2026-11-01T00:00:00.000Z', to: '2026-11-30T23:59:59.999Z' };
const cursorOf = (path: string) => new URL(path, 'http://x').searchParams.get('cursor');

describe('useView', () => {
  test('a new view goes in the URL and the language is remembered; Back shows the one before', async () => {
    window.history.replaceState(null, '', '/?lang=en');
    const v = renderHook(() => useView('en'), {});
    expect(v.current.query.customerId).toBeUndefined();
    v.current.setView({ ...v.current.view, customer: 'c1', zone: 'UTC', lang: 'zh-TW' });
    // The state first, the document's language after React has run the view's effect.
    await until(() => v.current.view.customer === 'c1' && document.documentElement.lang === 'zh-TW');
    expect(window.location.search).toBe('?customer=c1&tz=UTC&lang=zh-TW');
    expect(window.localStorage.getItem('activity-log.lang')).toBe('zh-TW');
    expect([v.current.zone, v.current.query.customerId, v.current.t.title, document.documentElement.lang]).toEqual(['UTC', 'c1', '活動記錄', 'zh-TW']);
    window.history.back();
    await until(() => v.current.view.customer === '');
    expect(v.current.view.lang).toBe('en');
  });

  test('From after To is no period', () => {
    window.history.replaceState(null, '', '/?from=2026-11-10&to=2026-11-01&lang=en');
    const v = renderHook(() => useView('en'), {});
    expect([v.current.period.fromDay, v.current.period.toDay, v.current.periodValid]).toEqual(['2026-11-10', '2026-11-01', false]);
  });
});

describe('usePages', () => {
  test('empty pages are followed to one with rows; Load more appends the next', async () => {
    const pages: Record<string, ActivityPage> = { '': page([], 'c2'), c2: page([activity('a1')], 'c3'), c3: page([activity('a2')], null) };
    const { api, asked } = fakeApi((path) => pages[cursorOf(path) ?? '']);
    const p = renderHook(() => usePages(api, QUERY, true), {});
    expect(p.current.phase).toBe('loading');
    await until(() => p.current.phase === 'ready');
    expect([p.current.rows.map((a) => a.id), p.current.cursor, asked.length]).toEqual([['a1'], 'c3', 2]);
    await p.current.loadMore();
    await until(() => p.current.rows.length === 2);
    expect([p.current.rows.map((a) => a.id), p.current.cursor, p.current.loadingMore]).toEqual([['a1', 'a2'], null, false]);
  });

  test('a sparse filter stops after ten empty pages, leaving the cursor for Load more', async () => {
    const { api, asked } = fakeApi(() => page([], 'more'));
    const p = renderHook(() => usePages(api, QUERY, true), {});
    await until(() => p.current.phase === 'ready');
    expect([p.current.rows, p.current.cursor, asked.length]).toEqual([[], 'more', 10]);
  });

  test('403 is no access, an ended session is sign in again, anything else is said; no period asks nothing', async () => {
    const phaseFor = async (e: Error) => {
      const p = renderHook(() => usePages(fakeApi(() => Promise.reject(e)).api, QUERY, true), {});
      await until(() => p.current.phase !== 'loading');
      return [p.current.phase, p.current.error];
    };
    expect(await phaseFor(new ApiError(403, 'Forbidden', 'no role'))).toEqual(['noAccess', '']);
    expect(await phaseFor(new SignInRequired('401'))).toEqual(['signIn', '']);
    expect(await phaseFor(new ApiError(500, 'InternalError', 'boom'))).toEqual(['error', 'boom (InternalError)']);
    const { api, asked } = fakeApi(() => page([activity('a1')], null));
    const p = renderHook(() => usePages(api, QUERY, false), {});
    await until(() => p.current.phase === 'ready');
    expect([p.current.rows, asked]).toEqual([[], []]);
  });
});

describe('useDetails', () => {
  const failed: unknown[] = [];
  const fail = (e: unknown) => void failed.push(e);

  test('details the list left out are fetched once, shown as they come, and kept', async () => {
    const big = activity('big', { details: null, detailsIncluded: false });
    const { api, asked } = fakeApi(() => activity('big', { details: { products: 400 } }));
    const d = renderHook((key: string) => useDetails(api, fail, key, true), 'q1' as string);
    await d.current.toggle(big);
    await until(() => d.current.of(big)?.state === 'ready');
    expect([d.current.isOpen(big), d.current.of(big)]).toEqual([true, { state: 'ready', value: { products: 400 } }]);
    await d.current.toggle(big);
    await until(() => !d.current.isOpen(big));
    await d.current.toggle(big);
    expect(await d.current.fullDetails(big)).toEqual({ products: 400 });
    expect(asked).toEqual(['/activities/c1/big']);
    await until(() => d.current.isOpen(big));
    // Another view's first page: every row closed.
    d.rerender('q2');
    await until(() => !d.current.isOpen(big));
  });

  test('a failed fetch is shown, and fetched again only when asked for in full; an ended session goes to fail', async () => {
    const big = activity('big', { details: null, detailsIncluded: false });
    const other = activity('other', { details: null, detailsIncluded: false });
    const answers: (() => unknown)[] = [() => Promise.reject(new Error('boom')), () => activity('big'), () => Promise.reject(new SignInRequired('expired'))];
    const { api, asked } = fakeApi(() => (answers.shift() as () => unknown)());
    const d = renderHook(() => useDetails(api, fail, 'q', true), {});
    await d.current.toggle(big);
    await until(() => d.current.of(big)?.state === 'error');
    expect(d.current.of(big)).toEqual({ state: 'error', message: 'boom' });
    await d.current.toggle(big);
    await until(() => !d.current.isOpen(big));
    await d.current.toggle(big);
    expect(asked).toEqual(['/activities/c1/big']);
    expect(await d.current.fullDetails(big)).toEqual({ n: 1 });
    expect(failed).toEqual([]);
    await d.current.toggle(other);
    expect(asked).toEqual(['/activities/c1/big', '/activities/c1/big', '/activities/c1/other']);
    expect(failed).toHaveLength(1);
    expect(failed[0]).toBeInstanceOf(SignInRequired);
  });
});

describe('useExport', () => {
  // What useExport reads of the view.
  const view = {
    view: { from: '', to: '', customer: 'c1', action: '', partnerUser: '', status: '', zone: 'UTC', lang: 'zh-TW' },
    zone: 'UTC',
    query: { ...QUERY, customerId: 'c1' },
  } as ViewState;

  test('the view is exported in its zone, language and format, and the file is downloaded', async () => {
    const { api, asked } = fakeApi(() => ({ id: 'e1', status: 'succeeded', rowCount: 3, downloadUrl: '#file', links: { self: '/exports/e1' } }));
    const x = renderHook(() => useExport(api, () => {}, view), {});
    x.current.setFormat('jsonl');
    await until(() => x.current.format === 'jsonl');
    await x.current.start();
    await until(() => x.current.state.state === 'done');
    expect(x.current.state).toEqual({ state: 'done', rows: 3, url: '#file' });
    expect(asked).toEqual([`POST /exports ${JSON.stringify({ ...QUERY, customerId: 'c1', timeZone: 'UTC', locale: 'zh-TW', format: 'jsonl' })}`]);
  });

  test('a failed job says why; so does a refusal; an ended session goes to fail', async () => {
    const failed: unknown[] = [];
    const answers: unknown[] = [
      { id: 'e1', status: 'failed', rowCount: 0, error: 'the export could not be written', links: { self: '/exports/e1' } },
      Promise.reject(new ApiError(429, 'TooManyExports', 'three running')),
      Promise.reject(new SignInRequired('expired')),
    ];
    const x = renderHook(() => useExport(fakeApi(() => answers.shift()).api, (e) => failed.push(e), view), {});
    await x.current.start();
    await until(() => x.current.state.state === 'failed');
    expect(x.current.state).toEqual({ state: 'failed', message: 'the export could not be written' });
    await x.current.start();
    await until(() => x.current.state.state === 'failed' && x.current.state.message.endsWith('(TooManyExports)'));
    await x.current.start();
    expect(failed).toHaveLength(1);
  });
});
