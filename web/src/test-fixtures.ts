// Test data shared by the page's tests (app.test.ts, verify.test.ts): not part of the page.
import { createHash } from 'node:crypto';

import type { Activity, ChainLinks } from './api';
import { GENESIS_HASH, jcs, recordOf } from './chain';

/** Customer c1's chain of `n` activities (partner p1), hashed as the service chains them, newest
 * first as the list shows them. `recordedBy(i)`: who recorded the i-th (from 1). */
export function chain(n: number, recordedBy: (i: number) => string | null = () => 'writer-1'): Activity[] {
  const rows: Activity[] = [];
  let previous = GENESIS_HASH;
  for (let i = 1; i <= n; i++) {
    const a: Activity = {
      id: `a${i}`,
      customerId: 'c1',
      customerName: 'Contoso',
      action: 'placed an order',
      partnerUser: 'ann@partner.example',
      occurredAt: `2026-11-25T01:02:0${i}.000Z`,
      recordedAt: `2026-11-25T01:02:0${i}.500Z`,
      recordedBy: recordedBy(i),
      resourceType: 'order',
      status: 'succeeded',
      details: { products: [{ sku: 'x', qty: i }] },
      detailsSize: 40,
      detailsIncluded: true,
      sequence: i,
      previousHash: previous,
      previousRecordedAt: i === 1 ? null : `2026-11-25T01:02:0${i - 1}.500Z`,
      feedPosition: i,
      hash: null,
      links: { self: `/activities/c1/a${i}`, subscriptions: '/s' },
    };
    a.hash = createHash('sha256').update(Buffer.from(previous, 'hex')).update(jcs(recordOf('p1', a))).digest('hex');
    previous = a.hash;
    rows.push(a);
  }
  return rows.reverse();
}

/** `GET /customers/c1/chain?from=&to=` over `rows` (the service's chain as storage holds it). */
export function chainLinks(rows: readonly Activity[], url: URL): ChainLinks {
  const from = Number(url.searchParams.get('from'));
  const to = Number(url.searchParams.get('to'));
  const links = rows
    .filter((a) => a.sequence !== null && a.sequence >= from && a.sequence <= to)
    .sort((a, b) => (a.sequence as number) - (b.sequence as number))
    .map((a) => ({ sequence: a.sequence as number, hash: a.hash as string, previousHash: a.previousHash as string }));
  return { customerId: 'c1', from, to, links };
}
