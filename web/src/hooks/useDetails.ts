// Which rows are open, and the full details of those the list left out (fetched through their
// `links.self`, once; Verify reuses them).
import { useEffect, useRef, useState } from 'preact/hooks';

import { SignInRequired, type Activity } from '../api';
import type { Api } from './useApi';

export type DetailsState = { state: 'loading' } | { state: 'ready'; value: unknown } | { state: 'error'; message: string };

/** A row's key: `customerId/id`. */
export const keyOf = (a: Activity) => `${a.customerId}/${a.id}`;

export interface Details {
  isOpen: (a: Activity) => boolean;
  /** The full details fetched for a row, if any. */
  of: (a: Activity) => DetailsState | undefined;
  /** Opens or closes a row's details, fetching them when the list left them out. */
  toggle: (a: Activity) => Promise<void>;
  /** An activity's full details through its own address, once; shown in its details panel as
   * they come. */
  fullDetails: (a: Activity) => Promise<unknown>;
}

/** `queryKey`: the view's query; a new (valid) one closes every row. `fail`: what a sign-in
 * problem leads to. */
export function useDetails(api: Api, fail: (e: unknown) => void, queryKey: string, periodValid: boolean): Details {
  const [expanded, setExpanded] = useState<Set<string>>(new Set());
  const [details, setDetails] = useState<Map<string, DetailsState>>(new Map());
  /** Full details fetched (or being fetched) through `links.self`, by row. */
  const detailFetches = useRef(new Map<string, Promise<unknown>>());

  // A new view's first page starts with every row closed.
  useEffect(() => {
    if (periodValid) setExpanded(new Set());
  }, [queryKey]); // eslint-disable-line react-hooks/exhaustive-deps

  const fullDetails = (a: Activity): Promise<unknown> => {
    const key = keyOf(a);
    const known = detailFetches.current.get(key);
    if (known) return known;
    setDetails((d) => new Map(d).set(key, { state: 'loading' }));
    const fetching = (async () => {
      try {
        const full = await api.get<Activity>(a.links.self);
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

  return { isOpen: (a) => expanded.has(keyOf(a)), of: (a) => details.get(keyOf(a)), toggle, fullDetails };
}
