// The filters: the period's days and the customer, action, partner user and status. A draft until
// Apply; the page keys it by the view, so another view starts a fresh draft.
import type { JSX } from 'preact';
import { useState } from 'preact/hooks';

import type { Activity } from '../api';
import type { Words } from '../i18n';
import { isDay, type Period } from '../period';
import { STATUSES, type Status, type View } from '../view';

interface Props {
  view: View;
  period: Pick<Period, 'fromDay' | 'toDay'>;
  t: Words;
  onApply: (v: View) => void;
  /** The loaded rows: their customers, actions and partner users are the fields' suggestions. */
  rows: Activity[];
}

function useDraft({ view, period, onApply }: Props) {
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
  return { draft, set, apply, clear };
}

function Field({ name, label, children }: { name: string; label: string; children: JSX.Element }) {
  return (
    <div class="field">
      <label for={`f-${name}`}>{label}</label>
      {children}
    </div>
  );
}

/** A text filter with the loaded rows' values as suggestions (`[value, text]`). */
function TextFilter(p: { name: string; label: string; list: string; value: string; onInput: (e: Event) => void; placeholder?: string; options: [string, string?][] }) {
  return (
    <>
      <Field name={p.name} label={p.label}>
        <input id={`f-${p.name}`} type="text" name={p.name} list={p.list} placeholder={p.placeholder} value={p.value} onInput={p.onInput} />
      </Field>
      <datalist id={p.list}>
        {p.options.map(([value, text]) => (
          <option value={value} key={value}>
            {text}
          </option>
        ))}
      </datalist>
    </>
  );
}

export function FilterForm(props: Props) {
  const { t, rows } = props;
  const { draft, set, apply, clear } = useDraft(props);
  const customers = new Map(rows.map((r) => [r.customerId, r.customerName]));
  const actions = [...new Set(rows.map((r) => r.action))].sort();
  const users = [...new Set(rows.map((r) => r.partnerUser))].sort();
  return (
    <form class="filters" onSubmit={apply} aria-label={t.filters}>
      <fieldset>
        <legend>{t.period}</legend>
        <Field name="from" label={t.from}>
          <input id="f-from" type="date" name="from" value={draft.from} max={draft.to} onInput={set('from')} required />
        </Field>
        <Field name="to" label={t.to}>
          <input id="f-to" type="date" name="to" value={draft.to} min={draft.from} onInput={set('to')} required />
        </Field>
      </fieldset>
      <fieldset>
        <legend>{t.filters}</legend>
        <TextFilter name="customer" label={t.customer} list="customer-ids" placeholder={t.customerHint} value={draft.customer} onInput={set('customer')} options={[...customers]} />
        <TextFilter name="action" label={t.action} list="actions" value={draft.action} onInput={set('action')} options={actions.map((a) => [a])} />
        <TextFilter name="partnerUser" label={t.partnerUser} list="partner-users" value={draft.partnerUser} onInput={set('partnerUser')} options={users.map((u) => [u])} />
        <Field name="status" label={t.status}>
          <select id="f-status" name="status" value={draft.status} onChange={set('status')}>
            <option value="">{t.anyStatus}</option>
            {STATUSES.map((s) => (
              <option value={s} key={s}>
                {t.statusNames[s]}
              </option>
            ))}
          </select>
        </Field>
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
