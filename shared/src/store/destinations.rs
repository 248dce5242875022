//! A tenant's streaming destinations in the activity table (key design in [`keys`](super::keys)).
//! Each change is one transaction with the activity that records it and its chain head, so a
//! change is never made without its record, nor recorded without being made. A deleted
//! destination stays as a tombstone until the table's TTL removes it (no function may delete a
//! table item).

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use chrono::{DateTime, TimeDelta, Utc};

use super::dynamodb::{DynamoStore, Inserted};
use super::items::{TTL, key_item};
use super::keys::{self, DESTINATION_COUNT, DESTINATION_SK_PREFIX, PK, SK, TableKey};
use super::sdk_error::classify;
use super::{
    ChangeOutcome, Claimed, DeliveryLog, DestinationChange, Destinations, StoreError, Unchained,
};
use crate::domain::delivery::AfterFailure;
use crate::domain::destination::{Destination, DestinationId, MAX_DESTINATIONS};
use crate::domain::{PartnerId, time};

type Item = std::collections::HashMap<String, AttributeValue>;

/// The attributes a settings change writes (delivery's progress is not among them; its backoff
/// is cleared, so a changed destination is tried again at once).
const SETTINGS: [&str; 9] = [
    "name",
    "target",
    "secret",
    "paused",
    "autoPauseAfterMinutes",
    "updatedAt",
    "updatedBy",
    "version",
    NEXT_ATTEMPT_AT,
];
/// The attributes a replay writes besides the settings.
const REPLAY: [&str; 3] = ["delivered", "failing", ATTEMPTS];
const NEXT_ATTEMPT_AT: &str = "nextAttemptAt";
const ATTEMPTS: &str = "attempts";
const LEASE_UNTIL: &str = "leaseUntil";

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
    /// Delivery's retry state and claim.
    #[serde(default, rename = "attempts", skip_serializing_if = "Option::is_none")]
    attempts: Option<u32>,
    #[serde(
        default,
        rename = "nextAttemptAt",
        skip_serializing_if = "Option::is_none"
    )]
    next_attempt_at: Option<DateTime<Utc>>,
    #[serde(
        default,
        rename = "leaseUntil",
        skip_serializing_if = "Option::is_none"
    )]
    lease_until: Option<DateTime<Utc>>,
}

/// A registry entry: which tenant's destination.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Registered {
    #[serde(flatten)]
    key: TableKey,
    partner_id: PartnerId,
    destination_id: DestinationId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    deleted_at: Option<String>,
}

fn to_item(partner: &PartnerId, d: &Destination) -> Result<Item, StoreError> {
    serde_dynamo::to_item(StoredDestination {
        key: TableKey::destination(partner, &d.id),
        destination: d.clone(),
        deleted_at: None,
        attempts: None,
        next_attempt_at: None,
        lease_until: None,
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
                let registered = serde_dynamo::to_item(Registered {
                    key: TableKey::registered_destination(partner, &d.id),
                    partner_id: partner.clone(),
                    destination_id: d.id.clone(),
                    deleted_at: None,
                })
                .map_err(|e| StoreError::Other(format!("registry item: {e}")))?;
                let register = Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(registered))
                    .condition_expression("attribute_not_exists(#pk)")
                    .expression_attribute_names("#pk", PK);
                vec![
                    count(1)?,
                    TransactWriteItem::builder()
                        .put(built(put.build())?)
                        .build(),
                    TransactWriteItem::builder()
                        .put(built(register.build())?)
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
                let unregister = Update::builder()
                    .table_name(&self.table)
                    .set_key(Some(key_item(TableKey::registered_destination(
                        partner, id,
                    ))?))
                    .update_expression("SET #deleted = :now, #ttl = :ttl")
                    .expression_attribute_names("#deleted", DELETED_AT)
                    .expression_attribute_names("#ttl", TTL)
                    .expression_attribute_values(":now", AttributeValue::S(time::format(now)))
                    .expression_attribute_values(
                        ":ttl",
                        n((now + TimeDelta::days(DELETED_KEPT_DAYS)).timestamp()),
                    );
                vec![
                    TransactWriteItem::builder()
                        .update(built(tombstone.build())?)
                        .build(),
                    count(-1)?,
                    TransactWriteItem::builder()
                        .update(built(unregister.build())?)
                        .build(),
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

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

impl DynamoStore {
    /// A conditional update of a claimed destination: `SET`s, `REMOVE`s and `condition` (with
    /// its values); `None` when the condition did not hold.
    fn claimed_update(
        &self,
        partner: &PartnerId,
        claim: &Claimed,
    ) -> Result<
        aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder,
        StoreError,
    > {
        Ok(self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_item(TableKey::destination(
                partner,
                &claim.destination.id,
            ))?))
            .expression_attribute_names("#lease", LEASE_UNTIL)
            .expression_attribute_values(":lease", s(time::format(claim.lease_until))))
    }
}

impl DeliveryLog for DynamoStore {
    async fn registered(&self) -> Result<Vec<(PartnerId, DestinationId)>, StoreError> {
        let mut found = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("#pk = :pk")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_values(":pk", s(keys::DESTINATION_REGISTRY_PK))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(classify)?;
            for item in out.items.unwrap_or_default() {
                let r: Registered = serde_dynamo::from_item(item)
                    .map_err(|e| StoreError::Corrupt(format!("registry: {e}")))?;
                if r.deleted_at.is_none() {
                    found.push((r.partner_id, r.destination_id));
                }
            }
            match out.last_evaluated_key {
                Some(k) => start = Some(k),
                None => return Ok(found),
            }
        }
    }

    async fn claim(
        &self,
        partner: &PartnerId,
        id: &DestinationId,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Option<Claimed>, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_item(TableKey::destination(partner, id))?))
            .update_expression("SET #lease = :until")
            .condition_expression(
                "attribute_exists(#pk) AND attribute_not_exists(#deleted) \
                 AND (attribute_not_exists(#lease) OR #lease < :now)",
            )
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#deleted", DELETED_AT)
            .expression_attribute_names("#lease", LEASE_UNTIL)
            .expression_attribute_values(":until", s(time::format(until)))
            .expression_attribute_values(":now", s(time::format(now)))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
            .send()
            .await;
        let Some(out) = super::sdk_error::unless_condition_failed(result)? else {
            return Ok(None);
        };
        let item = out.attributes.unwrap_or_default();
        let stored: StoredDestination = serde_dynamo::from_item(item)
            .map_err(|e| StoreError::Corrupt(format!("destination: {e}")))?;
        Ok(Some(Claimed {
            destination: stored.destination,
            attempts: stored.attempts.unwrap_or(0),
            next_attempt_at: stored.next_attempt_at,
            lease_until: until,
        }))
    }

    async fn advance(
        &self,
        partner: &PartnerId,
        claim: &Claimed,
        from: u64,
        to: u64,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let result = self
            .claimed_update(partner, claim)?
            .update_expression(
                "SET #delivered = :to, #at = :now, #attempts = :zero REMOVE #failing, #next",
            )
            .condition_expression("#delivered = :from AND #lease = :lease")
            .expression_attribute_names("#delivered", "delivered")
            .expression_attribute_names("#at", "lastDeliveredAt")
            .expression_attribute_names("#attempts", ATTEMPTS)
            .expression_attribute_names("#failing", "failing")
            .expression_attribute_names("#next", NEXT_ATTEMPT_AT)
            .expression_attribute_values(":to", n(to))
            .expression_attribute_values(":from", n(from))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":now", s(to_rfc3339(now)))
            .send()
            .await;
        Ok(super::sdk_error::unless_condition_failed(result)?.is_some())
    }

    async fn failed(
        &self,
        partner: &PartnerId,
        claim: &Claimed,
        at: u64,
        after: &AfterFailure,
        record: Option<&Unchained>,
    ) -> Result<bool, StoreError> {
        let failing = serde_dynamo::to_attribute_value(&after.failing)
            .map_err(|e| StoreError::Other(format!("failing: {e}")))?;
        let key = key_item(TableKey::destination(partner, &claim.destination.id))?;
        let mut update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key))
            .condition_expression("#delivered = :at AND #lease = :lease AND #version = :version")
            .expression_attribute_names("#delivered", "delivered")
            .expression_attribute_names("#lease", LEASE_UNTIL)
            .expression_attribute_names("#version", "version")
            .expression_attribute_names("#failing", "failing")
            .expression_attribute_names("#attempts", ATTEMPTS)
            .expression_attribute_names("#next", NEXT_ATTEMPT_AT)
            .expression_attribute_values(":at", n(at))
            .expression_attribute_values(":lease", s(time::format(claim.lease_until)))
            .expression_attribute_values(":version", n(claim.destination.version))
            .expression_attribute_values(":failing", failing)
            .expression_attribute_values(":attempts", n(after.attempts))
            .expression_attribute_values(":next", s(to_rfc3339(after.next_attempt_at)));
        let mut sets = "SET #failing = :failing, #attempts = :attempts, #next = :next".to_owned();
        if let Some(pause) = &after.pause {
            let paused = serde_dynamo::to_attribute_value(pause)
                .map_err(|e| StoreError::Other(format!("pause: {e}")))?;
            sets.push_str(", #paused = :paused, #version = :next_version");
            update = update
                .expression_attribute_names("#paused", "paused")
                .expression_attribute_values(":paused", paused)
                .expression_attribute_values(":next_version", n(claim.destination.version + 1));
        }
        let update = built(update.update_expression(sets).build())?;
        match record {
            // A pause is a change of the destination: made with its record, or not at all.
            Some(record) => {
                let writes = vec![TransactWriteItem::builder().update(update).build()];
                match self
                    .insert_with(partner, std::slice::from_ref(record), writes)
                    .await?
                {
                    Inserted::Written(_) => Ok(true),
                    Inserted::Refused => Ok(false),
                    Inserted::Existing(_) => Err(StoreError::Other(
                        "the record of a pause reused an activity id".into(),
                    )),
                }
            }
            None => {
                let result = self
                    .client
                    .update_item()
                    .table_name(&self.table)
                    .set_key(Some(update.key))
                    .set_update_expression(Some(update.update_expression))
                    .set_condition_expression(update.condition_expression)
                    .set_expression_attribute_names(update.expression_attribute_names)
                    .set_expression_attribute_values(update.expression_attribute_values)
                    .send()
                    .await;
                Ok(super::sdk_error::unless_condition_failed(result)?.is_some())
            }
        }
    }

    async fn release(&self, partner: &PartnerId, claim: &Claimed) -> Result<(), StoreError> {
        let result = self
            .claimed_update(partner, claim)?
            .update_expression("REMOVE #lease")
            .condition_expression("#lease = :lease")
            .send()
            .await;
        super::sdk_error::unless_condition_failed(result).map(|_| ())
    }
}

/// A time as serde writes `DateTime<Utc>` (what the stored destination's fields are read back
/// from).
fn to_rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}
