// The tamper-evident log, checked in the browser: each customer's activities form a hash chain
// (hash = SHA-256(bytes(previousHash) ‖ JCS(record)), 64 zeros before sequence 1) whose head the
// service signs (a checkpoint, ECDSA P-256 / SHA-256 over JCS of its six members). The same
// rules as the service's shared/src/domain/chain/, held to them by the golden vectors of
// shared/spec/chain-vectors.json (the record's members are read from there). Pure functions;
// WebCrypto does the hashing and the signature.
import type { Activity, Checkpoint } from './api';
import { members } from '../../shared/spec/chain-vectors.json';

/** `previousHash` of sequence 1. */
export const GENESIS_HASH = '0'.repeat(64);

const HASH = /^[0-9a-f]{64}$/;

/** What a row needs to be checked: the API's activity, with its details in full. */
export type ChainRow = Pick<
  Activity,
  | 'id'
  | 'customerId'
  | 'customerName'
  | 'action'
  | 'partnerUser'
  | 'occurredAt'
  | 'recordedAt'
  | 'recordedBy'
  | 'status'
  | 'resourceType'
  | 'details'
  | 'sequence'
  | 'hash'
  | 'previousHash'
  | 'previousRecordedAt'
> & { detailsIncluded?: boolean };

/** RFC 8785 (JSON Canonicalization Scheme): members sorted by their names' UTF-16 code units
 * (what `Array.prototype.sort` compares), no whitespace, numbers as ECMAScript writes them
 * (`JSON.stringify` of a number is exactly RFC 8785's serialisation), strings as
 * `JSON.stringify` escapes them. Not JSON (undefined in an array, functions, NaN, Infinity,
 * big integers) is refused; members whose value is undefined are left out, as JSON.stringify
 * does. */
export function jcs(value: unknown): string {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return JSON.stringify(value);
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError(`JCS: ${value} is not a JSON number`);
      return JSON.stringify(value);
    case 'object': {
      if (value === null) return 'null';
      if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? fail('undefined') : jcs(v))).join(',')}]`;
      const o = value as Record<string, unknown>;
      const names = Object.keys(o)
        .filter((k) => o[k] !== undefined)
        .sort();
      return `{${names.map((k) => `${JSON.stringify(k)}:${jcs(o[k])}`).join(',')}}`;
    }
    default:
      return fail(typeof value);
  }
}

function fail(what: string): never {
  throw new TypeError(`JCS: ${what} is not JSON`);
}

type Presence = 'required' | 'nullWhenAbsent' | 'omittedWhenNull' | 'tenant' | 'sequence';

/** The record's members and how each is written: the shared spec's list. */
export const MEMBERS = members as readonly { name: string; presence: Presence }[];

/** The record an activity's hash covers: exactly the spec's members (`resourceType` and
 * `details` only when present, `recordedBy` null when unknown). `partnerId` is not in the
 * rows: it is the checkpoint's. */
export function recordOf(partnerId: string, row: ChainRow): Record<string, unknown> {
  if (row.sequence === null) throw new Error(`activity ${row.id} has no sequence`);
  const shown = row as unknown as Record<string, unknown>;
  const record: Record<string, unknown> = {};
  for (const { name, presence } of MEMBERS) {
    const value = shown[name];
    switch (presence) {
      case 'tenant':
        record[name] = partnerId;
        break;
      case 'sequence':
      case 'required':
        record[name] = value;
        break;
      case 'nullWhenAbsent':
        record[name] = value ?? null;
        break;
      case 'omittedWhenNull':
        if (value !== null && value !== undefined) record[name] = value;
        break;
    }
  }
  return record;
}

/** The 32 bytes a 64-hex-digit hash spells. */
export function hashBytes(hex: string): Uint8Array<ArrayBuffer> {
  if (!HASH.test(hex)) throw new Error('a hash must be 64 lower-case hexadecimal digits');
  const bytes = new Uint8Array(32);
  for (let i = 0; i < 32; i++) bytes[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return bytes;
}

const hex = (buffer: ArrayBuffer) => Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, '0')).join('');

const utf8 = new TextEncoder();

/** `SHA-256(bytes(previousHash) ‖ UTF-8(JCS(record)))`, lower-case hex. */
export async function hashRow(row: ChainRow, partnerId: string): Promise<string> {
  if (row.detailsIncluded === false) throw new Error(`activity ${row.id}: its details are needed`);
  const previous = hashBytes(row.previousHash ?? '');
  const text = utf8.encode(jcs(recordOf(partnerId, row)));
  const input = new Uint8Array(32 + text.length);
  input.set(previous);
  input.set(text, 32);
  return hex(await crypto.subtle.digest('SHA-256', input));
}

/** A DER ECDSA signature (SEQUENCE { INTEGER r, INTEGER s }) as WebCrypto wants it: r ‖ s,
 * each 32 bytes (IEEE P1363). DER integers are signed: a leading 0x00 keeps a high bit
 * positive, and short values are not padded. */
export function derToRaw(der: Uint8Array, size = 32): Uint8Array<ArrayBuffer> {
  let at = 0;
  const byte = () => {
    if (at >= der.length) throw new Error('DER signature: too short');
    return der[at++];
  };
  const length = () => {
    const first = byte();
    if (first < 0x80) return first;
    const n = first & 0x7f;
    if (n === 0 || n > 2) throw new Error('DER signature: bad length');
    let len = 0;
    for (let i = 0; i < n; i++) len = (len << 8) | byte();
    return len;
  };
  if (byte() !== 0x30) throw new Error('DER signature: not a SEQUENCE');
  if (length() !== der.length - at) throw new Error('DER signature: bad SEQUENCE length');
  const raw = new Uint8Array(2 * size);
  for (const half of [0, 1]) {
    if (byte() !== 0x02) throw new Error('DER signature: not an INTEGER');
    const len = length();
    if (len === 0 || at + len > der.length) throw new Error('DER signature: bad INTEGER length');
    let int = der.subarray(at, at + len);
    at += len;
    if (int[0] & 0x80) throw new Error('DER signature: negative INTEGER');
    while (int.length > 0 && int[0] === 0) int = int.subarray(1);
    if (int.length > size) throw new Error('DER signature: INTEGER too large');
    raw.set(int, half * size + size - int.length);
  }
  if (at !== der.length) throw new Error('DER signature: trailing bytes');
  return raw;
}

/** The signed message of a checkpoint: UTF-8 of JCS of its six members (the retention included). */
export function checkpointMessage(c: Pick<Checkpoint, 'partnerId' | 'customerId' | 'sequence' | 'hash' | 'issuedAt' | 'retentionDays'>): Uint8Array<ArrayBuffer> {
  const { partnerId, customerId, sequence, hash, issuedAt, retentionDays } = c;
  return utf8.encode(jcs({ partnerId, customerId, sequence, hash, issuedAt, retentionDays })) as Uint8Array<ArrayBuffer>;
}

function base64(text: string): Uint8Array {
  const bin = atob(text);
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

/** A P-256 public key: a JWK (as the API gives it) or PEM SubjectPublicKeyInfo (as the stack
 * outputs it, pinned in the page's config). */
export type VerifyingKey = JsonWebKey | string;

async function importVerifyingKey(k: VerifyingKey): Promise<CryptoKey> {
  const algorithm = { name: 'ECDSA', namedCurve: 'P-256' };
  if (typeof k !== 'string') return crypto.subtle.importKey('jwk', { kty: k.kty, crv: k.crv, x: k.x, y: k.y }, algorithm, false, ['verify']);
  const body = k.replace(/-----(BEGIN|END) PUBLIC KEY-----/g, '').replace(/\s+/g, '');
  return crypto.subtle.importKey('spki', base64(body) as Uint8Array<ArrayBuffer>, algorithm, false, ['verify']);
}

/** Whether the checkpoint's signature is the service's (the key's) over its message. A
 * signature that is not DER, or not base64, is not valid; a key that cannot be imported throws. */
export async function verifyCheckpoint(k: VerifyingKey, checkpoint: Checkpoint): Promise<boolean> {
  const key = await importVerifyingKey(k);
  let signature: Uint8Array<ArrayBuffer>;
  try {
    signature = derToRaw(base64(checkpoint.signature));
  } catch {
    return false;
  }
  return crypto.subtle.verify({ name: 'ECDSA', hash: 'SHA-256' }, key, signature, checkpointMessage(checkpoint));
}

type Located = { ok: false; id: string; customerId: string; sequence: number };

/** The first thing wrong with a customer's rows: the service's findings (chain/verify.rs),
 * with the same kinds and members. */
export type Finding =
  /** The activity's content is not what its hash was computed over. */
  | (Located & { kind: 'altered' })
  /** Its hash is not the one the next activity was chained to (changed, hash recomputed). */
  | (Located & { kind: 'rehashed'; nextId: string })
  /** Sequences `after + 1` to `sequence - 1` are missing before the activity. */
  | (Located & { kind: 'missing'; after: number })
  /** The chain's first activities, up to `sequence - 1`, are missing, and the last of them was
   * recorded (`previousRecordedAt`) less than the retention ago: deleted, not expired. */
  | (Located & { kind: 'missingAtStart'; previousRecordedAt: string })
  /** Its recording times do not follow the activity before it (they never go back). */
  | (Located & { kind: 'timeWentBack' })
  /** It was chained after an activity that now shows a later sequence. */
  | (Located & { kind: 'outOfOrder'; followsId: string; followsSequence: number })
  /** Another activity shows the same sequence. */
  | (Located & { kind: 'duplicate'; otherId: string })
  /** The activity at the signed head's sequence does not have the signed hash. */
  | (Located & { kind: 'notSigned' })
  /** The activity shows no sequence, hash or previous hash: its chain members were removed
   * (every activity is chained when it is recorded). */
  | { ok: false; kind: 'unchained'; id: string; customerId: string }
  /** Sequences after the last row up to the signed head are missing. */
  | { ok: false; kind: 'missingBeforeCheckpoint'; customerId: string; last: number; checkpoint: number };

export interface Verified {
  ok: true;
  /** Rows checked (the customer's, with a sequence, up to the signed head). */
  count: number;
  first: number;
  last: number;
  checkpoint: number;
  /** Whether the checkpoint's activity is among the rows (and has the signed hash). */
  reachesCheckpoint: boolean;
  /** Sequences between the first and the last that are not among the rows (not contiguous). */
  notInRows: number;
  /** Gaps excused by expiry (sequences missing). */
  expired: number;
  /** Rows after the signed head: recorded after it was signed, set aside, not checked. */
  pastCheckpoint: number;
}

export type ChainResult = Verified | Finding;

export interface VerifyOptions {
  /** The rows are all of the customer's between the first and the last: a gap is a finding. */
  contiguous: boolean;
  /** With `contiguous`: a gap (or a later start) before an activity whose predecessor was
   * recorded (`previousRecordedAt`) `retentionDays` before `now` held only expired activities. */
  expiry?: { now: string; retentionDays: number } | null;
  /** The rows should reach the signed head (the whole chain, not a period's view). */
  toCheckpoint?: boolean;
}

/** A row at its place in the chain, ready to be named in a finding. */
const at = (r: ChainRow) => ({ ok: false as const, id: r.id, customerId: r.customerId, sequence: r.sequence as number });

/** Sequences a gap before a row leaves out: excused by expiry, or not among the rows of a
 * view that is not the whole chain. */
type Gap = { expired: number; notInRows: number };

const NO_GAP: Gap = { expired: 0, notInRows: 0 };

/** The link of `row` to `prev`, the row before it in sequence order (`undefined`: it is the
 * first), given the row whose hash is a given one (`byHash`): a duplicate sequence, a link to a
 * later row, a gap (a finding in a contiguous chain unless expiry excuses it) or a broken link;
 * sequence 1 chained to 64 zeros. The service's `link` (chain/verify.rs). */
function link(prev: ChainRow | undefined, row: ChainRow, byHash: (hash: string | null) => ChainRow | undefined, options: VerifyOptions): Finding | Gap {
  const seq = row.sequence as number;
  if (!Number.isSafeInteger(seq) || seq < 1) return { ...at(row), kind: 'altered' };
  const before = row.previousRecordedAt ?? null;
  if (before !== null && Date.parse(row.recordedAt) < Date.parse(before)) return { ...at(row), kind: 'timeWentBack' };
  const expiry = options.expiry ?? null;
  const expired = expiry !== null && before !== null && Date.parse(before) + expiry.retentionDays * 86_400_000 <= Date.parse(expiry.now);
  if (prev === undefined) {
    if (seq === 1 && row.previousHash !== GENESIS_HASH) return { ...at(row), kind: 'altered' };
    // With an expiry the rows are the whole retained chain: whatever is missing at its start
    // expired, or it is a finding.
    if (seq === 1 || !options.contiguous || expiry === null) return NO_GAP;
    return expired ? NO_GAP : { ...at(row), kind: 'missingAtStart', previousRecordedAt: before ?? 'an unknown time' };
  }
  const prevSeq = prev.sequence as number;
  if (prevSeq === seq) return { ...at(row), kind: 'duplicate', otherId: prev.id };
  const follows = byHash(row.previousHash);
  if (follows !== undefined && (follows.sequence as number) >= seq) {
    return { ...at(row), kind: 'outOfOrder', followsId: follows.id, followsSequence: follows.sequence as number };
  }
  if (prevSeq + 1 === seq) {
    if (row.previousHash !== prev.hash) return { ...at(prev), kind: 'rehashed', nextId: row.id };
    return before === null || Date.parse(before) === Date.parse(prev.recordedAt) ? NO_GAP : { ...at(row), kind: 'timeWentBack' };
  }
  const left = seq - prevSeq - 1;
  if (!options.contiguous) return { expired: 0, notInRows: left };
  return expired ? { expired: left, notInRows: 0 } : { ...at(row), kind: 'missing', after: prevSeq };
}

/** Whether the rows (sorted, none after the signed head) reach the signed head: its row must
 * have the signed hash; with `toCheckpoint` the rows must reach it. The service's `reaches`. */
function reaches(rows: readonly ChainRow[], checkpoint: Checkpoint, toCheckpoint: boolean): Finding | boolean {
  const last = rows.at(-1);
  if (last !== undefined && last.sequence === checkpoint.sequence) {
    return last.hash === checkpoint.hash || { ...at(last), kind: 'notSigned' };
  }
  const lastSeq = last === undefined ? 0 : (last.sequence as number);
  if (toCheckpoint && lastSeq < checkpoint.sequence) {
    return { ok: false, kind: 'missingBeforeCheckpoint', customerId: checkpoint.customerId, last: lastSeq, checkpoint: checkpoint.sequence };
  }
  return false;
}

/** Checks the rows of the checkpoint's customer that have a sequence, in any order, as the
 * service's `verify_linked` does: rows after the signed head set aside and counted; then per
 * row its link to the previous one (`link`) and its hash recomputed; then the signed head
 * (`reaches`). The checkpoint's signature is checked by the caller (`verifyCheckpoint`). */
export async function verifyRows(rows: readonly ChainRow[], checkpoint: Checkpoint, options: VerifyOptions): Promise<ChainResult> {
  const mine = rows.filter((r) => r.customerId === checkpoint.customerId);
  const stripped = mine.find((r) => r.sequence === null);
  if (stripped) return { ok: false, kind: 'unchained', id: stripped.id, customerId: stripped.customerId };
  const sequenced = [...mine].sort((a, b) => (a.sequence as number) - (b.sequence as number));
  const chained = sequenced.filter((r) => (r.sequence as number) <= checkpoint.sequence);
  const partial = chained.find((r) => r.detailsIncluded === false);
  if (partial) throw new Error(`activity ${partial.id}: its details are needed (fetch links.self)`);
  const hashes = await Promise.all(chained.map((r) => hashRow(r, checkpoint.partnerId).catch(() => null)));
  const byHash = new Map(chained.map((r) => [r.hash, r]));
  const gaps = { ...NO_GAP };
  for (const [i, row] of chained.entries()) {
    const linked = link(chained[i - 1], row, (h) => byHash.get(h), options);
    if ('kind' in linked) return linked;
    gaps.expired += linked.expired;
    gaps.notInRows += linked.notInRows;
    if (hashes[i] === null || hashes[i] !== row.hash) return { ...at(row), kind: 'altered' };
  }
  const reached = reaches(chained, checkpoint, options.toCheckpoint ?? false);
  if (typeof reached !== 'boolean') return reached;
  return {
    ok: true,
    count: chained.length,
    first: chained.length ? (chained[0].sequence as number) : 0,
    last: chained.length ? (chained[chained.length - 1].sequence as number) : 0,
    checkpoint: checkpoint.sequence,
    reachesCheckpoint: reached,
    ...gaps,
    pastCheckpoint: sequenced.length - chained.length,
  };
}
