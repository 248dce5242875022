// @vitest-environment happy-dom
// The page in a simulated DOM (happy-dom) against a fake API: the Sequence column, the chain
// members in the details panel, and Verify. The real browser tests (web/e2e) cover the rest.
import { generateKeyPairSync, sign } from 'node:crypto';

import type { User, UserManager } from 'oidc-client-ts';
import { h, render } from 'preact';
import { afterEach, describe, expect, test } from 'vitest';

import type { Activity, Checkpoint } from './api';
import { App } from './app';
import { GENESIS_HASH, checkpointMessage } from './chain';
import { chainLinks, chain as chainOf } from './test-fixtures';

const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const PUBLIC_KEY = { keyId: 'k1', pem: '', jwk: publicKey.export({ format: 'jwk' }) };

/** Customer c1's chain, newest first, as the list shows it; the first recorded before the
 * recorder was kept. */
const chain = (n: number) => chainOf(n, (i) => (i === 1 ? null : 'writer-1'));

function checkpointOf(head: Activity): Checkpoint {
  const c = { partnerId: 'p1', customerId: 'c1', sequence: head.sequence as number, hash: head.hash as string, issuedAt: '2026-11-28T10:00:00.000Z', retentionDays: 365, keyId: 'k1' };
  return { ...c, signature: sign('sha256', checkpointMessage(c), { key: privateKey, dsaEncoding: 'der' }).toString('base64') };
}

const json = (body: unknown, status = 200) => new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });

/** The fake API: the list (with `list` rows), each activity in full (`full`), the key and the
 * checkpoint; destinations are refused (a reader). */
function serve(list: Activity[], full: Activity[] = list, checkpoint: Checkpoint = checkpointOf(full[0])) {
  const asked: string[] = [];
  globalThis.fetch = (async (input: RequestInfo | URL) => {
    const url = new URL(String(input), 'http://page.test');
    asked.push(url.pathname);
    if (url.pathname === '/activities') return json({ items: list, nextCursor: null });
    // A reader, not an admin: no Streaming section (streaming.test.ts).
    if (url.pathname === '/destinations') return json({ error: { code: 'Forbidden', message: 'not an admin' } }, 403);
    if (url.pathname === '/integrity/public-key') return json(PUBLIC_KEY);
    if (url.pathname === '/customers/c1/checkpoint') return json(checkpoint);
    if (url.pathname === '/customers/c1/chain') return json(chainLinks(full, url));
    const one = full.find((a) => a.links.self === url.pathname);
    return one ? json(one) : json({ error: { code: 'NotFound', message: 'no such activity' } }, 404);
  }) as typeof fetch;
  return asked;
}

const user = { expired: false, access_token: 'tok', profile: { sub: 'ann', name: 'Ann' } } as unknown as User;
const um = {} as UserManager;

async function until<T>(what: () => T | null | undefined | false, ms = 2000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = what();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out: ${what}; live region: ${liveText()}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

let root: HTMLElement;
const realFetch = globalThis.fetch;
async function open(search: string) {
  window.history.replaceState(null, '', `/${search}`);
  root = document.createElement('div');
  document.body.appendChild(root);
  render(h(App, { um, user, fallbackLang: 'en' }), root);
  await until(() => root.querySelectorAll('tr[data-key]').length > 0);
}

const button = (name: string) => [...root.querySelectorAll('button')].find((b) => b.textContent?.trim() === name);
const liveText = () => root.querySelector('.verify-line [role="status"]')?.textContent ?? '';

afterEach(() => {
  render(null, root);
  root.remove();
  globalThis.fetch = realFetch;
  // Each test's chain is another log: the checkpoint a test verified is not the next one's.
  for (const k of Object.keys(window.localStorage)) if (k.startsWith('activity-log.checkpoint.')) window.localStorage.removeItem(k);
});

describe('the page', () => {
  test('a Sequence column after Status; Recorded by, the feed position and the hashes in the details panel', async () => {
    const rows = chain(3);
    serve([...rows, { ...rows[0], id: 'old', sequence: null, hash: null, previousHash: null, feedPosition: null, links: { ...rows[0].links, self: '/activities/c1/old' } }]);
    await open('?lang=en');
    const heads = [...root.querySelectorAll('table.log thead th')].map((th) => th.textContent);
    expect(heads).toEqual(['Details', 'Date-Time', 'Affected customer', 'Action', 'Partner user', 'Status', 'Sequence']);
    const seqs = [...root.querySelectorAll('table.log tbody tr[data-key]')].map((tr) => tr.lastElementChild?.textContent);
    expect(seqs).toEqual(['3', '2', '1', '—']);
    // Not filtered to one customer: nothing to verify.
    expect(button('Verify')).toBeUndefined();

    const first = root.querySelector('tr[data-key="c1/a1"]') as HTMLElement;
    (first.querySelector('button.toggle') as HTMLButtonElement).click();
    const panel = await until(() => root.querySelector('.details-row'));
    const meta = [...panel.querySelectorAll('.chain-meta dt')].map((dt) => [dt.textContent, dt.nextElementSibling?.textContent]);
    expect(meta).toEqual([
      ['Recorded by', '—'],
      ['Feed position', '1'],
      ['Hash', rows[2].hash],
      ['Previous hash', GENESIS_HASH],
    ]);
    expect((panel.querySelector('td') as HTMLTableCellElement).colSpan).toBe(7);
    // Moments after recording the sequencer has not placed it yet.
    (root.querySelector('tr[data-key="c1/old"] button.toggle') as HTMLButtonElement).click();
    const pending = await until(() => root.querySelectorAll('.details-row')[1] ?? null);
    expect(pending.querySelector('.chain-meta dt:nth-of-type(2)')?.nextElementSibling?.textContent).toBe('not yet given');
  });

  test('zh-TW: 序號 and 驗證', async () => {
    serve(chain(2));
    await open('?customer=c1&lang=zh-TW');
    expect(root.querySelector('table.log thead th:last-child')?.textContent).toBe('序號');
    button('驗證')?.click();
    await until(() => liveText().startsWith('已驗證'));
    expect(liveText()).toBe('已驗證：2 筆活動（序號 1–2）與其雜湊及序號 2 的已簽署檢查點相符。');
  });

  test('Verify: working, then verified, fetching the details the list left out', async () => {
    const full = chain(5);
    const asked = serve(
      full.map((a) => (a.id === 'a2' ? { ...a, details: null, detailsIncluded: false } : a)),
      full,
    );
    await open('?customer=c1&lang=en');
    const verify = button('Verify') as HTMLButtonElement;
    expect(verify).toBeDefined();
    expect(root.querySelector('.verify-line [role="status"]')).not.toBeNull();
    verify.click();
    await until(() => liveText() === 'Verifying…');
    expect(verify.disabled).toBe(true);
    await until(() => liveText().startsWith('Verified'));
    expect(liveText()).toBe('Verified: 5 activities (sequences 1–5) match their hashes and the signed checkpoint at 5.');
    expect(root.querySelector('.verify-status')?.classList.contains('verify-ok')).toBe(true);
    expect(verify.disabled).toBe(false);
    expect(asked.filter((p) => p !== '/activities' && p !== '/destinations').sort()).toEqual(['/activities/c1/a2', '/customers/c1/checkpoint', '/integrity/public-key']);
    expect(root.querySelector('.row-tampered')).toBeNull();

    // Show details of a2 reuses what Verify fetched.
    (root.querySelector('tr[data-key="c1/a2"] button.toggle') as HTMLButtonElement).click();
    await until(() => root.querySelector('.details-row .details-tree'));
    expect(asked.filter((p) => p === '/activities/c1/a2')).toHaveLength(1);
  });

  test('an altered row fails verification and is marked', async () => {
    const full = chain(4);
    serve(full.map((a) => (a.id === 'a3' ? { ...a, partnerUser: 'mallory@partner.example' } : a)));
    await open('?customer=c1&lang=en');
    button('Verify')?.click();
    await until(() => liveText().startsWith('Verification failed'));
    expect(liveText()).toBe('Verification failed: activity a3 (sequence 3) was altered.');
    expect(root.querySelector('.verify-status')?.classList.contains('error')).toBe(true);
    const marked = [...root.querySelectorAll('tr.row-tampered')].map((tr) => tr.getAttribute('data-key'));
    expect(marked).toEqual(['c1/a3']);
    expect(root.querySelector('tr.row-tampered td:first-child > .sr-only')?.textContent).toBe('(failed verification)');
  });

  test('sequences not in the view are checked against the service’s chain, not called missing; a forged signature fails', async () => {
    const full = chain(4);
    // A view's period is by when activities occurred, the chain by when they were recorded:
    // sequences between the loaded ones may lie outside the period. The service's chain holds
    // them, linked to the loaded ones.
    serve(full.filter((a) => a.id !== 'a2'), full);
    await open('?customer=c1&lang=en');
    button('Verify')?.click();
    await until(() => liveText().startsWith('Verified'));
    expect(liveText()).toBe(
      "Verified: 3 activities (sequences 1–4) match their hashes and the signed checkpoint at 4. 1 sequence between them is not in this view (outside its period or filters); the service's chain holds it, linked.",
    );
    expect(root.querySelector('tr.row-tampered')).toBeNull();
    render(null, root);
    root.remove();

    serve(full.filter((a) => a.id !== 'a2'), full);
    await open('?customer=c1&status=succeeded&lang=en');
    button('Verify')?.click();
    await until(() => liveText().startsWith('Verified'));
    expect(liveText()).toBe(
      "Verified: 3 activities (sequences 1–4) match their hashes and the signed checkpoint at 4. 1 sequence between them is not in this view (outside its period or filters); the service's chain holds it, linked.",
    );
    render(null, root);
    root.remove();

    const forged = { ...checkpointOf(full[0]), sequence: 9 };
    serve(full, full, forged);
    await open('?customer=c1&lang=en');
    button('Verify')?.click();
    await until(() => liveText().startsWith('Verification failed'));
    expect(liveText()).toBe("Verification failed: the checkpoint's signature is invalid.");
  });

  test('an API error is said, and the page stays', async () => {
    serve(chain(2));
    const served = globalThis.fetch;
    globalThis.fetch = (async (input: RequestInfo | URL, init?: RequestInit) =>
      String(input) === '/integrity/public-key' ? json({ error: { code: 'Internal', message: 'boom' } }, 500) : served(input, init)) as typeof fetch;
    await open('?customer=c1&lang=en');
    button('Verify')?.click();
    await until(() => liveText().startsWith('Verification could not'));
    expect(liveText()).toBe('Verification could not be completed: boom (Internal)');
    expect(root.querySelectorAll('tr[data-key]')).toHaveLength(2);
  });
});
