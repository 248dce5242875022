//! A tenant's streaming destinations in the activity table (key design in [`keys`](super::keys)).
//! Each change is one transaction with the activity that records it and its chain head, so a
//! change is never made without its record, nor recorded without being made. A deleted
//! destination stays as a tombstone until the table's TTL removes it (no function may delete a
//! table item).

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use chrono::{TimeDelta, Utc};

use super::dynamodb::{DynamoStore, Inserted};
use super::items::{TTL, key_item};
use super::keys::{self, DESTINATION_COUNT, DESTINATION_SK_PREFIX, PK, SK, TableKey};
use super::sdk_error::classify;
use super::{ChangeOutcome, DestinationChange, Destinations, StoreError, Unchained};
use crate::domain::destination::{Destination, DestinationId, MAX_DESTINATIONS};
use crate::domain::{PartnerId, time};

type Item = std::collections::HashMap<String, AttributeValue>;

/// The attributes a settings change writes (delivery's progress is not among them).
const SETTINGS: [&str; 8] = [
    "name",
    "target",
    "secret",
    "paused",
    "autoPauseAfterMinutes",
    "updatedAt",
    "updatedBy",
    "version",
];
/// The attributes a replay writes besides the settings.
const REPLAY: [&str; 2] = ["delivered", "failing"];

/// How long a deleted destination's item stays (as a tombstone, then TTL removes it).
const DELETED_KEPT_DAYS: i64 = 30;
/// Attribute of a deleted destination: when it was deleted. No function may delete a table
/// item, so a delete leaves a tombstone that the table's TTL removes.
const DELETED_AT: &str = "deletedAt";

#[derive(serde::Serialize, serde::Deserialize)]
struct StoredDestination {
    #[serde(flatten)]
    key: TableKey,
    #[serde(flatten)]
    destination: Destination,
    #[serde(default, rename = "deletedAt", skip_serializing_if = "Option::is_none")]
    deleted_at: Option<String>,
}

fn to_item(partner: &PartnerId, d: &Destination) -> Result<Item, StoreError> {
    serde_dynamo::to_item(StoredDestination {
        key: TableKey::destination(partner, &d.id),
        destination: d.clone(),
        deleted_at: None,
    })
    .map_err(|e| StoreError::Other(format!("destination item: {e}")))
}

/// The destination an item holds, unless it was deleted.
fn from_item(item: Item) -> Result<Option<Destination>, StoreError> {
    serde_dynamo::from_item::<_, StoredDestination>(item)
        .map(|s| s.deleted_at.is_none().then_some(s.destination))
        .map_err(|e| StoreError::Corrupt(format!("destination: {e}")))
}

fn built<T>(r: Result<T, aws_sdk_dynamodb::error::BuildError>) -> Result<T, StoreError> {
    r.map_err(|e| StoreError::Other(e.to_string()))
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

impl DynamoStore {
    /// The writes of `change`, each conditional.
    fn destination_writes(
        &self,
        partner: &PartnerId,
        change: &DestinationChange,
    ) -> Result<Vec<TransactWriteItem>, StoreError> {
        let count_key = key_item(TableKey::destination_count(partner))?;
        let count = |delta: i64| {
            let update = Update::builder()
                .table_name(&self.table)
                .set_key(Some(count_key.clone()))
                .update_expression("ADD #n :delta")
                .expression_attribute_names("#n", DESTINATION_COUNT)
                .expression_attribute_values(":delta", n(delta));
            let update = if delta > 0 {
                update
                    .condition_expression("attribute_not_exists(#n) OR #n < :max")
                    .expression_attribute_values(":max", n(MAX_DESTINATIONS))
            } else {
                update
            };
            built(update.build()).map(|u| TransactWriteItem::builder().update(u).build())
        };
        Ok(match change {
            DestinationChange::Create(d) => {
                let put = Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(to_item(partner, d)?))
                    .condition_expression("attribute_not_exists(#pk)")
                    .expression_attribute_names("#pk", PK);
                vec![
                    count(1)?,
                    TransactWriteItem::builder()
                        .put(built(put.build())?)
                        .build(),
                ]
            }
            DestinationChange::Update {
                expected,
                after,
                replay,
            } => {
                let mut item = to_item(partner, after)?;
                let names: Vec<&str> = SETTINGS
                    .iter()
                    .chain(if *replay { &REPLAY[..] } else { &[] })
                    .copied()
                    .collect();
                let mut update = Update::builder()
                    .table_name(&self.table)
                    .set_key(Some(key_item(TableKey::destination(partner, &after.id))?))
                    .condition_expression("#version = :expected AND attribute_not_exists(#deleted)")
                    .expression_attribute_names("#deleted", DELETED_AT)
                    .expression_attribute_values(":expected", n(expected));
                let mut sets = Vec::new();
                for (i, name) in names.iter().enumerate() {
                    let value = item.remove(*name).unwrap_or(AttributeValue::Null(true));
                    sets.push(format!("#a{i} = :v{i}"));
                    update = update
                        .expression_attribute_names(format!("#a{i}"), *name)
                        .expression_attribute_values(format!(":v{i}"), value);
                    if *name == "version" {
                        update = update.expression_attribute_names("#version", "version");
                    }
                }
                let update = update.update_expression(format!("SET {}", sets.join(", ")));
                vec![
                    TransactWriteItem::builder()
                        .update(built(update.build())?)
                        .build(),
                ]
            }
            DestinationChange::Delete { id, expected } => {
                let now = Utc::now();
                let tombstone = Update::builder()
                    .table_name(&self.table)
                    .set_key(Some(key_item(TableKey::destination(partner, id))?))
                    .update_expression("SET #deleted = :now, #ttl = :ttl, #version = :next")
                    .condition_expression("#version = :expected AND attribute_not_exists(#deleted)")
                    .expression_attribute_names("#version", "version")
                    .expression_attribute_names("#deleted", DELETED_AT)
                    .expression_attribute_names("#ttl", TTL)
                    .expression_attribute_values(":now", AttributeValue::S(time::format(now)))
                    .expression_attribute_values(
                        ":ttl",
                        n((now + TimeDelta::days(DELETED_KEPT_DAYS)).timestamp()),
                    )
                    .expression_attribute_values(":expected", n(expected))
                    .expression_attribute_values(":next", n(expected + 1));
                vec![
                    TransactWriteItem::builder()
                        .update(built(tombstone.build())?)
                        .build(),
                    count(-1)?,
                ]
            }
        })
    }
}

impl Destinations for DynamoStore {
    async fn destinations(&self, partner: &PartnerId) -> Result<Vec<Destination>, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#sk", SK)
            .expression_attribute_values(":pk", AttributeValue::S(keys::destinations_pk(partner)))
            .expression_attribute_values(":prefix", AttributeValue::S(DESTINATION_SK_PREFIX.into()))
            .consistent_read(true)
            .send()
            .await
            .map_err(classify)?;
        // Ids are ULIDs: key order is creation order.
        let mut found = Vec::new();
        for item in out.items.unwrap_or_default() {
            found.extend(from_item(item)?);
        }
        Ok(found)
    }

    async fn destination(
        &self,
        partner: &PartnerId,
        id: &DestinationId,
    ) -> Result<Option<Destination>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key_item(TableKey::destination(partner, id))?))
            .consistent_read(true)
            .send()
            .await
            .map_err(classify)?;
        Ok(out.item.map(from_item).transpose()?.flatten())
    }

    async fn change_destination(
        &self,
        partner: &PartnerId,
        change: &DestinationChange,
        record: &Unchained,
    ) -> Result<ChangeOutcome, StoreError> {
        let writes = self.destination_writes(partner, change)?;
        match self
            .insert_with(partner, std::slice::from_ref(record), writes)
            .await?
        {
            Inserted::Written(mut written) => written
                .pop()
                .map(|a| ChangeOutcome::Done(Box::new(a)))
                .ok_or_else(|| StoreError::Other("the change's record was not written".into())),
            Inserted::Refused => Ok(ChangeOutcome::Refused),
            // A fresh activity id: only a bug reuses one.
            Inserted::Existing(_) => Err(StoreError::Other(
                "the record of a destination change reused an activity id".into(),
            )),
        }
    }
}
