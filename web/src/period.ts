// Days, zones and periods. A From/To day is a calendar day in the zone in use; the API gets
// instants (RFC 3339, UTC).
import { TZDate } from '@date-fns/tz';

export type Quick = '24h' | '7d' | '30d' | '90d';
export const QUICK: Record<Quick, number> = { '24h': 1, '7d': 7, '30d': 30, '90d': 90 };

const DAY = /^(\d{4})-(\d{2})-(\d{2})$/;

/** The browser's IANA time zone. */
export function browserZone(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
}

/** `YYYY-MM-DD` of `at` in `zone`. */
export function dayIn(at: Date, zone: string): string {
  const d = new TZDate(at.getTime(), zone);
  return `${String(d.getFullYear()).padStart(4, '0')}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
}

export function isDay(text: string): boolean {
  const m = DAY.exec(text);
  if (!m) return false;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const date = new Date(Date.UTC(y, mo - 1, d));
  return date.getUTCFullYear() === y && date.getUTCMonth() === mo - 1 && date.getUTCDate() === d && y >= 1970;
}

/** One calendar month before `day` (the 31st of a shorter month becomes its last day). */
export function monthBefore(day: string): string {
  const m = DAY.exec(day);
  if (!m) return day;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const py = mo === 1 ? y - 1 : y;
  const pm = mo === 1 ? 12 : mo - 1;
  const last = new Date(Date.UTC(py, pm, 0)).getUTCDate();
  return `${String(py).padStart(4, '0')}-${String(pm).padStart(2, '0')}-${String(Math.min(d, last)).padStart(2, '0')}`;
}

/** The first and the last millisecond of `day` in `zone`. */
export function dayBounds(day: string, zone: string): { start: Date; end: Date } {
  const m = DAY.exec(day);
  if (!m) throw new Error(`not a day: ${day}`);
  const [y, mo, d] = [Number(m[1]), Number(m[2]) - 1, Number(m[3])];
  const start = new TZDate(y, mo, d, 0, 0, 0, 0, zone);
  const end = new TZDate(y, mo, d, 23, 59, 59, 999, zone);
  return { start: new Date(start.getTime()), end: new Date(end.getTime()) };
}

export interface Period {
  /** The days shown in the From and To fields. */
  fromDay: string;
  toDay: string;
  /** What the API is asked for (RFC 3339, UTC). */
  from: string;
  to: string;
}

/** The period of a view: a quick range ends now; days run from the start of From to the end of
 * To in `zone`; by default, one month before today to today. */
export function periodOf(
  view: { from: string; to: string; quick?: Quick },
  zone: string,
  now: Date,
): Period {
  if (view.quick) {
    const start = new Date(now.getTime() - QUICK[view.quick] * 24 * 3600 * 1000);
    return { fromDay: dayIn(start, zone), toDay: dayIn(now, zone), from: start.toISOString(), to: now.toISOString() };
  }
  const toDay = view.to && isDay(view.to) ? view.to : dayIn(now, zone);
  const fromDay = view.from && isDay(view.from) ? view.from : monthBefore(toDay);
  return {
    fromDay,
    toDay,
    from: dayBounds(fromDay, zone).start.toISOString(),
    to: dayBounds(toDay, zone).end.toISOString(),
  };
}

/** Date and time of an instant, in the page's language and zone. */
export function formatDateTime(iso: string, lang: string, zone: string): string {
  return new Intl.DateTimeFormat(lang, { dateStyle: 'medium', timeStyle: 'medium', timeZone: zone }).format(new Date(iso));
}
