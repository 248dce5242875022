// @vitest-environment happy-dom
// The page's Streaming section in a simulated DOM (happy-dom) against a fake API: the
// destinations with their state and lag, in English and Traditional Chinese; none for a user who
// may not manage them (403); shown below the no-access message to an AccountAdmin; Pause and
// Resume with If-Match, and a destination changed meanwhile (412).
import type { User, UserManager } from 'oidc-client-ts';
import { h, render } from 'preact';
import { afterEach, describe, expect, test } from 'vitest';

import type { Destination, DestinationList } from './api';
import { App } from './app';
import { chain } from './test-fixtures';

const json = (body: unknown, status = 200) => new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
const refused = (status: number, code: string) => json({ error: { code, message: code === 'Forbidden' ? 'no role' : 'boom' } }, status);

const HEAD = 2417;
const SINCE = '2026-11-25T01:02:03.000Z';

function destination(id: string, name: string, extra: Partial<Destination>): Destination {
  return {
    id,
    name,
    type: 'https',
    url: 'https://siem.demo-partner.example/hooks/activity',
    format: 'webhook',
    state: 'active',
    paused: null,
    failing: null,
    autoPauseAfterMinutes: 1440,
    deliveredPosition: HEAD,
    headPosition: HEAD,
    lagPositions: 0,
    lagSeconds: 0,
    lastDeliveredAt: SINCE,
    secretHint: '9f3a',
    createdAt: SINCE,
    createdBy: 'ops@demo-partner.example',
    updatedAt: SINCE,
    updatedBy: 'ops@demo-partner.example',
    version: 4,
    links: { self: `/destinations/${id}` },
    ...extra,
  } as Destination;
}

/** A webhook up to date, a bucket failing 12 activities behind, a bus paused by delivery. */
const three = (): Destination[] => [
  destination('d1', 'Security SIEM', {}),
  destination('d2', 'Archive', {
    type: 's3',
    url: undefined,
    format: undefined,
    bucket: 'activity-archive',
    prefix: 'demo/log',
    region: 'eu-west-1',
    state: 'failing',
    failing: { since: SINCE, lastError: 'AccessDenied on PutObject', lastErrorAt: SINCE },
    deliveredPosition: HEAD - 12,
    lagPositions: 12,
    lagSeconds: 180,
  }),
  destination('d3', 'Ops bus', {
    type: 'eventBridge',
    url: undefined,
    format: undefined,
    eventBusArn: 'arn:aws:events:eu-west-1:123456789012:event-bus/ops',
    state: 'paused',
    paused: { by: 'delivery', at: SINCE },
    deliveredPosition: HEAD - 1,
    lagPositions: 1,
    lagSeconds: 3700,
  }),
];

interface Asked {
  method: string;
  path: string;
  ifMatch: string | null;
  body: string | undefined;
}

/**
 * The fake API: the log (or 403), and the destinations (or `destinationsRefused`). A PATCH
 * applies `paused` when If-Match names the version; else 412. `changedMeanwhile`: someone else
 * changes d1 just before the PATCH arrives.
 */
function serve(opts: { items?: Destination[]; logRefused?: boolean; destinationsRefused?: [number, string]; changedMeanwhile?: boolean } = {}) {
  const items = opts.items ?? three();
  const asked: Asked[] = [];
  globalThis.fetch = (async (input: RequestInfo | URL, init: RequestInit = {}) => {
    const url = new URL(String(input), 'http://page.test');
    const method = init.method ?? 'GET';
    asked.push({ method, path: url.pathname, ifMatch: new Headers(init.headers).get('if-match'), body: init.body as string | undefined });
    if (url.pathname === '/activities') return opts.logRefused ? refused(403, 'Forbidden') : json({ items: chain(2), nextCursor: null });
    if (url.pathname === '/destinations') {
      if (opts.destinationsRefused) return refused(...opts.destinationsRefused);
      const list: DestinationList = { items, headPosition: HEAD, maxDestinations: 3 };
      return json(list);
    }
    const i = items.findIndex((d) => `/destinations/${d.id}` === url.pathname);
    if (i < 0 || method !== 'PATCH') return refused(404, 'NotFound');
    if (opts.changedMeanwhile) items[i] = { ...items[i], name: 'Security SIEM (EU)', version: items[i].version + 1 };
    if (init.headers && new Headers(init.headers).get('if-match') !== `"${items[i].version}"`) return refused(412, 'PreconditionFailed');
    const { paused } = JSON.parse(String(init.body)) as { paused: boolean };
    items[i] = {
      ...items[i],
      state: paused ? 'paused' : 'active',
      paused: paused ? { by: 'partner', at: '2026-11-26T08:00:00.000Z' } : null,
      version: items[i].version + 1,
    };
    return json(items[i]);
  }) as typeof fetch;
  return asked;
}

const user = { expired: false, access_token: 'tok', profile: { sub: 'grace', name: 'Grace' } } as unknown as User;
const um = {} as UserManager;

async function until<T>(what: () => T | null | undefined | false, ms = 2000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = what();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

let root: HTMLElement;
const realFetch = globalThis.fetch;
function open(search: string) {
  window.history.replaceState(null, '', `/${search}`);
  root = document.createElement('div');
  document.body.appendChild(root);
  render(h(App, { um, user, fallbackLang: 'en' }), root);
}

afterEach(() => {
  render(null, root);
  root.remove();
  globalThis.fetch = realFetch;
});

const section = () => root.querySelector<HTMLElement>('section.streaming');
const cells = () =>
  [...root.querySelectorAll('table.destinations tbody tr')].map((tr) => [...tr.children].map((c) => c.querySelector('button')?.getAttribute('aria-label') ?? c.textContent));
const at = (lang: string, iso = SINCE) => new Intl.DateTimeFormat(lang, { dateStyle: 'medium', timeStyle: 'medium', timeZone: 'UTC' }).format(new Date(iso));
const button = (label: string) => root.querySelector<HTMLButtonElement>(`button[aria-label="${label}"]`);
const statusText = () => root.querySelector('.streaming-status')?.textContent ?? '';

describe('Streaming', () => {
  test('lists each destination with its type, where, state, delivery and lag', async () => {
    serve();
    open('?tz=UTC&lang=en');
    const s = await until(section);
    expect(s.querySelector('h2')?.textContent).toBe('Streaming');
    expect(s.querySelector('.intro')?.textContent).toBe('Destinations that receive every activity of your log as it is recorded.');
    // Below the log and Verify, in the page's main.
    expect(s.parentElement?.tagName).toBe('MAIN');
    expect(s.previousElementSibling?.classList.contains('footer-line')).toBe(true);
    const table = s.querySelector('table.destinations') as HTMLTableElement;
    expect(table.getAttribute('aria-labelledby')).toBe(s.querySelector('h2')?.id);
    expect([...table.querySelectorAll('thead th')].map((th) => th.textContent)).toEqual(['Name', 'Type', 'Where', 'State', 'Delivered', 'Lag', 'Pause or resume']);
    expect(cells()).toEqual([
      ['Security SIEM', 'HTTPS webhook', 'https://siem.demo-partner.example/hooks/activity', 'Active', '2,417 of 2,417', 'up to date', 'Pause Security SIEM'],
      ['Archive', 'Amazon S3', 's3://activity-archive/demo/log', `Failing since ${at('en')}: AccessDenied on PutObject`, '2,405 of 2,417', '12 activities, 3 min', 'Pause Archive'],
      ['Ops bus', 'Amazon EventBridge', 'arn:aws:events:eu-west-1:123456789012:event-bus/ops', `Paused by delivery since ${at('en')}`, '2,416 of 2,417', '1 activity, 1 h 1 min', 'Resume Ops bus'],
    ]);
    expect(button('Pause Security SIEM')?.textContent).toBe('Pause');
    expect(button('Resume Ops bus')?.textContent).toBe('Resume');
  });

  test('zh-TW: 串流, 使用中 / 失敗中 / 已暫停, and the lag in Chinese', async () => {
    const items = three();
    items[2] = { ...items[2], type: 'https', format: 'splunkHec', url: 'https://hec.example.com/services/collector', eventBusArn: undefined, paused: { by: 'partner', at: SINCE } };
    serve({ items });
    open('?tz=UTC&lang=zh-TW');
    const s = await until(section);
    expect(s.querySelector('h2')?.textContent).toBe('串流');
    expect([...s.querySelectorAll('thead th')].map((th) => th.textContent)).toEqual(['名稱', '類型', '位置', '狀態', '已傳遞', '延遲', '暫停或繼續']);
    expect(cells()).toEqual([
      ['Security SIEM', 'HTTPS Webhook', 'https://siem.demo-partner.example/hooks/activity', '使用中', '2,417 / 2,417', '已是最新', '暫停 Security SIEM'],
      ['Archive', 'Amazon S3', 's3://activity-archive/demo/log', `失敗中（自 ${at('zh-TW')} 起）：AccessDenied on PutObject`, '2,405 / 2,417', '12 筆活動，3 分鐘', '暫停 Archive'],
      ['Ops bus', 'Splunk HEC', 'https://hec.example.com/services/collector', `已暫停（由管理員於 ${at('zh-TW')} 暫停）`, '2,416 / 2,417', '1 筆活動，1 小時 1 分鐘', '繼續 Ops bus'],
    ]);
    expect(button('暫停 Security SIEM')?.textContent).toBe('暫停');
    expect(button('繼續 Ops bus')?.textContent).toBe('繼續');
  });

  test('none yet: says so, and how many the API takes', async () => {
    serve({ items: [] });
    open('?lang=en');
    const s = await until(section);
    expect(s.querySelector('table')).toBeNull();
    expect([...s.querySelectorAll('p:not([role])')].map((p) => p.textContent)).toEqual([
      'Destinations that receive every activity of your log as it is recorded.',
      'No destinations yet.',
      'Up to 3 can be added through the API (README, “Streaming”).',
    ]);
  });

  test('not shown to a user who may not manage destinations (403); another failure is said in the section', async () => {
    const asked = serve({ destinationsRefused: [403, 'Forbidden'] });
    open('?lang=en');
    await until(() => root.querySelectorAll('tr[data-key]').length > 0 && asked.some((a) => a.path === '/destinations'));
    await new Promise((r) => setTimeout(r, 50));
    expect(section()).toBeNull();
    expect(root.querySelector('[role="alert"]')).toBeNull();
    render(null, root);
    root.remove();

    serve({ destinationsRefused: [500, 'InternalError'] });
    open('?lang=en');
    const s = await until(section);
    expect(s.querySelector('[role="alert"]')?.textContent).toBe('Something went wrong: boom (InternalError)');
    expect(root.querySelectorAll('tr[data-key]')).toHaveLength(2);
  });

  test('an AccountAdmin, who may not read the log, sees Streaming below the no-access message; a writer sees neither', async () => {
    serve({ logRefused: true });
    open('?lang=en');
    const s = await until(section);
    expect(root.querySelector('.message')?.textContent).toContain('You don’t have access to the activity log.');
    expect(s.parentElement?.tagName).toBe('MAIN');
    expect(s.previousElementSibling?.classList.contains('message')).toBe(true);
    expect(cells().map((r) => r[0])).toEqual(['Security SIEM', 'Archive', 'Ops bus']);
    render(null, root);
    root.remove();

    const asked = serve({ logRefused: true, destinationsRefused: [403, 'Forbidden'] });
    open('?lang=en');
    await until(() => root.querySelector('.message') && asked.some((a) => a.path === '/destinations'));
    await new Promise((r) => setTimeout(r, 50));
    expect(section()).toBeNull();
  });

  test('Pause sends PATCH with If-Match and {"paused":true}, then reads the list again; Resume undoes it', async () => {
    const asked = serve();
    open('?tz=UTC&lang=en');
    await until(() => button('Pause Security SIEM'));
    button('Pause Security SIEM')?.click();
    await until(() => button('Resume Security SIEM'));
    const calls = asked.filter((a) => a.path.startsWith('/destinations'));
    expect(calls).toEqual([
      { method: 'GET', path: '/destinations', ifMatch: null, body: undefined },
      { method: 'PATCH', path: '/destinations/d1', ifMatch: '"4"', body: '{"paused":true}' },
      { method: 'GET', path: '/destinations', ifMatch: null, body: undefined },
    ]);
    expect(cells()[0][3]).toBe(`Paused by an admin since ${at('en', '2026-11-26T08:00:00.000Z')}`);
    expect(statusText()).toBe('');

    button('Resume Security SIEM')?.click();
    await until(() => button('Pause Security SIEM'));
    expect(asked.filter((a) => a.method === 'PATCH').at(-1)).toEqual({ method: 'PATCH', path: '/destinations/d1', ifMatch: '"5"', body: '{"paused":false}' });
    expect(cells()[0][3]).toBe('Active');
  });

  test('a destination changed meanwhile (412): the list is read again and the page says so', async () => {
    const asked = serve({ changedMeanwhile: true });
    open('?lang=en');
    await until(() => button('Pause Security SIEM'));
    button('Pause Security SIEM')?.click();
    await until(() => statusText());
    expect(statusText()).toBe('Security SIEM was changed meanwhile; the list now shows it as it is.');
    expect(root.querySelector('.streaming-status')?.getAttribute('role')).toBe('status');
    await until(() => cells()[0][0] === 'Security SIEM (EU)');
    // Not paused: the change was refused, and the list shows the destination as it is now.
    expect(cells()[0][3]).toBe('Active');
    expect(button('Pause Security SIEM (EU)')?.disabled).toBe(false);
    expect(asked.filter((a) => a.path.startsWith('/destinations')).map((a) => `${a.method} ${a.path}`)).toEqual(['GET /destinations', 'PATCH /destinations/d1', 'GET /destinations']);
  });
});
