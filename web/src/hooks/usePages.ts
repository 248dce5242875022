// The view's rows, page by page: the first page whenever the view's query changes, more with
// Load more; and what the page can show (loading, ready, an error, or a sign-in or access problem
// that any call may run into).
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';

import { ApiError, SignInRequired, activitiesPath, type Activity, type ActivityPage, type Query } from '../api';
import type { Api } from './useApi';

/** Rows asked for per request. */
export const PAGE_SIZE = 50;
/** Requests one "load" may make while pages come back empty (a sparse filter over a large log). */
const MAX_EMPTY_PAGES = 10;

export type Phase = 'loading' | 'ready' | 'signIn' | 'noAccess' | 'error';

export interface Pages {
  rows: Activity[];
  /** The next page's cursor; null when the period is exhausted. */
  cursor: string | null;
  phase: Phase;
  loadingMore: boolean;
  /** What went wrong, in phase 'error'. */
  error: string;
  loadMore: () => Promise<void>;
  /** Shows what a failed call means: sign in again, no access, or the error. */
  fail: (e: unknown) => void;
}

/** Fetches pages from `after` until one has rows or the period is exhausted. */
async function fetchRows(api: Api, query: Query, after: string | null): Promise<ActivityPage> {
  let next = after;
  for (let i = 0; ; i++) {
    const page = await api.get<ActivityPage>(activitiesPath(query, PAGE_SIZE, next));
    api.clearNotice();
    if (page.items.length > 0 || !page.nextCursor || i + 1 >= MAX_EMPTY_PAGES) return page;
    next = page.nextCursor;
  }
}

export function usePages(api: Api, query: Query, periodValid: boolean): Pages {
  const [rows, setRows] = useState<Activity[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [phase, setPhase] = useState<Phase>('loading');
  const [loadingMore, setLoadingMore] = useState(false);
  const [error, setError] = useState('');
  const generation = useRef(0);
  const firstRowsMarked = useRef(false);

  const fail = useCallback((e: unknown) => {
    if (e instanceof SignInRequired) setPhase('signIn');
    else if (e instanceof ApiError && e.status === 403) setPhase('noAccess');
    else {
      setError(e instanceof ApiError ? `${e.message} (${e.code})` : String(e instanceof Error ? e.message : e));
      setPhase('error');
    }
  }, []);

  // The first page of the view, whenever the view's query changes.
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
    fetchRows(api, query, null).then(
      (page) => {
        if (mine !== generation.current) return;
        setRows(page.items);
        setCursor(page.nextCursor);
        setPhase('ready');
      },
      (e) => mine === generation.current && fail(e),
    );
  }, [JSON.stringify(query)]); // eslint-disable-line react-hooks/exhaustive-deps

  useEffect(() => {
    if (phase === 'ready' && rows.length > 0 && !firstRowsMarked.current) {
      firstRowsMarked.current = true;
      performance.mark('first-rows');
    }
  }, [phase, rows]);

  const loadMore = async () => {
    if (!cursor) return;
    const mine = generation.current;
    setLoadingMore(true);
    try {
      const page = await fetchRows(api, query, cursor);
      if (mine !== generation.current) return;
      setRows((r) => [...r, ...page.items]);
      setCursor(page.nextCursor);
    } catch (e) {
      fail(e);
    } finally {
      setLoadingMore(false);
    }
  };

  return { rows, cursor, phase, loadingMore, error, loadMore, fail };
}
