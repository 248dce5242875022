// The view the page shows, kept in the URL (reload, back/forward and a shared link show the same
// view), and what follows from it: the words of its language, its zone, its period and the API
// query for it.
import { useEffect, useMemo, useState } from 'preact/hooks';

import type { Query } from '../api';
import { WORDS, type Lang, type Words } from '../i18n';
import { browserZone, periodOf, type Period } from '../period';
import { fromSearch, toSearch, type View } from '../view';

export interface ViewState {
  view: View;
  /** Shows `next`: a new history entry when its URL differs; its language is remembered. */
  setView: (next: View) => void;
  t: Words;
  /** 'UTC', or the browser's IANA zone. */
  zone: string;
  period: Period;
  /** From is not after To. */
  periodValid: boolean;
  /** What the API is asked for. */
  query: Query;
}

/** The API request for a view over its period. */
function queryOf(view: View, period: Period): Query {
  return {
    from: period.from,
    to: period.to,
    customerId: view.customer || undefined,
    action: view.action || undefined,
    partnerUser: view.partnerUser || undefined,
    status: view.status || undefined,
  };
}

export function useView(fallbackLang: Lang): ViewState {
  const [view, setViewState] = useState<View>(() => fromSearch(window.location.search, fallbackLang));
  const t = WORDS[view.lang];
  const zone = view.zone === 'UTC' ? 'UTC' : browserZone();
  // "Now" is fixed per view so that every page of it asks for the same period.
  const now = useMemo(() => new Date(), [toSearch(view)]); // eslint-disable-line react-hooks/exhaustive-deps
  const period = periodOf(view, zone, now);

  useEffect(() => {
    document.documentElement.lang = view.lang;
    document.title = t.title;
  }, [view.lang]);

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

  return { view, setView, t, zone, period, periodValid: period.fromDay <= period.toDay, query: queryOf(view, period) };
}
