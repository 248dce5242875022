import { generateKeyPairSync, sign } from 'node:crypto';

import { describe, expect, test } from 'vitest';

import { ApiError, call, type Activity, type Checkpoint } from './api';
import { checkpointMessage } from './chain';
import { WORDS } from './i18n';
import { chain, chainLinks } from './test-fixtures';
import { failedKey, tone, verifyMessage, verifyView, type Outcome } from './verify';

const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const jwk = publicKey.export({ format: 'jwk' }) as JsonWebKey;
const PUBLIC_KEY = { keyId: 'k1', pem: publicKey.export({ format: 'pem', type: 'spki' }).toString(), jwk };

function checkpointOf(rows: Activity[], sequence = rows[0].sequence as number, hash = rows[0].hash as string): Checkpoint {
  const c = { partnerId: 'p1', customerId: 'c1', sequence, hash, issuedAt: '2026-11-28T10:00:00.000Z', retentionDays: 365, keyId: 'k1' };
  return { ...c, signature: sign('sha256', checkpointMessage(c), { key: privateKey, dsaEncoding: 'der' }).toString('base64') };
}

/** The API as the page sees it: the key, the checkpoint (or 404), each activity in full, the
 * chain's links (`stored`: what storage holds, by default `full`). */
function api(full: Activity[], checkpoint: Checkpoint | null, stored: Activity[] = full) {
  const asked: string[] = [];
  const get = async <T,>(path: string): Promise<T> => {
    asked.push(path);
    if (path === '/integrity/public-key') return PUBLIC_KEY as T;
    const url = new URL(path, 'http://page.test');
    if (url.pathname === '/customers/c1/chain') return chainLinks(stored, url) as T;
    if (path === '/customers/c1/checkpoint') {
      if (!checkpoint) throw new ApiError(404, 'NotFound', 'no chained activity');
      return checkpoint as T;
    }
    throw new ApiError(404, 'NotFound', path);
  };
  const details = async (a: Activity) => {
    asked.push(a.links.self);
    return full.find((f) => f.id === a.id)?.details;
  };
  return { asked, deps: { get, details } };
}

/** The list's view of the rows: large details left out. */
const listed = (rows: Activity[], ...left: string[]) => rows.map((a) => (left.includes(a.id) ? { ...a, details: null, detailsIncluded: false } : a));

describe('Verify', () => {
  test('fetches the key, a checkpoint and the details the list left out, then passes', async () => {
    const rows = chain(5);
    const { asked, deps } = api(rows, checkpointOf(rows));
    const outcome = await verifyView(listed(rows, 'a2'), 'c1', true, deps);
    expect(outcome).toEqual({ kind: 'verified', count: 5, first: 1, last: 5, checkpoint: 5, reachesCheckpoint: true, notInView: 0, expired: 0, notChecked: 0, pastCheckpoint: 0 });
    expect(asked.sort()).toEqual(['/activities/c1/a2', '/customers/c1/checkpoint', '/integrity/public-key']);
  });

  test('the checkpoint may be ahead of the loaded rows', async () => {
    const all = chain(6);
    const loaded = all.slice(2); // sequences 1–4
    const { deps } = api(all, checkpointOf(all));
    expect(await verifyView(loaded, 'c1', true, deps)).toMatchObject({ kind: 'verified', count: 4, first: 1, last: 4, checkpoint: 6, reachesCheckpoint: false });
  });

  test('an altered row is named; a gap counts only without other filters', async () => {
    const rows = chain(5);
    const { deps } = api(rows, checkpointOf(rows));
    const altered = rows.map((a) => (a.id === 'a3' ? { ...a, partnerUser: 'mallory@partner.example' } : a));
    const outcome = await verifyView(altered, 'c1', true, deps);
    expect(outcome).toEqual({ kind: 'altered', key: 'c1/a3', id: 'a3', sequence: 3 });
    expect(failedKey(outcome)).toBe('c1/a3');
    // Details fetched from links.self that differ from what was chained are caught too.
    const fetched = api(rows.map((a) => (a.id === 'a2' ? { ...a, details: { products: [] } } : a)), checkpointOf(rows));
    expect(await verifyView(listed(rows, 'a2'), 'c1', true, fetched.deps)).toMatchObject({ kind: 'altered', id: 'a2' });

    const gap = rows.filter((a) => a.id !== 'a2' && a.id !== 'a3');
    expect(await verifyView(gap, 'c1', true, deps)).toEqual({ kind: 'missing', key: 'c1/a4', from: 2, to: 3 });
    expect(await verifyView(gap, 'c1', false, deps)).toMatchObject({ kind: 'verified', count: 3, notInView: 2 });
  });

  test('sequences outside the view are checked against the service’s chain', async () => {
    const rows = chain(6);
    const view = rows.filter((a) => a.id !== 'a2' && a.id !== 'a3' && a.id !== 'a5');
    // Held and linked: outside the view, and said so; one read covers both gaps.
    const held = api(rows, checkpointOf(rows));
    expect(await verifyView(view, 'c1', false, held.deps)).toMatchObject({ kind: 'verified', count: 3, notInView: 3, expired: 0, notChecked: 0 });
    expect(held.asked.filter((p) => p.includes('/chain'))).toEqual(['/customers/c1/chain?from=2&to=5']);
    // Activity a3 deleted from storage (the head still extends the anchor, so it is signed):
    // the gap before a4 is missing.
    const deleted = api(rows, checkpointOf(rows), rows.filter((a) => a.id !== 'a3'));
    expect(await verifyView(view, 'c1', false, deleted.deps)).toEqual({ kind: 'missing', key: 'c1/a4', from: 2, to: 3 });
    // Held, but not linked to the rows around it (rewritten in storage): altered.
    const rewritten = rows.map((a) => (a.id === 'a5' ? { ...a, hash: 'ab'.repeat(32) } : a));
    expect(await verifyView(view, 'c1', false, api(rows, checkpointOf(rows), rewritten).deps)).toEqual({ kind: 'altered', key: 'c1/a6', id: 'a6', sequence: 6 });
    // Gone, but the activity after it shows the one before it recorded longer than the signed
    // retention ago: expired.
    const old = checkpointOf(rows);
    const expiredKeyed = { ...old, retentionDays: 1 };
    const resigned = { ...expiredKeyed, signature: sign('sha256', checkpointMessage(expiredKeyed), { key: privateKey, dsaEncoding: 'der' }).toString('base64') };
    expect(await verifyView(view, 'c1', false, api(rows, resigned, rows.filter((a) => a.id !== 'a3')).deps)).toMatchObject({
      kind: 'verified',
      notInView: 1,
      expired: 2,
    });
  });

  test('a bad signature, another customer’s checkpoint, none at all', async () => {
    const rows = chain(3);
    const good = checkpointOf(rows);
    const bytes = Buffer.from(good.signature, 'base64');
    bytes[bytes.length - 1] ^= 1;
    expect(await verifyView(rows, 'c1', true, api(rows, { ...good, signature: bytes.toString('base64') }).deps)).toEqual({ kind: 'badSignature' });
    expect(await verifyView(rows, 'c1', true, api(rows, { ...good, sequence: 2 }).deps)).toEqual({ kind: 'badSignature' });
    expect(await verifyView(rows, 'c1', true, api(rows, { ...good, customerId: 'c2' }).deps)).toEqual({ kind: 'otherCustomer' });
    expect(await verifyView(rows, 'c1', true, api(rows, null).deps)).toEqual({ kind: 'noCheckpoint' });
    expect(await verifyView([], 'c1', true, api(rows, null).deps)).toEqual({ kind: 'nothing' });
    // Chain members removed in storage: named, whether or not there is a checkpoint.
    const stripped = rows.map((a) => (a.id === 'a2' ? { ...a, sequence: null, hash: null, previousHash: null } : a));
    expect(await verifyView(stripped, 'c1', true, api(rows, null).deps)).toEqual({ kind: 'unchained', key: 'c1/a2', id: 'a2' });
    expect(await verifyView(stripped, 'c1', true, api(rows, good).deps)).toEqual({ kind: 'unchained', key: 'c1/a2', id: 'a2' });
    // A signed head behind a loaded row does not vouch for it: the row is set aside, counted.
    expect(await verifyView(rows, 'c1', true, api(rows, checkpointOf(rows, 2, rows[1].hash as string)).deps)).toMatchObject({
      kind: 'verified',
      count: 2,
      last: 2,
      pastCheckpoint: 1,
    });
  });

  test('a pinned key (the deployed one, from config.json) is used instead of the key the API names', async () => {
    const rows = chain(3);
    const { asked, deps } = api(rows, checkpointOf(rows));
    expect(await verifyView(rows, 'c1', true, { ...deps, pinnedKey: PUBLIC_KEY.pem })).toMatchObject({ kind: 'verified', count: 3 });
    expect(asked).not.toContain('/integrity/public-key');
    // The API names its own key and signs with it; the key the user holds says no.
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'pem', type: 'spki' }).toString();
    expect(await verifyView(rows, 'c1', true, { ...deps, pinnedKey: other })).toEqual({ kind: 'badSignature' });
  });

  test('a head the service refuses to sign (409 ChainInconsistent) fails, in words the user can act on', async () => {
    const rows = chain(3);
    const get = async <T,>(path: string): Promise<T> => {
      if (path === '/integrity/public-key') return PUBLIC_KEY as T;
      throw new ApiError(409, 'ChainInconsistent', 'customer c1: the activity at the anchored sequence 3 is missing');
    };
    const outcome = await verifyView(rows, 'c1', true, { get, details: async () => null });
    expect(outcome).toEqual({ kind: 'refused' });
    expect(tone(outcome)).toBe('failed');
    expect([verifyMessage(outcome, WORDS.en), verifyMessage(outcome, WORDS['zh-TW'])]).toEqual([
      'Verification failed: the service refused to sign this customer’s log, because it no longer extends what the service signed before (it was changed in storage).',
      '驗證失敗：服務拒絕簽署此客戶的記錄，因為它已不再延續服務先前簽署的內容（儲存內容遭到變更）。',
    ]);
  });

  test('the checkpoint verified in this browser before must be extended: history changed since then', async () => {
    const store = new Map<string, string>();
    const held = { getItem: (k: string) => store.get(k) ?? null, setItem: (k: string, v: string) => void store.set(k, v) };
    const rows = chain(5);
    expect(await verifyView(rows, 'c1', false, { ...api(rows, checkpointOf(rows)).deps, held })).toMatchObject({ kind: 'verified', count: 5 });
    expect([...store.keys()]).toEqual(['activity-log.checkpoint.p1/c1']);

    // Later the service signs a head behind it: the tail was cut and the head set back.
    const cut = rows.slice(2);
    const outcome = await verifyView(cut, 'c1', false, { ...api(cut, checkpointOf(cut)).deps, held });
    expect(outcome).toEqual({ kind: 'historyChanged', since: '2026-11-28T10:00:00.000Z' });
    expect(verifyMessage(outcome, WORDS.en)).toBe(
      'Verification failed: history changed since 2026-11-28 10:00 UTC. The log no longer extends the checkpoint verified in this browser then.',
    );
    expect(verifyMessage(outcome, WORDS['zh-TW'])).toContain('自 2026-11-28 10:00 UTC 以來記錄已被變更');
    // A failed check keeps the checkpoint held.
    expect(JSON.parse(store.get('activity-log.checkpoint.p1/c1') ?? '{}').sequence).toBe(5);

    // The whole chain rewritten and signed afresh: the held activity is named.
    const rewritten = chain(5, () => 'mallory');
    const named = await verifyView(rewritten, 'c1', false, { ...api(rewritten, checkpointOf(rewritten)).deps, held });
    expect(named).toEqual({ kind: 'historyChanged', since: '2026-11-28T10:00:00.000Z', key: 'c1/a5' });
    expect(failedKey(named)).toBe('c1/a5');

    // The log moving on extends it: verified, and the newer checkpoint is held.
    const longer = chain(6);
    expect(await verifyView(longer, 'c1', false, { ...api(longer, checkpointOf(longer)).deps, held })).toMatchObject({ kind: 'verified', count: 6 });
    expect(JSON.parse(store.get('activity-log.checkpoint.p1/c1') ?? '{}').sequence).toBe(6);
  });

  test('through the page’s call: retried after 429, other errors thrown', async () => {
    const rows = chain(2);
    const checkpoint = checkpointOf(rows);
    const json = (status: number, body: unknown, headers: Record<string, string> = {}) => new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', ...headers } });
    let busy = 1;
    const seen: string[] = [];
    const fetch = (async (url: string, init: RequestInit) => {
      seen.push(`${url} ${new Headers(init.headers).get('authorization')}`);
      if (url === '/integrity/public-key') return json(200, PUBLIC_KEY);
      if (busy-- > 0) return json(429, { error: { code: 'RateLimited', message: 'slow down' } }, { 'retry-after': '1' });
      return json(200, checkpoint);
    }) as typeof globalThis.fetch;
    const get = <T,>(path: string) => call<T>(path, 'tok', {}, { fetch, sleep: async () => {} });
    expect(await verifyView(rows, 'c1', true, { get, details: async () => null })).toMatchObject({ kind: 'verified', count: 2 });
    expect(seen.filter((s) => s.startsWith('/customers/c1/checkpoint'))).toEqual(['/customers/c1/checkpoint Bearer tok', '/customers/c1/checkpoint Bearer tok']);
    const broken = (async () => json(500, { error: { code: 'Internal', message: 'boom' } })) as unknown as typeof globalThis.fetch;
    await expect(verifyView(rows, 'c1', true, { get: (p) => call(p, 'tok', {}, { fetch: broken }), details: async () => null })).rejects.toMatchObject({ status: 500 });
  });
});

describe('the words of Verify', () => {
  const en = WORDS.en;
  const zh = WORDS['zh-TW'];
  const say = (o: Outcome) => [verifyMessage(o, en), verifyMessage(o, zh)];

  test('success, reaching the checkpoint or not', () => {
    const base = { kind: 'verified', count: 37, first: 1, last: 37 } as const;
    expect(say({ ...base, checkpoint: 37, reachesCheckpoint: true, notInView: 0, expired: 0, notChecked: 0, pastCheckpoint: 0 })).toEqual([
      'Verified: 37 activities (sequences 1–37) match their hashes and the signed checkpoint at 37.',
      '已驗證：37 筆活動（序號 1–37）與其雜湊及序號 37 的已簽署檢查點相符。',
    ]);
    expect(say({ ...base, checkpoint: 40, reachesCheckpoint: false, notInView: 0, expired: 0, notChecked: 0, pastCheckpoint: 0 })).toEqual([
      'Verified: 37 activities (sequences 1–37) match their hashes; the signed checkpoint is at 40 (newer activities are not loaded).',
      '已驗證：37 筆活動（序號 1–37）與其雜湊相符；已簽署的檢查點位於序號 40（較新的活動尚未載入）。',
    ]);
    expect(say({ kind: 'verified', count: 1, first: 7, last: 7, checkpoint: 7, reachesCheckpoint: true, notInView: 0, expired: 0, notChecked: 0, pastCheckpoint: 0 })).toEqual([
      'Verified: 1 activity (sequence 7) matches its hash and the signed checkpoint at 7.',
      '已驗證：1 筆活動（序號 7）與其雜湊及序號 7 的已簽署檢查點相符。',
    ]);
  });

  test('failures', () => {
    expect(say({ kind: 'altered', key: 'c1/a3', id: 'a3', sequence: 3 })).toEqual(['Verification failed: activity a3 (sequence 3) was altered.', '驗證失敗：活動 a3（序號 3）已遭竄改。']);
    expect(say({ kind: 'missing', key: 'c1/a4', from: 2, to: 3 })).toEqual([
      'Verification failed: sequences 2–3 are missing between the loaded activities.',
      '驗證失敗：已載入的活動之間缺少序號 2–3。',
    ]);
    expect(verifyMessage({ kind: 'missing', key: 'c1/a3', from: 2, to: 2 }, en)).toBe('Verification failed: sequence 2 is missing between the loaded activities.');
    expect(say({ kind: 'badSignature' })).toEqual(["Verification failed: the checkpoint's signature is invalid.", '驗證失敗：檢查點的簽章無效。']);
    expect(say({ kind: 'outOfOrder', key: 'c1/a3', id: 'a3', sequence: 3 })).toEqual([
      'Verification failed: activity a3 (sequence 3) is out of order.',
      '驗證失敗：活動 a3（序號 3）的順序錯亂。',
    ]);
    expect(say({ kind: 'unchained', key: 'c1/a3', id: 'a3' })).toEqual([
      'Verification failed: activity a3 has no sequence or hash: its place in the chain was removed.',
      '驗證失敗：活動 a3 沒有序號或雜湊：它在鏈中的位置已被移除。',
    ]);
    expect(say({ kind: 'verified', count: 2, first: 1, last: 2, checkpoint: 2, reachesCheckpoint: true, notInView: 0, expired: 0, notChecked: 0, pastCheckpoint: 1 })[0]).toContain(
      ' 1 loaded activity was recorded after the checkpoint was signed and was not checked.',
    );
    expect([en.verify, zh.verify, en.verifying, zh.verifying, en.sequence, zh.sequence, en.recordedBy, zh.recordedBy]).toEqual([
      'Verify', '驗證', 'Verifying…', '正在驗證…', 'Sequence', '序號', 'Recorded by', '記錄者',
    ]);
  });
});
