// The API, on the page's own origin (CloudFront in AWS, the local front on a laptop). Its types
// are the contract's: src/generated/openapi.ts is written from ../openapi.yaml by
// openapi-typescript (`npm run api-types`, which `npm run build` and `npm test` run first; the
// file is not committed).
import type { components, operations } from './generated/openapi';

type Schemas = components['schemas'];

/** An activity as the API answers it (the list and `links.self`). The contract's `details` is an
 * object or null; the page reads it as any JSON (`unknown`), as verify.ts hands it on. */
export type Activity = Omit<Schemas['Activity'], 'details'> & { details: unknown };

/** `GET /customers/{customerId}/checkpoint`: a customer's chain head, signed (ECDSA P-256 /
 * SHA-256 over JCS of the first five members; `signature` is standard base64 of DER). */
export type Checkpoint = Schemas['Checkpoint'];

/** `GET /customers/{customerId}/chain`: the links the log holds between two sequences. */
export type ChainLinks = Schemas['ChainLinks'];

/** Sequences one `GET /customers/{customerId}/chain` covers at most. */
export const MAX_CHAIN_SPAN = 1000;

/** `GET /integrity/public-key`: the key checkpoints are signed with. */
export type PublicKey = Schemas['PublicKey'];

/** A page of `GET /activities`. */
export type ActivityPage = components['responses']['ActivityPage']['content']['application/json'];

/** `POST /exports`'s body. */
export type ExportRequest = Schemas['ExportRequest'];

/** An export job (`POST /exports`, `GET /exports/{exportId}`). */
export type ExportJob = Schemas['ExportJob'];

/** A streaming destination, with its state and delivery's progress (`GET /destinations`). */
export type Destination = Schemas['Destination'];

/** `GET /destinations`: the tenant's destinations (GlobalAdmin, AccountAdmin; others get 403). */
export type DestinationList = operations['listDestinations']['responses'][200]['content']['application/json'];

/** `PATCH /destinations/{destinationId}`'s body. */
export type DestinationUpdate = Schemas['DestinationUpdate'];

type ErrorBody = Schemas['Error'];

export const PUBLIC_KEY_PATH = '/integrity/public-key';

export const DESTINATIONS_PATH = '/destinations';

export function destinationPath(destinationId: string): string {
  return `${DESTINATIONS_PATH}/${encodeURIComponent(destinationId)}`;
}

export function checkpointPath(customerId: string): string {
  return `/customers/${encodeURIComponent(customerId)}/checkpoint`;
}

export function chainPath(customerId: string, from: number, to: number): string {
  return `/customers/${encodeURIComponent(customerId)}/chain?from=${from}&to=${to}`;
}

/** An answer other than 2xx, with the API's error code and message. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** The token was refused (401): the user must sign in again. */
export class SignInRequired extends Error {}

export interface CallOptions {
  /** Told before each wait for a busy service (429/503), with the seconds it waits. */
  onWait?: (seconds: number) => void;
  /** Attempts in all for 429/503 answers. */
  attempts?: number;
  sleep?: (ms: number) => Promise<void>;
  fetch?: typeof fetch;
}

const defaultSleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Seconds to wait from a Retry-After header (seconds or an HTTP date), at least 1, at most 60. */
export function retryAfterSeconds(header: string | null, now = Date.now()): number {
  if (!header) return 1;
  const n = Number(header);
  const s = Number.isFinite(n) ? n : (Date.parse(header) - now) / 1000;
  return Math.min(60, Math.max(1, Math.ceil(Number.isFinite(s) ? s : 1)));
}

/** Calls the API with the bearer token; retries 429 and 503 after Retry-After. */
export async function call<T>(path: string, token: string, init: RequestInit = {}, options: CallOptions = {}): Promise<T> {
  const attempts = options.attempts ?? 4;
  const sleep = options.sleep ?? defaultSleep;
  const doFetch = options.fetch ?? fetch;
  for (let attempt = 1; ; attempt++) {
    const headers = new Headers(init.headers);
    headers.set('authorization', `Bearer ${token}`);
    if (init.body) headers.set('content-type', 'application/json');
    const r = await doFetch(path, { ...init, headers });
    if (r.ok) return (await r.json()) as T;
    if (r.status === 401) throw new SignInRequired('401');
    let code = `Http${r.status}`;
    let message = `${r.status} ${r.statusText}`;
    try {
      const body = (await r.json()) as Partial<ErrorBody>;
      code = body.error?.code ?? code;
      message = body.error?.message ?? message;
    } catch {
      // not JSON: keep the status line
    }
    if ((r.status === 429 || r.status === 503) && attempt < attempts) {
      const wait = retryAfterSeconds(r.headers.get('retry-after'));
      options.onWait?.(wait);
      await sleep(wait * 1000);
      continue;
    }
    throw new ApiError(r.status, code, message);
  }
}

type ListQuery = NonNullable<operations['listTenantActivities']['parameters']['query']>;

/** A view's request: its period (always sent) and its filters. */
export type Query = Required<Pick<ListQuery, 'from' | 'to'>> & Pick<ListQuery, 'customerId' | 'action' | 'partnerUser' | 'status'>;

/** `GET /activities` with the query's parameters, `limit` and `cursor`. */
export function activitiesPath(q: Query, limit: number, cursor?: string | null): string {
  const p = new URLSearchParams({ from: q.from, to: q.to });
  if (q.customerId) p.set('customerId', q.customerId);
  if (q.action) p.set('action', q.action);
  if (q.partnerUser) p.set('partnerUser', q.partnerUser);
  if (q.status) p.set('status', q.status);
  p.set('limit', String(limit));
  if (cursor) p.set('cursor', cursor);
  return `/activities?${p}`;
}
