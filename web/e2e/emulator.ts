// The local stack's AWS emulator, reached from the browser test the way someone with write access
// to the storage reaches AWS: its DynamoDB and S3 wire protocols (JSON over HTTP, REST), behind
// the service's back. The emulator does not check signatures, so requests carry a fixed
// Authorization header naming the stack's region; the stack's names are scripts/local.env's.
const ENDPOINT = process.env.ACTIVITY_LOG_AWS_URL ?? 'http://127.0.0.1:4566';
const REGION = process.env.AWS_REGION ?? 'us-east-1';
const TABLE = process.env.TABLE_NAME ?? 'activity-log';
const ANCHOR_BUCKET = process.env.ANCHOR_BUCKET ?? 'activity-log-anchors-local';

const auth = (service: string) => `AWS4-HMAC-SHA256 Credential=test/20260101/${REGION}/${service}/aws4_request, SignedHeaders=host, Signature=00`;

type Attribute = { S?: string; N?: string };
type Item = Record<string, Attribute>;

async function dynamodb<T>(action: string, body: object): Promise<T> {
  const r = await fetch(ENDPOINT, {
    method: 'POST',
    headers: { 'content-type': 'application/x-amz-json-1.0', 'x-amz-target': `DynamoDB_20120810.${action}`, authorization: auth('dynamodb') },
    body: JSON.stringify(body),
  });
  if (!r.ok) throw new Error(`DynamoDB ${action}: HTTP ${r.status} ${await r.text()}`);
  return (await r.json()) as T;
}

/** Deletes the customer's last `n` activities and sets its chain head back to the one before
 * them, straight in the table: a tail truncated with its head rolled back. Returns the sequence
 * the head now names. */
export async function truncateTail(partner: string, customer: string, n: number): Promise<number> {
  const pk = `P#${partner}#C#${customer}`;
  const { Items } = await dynamodb<{ Items: Item[] }>('Query', {
    TableName: TABLE,
    IndexName: 'bySequence',
    KeyConditionExpression: 'pk = :pk',
    ExpressionAttributeValues: { ':pk': { S: pk } },
    ScanIndexForward: false,
  });
  const activities = Items.filter((i) => i.sk?.S?.startsWith('A#')).sort((a, b) => Number(b.sequence.N) - Number(a.sequence.N));
  const keep = activities[n];
  if (!keep) throw new Error(`${customer} has ${activities.length} activities, not more than ${n}`);
  for (const a of activities.slice(0, n)) {
    await dynamodb('DeleteItem', { TableName: TABLE, Key: { pk: a.pk, sk: a.sk } });
  }
  await dynamodb('UpdateItem', {
    TableName: TABLE,
    Key: { pk: { S: pk }, sk: { S: 'HEAD' } },
    UpdateExpression: 'SET #s = :s, #h = :h',
    ExpressionAttributeNames: { '#s': 'sequence', '#h': 'hash' },
    ExpressionAttributeValues: { ':s': { N: keep.sequence.N }, ':h': { S: keep.hash.S } },
  });
  return Number(keep.sequence.N);
}

/** Hides every anchor of the customer from the anchor bucket's listing (a delete marker on
 * each, which Object Lock allows and only the bucket's policy refuses: an operator who can
 * change that policy can). Returns how many. */
export async function hideAnchors(partner: string, customer: string): Promise<number> {
  const prefix = `anchors/${partner}/${customer}/`;
  const listed = await fetch(`${ENDPOINT}/${ANCHOR_BUCKET}?list-type=2&prefix=${encodeURIComponent(prefix)}`, { headers: { authorization: auth('s3') } });
  if (!listed.ok) throw new Error(`S3 ListObjectsV2: HTTP ${listed.status} ${await listed.text()}`);
  const keys = [...(await listed.text()).matchAll(/<Key>([^<]*)<\/Key>/g)].map((m) => m[1].replaceAll('&amp;', '&'));
  for (const key of keys) {
    const path = key.split('/').map(encodeURIComponent).join('/');
    const r = await fetch(`${ENDPOINT}/${ANCHOR_BUCKET}/${path}`, { method: 'DELETE', headers: { authorization: auth('s3') } });
    if (!r.ok) throw new Error(`S3 DeleteObject ${key}: HTTP ${r.status} ${await r.text()}`);
  }
  return keys.length;
}
