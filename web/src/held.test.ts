import { describe, expect, test } from 'vitest';

import type { Checkpoint } from './api';
import type { ChainRow } from './chain';
import spec from '../../shared/spec/chain-vectors.json';
import { checkHeld, heldCheckpoint, keepCheckpoint, type HeldHead } from './held';

describe('held checkpoints: the shared golden vectors (shared/spec/chain-vectors.json, held)', () => {
  test('every case gets the outcome the service gets', () => {
    expect(spec.held.length).toBeGreaterThanOrEqual(7);
    for (const c of spec.held) {
      const rows = c.rows as unknown as ChainRow[];
      const expiry = c.expiry ? { now: new Date(c.expiry.now), retentionDays: c.expiry.retentionDays } : undefined;
      const got = checkHeld(rows, c.checkpoint as HeldHead, c.held as HeldHead[], expiry);
      const outcome = got.ok ? { ok: { extended: got.extended, expired: got.expired, notCovered: got.notCovered } } : { finding: got.finding };
      expect(outcome, c.name).toEqual(c.expect);
    }
    const kinds = new Set(spec.held.map((c) => (c.expect as { finding?: { kind: string } }).finding?.kind).filter(Boolean));
    expect([...kinds].sort()).toEqual(['heldMissing', 'heldRewritten', 'rolledBack']);
  });
});

describe('the checkpoint kept in the browser', () => {
  const cp: Checkpoint = { partnerId: 'p1', customerId: 'c1', sequence: 3, hash: 'ab'.repeat(32), issuedAt: '2026-12-01T00:00:00.000Z', retentionDays: 365, keyId: 'k', signature: 's' };

  test('is kept per partner and customer and read back', () => {
    const store = new Map<string, string>();
    const s = { getItem: (k: string) => store.get(k) ?? null, setItem: (k: string, v: string) => void store.set(k, v) };
    expect(heldCheckpoint(s, 'p1', 'c1')).toBeUndefined();
    keepCheckpoint(s, cp);
    expect(heldCheckpoint(s, 'p1', 'c1')).toEqual(cp);
    expect(heldCheckpoint(s, 'p1', 'c2')).toBeUndefined();
    expect(heldCheckpoint(s, 'p2', 'c1')).toBeUndefined();
  });

  test('unreadable or refused storage holds nothing and breaks nothing', () => {
    const broken = { getItem: () => '{not json', setItem: () => { throw new Error('QuotaExceededError'); } };
    expect(heldCheckpoint(broken, 'p1', 'c1')).toBeUndefined();
    expect(() => keepCheckpoint(broken, cp)).not.toThrow();
  });
});
