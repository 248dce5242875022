//! A tenant's feed in the activity table (key design in [`keys`](super::keys)): one transaction
//! per append moves the head and places each activity, so positions are gapless and each
//! activity holds at most one.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use chrono::Utc;

use super::dynamodb::DynamoStore;
use super::items::{self, TTL};
use super::keys::{self, FEED_BLOCK, FEED_POSITION, PK, SK, TableKey};
use super::sdk_error::{cancellation_reasons, classify};
use super::{FeedAppend, FeedLog, FeedPage, StoreError};
use crate::domain::feed::FeedEntry;
use crate::domain::{ActivityId, CustomerId, PartnerId, time};

/// Keys one `BatchGetItem` takes at most.
const BATCH_GET_KEYS: usize = 100;

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn built<T>(r: Result<T, aws_sdk_dynamodb::error::BuildError>) -> Result<T, StoreError> {
    r.map_err(|e| StoreError::Other(e.to_string()))
}

/// A feed entry as stored, without its key.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredEntry {
    customer_id: CustomerId,
    activity_id: ActivityId,
}

impl DynamoStore {
    /// The head's move from `expected` to `next`, only if it is still at `expected`.
    fn feed_head_update(
        &self,
        partner: &PartnerId,
        expected: u64,
        next: u64,
    ) -> Result<TransactWriteItem, StoreError> {
        let key = TableKey::feed_head(partner);
        let update = Update::builder()
            .table_name(&self.table)
            .key(PK, s(key.pk))
            .key(SK, s(key.sk))
            .update_expression("SET #position = :next, #at = :at")
            .expression_attribute_names("#position", "position")
            .expression_attribute_names("#at", "movedAt")
            .expression_attribute_values(":next", n(next))
            .expression_attribute_values(":at", s(time::format(Utc::now())));
        let update = if expected == 0 {
            update.condition_expression("attribute_not_exists(#position)")
        } else {
            update
                .condition_expression("#position = :expected")
                .expression_attribute_values(":expected", n(expected))
        };
        Ok(TransactWriteItem::builder()
            .update(built(update.build())?)
            .build())
    }

    /// The activity's position, only if it is still there and holds none.
    fn position_update(
        &self,
        partner: &PartnerId,
        entry: &FeedEntry,
        position: u64,
    ) -> Result<TransactWriteItem, StoreError> {
        let key = TableKey::activity(partner, &entry.customer_id, &entry.activity_id);
        let update = Update::builder()
            .table_name(&self.table)
            .key(PK, s(key.pk))
            .key(SK, s(key.sk))
            .update_expression("SET #fp = :p")
            .condition_expression("attribute_exists(#pk) AND attribute_not_exists(#fp)")
            .expression_attribute_names("#fp", FEED_POSITION)
            .expression_attribute_names("#pk", PK)
            .expression_attribute_values(":p", n(position));
        Ok(TransactWriteItem::builder()
            .update(built(update.build())?)
            .build())
    }

    /// The feed's entry at `position`, only if the position is free.
    fn entry_put(
        &self,
        partner: &PartnerId,
        entry: &FeedEntry,
        position: u64,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut item = items::key_item(TableKey::feed_entry(partner, position))?;
        item.extend(
            serde_dynamo::to_item::<_, items::Item>(StoredEntry {
                customer_id: entry.customer_id.clone(),
                activity_id: entry.activity_id.clone(),
            })
            .map_err(|e| StoreError::Other(format!("feed entry: {e}")))?,
        );
        item.insert(TTL.to_owned(), n(entry.expires_at));
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", PK);
        Ok(TransactWriteItem::builder()
            .put(built(put.build())?)
            .build())
    }

    /// The entries at positions `after + 1 ..= through`, at most `limit`, in order; the last
    /// position looked at.
    async fn feed_entries(
        &self,
        partner: &PartnerId,
        after: u64,
        through: u64,
        limit: usize,
    ) -> Result<(Vec<(u64, StoredEntry)>, u64), StoreError> {
        let mut found = Vec::new();
        let mut from = after + 1;
        while from <= through && found.len() < limit {
            let block = from / FEED_BLOCK;
            let block_end = (block + 1) * FEED_BLOCK - 1;
            let to = through.min(block_end);
            let mut start: Option<items::Item> = None;
            loop {
                let want = limit - found.len();
                let out = self
                    .client
                    .query()
                    .table_name(&self.table)
                    .consistent_read(true)
                    .key_condition_expression("#pk = :pk AND #sk BETWEEN :from AND :to")
                    .expression_attribute_names("#pk", PK)
                    .expression_attribute_names("#sk", SK)
                    .expression_attribute_values(":pk", s(keys::feed_block_pk(partner, block)))
                    .expression_attribute_values(":from", s(keys::feed_sk(from)))
                    .expression_attribute_values(":to", s(keys::feed_sk(to)))
                    .limit(i32::try_from(want).unwrap_or(i32::MAX))
                    .set_exclusive_start_key(start.take())
                    .send()
                    .await
                    .map_err(classify)?;
                for item in out.items.unwrap_or_default() {
                    let position = item
                        .get(SK)
                        .and_then(|v| v.as_s().ok())
                        .and_then(|v| v.parse::<u64>().ok())
                        .ok_or_else(|| StoreError::Corrupt("feed entry without position".into()))?;
                    let entry: StoredEntry = serde_dynamo::from_item(item)
                        .map_err(|e| StoreError::Corrupt(format!("feed entry: {e}")))?;
                    found.push((position, entry));
                }
                if found.len() >= limit {
                    let last = found.last().map_or(to, |(p, _)| *p);
                    return Ok((found, last));
                }
                match out.last_evaluated_key {
                    Some(key) if !key.is_empty() => start = Some(key),
                    _ => break,
                }
            }
            from = to + 1;
        }
        Ok((found, through.max(after)))
    }
}

impl FeedLog for DynamoStore {
    async fn feed_head(&self, partner: &PartnerId) -> Result<u64, StoreError> {
        let key = TableKey::feed_head(partner);
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, s(key.pk))
            .key(SK, s(key.sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(classify)?;
        match out.item.as_ref().and_then(|i| i.get("position")) {
            None => Ok(0),
            Some(v) => v
                .as_n()
                .ok()
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| StoreError::Corrupt("feed head without a position".into())),
        }
    }

    async fn append_feed(
        &self,
        partner: &PartnerId,
        expected: u64,
        entries: &[FeedEntry],
    ) -> Result<FeedAppend, StoreError> {
        if entries.is_empty() {
            return Ok(FeedAppend::Appended);
        }
        let next = expected + entries.len() as u64;
        let mut writes = vec![self.feed_head_update(partner, expected, next)?];
        for (i, entry) in entries.iter().enumerate() {
            let position = expected + 1 + i as u64;
            writes.push(self.position_update(partner, entry, position)?);
            writes.push(self.entry_put(partner, entry, position)?);
        }
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(writes))
            .send()
            .await;
        let Err(err) = result else {
            return Ok(FeedAppend::Appended);
        };
        let reasons = cancellation_reasons(err)?;
        let failed = |r: Option<&String>| r.is_some_and(|r| r == "ConditionalCheckFailed");
        if failed(reasons.first()) {
            return Ok(FeedAppend::HeadMoved);
        }
        let placed: Vec<usize> = (0..entries.len())
            .filter(|i| failed(reasons.get(1 + 2 * i)))
            .collect();
        if !placed.is_empty() {
            return Ok(FeedAppend::Placed(placed));
        }
        if (0..entries.len()).any(|i| failed(reasons.get(2 + 2 * i))) {
            // An entry where the head says none is: the head was moved back by hand.
            return Err(StoreError::Corrupt(format!(
                "the feed of {partner} holds entries after its head {expected}"
            )));
        }
        if reasons.iter().any(|r| {
            matches!(
                r.as_str(),
                "TransactionConflict" | "ThrottlingError" | "ProvisionedThroughputExceeded"
            )
        }) {
            // Another sequencer's transaction on the head: the same as a moved head.
            return Ok(FeedAppend::HeadMoved);
        }
        Err(StoreError::Other(format!(
            "feed append cancelled: {reasons:?}"
        )))
    }

    async fn feed_page(
        &self,
        partner: &PartnerId,
        after: u64,
        through: u64,
        limit: usize,
    ) -> Result<FeedPage, StoreError> {
        let (entries, last) = self.feed_entries(partner, after, through, limit).await?;
        let mut at: HashMap<(String, String), u64> = HashMap::with_capacity(entries.len());
        let mut activities = Vec::with_capacity(entries.len());
        for chunk in entries.chunks(BATCH_GET_KEYS) {
            let mut keys = Vec::with_capacity(chunk.len());
            for (position, e) in chunk {
                let key = TableKey::activity(partner, &e.customer_id, &e.activity_id);
                at.insert((key.pk.clone(), key.sk.clone()), *position);
                keys.push(items::key_item(key)?);
            }
            for item in self.batch_get_items(keys).await? {
                let key = (
                    item.get(PK).and_then(|v| v.as_s().ok()).cloned(),
                    item.get(SK).and_then(|v| v.as_s().ok()).cloned(),
                );
                let position = match key {
                    (Some(pk), Some(sk)) => at.get(&(pk, sk)).copied(),
                    _ => None,
                }
                .ok_or_else(|| StoreError::Corrupt("an activity no feed entry named".into()))?;
                let mut a = items::activity_from_item(item)?;
                a.feed_position = Some(position);
                activities.push(a);
            }
        }
        activities.sort_by_key(|a| a.feed_position);
        Ok(FeedPage { activities, last })
    }
}
