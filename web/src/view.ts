// What the page shows, and how it is written in the URL: reload, back/forward and a shared link
// show the same view.
import { LANGS, type Lang } from './i18n';
import { QUICK, isDay, type Quick } from './period';

export const STATUSES = ['succeeded', 'failed', 'inProgress'] as const;
export type Status = (typeof STATUSES)[number];

export interface View {
  /** `YYYY-MM-DD`, or '' for the default (one month before To; To: today). */
  from: string;
  to: string;
  quick?: Quick;
  customer: string;
  action: string;
  partnerUser: string;
  status: Status | '';
  /** 'local': the browser's zone. */
  zone: 'local' | 'UTC';
  lang: Lang;
}

export function defaultView(lang: Lang): View {
  return { from: '', to: '', customer: '', action: '', partnerUser: '', status: '', zone: 'local', lang };
}

/** The URL's query string for a view; defaults are left out. */
export function toSearch(view: View): string {
  const p = new URLSearchParams();
  if (view.quick) p.set('range', view.quick);
  else {
    if (view.from) p.set('from', view.from);
    if (view.to) p.set('to', view.to);
  }
  if (view.customer) p.set('customer', view.customer);
  if (view.action) p.set('action', view.action);
  if (view.partnerUser) p.set('partnerUser', view.partnerUser);
  if (view.status) p.set('status', view.status);
  if (view.zone === 'UTC') p.set('tz', 'UTC');
  p.set('lang', view.lang);
  const text = p.toString();
  return text ? `?${text}` : '';
}

/** The view a query string describes; what is missing or not understood is the default. */
export function fromSearch(search: string, fallbackLang: Lang): View {
  const p = new URLSearchParams(search);
  const get = (name: string) => (p.get(name) ?? '').trim();
  const lang = LANGS.find((l) => l === get('lang')) ?? fallbackLang;
  const view = defaultView(lang);
  const range = get('range');
  if (range in QUICK) view.quick = range as Quick;
  else {
    if (isDay(get('from'))) view.from = get('from');
    if (isDay(get('to'))) view.to = get('to');
  }
  view.customer = get('customer');
  view.action = get('action');
  view.partnerUser = get('partnerUser');
  const status = get('status');
  view.status = (STATUSES as readonly string[]).includes(status) ? (status as Status) : '';
  view.zone = get('tz') === 'UTC' ? 'UTC' : 'local';
  return view;
}

/** The same view (URL-wise)? */
export function sameView(a: View, b: View): boolean {
  return toSearch(a) === toSearch(b);
}
