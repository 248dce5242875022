//! DynamoDB adapter: one table, an LSI for a customer's log by time and a GSI for a tenant's.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::types::{
    AttributeValue, KeysAndAttributes, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem,
};
use chrono::{DateTime, Utc};

use super::items::{self, Item};
use super::keys::{
    self, BY_SEQUENCE_INDEX, IndexKeys, PARTNER_PK, PARTNER_SK, PK, SEQUENCE, SK, TIME_SK, TableKey,
};
use super::sdk_error::{cancellation_reasons, classify};
use super::{
    ActivityReader, ActivityWriter, ChainIndex, ChainLinks, InsertOutcome, StoreError, StorePage,
    Unchained, append_all,
};
use crate::domain::chain::Head;
use crate::domain::query::MAX_LIMIT;
use crate::domain::{Activity, ActivityId, ActivityQuery, CustomerId, PageKey, PartnerId, time};

pub use super::items::TTL;

/// Rounds of `UnprocessedKeys` a batch read follows before it reports throttling.
const BATCH_GET_ROUNDS: u32 = 8;
/// Attempts of a record transaction that keeps meeting other writers of its customers, conflicts
/// or throttling (then 503 with `Retry-After`).
const CHAIN_ATTEMPTS: u32 = 10;
/// Doublings of the retry pause (25 ms · 2ⁿ, at most 1.6 s).
const MAX_BACKOFF_DOUBLINGS: u32 = 6;

#[derive(Clone, Debug)]
pub struct DynamoStore {
    pub(super) client: Client,
    pub(super) table: String,
    /// The chain heads this process wrote last, by customer partition key: a writer that keeps
    /// recording for the same customers does not read their heads again. The write stays
    /// conditional on the head, so a head another writer moved is read then.
    heads: Arc<Mutex<HashMap<String, Head>>>,
}

/// Most chain heads a process remembers (then it starts over).
const REMEMBERED_HEADS: usize = 10_000;

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            heads: Arc::default(),
        }
    }

    /// The heads of `customers` as this process last wrote them, if it knows every one.
    fn remembered_heads(
        &self,
        partner: &PartnerId,
        customers: &[&CustomerId],
    ) -> Option<HashMap<CustomerId, Option<Head>>> {
        let known = self.heads.lock().ok()?;
        customers
            .iter()
            .map(|c| {
                let head = known.get(&keys::customer_pk(partner, c))?;
                Some(((*c).clone(), Some(head.clone())))
            })
            .collect()
    }

    /// Remembers the heads written.
    fn remember_heads(&self, partner: &PartnerId, written: &[(&CustomerId, Head)]) {
        if let Ok(mut known) = self.heads.lock() {
            if known.len() + written.len() > REMEMBERED_HEADS {
                known.clear();
            }
            for (customer, head) in written {
                known.insert(keys::customer_pk(partner, customer), head.clone());
            }
        }
    }

    /// Drops the heads of `customers`: they are read again.
    fn forget_heads(&self, partner: &PartnerId, customers: &[&CustomerId]) {
        if let Ok(mut known) = self.heads.lock() {
            for customer in customers {
                known.remove(&keys::customer_pk(partner, customer));
            }
        }
    }

    /// The SDK client (tests build other apps on it).
    #[cfg(feature = "testing")]
    pub fn client(&self) -> &Client {
        &self.client
    }

    async fn batch_get(&self, keys: Vec<Item>) -> Result<Vec<Activity>, StoreError> {
        self.batch_get_items(keys)
            .await?
            .into_iter()
            .map(items::activity_from_item)
            .collect()
    }

    /// The chain heads of `customers` (`None`: no activity recorded yet), read consistently.
    async fn read_heads(
        &self,
        partner: &PartnerId,
        customers: &[&CustomerId],
    ) -> Result<HashMap<CustomerId, Option<Head>>, StoreError> {
        let keys = customers
            .iter()
            .map(|c| items::key_item(TableKey::chain_head(partner, c)))
            .collect::<Result<Vec<_>, _>>()?;
        let mut heads: HashMap<CustomerId, Option<Head>> =
            customers.iter().map(|c| ((*c).clone(), None)).collect();
        for item in self.batch_get_items(keys).await? {
            let pk = item.get(PK).and_then(|v| v.as_s().ok()).cloned();
            let customer = customers
                .iter()
                .find(|c| pk.as_deref() == Some(keys::customer_pk(partner, c).as_str()))
                .ok_or_else(|| StoreError::Corrupt("a chain head of no customer asked".into()))?;
            heads.insert((*customer).clone(), Some(items::head_from_item(item)?));
        }
        Ok(heads)
    }

    /// The write of `customer`'s new head, only if the head is still the one `read`.
    fn head_put(
        &self,
        partner: &PartnerId,
        customer: &CustomerId,
        head: &Head,
        read: Option<&Head>,
    ) -> Result<TransactWriteItem, StoreError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(items::head_to_item(partner, customer, head)?));
        let put = match read {
            None => put
                .condition_expression("attribute_not_exists(#pk)")
                .expression_attribute_names("#pk", PK),
            Some(read) => put
                .condition_expression("#seq = :seq")
                .expression_attribute_names("#seq", "sequence")
                .expression_attribute_values(":seq", AttributeValue::N(read.sequence.to_string())),
        };
        let put = put.build().map_err(|e| StoreError::Other(e.to_string()))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    pub(super) async fn batch_get_items(&self, keys: Vec<Item>) -> Result<Vec<Item>, StoreError> {
        let mut found = Vec::new();
        let mut pending = KeysAndAttributes::builder()
            .set_keys(Some(keys))
            .consistent_read(true)
            .build()
            .map_err(|e| StoreError::Other(e.to_string()))?;
        for round in 0..BATCH_GET_ROUNDS {
            let mut out = self
                .client
                .batch_get_item()
                .request_items(&self.table, pending.clone())
                .send()
                .await
                .map_err(classify)?;
            let items = out
                .responses
                .as_mut()
                .and_then(|r| r.remove(&self.table))
                .unwrap_or_default();
            found.extend(items);
            match out.unprocessed_keys().and_then(|u| u.get(&self.table)) {
                Some(rest) if !rest.keys().is_empty() => {
                    pending = rest.clone();
                    backoff(round).await;
                }
                _ => return Ok(found),
            }
        }
        Err(StoreError::Throttled)
    }

    /// One `Put` per activity, each only if its key is new.
    fn conditional_puts(
        &self,
        partner: &PartnerId,
        items: &[Activity],
    ) -> Result<Vec<TransactWriteItem>, StoreError> {
        items
            .iter()
            .map(|a| {
                let put = Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(items::activity_to_item(partner, a)?))
                    .condition_expression("attribute_not_exists(#pk)")
                    .expression_attribute_names("#pk", PK)
                    .return_values_on_condition_check_failure(
                        ReturnValuesOnConditionCheckFailure::None,
                    )
                    .build()
                    .map_err(|e| StoreError::Other(e.to_string()))?;
                Ok(TransactWriteItem::builder().put(put).build())
            })
            .collect()
    }

    /// The query of one index page: key condition on the index the scope uses, the period,
    /// and where to start.
    fn keyed_query(
        &self,
        partner: &PartnerId,
        query: &ActivityQuery,
        after: Option<&PageKey>,
    ) -> Result<(QueryFluentBuilder, &'static str), StoreError> {
        let (index, partition_attr, partition, sort_attr) = match &query.customer {
            Some(customer) => (
                keys::BY_TIME_INDEX,
                PK,
                keys::customer_pk(partner, customer),
                TIME_SK,
            ),
            None => (
                keys::BY_PARTNER_TIME_INDEX,
                PARTNER_PK,
                keys::partner_pk(partner),
                PARTNER_SK,
            ),
        };
        let mut req = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(index)
            .scan_index_forward(false)
            .key_condition_expression("#p = :p AND #t BETWEEN :lo AND :hi")
            .expression_attribute_names("#p", partition_attr)
            .expression_attribute_names("#t", sort_attr)
            .expression_attribute_values(":p", AttributeValue::S(partition))
            .expression_attribute_values(":lo", s(keys::range_low(query.range.from)))
            .expression_attribute_values(":hi", s(keys::range_high(query.range.to)));
        // Only the local index reads consistently (a global one cannot).
        if query.customer.is_some() {
            req = req.consistent_read(true);
        }
        if let Some(k) = after {
            // The table's key and the index's key of the last item read.
            let mut start = items::key_item(TableKey::activity(partner, &k.customer_id, &k.id))?;
            let index_keys = items::key_item(IndexKeys::activity(partner, k))?;
            start.extend(
                index_keys
                    .into_iter()
                    .filter(|(name, _)| name == partition_attr || name == sort_attr),
            );
            req = req.set_exclusive_start_key(Some(start));
        }
        Ok((req, sort_attr))
    }
}

pub(super) async fn backoff(attempt: u32) {
    tokio::time::sleep(Duration::from_millis(
        25 * 2u64.pow(attempt.min(MAX_BACKOFF_DOUBLINGS)),
    ))
    .await;
}

/// A pause drawn at random up to 25 ms · 2ⁿ (at most 1.6 s), so writers that met each other do
/// not meet again.
async fn jittered_backoff(attempt: u32) {
    let ceiling = 25 * 2u128.pow(attempt.min(MAX_BACKOFF_DOUBLINGS));
    let millis = ulid::Ulid::generate().random() % ceiling;
    tokio::time::sleep(Duration::from_millis(u64::try_from(millis).unwrap_or(25))).await;
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

/// What a cancelled transaction's reasons call for.
pub(super) enum Cancelled {
    /// A key exists already.
    Exists,
    /// Conflicts with other transactions or throttling: worth another attempt.
    Retry,
    /// Anything else.
    Fatal,
}

pub(super) fn cancelled(reasons: &[String]) -> Cancelled {
    let retryable = |r: &String| {
        matches!(
            r.as_str(),
            "TransactionConflict" | "ThrottlingError" | "ProvisionedThroughputExceeded"
        )
    };
    if reasons.iter().any(|r| r == "ConditionalCheckFailed") {
        Cancelled::Exists
    } else if reasons.iter().any(retryable) {
        Cancelled::Retry
    } else {
        Cancelled::Fatal
    }
}

impl ActivityWriter for DynamoStore {
    async fn insert_all(
        &self,
        partner: &PartnerId,
        items: &[Unchained],
    ) -> Result<InsertOutcome, StoreError> {
        match self.insert_with(partner, items, Vec::new()).await? {
            Inserted::Written(written) => Ok(InsertOutcome::Written(written)),
            Inserted::Existing(existing) => Ok(InsertOutcome::Existing(existing)),
            Inserted::Refused => Err(StoreError::Other(
                "a write with no condition of its own was refused".into(),
            )),
        }
    }
}

/// How [`DynamoStore::insert_with`] ended.
pub(super) enum Inserted {
    Written(Vec<Activity>),
    Existing(Vec<Activity>),
    /// A condition of the writes that came with the activities failed: nothing was written.
    Refused,
}

impl DynamoStore {
    /// Writes `items` as [`ActivityWriter::insert_all`] does, together with `with` in the same
    /// transaction: all, or nothing.
    pub(super) async fn insert_with(
        &self,
        partner: &PartnerId,
        items: &[Unchained],
        with: Vec<TransactWriteItem>,
    ) -> Result<Inserted, StoreError> {
        let mut customers: Vec<&CustomerId> = Vec::new();
        for u in items {
            if !customers.contains(&&u.activity.customer_id) {
                customers.push(&u.activity.customer_id);
            }
        }
        let mut attempt = 0;
        loop {
            let heads = match self.remembered_heads(partner, &customers) {
                Some(heads) => heads,
                None => self.read_heads(partner, &customers).await?,
            };
            let (written, moved) = append_all(items, |c| heads.get(c).cloned().flatten())?;
            let mut writes = self.conditional_puts(partner, &written)?;
            for (customer, head) in &moved {
                let read = heads.get(*customer).and_then(Option::as_ref);
                writes.push(self.head_put(partner, customer, head, read)?);
            }
            writes.extend(with.iter().cloned());
            let result = self
                .client
                .transact_write_items()
                .set_transact_items(Some(writes))
                .send()
                .await;
            let err = match result {
                Ok(_) => {
                    self.remember_heads(partner, &moved);
                    return Ok(Inserted::Written(written));
                }
                Err(e) => {
                    // Whatever went wrong, read the heads again.
                    self.forget_heads(partner, &customers);
                    e
                }
            };
            let reasons = cancellation_reasons(err)?;
            let (activities, rest) = reasons.split_at(items.len().min(reasons.len()));
            let (heads_moved, others) = rest.split_at(moved.len().min(rest.len()));
            if others.iter().any(|r| r == "ConditionalCheckFailed") {
                return Ok(Inserted::Refused);
            }
            match cancelled(activities) {
                Cancelled::Exists => {
                    let keys = items
                        .iter()
                        .map(|u| {
                            let a = &u.activity;
                            items::key_item(TableKey::activity(partner, &a.customer_id, &a.id))
                        })
                        .collect::<Result<_, _>>()?;
                    let existing = self.batch_get(keys).await?;
                    if !existing.is_empty() {
                        return Ok(Inserted::Existing(existing));
                    }
                    // Gone since (TTL): the write may go through now.
                }
                // A head moved since it was read (another writer of the customer), or a
                // conflict or throttling: start over from the heads.
                _ if heads_moved.iter().any(|r| r == "ConditionalCheckFailed") => {}
                Cancelled::Retry => {}
                Cancelled::Fatal => {
                    return Err(StoreError::Other(format!(
                        "transaction cancelled: {reasons:?}"
                    )));
                }
            }
            attempt += 1;
            if attempt >= CHAIN_ATTEMPTS {
                let throttled = reasons.iter().any(|r| {
                    !matches!(
                        r.as_str(),
                        "TransactionConflict" | "ConditionalCheckFailed" | "None"
                    )
                });
                return Err(if throttled {
                    StoreError::Throttled
                } else {
                    StoreError::Unavailable("chain heads kept moving (concurrent writers)".into())
                });
            }
            jittered_backoff(attempt).await;
        }
    }
}

impl ActivityReader for DynamoStore {
    async fn get(
        &self,
        partner: &PartnerId,
        customer: &CustomerId,
        id: &ActivityId,
    ) -> Result<Option<Activity>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(items::key_item(TableKey::activity(
                partner, customer, id,
            ))?))
            .consistent_read(true)
            .send()
            .await
            .map_err(classify)?;
        out.item.map(items::activity_from_item).transpose()
    }

    async fn query_page(
        &self,
        partner: &PartnerId,
        query: &ActivityQuery,
        after: Option<&PageKey>,
        want: usize,
    ) -> Result<StorePage, StoreError> {
        let (mut req, sort_attr) = self.keyed_query(partner, query, after)?;
        let (req_filtered, filtered) = with_filters(req, query);
        req = req_filtered;
        if !filtered && want <= MAX_LIMIT {
            // Without filters every item read is returned: read just what the caller needs.
            // (Larger wants, as an export's, read whole 1 MB pages.)
            req = req.limit(i32::try_from(want.max(1)).unwrap_or(1));
        }
        let mut out = with_listed_projection(req).send().await.map_err(classify)?;
        let items = out
            .items
            .take()
            .unwrap_or_default()
            .into_iter()
            .map(items::activity_from_item)
            .collect::<Result<Vec<_>, _>>()?;
        let last_evaluated = out
            .last_evaluated_key()
            .map(|k| last_position(partner, k, sort_attr))
            .transpose()?;
        Ok(StorePage {
            items,
            last_evaluated,
        })
    }
}

/// Adds the query's exact-match filters; says whether there were any.
fn with_filters(mut req: QueryFluentBuilder, query: &ActivityQuery) -> (QueryFluentBuilder, bool) {
    let f = &query.filters;
    let mut conditions = Vec::new();
    for (name, attr, value) in [
        ("#fa", "action", f.action.as_deref()),
        ("#fu", "partnerUser", f.partner_user.as_deref()),
        ("#fr", "resourceType", f.resource_type.as_deref()),
        ("#fs", "status", f.status.map(|s| s.as_str())),
    ] {
        if let Some(v) = value {
            let placeholder = name.replace('#', ":");
            conditions.push(format!("{name} = {placeholder}"));
            req = req
                .expression_attribute_names(name, attr)
                .expression_attribute_values(placeholder, s(v));
        }
    }
    if conditions.is_empty() {
        (req, false)
    } else {
        (req.filter_expression(conditions.join(" AND ")), true)
    }
}

/// Reads only the attributes a listed activity needs.
fn with_listed_projection(mut req: QueryFluentBuilder) -> QueryFluentBuilder {
    let mut projection = String::new();
    for (i, name) in items::listed().iter().enumerate() {
        let placeholder = format!("#l{i}");
        if i > 0 {
            projection.push_str(", ");
        }
        projection.push_str(&placeholder);
        req = req.expression_attribute_names(placeholder, *name);
    }
    req.projection_expression(projection)
}

/// The page position of DynamoDB's `LastEvaluatedKey`.
fn last_position(partner: &PartnerId, key: &Item, sort_attr: &str) -> Result<PageKey, StoreError> {
    let text = |name: &str| key.get(name).and_then(|v| v.as_s().ok());
    let (Some(pk), Some(sk), Some(tk)) = (text(PK), text(SK), text(sort_attr)) else {
        return Err(StoreError::Corrupt("unexpected LastEvaluatedKey".into()));
    };
    keys::page_key_from(partner, pk, sk, tk)
        .ok_or_else(|| StoreError::Corrupt("unreadable LastEvaluatedKey".into()))
}

impl super::HeadsMoved for DynamoStore {
    /// One query per partition of the `byHeadMoved` index (its pages followed).
    async fn heads_moved(
        &self,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<super::MovedHead>, StoreError> {
        let mut moved = Vec::new();
        for shard in 0..keys::HEAD_SHARDS {
            let mut start = None;
            loop {
                let page = self
                    .client
                    .query()
                    .table_name(&self.table)
                    .index_name(keys::BY_HEAD_MOVED_INDEX)
                    .key_condition_expression("#s = :s AND #r BETWEEN :from AND :until")
                    .expression_attribute_names("#s", keys::HEAD_SHARD)
                    .expression_attribute_names("#r", "recordedAt")
                    .expression_attribute_values(":s", AttributeValue::S(shard.to_string()))
                    .expression_attribute_values(":from", AttributeValue::S(time::format(from)))
                    .expression_attribute_values(":until", AttributeValue::S(time::format(until)))
                    .set_exclusive_start_key(start)
                    .send()
                    .await
                    .map_err(classify)?;
                for item in page.items.unwrap_or_default() {
                    moved.push(items::moved_head_of(item)?);
                }
                match page.last_evaluated_key {
                    Some(key) => start = Some(key),
                    None => break,
                }
            }
        }
        Ok(moved)
    }
}

impl ChainIndex for DynamoStore {
    async fn links_between(
        &self,
        partner: &PartnerId,
        customer: &CustomerId,
        from: u64,
        to: u64,
    ) -> Result<ChainLinks, StoreError> {
        let mut out = ChainLinks::default();
        let mut start = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(BY_SEQUENCE_INDEX)
                .key_condition_expression("#pk = :pk AND #seq BETWEEN :from AND :to")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_names("#seq", SEQUENCE)
                .expression_attribute_values(
                    ":pk",
                    AttributeValue::S(keys::customer_pk(partner, customer)),
                )
                .expression_attribute_values(":from", AttributeValue::N(from.to_string()))
                .expression_attribute_values(":to", AttributeValue::N(to.to_string()))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(classify)?;
            for item in page.items() {
                if let Some(link) = items::link_of(item)? {
                    out.links.push(link);
                }
            }
            match page.last_evaluated_key {
                Some(key) => start = Some(key),
                None => return Ok(out),
            }
        }
    }
}
