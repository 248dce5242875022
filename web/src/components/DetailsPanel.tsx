// An open row's panel: where the activity sits in its customer's chain, and its details as a tree
// (or that they are loading, could not be fetched, or are none).
import { useEffect } from 'preact/hooks';

import type { Activity } from '../api';
import { DetailsTree } from '../details';
import type { DetailsState } from '../hooks/useDetails';
import type { Words } from '../i18n';

export function DetailsPanel({ a, t, value, details }: { a: Activity; t: Words; value: unknown; details: DetailsState | undefined }) {
  useEffect(() => {
    if (value === undefined) return;
    const key = `${a.customerId}/${a.id}`;
    // Measured by the browser test: from the click to the tree on screen.
    requestAnimationFrame(() => performance.measure(`details:${key}`, `details-open:${key}`));
  }, [value === undefined]); // eslint-disable-line react-hooks/exhaustive-deps
  const chain = <ChainMeta a={a} t={t} />;
  if (details?.state === 'loading')
    return (
      <>
        {chain}
        <p>{t.loadingDetails}</p>
      </>
    );
  if (details?.state === 'error')
    return (
      <>
        {chain}
        <p class="error">{details.message}</p>
      </>
    );
  if (value === undefined || value === null)
    return (
      <>
        {chain}
        <p>{t.noDetails}</p>
      </>
    );
  return (
    <section aria-label={`${t.details}: ${a.action}`}>
      <p class="meta">
        {a.resourceType && <span>{a.resourceType} · </span>}
        <span>
          {a.customerId} · {a.id}
        </span>
      </p>
      {chain}
      <DetailsTree details={value} label={t.details} />
    </section>
  );
}

/** Who recorded the activity, where it sits in its customer's hash chain, and its place in the
 * tenant's feed (GET /feed; not yet given moments after recording). */
function ChainMeta({ a, t }: { a: Activity; t: Words }) {
  return (
    <dl class="chain-meta">
      <dt>{t.recordedBy}</dt>
      <dd>{a.recordedBy ?? '—'}</dd>
      <dt>{t.feedPosition}</dt>
      <dd>{a.feedPosition ?? t.feedPositionPending}</dd>
      <dt>{t.hash}</dt>
      <dd class="hash">{a.hash ?? '—'}</dd>
      <dt>{t.previousHash}</dt>
      <dd class="hash">{a.previousHash ?? '—'}</dd>
    </dl>
  );
}
