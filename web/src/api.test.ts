import { describe, expect, test } from 'vitest';

import { ApiError, SignInRequired, activitiesPath, call, retryAfterSeconds } from './api';

const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', ...headers } });

describe('calling the API', () => {
  test('429 and 503 are retried after Retry-After; the token goes in the header', async () => {
    const answers = [
      json(429, { error: { code: 'RateLimited', message: 'slow down' } }, { 'retry-after': '2' }),
      json(503, { error: { code: 'ServiceUnavailable', message: 'busy' } }, { 'retry-after': '1' }),
      json(200, { items: [], nextCursor: null }),
    ];
    const seen: string[] = [];
    const waits: number[] = [];
    const slept: number[] = [];
    const page = await call<{ items: unknown[] }>('/activities', 'tok', {}, {
      fetch: (async (_url: string, init: RequestInit) => {
        seen.push(new Headers(init.headers).get('authorization') ?? '');
        return answers.shift() as Response;
      }) as typeof fetch,
      sleep: async (ms) => void slept.push(ms),
      onWait: (s) => waits.push(s),
    });
    expect(page.items).toEqual([]);
    expect(seen).toEqual(['Bearer tok', 'Bearer tok', 'Bearer tok']);
    expect(waits).toEqual([2, 1]);
    expect(slept).toEqual([2000, 1000]);
  });

  test('other errors are thrown with their code and message, never swallowed', async () => {
    const fetch400 = (async () => json(400, { error: { code: 'InvalidDateRange', message: 'from is after to' } })) as unknown as typeof fetch;
    await expect(call('/activities', 't', {}, { fetch: fetch400 })).rejects.toEqual(new ApiError(400, 'InvalidDateRange', 'from is after to'));
    const fetch401 = (async () => json(401, { error: { code: 'Unauthenticated', message: 'expired' } })) as unknown as typeof fetch;
    await expect(call('/activities', 't', {}, { fetch: fetch401 })).rejects.toBeInstanceOf(SignInRequired);
    let n = 0;
    const always429 = (async () => {
      n++;
      return json(429, { error: { code: 'TooManyExports', message: 'three running' } }, { 'retry-after': '30' });
    }) as unknown as typeof fetch;
    await expect(call('/exports', 't', { method: 'POST', body: '{}' }, { fetch: always429, sleep: async () => {}, attempts: 3 })).rejects.toMatchObject({ status: 429, code: 'TooManyExports' });
    expect(n).toBe(3);
  });

  test('Retry-After in seconds or as a date, within 1–60 s', () => {
    expect(retryAfterSeconds('7')).toBe(7);
    expect(retryAfterSeconds(null)).toBe(1);
    expect(retryAfterSeconds('0')).toBe(1);
    expect(retryAfterSeconds('3600')).toBe(60);
    expect(retryAfterSeconds(new Date(10_000).toUTCString(), 0)).toBe(10);
  });

  test('the list request carries the view and nothing it does not set', () => {
    const path = activitiesPath({ from: 'F', to: 'T', customerId: '台北', status: 'failed' }, 50, 'c1');
    const p = new URL(path, 'http://x').searchParams;
    expect([...p.keys()]).toEqual(['from', 'to', 'customerId', 'status', 'limit', 'cursor']);
    expect(p.get('customerId')).toBe('台北');
  });
});
