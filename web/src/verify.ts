// The Verify button's work: the service's public key and a fresh signed checkpoint of the
// customer, then the loaded rows of that customer against them (chain.ts), and the sequences
// between them that the view does not hold against the links the service's chain holds. What it
// found, and the words for it in the page's language.
import { ApiError, MAX_CHAIN_SPAN, PUBLIC_KEY_PATH, chainPath, checkpointPath, type Activity, type ChainLinks, type Checkpoint, type PublicKey } from './api';
import { verifyCheckpoint, verifyRows, type ChainRow } from './chain';
import { checkHeld, heldCheckpoint, keepCheckpoint, type HeldStore } from './held';
import type { Words } from './i18n';

/** Rows whose details are fetched at once (those the list left out for their size). */
const DETAIL_FETCHES = 4;

export type Outcome =
  /** `notInView`: sequences between the rows that the view does not hold and the service's
   * chain does, linked to the rows on either side; `expired`: sequences between them gone with
   * the retention; `notChecked`: sequences between them not read (more than [MAX_GAP_READS]
   * reads). */
  | { kind: 'verified'; count: number; first: number; last: number; checkpoint: number; reachesCheckpoint: boolean; notInView: number; expired: number; notChecked: number; pastCheckpoint: number }
  | { kind: 'altered'; key: string; id: string; sequence: number }
  | { kind: 'missing'; key?: string; from: number; to: number }
  | { kind: 'outOfOrder'; key: string; id: string; sequence: number }
  /** The activity's chain members were removed. */
  | { kind: 'unchained'; key: string; id: string }
  | { kind: 'nothing' }
  | { kind: 'badSignature' }
  | { kind: 'otherCustomer' }
  | { kind: 'noCheckpoint' }
  /** The checkpoint verified here before (`since`: when it was issued) is not extended. */
  | { kind: 'historyChanged'; since: string; key?: string }
  /** The service refused to sign the customer's head (409 ChainInconsistent): the chain no
   * longer extends what it anchored. */
  | { kind: 'refused' };

export interface VerifyDeps {
  /** A GET through the page's authenticated call (its retries and errors). */
  get: <T>(path: string) => Promise<T>;
  /** The activity's full details (`links.self`), as Show details fetches them. */
  details: (a: Activity) => Promise<unknown>;
  /** Where the last verified checkpoint of each customer is kept (localStorage), if anywhere. */
  held?: HeldStore;
  /** The deployed key (PEM, from the page's config): checkpoints are checked with it, and the
   * key the API names is not asked for. */
  pinnedKey?: string;
}

/** Verifies the loaded rows of `customerId`. `contiguous`: the rows are all of the customer's
 * between their first and last sequence, so a gap is a finding; otherwise gaps are counted.
 * API errors other than the checkpoint's 404 are thrown. */
export async function verifyView(rows: readonly Activity[], customerId: string, contiguous: boolean, deps: VerifyDeps): Promise<Outcome> {
  const [key, checkpoint] = await Promise.all([
    deps.pinnedKey ?? deps.get<PublicKey>(PUBLIC_KEY_PATH).then((k) => k.jwk),
    deps.get<Checkpoint>(checkpointPath(customerId)).catch((e: unknown) => {
      if (e instanceof ApiError && e.status === 404) return null;
      if (e instanceof ApiError && e.status === 409 && e.code === 'ChainInconsistent') return 'refused' as const;
      throw e;
    }),
  ]);
  if (checkpoint === 'refused') return { kind: 'refused' };
  const mine = rows.filter((r) => r.customerId === customerId);
  if (checkpoint) {
    if (checkpoint.customerId !== customerId) return { kind: 'otherCustomer' };
    if (!(await verifyCheckpoint(key, checkpoint))) return { kind: 'badSignature' };
  }
  if (mine.length === 0) return { kind: 'nothing' };
  const stripped = mine.find((r) => r.sequence === null);
  if (stripped) return { kind: 'unchained', key: `${customerId}/${stripped.id}`, id: stripped.id };
  const chained: Activity[] = mine;
  if (!checkpoint) return { kind: 'noCheckpoint' };

  const complete: ChainRow[] = chained.filter((r) => r.detailsIncluded);
  const partial = chained.filter((r) => !r.detailsIncluded);
  for (let i = 0; i < partial.length; i += DETAIL_FETCHES) {
    const batch = partial.slice(i, i + DETAIL_FETCHES);
    const details = await Promise.all(batch.map((a) => deps.details(a)));
    batch.forEach((a, j) => complete.push({ ...a, details: details[j], detailsIncluded: true }));
  }

  const result = await verifyRows(complete, checkpoint, { contiguous });
  if (result.ok && deps.held) {
    // The checkpoint verified here last must be extended by this one and the rows shown.
    const kept = heldCheckpoint(deps.held, checkpoint.partnerId, customerId);
    if (kept && (await verifyCheckpoint(key, kept))) {
      const signed = complete.filter((r) => (r.sequence ?? 0) <= checkpoint.sequence);
      const held = checkHeld(signed, checkpoint, [kept]);
      if (!held.ok) {
        const f = held.finding;
        return { kind: 'historyChanged', since: kept.issuedAt, ...(f.kind === 'heldRewritten' ? { key: `${customerId}/${f.id}` } : {}) };
      }
    }
    if (!kept || checkpoint.sequence >= kept.sequence) keepCheckpoint(deps.held, checkpoint);
  }
  if (result.ok) {
    const { count, first, last, reachesCheckpoint, notInRows, pastCheckpoint } = result;
    let gaps: GapCheck = { notInView: notInRows, expired: result.expired, notChecked: 0 };
    if (notInRows > 0) {
      const signed = complete.filter((r) => (r.sequence ?? 0) <= checkpoint.sequence);
      const checked = await checkGaps(signed, checkpoint, deps.get, Date.now());
      if ('kind' in checked) return checked;
      gaps = checked;
    }
    return { kind: 'verified', count, first, last, checkpoint: result.checkpoint, reachesCheckpoint, ...gaps, pastCheckpoint };
  }
  if (result.kind === 'missingBeforeCheckpoint') return { kind: 'missing', from: result.last + 1, to: result.checkpoint };
  const rowKey = `${result.customerId}/${result.id}`;
  // The service's findings, in the words its verifier uses: altered, missing or out of order.
  switch (result.kind) {
    case 'altered':
    case 'rehashed':
    case 'notSigned':
      return { kind: 'altered', key: rowKey, id: result.id, sequence: result.sequence };
    case 'missing':
      return { kind: 'missing', key: rowKey, from: result.after + 1, to: result.sequence - 1 };
    case 'missingAtStart':
      return { kind: 'missing', key: rowKey, from: 1, to: result.sequence - 1 };
    case 'timeWentBack':
      return { kind: 'altered', key: rowKey, id: result.id, sequence: result.sequence };
    case 'outOfOrder':
    case 'duplicate':
      return { kind: 'outOfOrder', key: rowKey, id: result.id, sequence: result.sequence };
    case 'unchained':
      return { kind: 'unchained', key: rowKey, id: result.id };
  }
}

/** What the sequences between the rows turned out to be. */
type GapCheck = { notInView: number; expired: number; notChecked: number };

/** Reads of the service's chain one Verify makes at most: beyond them, gaps are counted as not
 * checked. */
export const MAX_GAP_READS = 20;

/** The sequences between the rows (`rows`: verified, none past the checkpoint) that the view
 * does not hold, against the links the service's chain holds (`GET /customers/{id}/chain`,
 * nearby gaps read together, [MAX_CHAIN_SPAN] sequences a read): a gap whose every sequence the
 * chain holds, linked to each other and to the rows on either side, is outside the view; one
 * whose activities the chain does not all hold is missing unless the row after it shows the one
 * before it recorded longer than the signed retention ago (expired); one the chain holds but
 * not linked to the rows around it was altered. */
async function checkGaps(rows: readonly ChainRow[], checkpoint: Checkpoint, get: VerifyDeps['get'], now: number): Promise<GapCheck | Outcome> {
  const sorted = [...rows].sort((a, b) => (a.sequence as number) - (b.sequence as number));
  const gaps: { before: ChainRow; after: ChainRow; from: number; to: number }[] = [];
  for (let i = 1; i < sorted.length; i++) {
    const [before, after] = [sorted[i - 1], sorted[i]];
    const from = (before.sequence as number) + 1;
    const to = (after.sequence as number) - 1;
    if (from <= to) gaps.push({ before, after, from, to });
  }
  // The spans to read: each at most MAX_CHAIN_SPAN sequences, covering every gap.
  const spans: [number, number][] = [];
  for (const g of gaps) {
    for (let from = g.from; from <= g.to; from += MAX_CHAIN_SPAN) {
      const to = Math.min(g.to, from + MAX_CHAIN_SPAN - 1);
      const last = spans.at(-1);
      if (last && to - last[0] < MAX_CHAIN_SPAN) last[1] = to;
      else spans.push([from, to]);
    }
  }
  const held = new Map<number, ChainLinks['links'][number]>();
  const read = spans.slice(0, MAX_GAP_READS);
  const readUpTo = read.at(-1)?.[1] ?? 0;
  for (const [from, to] of read) {
    const answer = await get<ChainLinks>(chainPath(checkpoint.customerId, from, to));
    for (const l of answer.links) held.set(l.sequence, l);
  }
  const key = (r: ChainRow) => `${r.customerId}/${r.id}`;
  let notInView = 0;
  let expired = 0;
  let notChecked = 0;
  for (const { before, after, from, to } of gaps) {
    if (to > readUpTo) {
      notChecked += to - Math.max(from, readUpTo + 1) + 1;
      if (from > readUpTo) continue;
    }
    const run: ChainLinks['links'] = [];
    for (let s = from; s <= to; s++) {
      const l = held.get(s);
      if (l) run.push(l);
    }
    if (run.length === to - from + 1) {
      const linked = run[0].previousHash === before.hash && after.previousHash === run[run.length - 1].hash && run.every((l, i) => i === 0 || l.previousHash === run[i - 1].hash);
      if (!linked) return { kind: 'altered', key: key(after), id: after.id, sequence: after.sequence as number };
      notInView += run.length;
      continue;
    }
    const recorded = after.previousRecordedAt ?? null;
    if (recorded !== null && Date.parse(recorded) + checkpoint.retentionDays * 86_400_000 <= now) {
      expired += to - from + 1;
      continue;
    }
    return { kind: 'missing', key: key(after), from, to };
  }
  return { notInView, expired, notChecked };
}

/** The row (`customerId/id`) the outcome names, if any: the page marks it. */
export function failedKey(o: Outcome): string | undefined {
  return 'key' in o ? o.key : undefined;
}

/** How the outcome reads: passed, nothing said either way, or failed. */
export function tone(o: Outcome): 'passed' | 'neutral' | 'failed' {
  return o.kind === 'verified' ? 'passed' : o.kind === 'nothing' ? 'neutral' : 'failed';
}

/** The outcome in words. */
export function verifyMessage(o: Outcome, t: Words): string {
  switch (o.kind) {
    case 'verified':
      return (
        t.verified(o.count, o.first, o.last, o.checkpoint, o.reachesCheckpoint) +
        (o.notInView > 0 ? t.notInView(o.notInView) : '') +
        (o.expired > 0 ? t.expiredBetween(o.expired) : '') +
        (o.notChecked > 0 ? t.notChecked(o.notChecked) : '') +
        (o.pastCheckpoint > 0 ? t.pastCheckpoint(o.pastCheckpoint) : '')
      );
    case 'nothing':
      return t.verifyNothing;
    case 'altered':
      return t.verifyAltered(o.id, o.sequence);
    case 'missing':
      return t.verifyMissing(o.from, o.to);
    case 'outOfOrder':
      return t.verifyOutOfOrder(o.id, o.sequence);
    case 'unchained':
      return t.verifyUnchained(o.id);
    case 'badSignature':
      return t.verifyBadSignature;
    case 'otherCustomer':
      return t.verifyOtherCustomer;
    case 'noCheckpoint':
      return t.verifyNoCheckpoint;
    case 'refused':
      return t.verifyRefused;
    case 'historyChanged':
      return t.verifyHistoryChanged(`${o.since.slice(0, 10)} ${o.since.slice(11, 16)} UTC`);
  }
}
