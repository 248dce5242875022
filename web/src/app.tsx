// The Activity Log page: the view (kept in the URL), its rows page by page, their details, Export,
// Verify, and Streaming (for admins, even an AccountAdmin who may not read the log). Each is held
// by its hook (hooks/) and shown by its component (components/).
import type { User, UserManager } from 'oidc-client-ts';
import { useState } from 'preact/hooks';

import { displayName, signIn } from './auth';
import { AccessMessage } from './components/AccessMessage';
import { ActivityTable, TableFooter } from './components/ActivityTable';
import { ExportControls, StatusLine } from './components/ExportBar';
import { FilterForm } from './components/FilterForm';
import { Header } from './components/Header';
import { StreamingSection } from './components/StreamingSection';
import { Toolbar } from './components/Toolbar';
import { VerifyBar } from './components/VerifyBar';
import { useApi } from './hooks/useApi';
import { useDestinations } from './hooks/useDestinations';
import { useDetails } from './hooks/useDetails';
import { useExport } from './hooks/useExport';
import { usePages } from './hooks/usePages';
import { useVerify } from './hooks/useVerify';
import { useView } from './hooks/useView';
import type { Lang } from './i18n';
import { toSearch } from './view';

export function App({ um, user: initialUser, fallbackLang, signingKeyPem }: { um: UserManager; user: User; fallbackLang: Lang; signingKeyPem?: string }) {
  const [user] = useState(initialUser);
  const viewState = useView(fallbackLang);
  const { view, setView, t, zone, period, periodValid, query } = viewState;
  const api = useApi(user, view.lang);
  const pages = usePages(api, query, periodValid);
  const details = useDetails(api, pages.fail, JSON.stringify(query), periodValid);
  const exp = useExport(api, pages.fail, viewState);
  const verify = useVerify(api, pages, view.customer, details.fullDetails, signingKeyPem);
  const destinations = useDestinations(api, pages.fail);
  const { rows, phase } = pages;
  const streaming = <StreamingSection destinations={destinations} t={t} lang={view.lang} zone={zone} />;

  const header = (
    <Header t={t} lang={view.lang} onLang={(lang) => setView({ ...view, lang })} userName={displayName(user)} onSignOut={() => um.signoutRedirect()} />
  );
  if (phase === 'signIn' || phase === 'noAccess') {
    return (
      <>
        {header}
        <AccessMessage t={t} problem={phase} onSignInAgain={() => um.removeUser().then(() => signIn(um))}>
          {phase === 'noAccess' && streaming}
        </AccessMessage>
      </>
    );
  }

  return (
    <>
      {header}
      <main class="page">
        <h1>{t.title}</h1>
        <p class="intro">{t.intro}</p>
        <FilterForm key={toSearch(view)} view={view} period={period} t={t} onApply={setView} rows={rows} />
        <Toolbar view={view} t={t} onView={setView}>
          <ExportControls t={t} exp={exp} disabled={!periodValid} />
        </Toolbar>
        <StatusLine notice={api.notice} exportState={exp.state} t={t} />
        {!periodValid && (
          <p class="error" role="alert">
            {t.fromAfterTo}
          </p>
        )}
        {phase === 'error' && (
          <div class="error" role="alert">
            <strong>{t.errorTitle}:</strong> {pages.error}
          </div>
        )}
        <ActivityTable rows={rows} busy={phase === 'loading'} t={t} lang={view.lang} zone={zone} period={period} details={details} tampered={verify.tampered} />
        <TableFooter pages={pages} t={t} periodValid={periodValid} />
        {verify.can && <VerifyBar verify={verify} t={t} disabled={pages.loadingMore} />}
        {streaming}
      </main>
    </>
  );
}
