// Checkpoints the page verified before (kept in this browser, per partner and customer): the
// history shown now must extend the last one. The rule is the service's (shared/src/domain/
// integrity/held.rs) and is held to it by the `held` cases of shared/spec/chain-vectors.json.
import type { Checkpoint } from './api';
import type { ChainRow } from './chain';

export interface HeldHead {
  sequence: number;
  hash: string;
  issuedAt: string;
}

export type HeldFinding =
  | { kind: 'rolledBack'; sequence: number; issuedAt: string; heldSequence: number; heldIssuedAt: string }
  | { kind: 'heldRewritten'; id: string; sequence: number; heldIssuedAt: string }
  | { kind: 'heldMissing'; sequence: number; heldIssuedAt: string };

export type HeldResult = { ok: true; extended: number; expired: number; notCovered: number } | { ok: false; finding: HeldFinding };

/** When activities expire: `retentionDays` after they were recorded. */
export interface Expiry {
  now: Date;
  retentionDays: number;
}

const DAY_MS = 24 * 60 * 60 * 1000;

/** Checks `rows` (one customer's, none after `signed`) and the signed head against the held
 * ones. `expiry` when the rows are the whole retained chain: a held activity not among them is
 * then missing unless it may have expired; otherwise it is not covered. */
export function checkHeld(rows: readonly ChainRow[], signed: HeldHead, held: readonly HeldHead[], expiry?: Expiry): HeldResult {
  const sorted = [...rows].filter((r) => r.sequence !== null).sort((a, b) => (a.sequence ?? 0) - (b.sequence ?? 0));
  const old = (t: string) => expiry !== undefined && Date.parse(t) + expiry.retentionDays * DAY_MS <= expiry.now.getTime();
  const result = { ok: true as const, extended: 0, expired: 0, notCovered: 0 };
  for (const h of held) {
    if (h.sequence > signed.sequence) {
      if (Date.parse(h.issuedAt) <= Date.parse(signed.issuedAt)) {
        return { ok: false, finding: { kind: 'rolledBack', sequence: signed.sequence, issuedAt: signed.issuedAt, heldSequence: h.sequence, heldIssuedAt: h.issuedAt } };
      }
      result.notCovered += 1;
      continue;
    }
    const at = sorted.findIndex((r) => (r.sequence ?? 0) >= h.sequence);
    const row = at >= 0 && sorted[at].sequence === h.sequence ? sorted[at] : undefined;
    if (row) {
      if (row.hash !== h.hash) return { ok: false, finding: { kind: 'heldRewritten', id: row.id, sequence: h.sequence, heldIssuedAt: h.issuedAt } };
      result.extended += 1;
    } else if (!expiry) {
      result.notCovered += 1;
    } else if (old(h.issuedAt) || (at >= 0 && old(sorted[at].recordedAt))) {
      result.expired += 1;
    } else {
      return { ok: false, finding: { kind: 'heldMissing', sequence: h.sequence, heldIssuedAt: h.issuedAt } };
    }
  }
  return result;
}

/** Where the page keeps the last checkpoint it verified (localStorage in the browser). */
export interface HeldStore {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
}

const storeKey = (partnerId: string, customerId: string) => `activity-log.checkpoint.${partnerId}/${customerId}`;

/** The checkpoint kept for the customer, if any and readable. */
export function heldCheckpoint(store: HeldStore, partnerId: string, customerId: string): Checkpoint | undefined {
  try {
    const text = store.getItem(storeKey(partnerId, customerId));
    const cp = text ? (JSON.parse(text) as Checkpoint) : undefined;
    return cp && cp.partnerId === partnerId && cp.customerId === customerId ? cp : undefined;
  } catch {
    return undefined;
  }
}

/** Keeps `cp` as the customer's last verified checkpoint (storage full or refused: nothing). */
export function keepCheckpoint(store: HeldStore, cp: Checkpoint): void {
  try {
    store.setItem(storeKey(cp.partnerId, cp.customerId), JSON.stringify(cp));
  } catch {
    // Private mode or a full store: the next Verify simply holds nothing.
  }
}
