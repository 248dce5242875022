// Verify: the loaded rows of the view's customer against their hashes and a fresh signed
// checkpoint. A view never holds a whole stretch of the chain for sure — its period is by when
// activities occurred, the chain by when they were recorded — so sequences between the loaded
// ones are checked against the links the service's chain holds (GET /customers/{id}/chain):
// held and linked, they are outside the view; gone and not expired, they are missing.
import { useState } from 'preact/hooks';

import { ApiError, SignInRequired, type Activity } from '../api';
import { failedKey, verifyView, type Outcome } from '../verify';
import type { Api } from './useApi';
import type { Pages } from './usePages';

/** Verify's progress, for the rows it checks (`rows`: the page's rows array it was given). */
export type VerifyState =
  | { state: 'idle' }
  | { state: 'running'; rows: Activity[] }
  | { state: 'done'; rows: Activity[]; outcome: Outcome }
  | { state: 'error'; rows: Activity[]; message: string };

export interface Verify {
  /** There is something to verify: one customer's view, loaded, with rows. */
  can: boolean;
  /** The state for the rows shown: a verification speaks of the rows it checked only. */
  state: VerifyState;
  /** The row a failed verification names (`customerId/id`), if any. */
  tampered: string | undefined;
  start: () => Promise<void>;
}

export function useVerify(api: Api, { rows, phase, fail }: Pages, customer: string, fullDetails: (a: Activity) => Promise<unknown>, pinnedKey?: string): Verify {
  const [verifyState, setVerify] = useState<VerifyState>({ state: 'idle' });

  const start = async () => {
    const checked = rows;
    setVerify({ state: 'running', rows: checked });
    // Only what this run started may finish it.
    const finish = (next: VerifyState) => setVerify((v) => (v.state === 'running' && v.rows === checked ? next : v));
    const contiguous = false;
    try {
      const outcome = await verifyView(checked, customer, contiguous, {
        get: <T>(path: string) => api.get<T>(path),
        details: fullDetails,
        held: window.localStorage,
        pinnedKey,
      });
      api.clearNotice();
      finish({ state: 'done', rows: checked, outcome });
    } catch (e) {
      api.clearNotice();
      if (e instanceof SignInRequired) return fail(e);
      finish({ state: 'error', rows: checked, message: e instanceof ApiError ? `${e.message} (${e.code})` : e instanceof Error ? e.message : String(e) });
    }
  };

  // A verification speaks of the rows it checked: other rows (another view, more loaded), none.
  const state: VerifyState = verifyState.state !== 'idle' && verifyState.rows === rows ? verifyState : { state: 'idle' };
  return {
    can: customer !== '' && phase !== 'loading' && rows.length > 0,
    state,
    tampered: state.state === 'done' ? failedKey(state.outcome) : undefined,
    start,
  };
}
