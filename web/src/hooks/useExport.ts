// Export log: the format, and the job from its start to its download (or why it failed).
import { useState } from 'preact/hooks';

import { ApiError, SignInRequired, type ExportJob, type ExportRequest } from '../api';
import type { Api } from './useApi';
import type { ViewState } from './useView';

const EXPORT_POLL_MS = 1000;

export type Format = 'csv' | 'jsonl';

export type ExportState =
  | { state: 'idle' }
  | { state: 'running'; rows: number; queued: boolean }
  | { state: 'done'; rows: number; url: string }
  | { state: 'failed'; message: string };

export interface Export {
  format: Format;
  setFormat: (f: Format) => void;
  state: ExportState;
  /** Starts an export of the view, follows it, and downloads the file once it is written. */
  start: () => Promise<void>;
}

export function useExport(api: Api, fail: (e: unknown) => void, { view, zone, query }: ViewState): Export {
  const [state, setState] = useState<ExportState>({ state: 'idle' });
  const [format, setFormat] = useState<Format>('csv');

  const start = async () => {
    setState({ state: 'running', rows: 0, queued: true });
    // The browser's zone goes as it is: the contract's list of names is what the service checks.
    const body: ExportRequest = { ...query, timeZone: zone as ExportRequest['timeZone'], locale: view.lang, format };
    try {
      let job = await api.get<ExportJob>('/exports', { method: 'POST', body: JSON.stringify(body) }, { attempts: 6 });
      // The job's own address hands out the download link once it has succeeded.
      while (job.status === 'pending' || job.status === 'running' || (job.status === 'succeeded' && !job.downloadUrl)) {
        if (job.status !== 'succeeded') {
          setState({ state: 'running', rows: job.rowCount, queued: job.status === 'pending' });
          await new Promise((r) => setTimeout(r, EXPORT_POLL_MS));
        }
        job = await api.get<ExportJob>(job.links.self);
      }
      api.clearNotice();
      if (job.status === 'failed' || !job.downloadUrl) {
        setState({ state: 'failed', message: job.error ?? job.status });
        return;
      }
      setState({ state: 'done', rows: job.rowCount, url: job.downloadUrl });
      download(job.downloadUrl);
    } catch (e) {
      if (e instanceof SignInRequired) return fail(e);
      setState({ state: 'failed', message: e instanceof ApiError ? `${e.message} (${e.code})` : String(e) });
    }
  };

  return { format, setFormat, state, start };
}

function download(url: string) {
  const a = document.createElement('a');
  a.href = url;
  a.rel = 'noopener';
  document.body.appendChild(a);
  a.click();
  a.remove();
}
