// Export log: the format and the button (in the toolbar), and how the export is going (in the
// status line).
import type { Export, ExportState, Format } from '../hooks/useExport';
import type { Words } from '../i18n';

export function ExportControls({ t, exp, disabled }: { t: Words; exp: Export; disabled: boolean }) {
  return (
    <div class="export">
      <div class="inline">
        <label for="format">{t.format}</label>
        <select id="format" value={exp.format} onChange={(e) => exp.setFormat((e.target as HTMLSelectElement).value as Format)}>
          <option value="csv">CSV</option>
          <option value="jsonl">JSON Lines</option>
        </select>
      </div>
      <button type="button" onClick={exp.start} disabled={exp.state.state === 'running' || disabled}>
        {t.exportLog}
      </button>
    </div>
  );
}

/** The live region under the toolbar: a busy service's notice, then the export's progress. */
export function StatusLine({ notice, exportState, t }: { notice: string; exportState: ExportState; t: Words }) {
  return (
    <div class="status-line" role="status" aria-live="polite">
      {notice && <p>{notice}</p>}
      <ExportStatus state={exportState} t={t} />
    </div>
  );
}

function ExportStatus({ state, t }: { state: ExportState; t: Words }) {
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
