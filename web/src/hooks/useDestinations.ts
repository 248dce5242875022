// Streaming: the tenant's destinations (GET /destinations) and Pause / Resume (PATCH with
// If-Match). Only GlobalAdmin and AccountAdmin may manage them: a 403 means the user is not one
// of them, and the page shows no Streaming section at all.
import { useEffect, useRef, useState } from 'preact/hooks';

import { ApiError, DESTINATIONS_PATH, SignInRequired, destinationPath, type Destination, type DestinationList, type DestinationUpdate } from '../api';
import type { Api } from './useApi';

export type DestinationsState =
  | { state: 'loading' }
  /** 403: not an admin; nothing is shown. */
  | { state: 'hidden' }
  | { state: 'error'; message: string }
  | { state: 'ready'; list: DestinationList };

/** What the last Pause or Resume led to, when not simply done. */
export type ChangeNotice = { kind: 'changed'; name: string } | { kind: 'failed'; message: string } | null;

export interface Destinations {
  state: DestinationsState;
  /** The destination being paused or resumed, if any. */
  changing: string | null;
  notice: ChangeNotice;
  pause: (id: string) => Promise<void>;
  resume: (id: string) => Promise<void>;
}

const messageOf = (e: unknown) => (e instanceof ApiError ? `${e.message} (${e.code})` : e instanceof Error ? e.message : String(e));

/** `fail`: what a sign-in problem leads to. */
export function useDestinations(api: Api, fail: (e: unknown) => void): Destinations {
  const [state, setState] = useState<DestinationsState>({ state: 'loading' });
  const [changing, setChanging] = useState<string | null>(null);
  const [notice, setNotice] = useState<ChangeNotice>(null);
  const generation = useRef(0);

  const load = async () => {
    const mine = ++generation.current;
    try {
      const list = await api.get<DestinationList>(DESTINATIONS_PATH);
      api.clearNotice();
      if (mine === generation.current) setState({ state: 'ready', list });
    } catch (e) {
      if (mine !== generation.current) return;
      if (e instanceof SignInRequired) fail(e);
      else if (e instanceof ApiError && e.status === 403) setState({ state: 'hidden' });
      else setState({ state: 'error', message: messageOf(e) });
    }
  };

  useEffect(() => {
    void load();
  }, []); // eslint-disable-line react-hooks/exhaustive-deps

  /** Pauses or resumes the destination as it was read (If-Match its version), then reads the list again. */
  const change = async (id: string, paused: boolean) => {
    const d: Destination | undefined = state.state === 'ready' ? state.list.items.find((x) => x.id === id) : undefined;
    if (!d || changing) return;
    setChanging(id);
    setNotice(null);
    try {
      const body: DestinationUpdate = { paused };
      await api.get<Destination>(destinationPath(id), { method: 'PATCH', headers: { 'If-Match': `"${d.version}"` }, body: JSON.stringify(body) });
      api.clearNotice();
    } catch (e) {
      if (e instanceof SignInRequired) {
        setChanging(null);
        return fail(e);
      }
      // 412: someone changed it since the list was read; the list shows it as it is now.
      setNotice(e instanceof ApiError && e.status === 412 ? { kind: 'changed', name: d.name } : { kind: 'failed', message: messageOf(e) });
    }
    await load();
    setChanging(null);
  };

  return { state, changing, notice, pause: (id) => change(id, true), resume: (id) => change(id, false) };
}
