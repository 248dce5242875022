// The row under the filters: the quick periods, the time zone, and (as children) the export.
import type { ComponentChildren } from 'preact';

import type { Words } from '../i18n';
import { QUICK, browserZone, type Quick } from '../period';
import type { View } from '../view';

export function Toolbar({ view, t, onView, children }: { view: View; t: Words; onView: (v: View) => void; children: ComponentChildren }) {
  return (
    <div class="toolbar">
      <div role="group" aria-label={t.quick} class="quick">
        {(Object.keys(QUICK) as Quick[]).map((q) => (
          <button type="button" key={q} class="chip" aria-pressed={view.quick === q} onClick={() => onView({ ...view, quick: q, from: '', to: '' })}>
            {t[`last${q}` as 'last24h']}
          </button>
        ))}
      </div>
      <div class="inline">
        <label for="zone">{t.timeZone}</label>
        <select id="zone" name="zone" value={view.zone} onChange={(e) => onView({ ...view, zone: (e.target as HTMLSelectElement).value as 'local' | 'UTC' })}>
          <option value="local">
            {browserZone()} {t.browserZone}
          </option>
          <option value="UTC">UTC</option>
        </select>
      </div>
      {children}
    </div>
  );
}
