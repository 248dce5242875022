// The log: one row per activity, each with its details panel, and the line under the table
// (loading, none, how many, Load more).
import type { Activity } from '../api';
import { keyOf, type Details } from '../hooks/useDetails';
import type { Pages } from '../hooks/usePages';
import type { Lang, Words } from '../i18n';
import { formatDateTime, type Period } from '../period';
import { DetailsPanel } from './DetailsPanel';

interface TableProps {
  rows: Activity[];
  busy: boolean;
  t: Words;
  lang: Lang;
  zone: string;
  period: Period;
  details: Details;
  /** The row a verification found altered (`customerId/id`). */
  tampered: string | undefined;
}

export function ActivityTable({ rows, busy, t, lang, zone, period, details, tampered }: TableProps) {
  return (
    <table class="log" aria-busy={busy}>
      <caption class="sr-only">
        {t.title}: {period.fromDay} – {period.toDay} ({zone})
      </caption>
      <thead>
        <tr>
          <th scope="col" class="toggle-col">
            <span class="sr-only">{t.details}</span>
          </th>
          <th scope="col">{t.dateTime}</th>
          <th scope="col">{t.affectedCustomer}</th>
          <th scope="col">{t.action}</th>
          <th scope="col">{t.partnerUser}</th>
          <th scope="col">{t.status}</th>
          <th scope="col" class="seq-col">
            {t.sequence}
          </th>
        </tr>
      </thead>
      <tbody>
        {rows.map((a) => (
          <Row key={keyOf(a)} a={a} t={t} lang={lang} zone={zone} details={details} tampered={tampered === keyOf(a)} />
        ))}
      </tbody>
    </table>
  );
}

function Row({ a, t, lang, zone, details, tampered }: { a: Activity; t: Words; lang: Lang; zone: string; details: Details; tampered: boolean }) {
  const id = `details-${a.customerId}-${a.id}`.replace(/[^A-Za-z0-9_-]/g, '_');
  const open = details.isOpen(a);
  const fetched = details.of(a);
  const value = a.details !== null ? a.details : fetched?.state === 'ready' ? fetched.value : undefined;
  return (
    <>
      <tr class={[open && 'open', tampered && 'row-tampered'].filter(Boolean).join(' ') || undefined} data-key={`${a.customerId}/${a.id}`}>
        <td class="toggle-col">
          <button type="button" class="toggle" aria-expanded={open} aria-controls={id} onClick={() => details.toggle(a)}>
            <span aria-hidden="true" class="chevron">
              ▸
            </span>
            <span class="sr-only">{t.showDetails}</span>
          </button>
          {tampered && <span class="sr-only">{t.failedVerification}</span>}
        </td>
        <td>
          <time dateTime={a.occurredAt}>{formatDateTime(a.occurredAt, lang, zone)}</time>
        </td>
        <td>
          <a href={a.links.subscriptions}>
            {a.customerName}
            <span class="sr-only"> ({t.subscriptions})</span>
          </a>
        </td>
        <td>{a.action}</td>
        <td>{a.partnerUser}</td>
        <td>
          <span class={`badge ${a.status}`}>{t.statusNames[a.status] ?? a.status}</span>
        </td>
        <td class="seq-col">{a.sequence ?? '—'}</td>
      </tr>
      {open && (
        <tr class="details-row" id={id}>
          <td colSpan={7}>
            <DetailsPanel a={a} t={t} value={value} details={fetched} />
          </td>
        </tr>
      )}
    </>
  );
}

/** Under the table: loading, nothing found, how many rows, Load more. */
export function TableFooter({ pages, t, periodValid }: { pages: Pages; t: Words; periodValid: boolean }) {
  const { phase, rows, cursor, loadingMore, loadMore } = pages;
  return (
    <div class="footer-line">
      {phase === 'loading' && <p>{t.loading}</p>}
      {phase === 'ready' && rows.length === 0 && periodValid && <p>{t.none}</p>}
      {phase !== 'loading' && rows.length > 0 && (
        <p class="count" data-testid="row-count">
          {t.rowsLoaded(rows.length)} · {cursor ? t.moreAvailable : t.allLoaded}
        </p>
      )}
      {cursor && phase === 'ready' && (
        <button type="button" onClick={loadMore} disabled={loadingMore}>
          {loadingMore ? t.loading : t.loadMore}
        </button>
      )}
    </div>
  );
}
