// The Activity Log page.
import type { User, UserManager } from 'oidc-client-ts';
import type { JSX } from 'preact';
import { useCallback, useEffect, useMemo, useRef, useState } from 'preact/hooks';

import { ApiError, SignInRequired, activitiesPath, call, type Activity, type ActivityPage, type ExportJob, type Query } from './api';
import { displayName, signIn } from './auth';
import { DetailsTree } from './details';
import { LANGS, LANG_NAMES, WORDS, type Lang, type Words } from './i18n';
import { QUICK, browserZone, formatDateTime, isDay, periodOf, type Quick } from './period';
import { failedKey, tone, verifyMessage, verifyView, type Outcome } from './verify';
import { STATUSES, fromSearch, toSearch, type Status, type View } from './view';

/** Rows asked for per request. */
export const PAGE_SIZE = 50;
/** Requests one "load" may make while pages come back empty (a sparse filter over a large log). */
const MAX_EMPTY_PAGES = 10;
const EXPORT_POLL_MS = 1000;

type Phase = 'loading' | 'ready' | 'signIn' | 'noAccess' | 'error';

type DetailsState = { state: 'loading' } | { state: 'ready'; value: unknown } | { state: 'error'; message: string };

type ExportState =
  | { state: 'idle' }
  | { state: 'running'; rows: number; queued: boolean }
  | { state: 'done'; rows: number; url: string }
  | { state: 'failed'; message: string };

/** Verify's progress, for the rows it checks (`rows`: the page's rows array it was given). */
type VerifyState =
  | { state: 'idle' }
  | { state: 'running'; rows: Activity[] }
  | { state: 'done'; rows: Activity[]; outcome: Outcome }
  | { state: 'error'; rows: Activity[]; message: string };

const keyOf = (a: Activity) => `${a.customerId}/${a.id}`;

function queryOf(view: View, zone: string, now: Date): Query {
  const p = periodOf(view, zone, now);
  return {
    from: p.from,
    to: p.to,
    customerId: view.customer || undefined,
    action: view.action || undefined,
    partnerUser: view.partnerUser || undefined,
    status: view.status || undefined,
  };
}

export function App({ um, user: initialUser, fallbackLang }: { um: UserManager; user: User; fallbackLang: Lang }) {
  const [user] = useState(initialUser);
  const [view, setViewState] = useState<View>(() => fromSearch(window.location.search, fallbackLang));
  const [rows, setRows] = useState<Activity[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [phase, setPhase] = useState<Phase>('loading');
  const [loadingMore, setLoadingMore] = useState(false);
  const [error, setError] = useState('');
  const [notice, setNotice] = useState('');
  const [expanded, setExpanded] = useState<Set<string>>(new Set());
  const [details, setDetails] = useState<Map<string, DetailsState>>(new Map());
  const [exportState, setExportState] = useState<ExportState>({ state: 'idle' });
  const [format, setFormat] = useState<'csv' | 'jsonl'>('csv');
  const [verifyState, setVerify] = useState<VerifyState>({ state: 'idle' });
  const generation = useRef(0);
  /** Full details fetched (or being fetched) through `links.self`, by row. */
  const detailFetches = useRef(new Map<string, Promise<unknown>>());
  const firstRowsMarked = useRef(false);

  const t: Words = WORDS[view.lang];
  const zone = view.zone === 'UTC' ? 'UTC' : browserZone();
  // "Now" is fixed per view so that every page of it asks for the same period.
  const now = useMemo(() => new Date(), [toSearch(view)]); // eslint-disable-line react-hooks/exhaustive-deps
  const period = periodOf(view, zone, now);
  const periodValid = period.fromDay <= period.toDay;

  useEffect(() => {
    document.documentElement.lang = view.lang;
    document.title = t.title;
  }, [view.lang]);

  const token = useCallback((): string => {
    if (user.expired) throw new SignInRequired('expired');
    return user.access_token;
  }, [user]);

  const fail = useCallback((e: unknown) => {
    if (e instanceof SignInRequired) setPhase('signIn');
    else if (e instanceof ApiError && e.status === 403) setPhase('noAccess');
    else {
      setError(e instanceof ApiError ? `${e.message} (${e.code})` : String(e instanceof Error ? e.message : e));
      setPhase('error');
    }
  }, []);

  const onWait = useCallback((s: number) => setNotice(WORDS[view.lang].busy(s)), [view.lang]);

  /** Fetches pages from `after` until one has rows or the period is exhausted. */
  const fetchRows = useCallback(
    async (v: View, after: string | null): Promise<ActivityPage> => {
      const q = queryOf(v, v.zone === 'UTC' ? 'UTC' : browserZone(), now);
      let next = after;
      for (let i = 0; ; i++) {
        const page = await call<ActivityPage>(activitiesPath(q, PAGE_SIZE, next), token(), {}, { onWait });
        setNotice('');
        if (page.items.length > 0 || !page.nextCursor || i + 1 >= MAX_EMPTY_PAGES) return page;
        next = page.nextCursor;
      }
    },
    [now, token, onWait],
  );

  // The first page of the view, whenever the view's query changes.
  const queryKey = JSON.stringify(queryOf(view, zone, now));
  useEffect(() => {
    if (!periodValid) {
      setRows([]);
      setCursor(null);
      setPhase('ready');
      return;
    }
    const mine = ++generation.current;
    setPhase('loading');
    setRows([]);
    setCursor(null);
    setExpanded(new Set());
    fetchRows(view, null).then(
      (page) => {
        if (mine !== generation.current) return;
        setRows(page.items);
        setCursor(page.nextCursor);
        setPhase('ready');
      },
      (e) => mine === generation.current && fail(e),
    );
  }, [queryKey]); // eslint-disable-line react-hooks/exhaustive-deps

  useEffect(() => {
    if (phase === 'ready' && rows.length > 0 && !firstRowsMarked.current) {
      firstRowsMarked.current = true;
      performance.mark('first-rows');
    }
  }, [phase, rows]);

  // Back and forward.
  useEffect(() => {
    const onPop = () => setViewState(fromSearch(window.location.search, fallbackLang));
    window.addEventListener('popstate', onPop);
    return () => window.removeEventListener('popstate', onPop);
  }, [fallbackLang]);

  const setView = (next: View) => {
    const search = toSearch(next);
    if (search !== window.location.search) window.history.pushState(null, '', `/${search}`);
    try {
      window.localStorage.setItem('activity-log.lang', next.lang);
    } catch {
      // storage may be off; the URL still holds the language
    }
    setViewState(next);
  };

  const loadMore = async () => {
    if (!cursor) return;
    const mine = generation.current;
    setLoadingMore(true);
    try {
      const page = await fetchRows(view, cursor);
      if (mine !== generation.current) return;
      setRows((r) => [...r, ...page.items]);
      setCursor(page.nextCursor);
    } catch (e) {
      fail(e);
    } finally {
      setLoadingMore(false);
    }
  };

  const toggle = async (a: Activity) => {
    const key = keyOf(a);
    const open = new Set(expanded);
    if (open.has(key)) {
      open.delete(key);
      setExpanded(open);
      return;
    }
    open.add(key);
    setExpanded(open);
    performance.mark(`details-open:${key}`);
    if (a.detailsIncluded || a.details !== null || details.has(key)) return;
    try {
      await fullDetails(a);
    } catch (e) {
      if (e instanceof SignInRequired) fail(e);
    }
  };

  /** An activity's full details through its own address (the list leaves out large ones), once;
   * shown in its details panel as they come. Show details and Verify both use it. */
  const fullDetails = (a: Activity): Promise<unknown> => {
    const key = keyOf(a);
    const known = detailFetches.current.get(key);
    if (known) return known;
    setDetails((d) => new Map(d).set(key, { state: 'loading' }));
    const fetching = (async () => {
      try {
        const full = await call<Activity>(a.links.self, token(), {}, { onWait });
        setDetails((d) => new Map(d).set(key, { state: 'ready', value: full.details }));
        return full.details;
      } catch (e) {
        detailFetches.current.delete(key);
        if (!(e instanceof SignInRequired)) setDetails((d) => new Map(d).set(key, { state: 'error', message: e instanceof Error ? e.message : String(e) }));
        throw e;
      }
    })();
    detailFetches.current.set(key, fetching);
    return fetching;
  };

  /** Verify: the loaded rows of the view's customer against their hashes and a fresh signed
   * checkpoint. A view never holds a whole stretch of the chain for sure — its period is by
   * when activities occurred, the chain by when they were recorded — so sequences between the
   * loaded ones are counted, not reported missing (activity-log-verify --api checks the whole
   * chain). */
  const startVerify = async () => {
    const checked = rows;
    setVerify({ state: 'running', rows: checked });
    // Only what this run started may finish it.
    const finish = (next: VerifyState) => setVerify((v) => (v.state === 'running' && v.rows === checked ? next : v));
    const contiguous = false;
    try {
      const outcome = await verifyView(checked, view.customer, contiguous, {
        get: <T,>(path: string) => call<T>(path, token(), {}, { onWait }),
        details: fullDetails,
      });
      setNotice('');
      finish({ state: 'done', rows: checked, outcome });
    } catch (e) {
      setNotice('');
      if (e instanceof SignInRequired) return fail(e);
      finish({ state: 'error', rows: checked, message: e instanceof ApiError ? `${e.message} (${e.code})` : e instanceof Error ? e.message : String(e) });
    }
  };

  const startExport = async () => {
    setExportState({ state: 'running', rows: 0, queued: true });
    const q = queryOf(view, zone, now);
    try {
      let job = await call<ExportJob>(
        '/exports',
        token(),
        { method: 'POST', body: JSON.stringify({ ...q, timeZone: zone, locale: view.lang, format }) },
        { onWait, attempts: 6 },
      );
      // The job's own address hands out the download link once it has succeeded.
      while (job.status === 'pending' || job.status === 'running' || (job.status === 'succeeded' && !job.downloadUrl)) {
        if (job.status !== 'succeeded') {
          setExportState({ state: 'running', rows: job.rowCount, queued: job.status === 'pending' });
          await new Promise((r) => setTimeout(r, EXPORT_POLL_MS));
        }
        job = await call<ExportJob>(job.links.self, token(), {}, { onWait });
      }
      setNotice('');
      if (job.status === 'failed' || !job.downloadUrl) {
        setExportState({ state: 'failed', message: job.error ?? job.status });
        return;
      }
      setExportState({ state: 'done', rows: job.rowCount, url: job.downloadUrl });
      download(job.downloadUrl);
    } catch (e) {
      if (e instanceof SignInRequired) return fail(e);
      setExportState({ state: 'failed', message: e instanceof ApiError ? `${e.message} (${e.code})` : String(e) });
    }
  };

  const header = (
    <header class="top">
      <span class="brand">activity-log</span>
      <div class="top-right">
        <label class="inline" for="language">
          {t.language}
        </label>
        <select id="language" value={view.lang} onChange={(e) => setView({ ...view, lang: (e.target as HTMLSelectElement).value as Lang })}>
            {LANGS.map((l) => (
              <option value={l} key={l} lang={l}>
                {LANG_NAMES[l]}
              </option>
            ))}
        </select>
        <span class="who">
          {t.signedInAs} <strong>{displayName(user)}</strong>
        </span>
        <button type="button" class="secondary" onClick={() => um.signoutRedirect()}>
          {t.signOut}
        </button>
      </div>
    </header>
  );

  if (phase === 'signIn') {
    return (
      <>
        {header}
        <main class="page">
          <h1>{t.title}</h1>
          <div class="message" role="alert">
            <p>{t.sessionEnded}</p>
            <button type="button" onClick={() => um.removeUser().then(() => signIn(um))}>
              {t.signInAgain}
            </button>
          </div>
        </main>
      </>
    );
  }
  if (phase === 'noAccess') {
    return (
      <>
        {header}
        <main class="page">
          <h1>{t.title}</h1>
          <div class="message" role="alert">
            <p>
              <strong>{t.noAccess}</strong>
            </p>
            <p>{t.noAccessHint}</p>
          </div>
        </main>
      </>
    );
  }

  const customers = new Map(rows.map((r) => [r.customerId, r.customerName]));
  const actions = [...new Set(rows.map((r) => r.action))].sort();
  const users = [...new Set(rows.map((r) => r.partnerUser))].sort();
  const canVerify = view.customer !== '' && phase !== 'loading' && rows.length > 0;
  // A verification speaks of the rows it checked: other rows (another view, more loaded), none.
  const verify: VerifyState = verifyState.state !== 'idle' && verifyState.rows === rows ? verifyState : { state: 'idle' };
  const tampered = verify.state === 'done' ? failedKey(verify.outcome) : undefined;

  return (
    <>
      {header}
      <main class="page">
        <h1>{t.title}</h1>
        <p class="intro">{t.intro}</p>

        <FilterForm key={toSearch(view)} view={view} period={period} t={t} onApply={setView} customers={customers} actions={actions} users={users} />

        <div class="toolbar">
          <div role="group" aria-label={t.quick} class="quick">
            {(Object.keys(QUICK) as Quick[]).map((q) => (
              <button
                type="button"
                key={q}
                class="chip"
                aria-pressed={view.quick === q}
                onClick={() => setView({ ...view, quick: q, from: '', to: '' })}
              >
                {t[`last${q}` as 'last24h']}
              </button>
            ))}
          </div>
          <div class="inline">
            <label for="zone">{t.timeZone}</label>
            <select id="zone" name="zone" value={view.zone} onChange={(e) => setView({ ...view, zone: (e.target as HTMLSelectElement).value as 'local' | 'UTC' })}>
              <option value="local">
                {browserZone()} {t.browserZone}
              </option>
              <option value="UTC">UTC</option>
            </select>
          </div>
          <div class="export">
            <div class="inline">
              <label for="format">{t.format}</label>
              <select id="format" value={format} onChange={(e) => setFormat((e.target as HTMLSelectElement).value as 'csv' | 'jsonl')}>
                <option value="csv">CSV</option>
                <option value="jsonl">JSON Lines</option>
              </select>
            </div>
            <button type="button" onClick={startExport} disabled={exportState.state === 'running' || !periodValid}>
              {t.exportLog}
            </button>
          </div>
        </div>

        <div class="status-line" role="status" aria-live="polite">
          {notice && <p>{notice}</p>}
          <ExportStatusLine state={exportState} t={t} />
        </div>

        {!periodValid && (
          <p class="error" role="alert">
            {t.fromAfterTo}
          </p>
        )}
        {phase === 'error' && (
          <div class="error" role="alert">
            <strong>{t.errorTitle}:</strong> {error}
          </div>
        )}

        <table class="log" aria-busy={phase === 'loading'}>
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
              <Row
                key={keyOf(a)}
                a={a}
                t={t}
                lang={view.lang}
                zone={zone}
                open={expanded.has(keyOf(a))}
                details={details.get(keyOf(a))}
                onToggle={toggle}
                tampered={tampered === keyOf(a)}
              />
            ))}
          </tbody>
        </table>

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
        {canVerify && (
          <div class="verify-line">
            <button type="button" class="secondary" onClick={startVerify} disabled={verify.state === 'running' || loadingMore}>
              {t.verify}
            </button>
            <VerifyStatus state={verify} t={t} />
          </div>
        )}
      </main>
    </>
  );
}

function download(url: string) {
  const a = document.createElement('a');
  a.href = url;
  a.rel = 'noopener';
  document.body.appendChild(a);
  a.click();
  a.remove();
}

function ExportStatusLine({ state, t }: { state: ExportState; t: Words }) {
  switch (state.state) {
    case 'idle':
      return null;
    case 'running':
      return <p>{state.queued && state.rows === 0 ? t.exportQueued : t.exporting(state.rows)}</p>;
    case 'done':
      return (
        <p>
          {t.exportReady(state.rows)}{' '}
          <a href={state.url} rel="noopener">
            {t.downloadAgain}
          </a>
        </p>
      );
    case 'failed':
      return (
        <p class="error">
          <strong>{t.exportFailed}:</strong> {state.message}
        </p>
      );
  }
}

/** The live region beside Verify: working, what it found, or why it could not. */
function VerifyStatus({ state, t }: { state: VerifyState; t: Words }) {
  const [text, cls] =
    state.state === 'idle'
      ? ['', undefined]
      : state.state === 'running'
        ? [t.verifying, undefined]
        : state.state === 'error'
          ? [t.verifyError(state.message), 'error']
          : [verifyMessage(state.outcome, t), { passed: 'verify-ok', neutral: undefined, failed: 'error' }[tone(state.outcome)]];
  return (
    <p class={cls ? `verify-status ${cls}` : 'verify-status'} role="status">
      {text}
    </p>
  );
}

function Row({
  a,
  t,
  lang,
  zone,
  open,
  details,
  onToggle,
  tampered,
}: {
  a: Activity;
  t: Words;
  lang: Lang;
  zone: string;
  open: boolean;
  details: DetailsState | undefined;
  onToggle: (a: Activity) => void;
  tampered: boolean;
}) {
  const id = `details-${a.customerId}-${a.id}`.replace(/[^A-Za-z0-9_-]/g, '_');
  const value = a.details !== null ? a.details : details?.state === 'ready' ? details.value : undefined;
  return (
    <>
      <tr class={[open && 'open', tampered && 'row-tampered'].filter(Boolean).join(' ') || undefined} data-key={`${a.customerId}/${a.id}`}>
        <td class="toggle-col">
          <button type="button" class="toggle" aria-expanded={open} aria-controls={id} onClick={() => onToggle(a)}>
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
            <DetailsBody a={a} t={t} value={value} details={details} />
          </td>
        </tr>
      )}
    </>
  );
}

function DetailsBody({ a, t, value, details }: { a: Activity; t: Words; value: unknown; details: DetailsState | undefined }) {
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

/** Who recorded the activity and where it sits in its customer's hash chain. */
function ChainMeta({ a, t }: { a: Activity; t: Words }) {
  return (
    <dl class="chain-meta">
      <dt>{t.recordedBy}</dt>
      <dd>{a.recordedBy ?? '—'}</dd>
      <dt>{t.hash}</dt>
      <dd class="hash">{a.hash ?? '—'}</dd>
      <dt>{t.previousHash}</dt>
      <dd class="hash">{a.previousHash ?? '—'}</dd>
    </dl>
  );
}

function FilterForm({
  view,
  period,
  t,
  onApply,
  customers,
  actions,
  users,
}: {
  view: View;
  period: { fromDay: string; toDay: string };
  t: Words;
  onApply: (v: View) => void;
  customers: Map<string, string>;
  actions: string[];
  users: string[];
}) {
  const [draft, setDraft] = useState({
    from: period.fromDay,
    to: period.toDay,
    customer: view.customer,
    action: view.action,
    partnerUser: view.partnerUser,
    status: view.status as Status | '',
  });
  const set = (name: keyof typeof draft) => (e: Event) => setDraft({ ...draft, [name]: (e.target as HTMLInputElement).value });
  const apply = (e: Event) => {
    e.preventDefault();
    const periodChanged = draft.from !== period.fromDay || draft.to !== period.toDay;
    const next: View = {
      ...view,
      customer: draft.customer.trim(),
      action: draft.action.trim(),
      partnerUser: draft.partnerUser.trim(),
      status: draft.status,
    };
    if (periodChanged) {
      next.quick = undefined;
      next.from = isDay(draft.from) ? draft.from : '';
      next.to = isDay(draft.to) ? draft.to : '';
    }
    onApply(next);
  };
  const clear = () => onApply({ ...view, customer: '', action: '', partnerUser: '', status: '' });
  const field = (name: string, label: string, control: JSX.Element) => (
    <div class="field">
      <label for={`f-${name}`}>{label}</label>
      {control}
    </div>
  );
  return (
    <form class="filters" onSubmit={apply} aria-label={t.filters}>
      <fieldset>
        <legend>{t.period}</legend>
        {field('from', t.from, <input id="f-from" type="date" name="from" value={draft.from} max={draft.to} onInput={set('from')} required />)}
        {field('to', t.to, <input id="f-to" type="date" name="to" value={draft.to} min={draft.from} onInput={set('to')} required />)}
      </fieldset>
      <fieldset>
        <legend>{t.filters}</legend>
        {field(
          'customer',
          t.customer,
          <input id="f-customer" type="text" name="customer" list="customer-ids" placeholder={t.customerHint} value={draft.customer} onInput={set('customer')} />,
        )}
        <datalist id="customer-ids">
          {[...customers].map(([id, name]) => (
            <option value={id} key={id}>
              {name}
            </option>
          ))}
        </datalist>
        {field('action', t.action, <input id="f-action" type="text" name="action" list="actions" value={draft.action} onInput={set('action')} />)}
        <datalist id="actions">
          {actions.map((a) => (
            <option value={a} key={a} />
          ))}
        </datalist>
        {field(
          'partnerUser',
          t.partnerUser,
          <input id="f-partnerUser" type="text" name="partnerUser" list="partner-users" value={draft.partnerUser} onInput={set('partnerUser')} />,
        )}
        <datalist id="partner-users">
          {users.map((u) => (
            <option value={u} key={u} />
          ))}
        </datalist>
        {field(
          'status',
          t.status,
          <select id="f-status" name="status" value={draft.status} onChange={set('status')}>
            <option value="">{t.anyStatus}</option>
            {STATUSES.map((s) => (
              <option value={s} key={s}>
                {t.statusNames[s]}
              </option>
            ))}
          </select>,
        )}
      </fieldset>
      <div class="form-actions">
        <button type="submit">{t.apply}</button>
        <button type="button" class="secondary" onClick={clear}>
          {t.clear}
        </button>
      </div>
    </form>
  );
}
