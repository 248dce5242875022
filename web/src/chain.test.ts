import { createHash, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';

import { describe, expect, test } from 'vitest';

import type { Checkpoint } from './api';
import spec from '../../shared/spec/chain-vectors.json';
import { GENESIS_HASH, checkpointMessage, derToRaw, hashRow, jcs, recordOf, verifyCheckpoint, verifyRows, type ChainRow } from './chain';

describe('JCS (RFC 8785)', () => {
  test('numbers as ECMAScript writes them (§3.2.2.3)', () => {
    const numbers = JSON.parse('[333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001, -0, 1e21, 1e-7, 100, 1e20, -1.5e-300]');
    expect(jcs(numbers)).toBe('[333333333.3333333,1e+30,4.5,0.002,1e-27,0,1e+21,1e-7,100,100000000000000000000,-1.5e-300]');
    expect(jcs(1e21)).toBe('1e+21');
    expect(jcs(333333333.33333329)).toBe('333333333.3333333');
  });

  test('members sorted by UTF-16 code units, non-ASCII names too (§3.2.3)', () => {
    const input = JSON.parse(
      '{"\\u20ac":"Euro Sign","\\r":"Carriage Return","\\ufb33":"Hebrew Letter Dalet With Dagesh","1":"One","\\ud83d\\ude00":"Emoji: Grinning Face","\\u0080":"Control","\\u00f6":"Latin Small Letter O With Diaeresis"}',
    );
    expect(jcs(input)).toBe(
      '{"\\r":"Carriage Return","1":"One","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis","\u20ac":"Euro Sign","\ud83d\ude00":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}',
    );
    // RFC 8785's order of the values.
    expect([...jcs(input).matchAll(/:"([^"]+)"/g)].map((m) => m[1])).toEqual([
      'Carriage Return', 'One', 'Control', 'Latin Small Letter O With Diaeresis', 'Euro Sign', 'Emoji: Grinning Face', 'Hebrew Letter Dalet With Dagesh',
    ]);
    // U+1F600 (a surrogate pair, D83D…) sorts before U+FB33 by UTF-16, after it by code point.
    expect(jcs({ '\ufb33': 1, '\u{1f600}': 2 })).toBe('{"\u{1f600}":2,"\ufb33":1}');
  });

  test('strings escaped as RFC 8785 says (§3.2.2.2), and its appendix example', () => {
    const input = JSON.parse('{"string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/"}');
    expect(jcs(input)).toBe('{"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}');
    const example = JSON.parse(`{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
      "string": "\\u20ac$\\u000F\\u000aA'\\u0042\\u0022\\u005c\\\\\\"\\/",
      "literals": [null, true, false]}`);
    expect(jcs(example)).toBe(
      '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}',
    );
    expect(jcs({ b: [], a: {}, c: '\u2028' })).toBe('{"a":{},"b":[],"c":"\u2028"}');
  });

  test('what is not JSON is refused', () => {
    expect(() => jcs(NaN)).toThrow();
    expect(() => jcs(Infinity)).toThrow();
    expect(() => jcs([undefined])).toThrow();
    expect(() => jcs(10n)).toThrow();
    expect(jcs({ a: undefined, b: 1 })).toBe('{"b":1}');
  });
});

const sha256 = (...parts: (Buffer | string)[]) => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest('hex');
};
const prevBytes = (hex: string) => Buffer.from(hex, 'hex');

/** The cross-check record of the Rust implementation, and its JCS as the Rust code writes it. */
const CROSS_ROW: ChainRow = {
  id: 'a1',
  customerId: 'c1',
  customerName: 'Contoso',
  action: 'placed an order',
  partnerUser: 'ann@partner.example',
  occurredAt: '2026-11-25T01:02:03.004Z',
  recordedAt: '2026-11-25T01:02:04.000Z',
  recordedBy: 'writer-1',
  status: 'succeeded',
  resourceType: 'order',
  details: JSON.parse('{"n":1.50,"名稱":"台積電"}'),
  sequence: 1,
  hash: null,
  previousHash: GENESIS_HASH,
  previousRecordedAt: null,
};
const CROSS_JCS =
  '{"action":"placed an order","customerId":"c1","customerName":"Contoso","details":{"n":1.5,"名稱":"台積電"},"id":"a1","occurredAt":"2026-11-25T01:02:03.004Z","partnerId":"p1","partnerUser":"ann@partner.example","previousRecordedAt":null,"recordedAt":"2026-11-25T01:02:04.000Z","recordedBy":"writer-1","resourceType":"order","sequence":1,"status":"succeeded"}';

describe('records and hashes', () => {
  test('the record of the Rust cross-check has exactly its JCS and hash', async () => {
    expect(jcs(recordOf('p1', CROSS_ROW))).toBe(CROSS_JCS);
    const expected = sha256(Buffer.alloc(32), Buffer.from(CROSS_JCS, 'utf8'));
    expect(await hashRow(CROSS_ROW, 'p1')).toBe(expected);
  });

  test('resourceType and details only when present; an unknown writer is null', () => {
    const text = jcs(recordOf('p1', { ...CROSS_ROW, resourceType: null, details: null, recordedBy: null }));
    expect(text).not.toContain('resourceType');
    expect(text).not.toContain('details');
    expect(text).toContain('"recordedBy":null');
    // Members the API adds (links, sizes) are not part of the record.
    const withExtras = { ...CROSS_ROW, detailsSize: 40, detailsIncluded: true, links: { self: '/x', subscriptions: '/y' } };
    expect(jcs(recordOf('p1', withExtras))).toBe(CROSS_JCS);
  });
});

/** When each row of the fixture was recorded. */
const RECORDED = '2026-11-25T01:02:04.000Z';

/** A chain of three rows of customer c1 whose hashes node's crypto computes over JCS written
 * out by hand (the Rust cross-check's record, then one without resourceType and details). */
function fixture(): ChainRow[] {
  const texts = [
    CROSS_JCS,
    CROSS_JCS.replace('"id":"a1"', '"id":"a2"').replace('"sequence":1', '"sequence":2').replace('"previousRecordedAt":null', `"previousRecordedAt":"${RECORDED}"`),
    '{"action":"placed an order","customerId":"c1","customerName":"Contoso","id":"a3","occurredAt":"2026-11-25T01:02:03.004Z","partnerId":"p1","partnerUser":"ann@partner.example","previousRecordedAt":"2026-11-25T01:02:04.000Z","recordedAt":"2026-11-25T01:02:04.000Z","recordedBy":null,"sequence":3,"status":"succeeded"}',
  ];
  const rows: ChainRow[] = [
    { ...CROSS_ROW },
    { ...CROSS_ROW, id: 'a2', sequence: 2, previousRecordedAt: RECORDED },
    { ...CROSS_ROW, id: 'a3', sequence: 3, resourceType: null, details: null, recordedBy: null, previousRecordedAt: RECORDED },
  ];
  let previous = GENESIS_HASH;
  rows.forEach((r, i) => {
    r.previousHash = previous;
    r.hash = sha256(prevBytes(previous), Buffer.from(texts[i], 'utf8'));
    previous = r.hash;
  });
  return rows;
}

const checkpointAt = (rows: ChainRow[], sequence: number, hash = rows.find((r) => r.sequence === sequence)?.hash ?? 'f'.repeat(64)): Checkpoint => ({
  partnerId: 'p1',
  customerId: 'c1',
  sequence,
  hash,
  issuedAt: '2026-11-28T10:00:00.000Z',
  retentionDays: 365,
  keyId: 'k1',
  signature: '',
});

describe('verifying rows', () => {
  test('an intact chain passes in any order, reaching the checkpoint', async () => {
    const rows = fixture();
    const result = await verifyRows([rows[2], rows[0], rows[1]], checkpointAt(rows, 3), { contiguous: true });
    expect(result).toEqual({ ok: true, count: 3, first: 1, last: 3, checkpoint: 3, reachesCheckpoint: true, notInRows: 0, expired: 0, pastCheckpoint: 0 });
  });

  test('a checkpoint beyond the rows is not reached; rows of others are left out', async () => {
    const rows = fixture();
    const other = { ...rows[0], customerId: 'c2', hash: 'e'.repeat(64) };
    const result = await verifyRows([...rows, other], checkpointAt(rows, 40), { contiguous: true });
    expect(result).toEqual({ ok: true, count: 3, first: 1, last: 3, checkpoint: 40, reachesCheckpoint: false, notInRows: 0, expired: 0, pastCheckpoint: 0 });
  });

  test('a row stripped of its chain members is named: every activity is chained when recorded', async () => {
    const rows = fixture();
    rows[1] = { ...rows[1], sequence: null, hash: null, previousHash: null };
    expect(await verifyRows(rows, checkpointAt(rows, 3), { contiguous: true })).toEqual({ ok: false, kind: 'unchained', id: 'a2', customerId: 'c1' });
  });

  test('an edited row fails, naming it', async () => {
    const rows = fixture();
    rows[1] = { ...rows[1], action: 'deleted everything' };
    expect(await verifyRows(rows, checkpointAt(rows, 3), { contiguous: true })).toEqual({ ok: false, kind: 'altered', id: 'a2', customerId: 'c1', sequence: 2 });
    const details = fixture();
    details[0] = { ...details[0], details: { n: 1.51, 名稱: '台積電' } };
    expect(await verifyRows(details, checkpointAt(details, 3), { contiguous: false })).toMatchObject({ ok: false, kind: 'altered', id: 'a1' });
  });

  test('an edited row whose hash was recomputed breaks the link of the next one', async () => {
    const rows = fixture();
    const edited = { ...rows[1], partnerUser: 'mallory@partner.example' };
    edited.hash = sha256(prevBytes(edited.previousHash as string), Buffer.from(jcs(recordOf('p1', edited)), 'utf8'));
    rows[1] = edited;
    expect(await verifyRows(rows, checkpointAt(rows, 3), { contiguous: false })).toMatchObject({ ok: false, kind: 'rehashed', id: 'a2', sequence: 2, nextId: 'a3' });
    // The head too, recomputed: the signed checkpoint names it.
    const head = fixture();
    const forged = { ...head[2], action: 'forged' };
    forged.hash = sha256(prevBytes(forged.previousHash as string), Buffer.from(jcs(recordOf('p1', forged)), 'utf8'));
    const signed = checkpointAt(head, 3);
    head[2] = forged;
    expect(await verifyRows(head, signed, { contiguous: true })).toMatchObject({ ok: false, kind: 'notSigned', id: 'a3', sequence: 3 });
  });

  test('a removed middle row is missing when the rows should be contiguous, and only then', async () => {
    const rows = fixture();
    const gap = [rows[0], rows[2]];
    expect(await verifyRows(gap, checkpointAt(rows, 3), { contiguous: true })).toEqual({ ok: false, kind: 'missing', id: 'a3', customerId: 'c1', sequence: 3, after: 1 });
    expect(await verifyRows(gap, checkpointAt(rows, 3), { contiguous: false })).toMatchObject({ ok: true, count: 2, first: 1, last: 3, reachesCheckpoint: true, notInRows: 1 });
  });

  test('sequence 1 chains to 64 zeros; a row newer than the checkpoint is set aside, not vouched for', async () => {
    const rows = fixture();
    const first = { ...rows[0], previousHash: 'a'.repeat(64) };
    first.hash = sha256(prevBytes(first.previousHash), Buffer.from(CROSS_JCS, 'utf8'));
    expect(await verifyRows([first], checkpointAt(rows, 3), { contiguous: true })).toMatchObject({ ok: false, kind: 'altered', id: 'a1' });
    expect(await verifyRows(rows, checkpointAt(rows, 2), { contiguous: true })).toMatchObject({ ok: true, count: 2, last: 2, reachesCheckpoint: true, pastCheckpoint: 1 });
    const twice = [rows[0], { ...rows[0], id: 'a1-copy' }];
    expect(await verifyRows(twice, checkpointAt(rows, 3), { contiguous: true })).toMatchObject({ ok: false, kind: 'duplicate', id: 'a1-copy', otherId: 'a1' });
  });

  test('a row whose details were left out of the list must be fetched first', async () => {
    const rows = fixture();
    rows[0] = { ...rows[0], details: null, detailsIncluded: false };
    await expect(verifyRows(rows, checkpointAt(rows, 3), { contiguous: true })).rejects.toThrow(/details/);
  });

  test('a thousand rows verify well under a second', async () => {
    const rows: ChainRow[] = [];
    let previous = GENESIS_HASH;
    for (let i = 1; i <= 1000; i++) {
      const row: ChainRow = { ...CROSS_ROW, id: `a${i}`, sequence: i, previousHash: previous, details: { n: i, items: [{ sku: 'x', qty: i }] } };
      row.hash = sha256(prevBytes(previous), Buffer.from(jcs(recordOf('p1', row)), 'utf8'));
      previous = row.hash;
      rows.push(row);
    }
    const started = performance.now();
    const result = await verifyRows(rows.reverse(), checkpointAt(rows, 1000, previous), { contiguous: true });
    const ms = performance.now() - started;
    expect(result).toMatchObject({ ok: true, count: 1000, reachesCheckpoint: true });
    expect(ms).toBeLessThan(1000);
  });
});

describe('DER signatures as WebCrypto wants them', () => {
  const int = (bytes: number[]) => [0x02, bytes.length, ...bytes];
  const der = (r: number[], s: number[]) => {
    const body = [...int(r), ...int(s)];
    return new Uint8Array([0x30, body.length, ...body]);
  };

  test('a leading 0x00 (high bit set) is stripped; a short integer is left-padded', () => {
    const r = [0x00, 0x80, ...Array(31).fill(0x11)]; // 33 bytes: 0x00 then 0x80 11 … 11
    const s = [0x7f, 0x22]; // two bytes
    const raw = derToRaw(der(r, s));
    expect(raw).toHaveLength(64);
    expect([...raw.subarray(0, 32)]).toEqual([0x80, ...Array(31).fill(0x11)]);
    expect([...raw.subarray(32)]).toEqual([...Array(30).fill(0), 0x7f, 0x22]);
    const swapped = derToRaw(der([0x01], [0x00, 0xff, ...Array(31).fill(0x33)]));
    expect([...swapped]).toEqual([...Array(31).fill(0), 0x01, 0xff, ...Array(31).fill(0x33)]);
  });

  test('malformed DER is refused', () => {
    expect(() => derToRaw(new Uint8Array([0x31, 0]))).toThrow();
    expect(() => derToRaw(der([0x80], [1]))).toThrow(/negative/);
    expect(() => derToRaw(der(Array(33).fill(1), [1]))).toThrow(/too large/);
    expect(() => derToRaw(new Uint8Array([...der([1], [1]), 0]))).toThrow();
  });

  test('node’s DER signatures convert to the raw form node itself accepts', () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const msg = Buffer.from('message');
    let leadingZero = 0;
    for (let i = 0; i < 64; i++) {
      const sig = sign('sha256', msg, { key: privateKey, dsaEncoding: 'der' });
      if (sig[3] === 33 || sig[3] < 32) leadingZero++;
      const raw = derToRaw(sig);
      expect(verify('sha256', msg, { key: publicKey, dsaEncoding: 'ieee-p1363' }, raw)).toBe(true);
    }
    // About half of r values have their high bit set (a leading 0x00 in DER).
    expect(leadingZero).toBeGreaterThan(0);
  });
});

describe('checkpoints', () => {
  const signed = (privateKey: KeyObject, c: Omit<Checkpoint, 'signature'>): Checkpoint => {
    // The message written out by hand, as the service signs it.
    const message = `{"customerId":"${c.customerId}","hash":"${c.hash}","issuedAt":"${c.issuedAt}","partnerId":"${c.partnerId}","retentionDays":${c.retentionDays},"sequence":${c.sequence}}`;
    expect(Buffer.from(checkpointMessage(c)).toString('utf8')).toBe(message);
    return { ...c, signature: sign('sha256', Buffer.from(message, 'utf8'), { key: privateKey, dsaEncoding: 'der' }).toString('base64') };
  };

  test('a signature made with node’s crypto verifies through WebCrypto, and not once changed', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const jwk = publicKey.export({ format: 'jwk' }) as JsonWebKey;
    const rows = fixture();
    const checkpoint = signed(privateKey, { partnerId: 'p1', customerId: 'c1', sequence: 3, hash: rows[2].hash as string, issuedAt: '2026-11-28T10:00:00.000Z', retentionDays: 365, keyId: 'k1' });
    expect(await verifyCheckpoint(jwk, checkpoint)).toBe(true);
    expect(await verifyCheckpoint({ ...jwk, kid: 'k1', use: 'sig', alg: 'ES256' } as JsonWebKey, checkpoint)).toBe(true);

    const bytes = Buffer.from(checkpoint.signature, 'base64');
    for (const at of [bytes.length - 1, 10]) {
      const flipped = Buffer.from(bytes);
      flipped[at] ^= 0x01;
      expect(await verifyCheckpoint(jwk, { ...checkpoint, signature: flipped.toString('base64') })).toBe(false);
    }
    expect(await verifyCheckpoint(jwk, { ...checkpoint, sequence: 4 })).toBe(false);
    expect(await verifyCheckpoint(jwk, { ...checkpoint, hash: rows[1].hash as string })).toBe(false);
    expect(await verifyCheckpoint(jwk, { ...checkpoint, signature: 'not base64!' })).toBe(false);
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' }) as JsonWebKey;
    expect(await verifyCheckpoint(other, checkpoint)).toBe(false);
  });
});

describe('the shared golden vectors (shared/spec/chain-vectors.json)', () => {
  test('the members are the spec\'s, in JCS order', () => {
    expect(spec.members.map((m) => m.name)).toEqual([...spec.members.map((m) => m.name)].sort());
  });

  test('each record canonicalizes and hashes as filed', async () => {
    for (const c of spec.records) {
      const row = c.row as unknown as ChainRow;
      expect(jcs(recordOf(spec.partnerId, row)), c.name).toBe(c.canonical);
      expect(await hashRow(row, spec.partnerId), c.name).toBe(c.hash);
    }
  });

  test('each chain gets the filed outcome', async () => {
    const kinds = new Set<string>();
    for (const c of spec.chains) {
      const checkpoint = { partnerId: spec.partnerId, customerId: 'c1', ...c.checkpoint } as Checkpoint;
      const result = await verifyRows(c.rows as unknown as ChainRow[], checkpoint, {
        contiguous: c.contiguous,
        expiry: c.expiry,
        toCheckpoint: c.contiguous,
      });
      let got: unknown;
      if (result.ok) {
        const { count, first, last, expired, reachesCheckpoint, pastCheckpoint } = result;
        got = { ok: { rows: count, first, last, expired, reachesCheckpoint, pastCheckpoint } };
      } else {
        const { ok: _ok, customerId: _customer, ...finding } = result;
        got = { finding };
        kinds.add(result.kind);
      }
      expect(got, c.name).toEqual(c.expect);
    }
    expect([...kinds].sort()).toEqual(['altered', 'duplicate', 'missing', 'missingAtStart', 'missingBeforeCheckpoint', 'notSigned', 'outOfOrder', 'rehashed', 'timeWentBack']);
  });
});
