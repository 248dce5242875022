//! Export job records in the activity table (key design in [`keys`](super::keys)).

use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::{AttributeValue, Put, ReturnValue, TransactWriteItem, Update};
use chrono::{DateTime, Utc};

use super::dynamodb::{Cancelled, DynamoStore, backoff, cancelled};
use super::items;
use super::keys::{self, ACTIVE_EXPORTS, PK, TableKey};
use super::sdk_error::{cancellation_reasons, classify, unless_condition_failed};
use super::{Admission, ExportJobs, RequestCounter, StoreError};
use crate::domain::{ExportId, ExportJob, ExportStatus, PartnerId, time};

/// Rounds of an admission: a conflict with another request, or slots given back on the way,
/// make it try again.
const ADMIT_ROUNDS: u32 = 4;

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn built<T>(r: Result<T, aws_sdk_dynamodb::error::BuildError>) -> Result<T, StoreError> {
    r.map_err(|e| StoreError::Other(e.to_string()))
}

impl DynamoStore {
    /// Gives back the slot `slot` of `partner` if it still holds `id`.
    async fn free_slot(
        &self,
        partner: &PartnerId,
        slot: &str,
        id: &ExportId,
    ) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(items::key_item(TableKey::export_slots(partner))?))
            .update_expression("REMOVE #slot ADD #active :minus")
            .condition_expression("#slot = :id")
            .expression_attribute_names("#slot", slot)
            .expression_attribute_names("#active", ACTIVE_EXPORTS)
            .expression_attribute_values(":id", s(id.as_str()))
            .expression_attribute_values(":minus", n(-1))
            .send()
            .await;
        // `None`: given back already.
        unless_condition_failed(result).map(|_| ())
    }

    /// After a refused admission: the job of the same request if it is still going, else gives
    /// back the slots whose jobs ended or expired. Returns the duplicate, and whether any slot
    /// was given back.
    async fn inspect_slots(
        &self,
        job: &ExportJob,
        own_slot: &str,
    ) -> Result<(Option<ExportJob>, bool), StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(items::key_item(TableKey::export_slots(&job.partner))?))
            .consistent_read(true)
            .send()
            .await
            .map_err(classify)?;
        let held: Vec<(String, String)> = out
            .item
            .unwrap_or_default()
            .into_iter()
            .filter(|(name, _)| name.starts_with("r_"))
            .filter_map(|(name, v)| v.as_s().ok().map(|id| (name, id.clone())))
            .collect();
        let mut freed = false;
        for (slot, id) in held {
            let Ok(id) = ExportId::parse(&id) else {
                continue;
            };
            match self.get_job(&job.partner, &id).await? {
                Some(other) if other.is_active() => {
                    if slot == own_slot {
                        return Ok((Some(other), freed));
                    }
                }
                _ => {
                    self.free_slot(&job.partner, &slot, &id).await?;
                    freed = true;
                }
            }
        }
        Ok((None, freed))
    }

    fn conditional_update(&self) -> UpdateItemFluentBuilder {
        self.client.update_item().table_name(&self.table)
    }
}

impl ExportJobs for DynamoStore {
    async fn create_job(&self, job: &ExportJob) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(items::job_to_item(job)?))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }

    async fn admit_job(&self, job: &ExportJob, max_active: u32) -> Result<Admission, StoreError> {
        let slot = keys::export_slot(&job.spec.request_key());
        let put = built(
            Put::builder()
                .table_name(&self.table)
                .set_item(Some(items::job_to_item(job)?))
                .condition_expression("attribute_not_exists(#pk)")
                .expression_attribute_names("#pk", PK)
                .build(),
        )?;
        let take_slot = built(
            Update::builder()
                .table_name(&self.table)
                .set_key(Some(items::key_item(TableKey::export_slots(&job.partner))?))
                .update_expression("SET #slot = :id ADD #active :one")
                .condition_expression(
                    "attribute_not_exists(#slot) AND (attribute_not_exists(#active) OR #active < :max)",
                )
                .expression_attribute_names("#slot", &slot)
                .expression_attribute_names("#active", ACTIVE_EXPORTS)
                .expression_attribute_values(":id", s(job.id.as_str()))
                .expression_attribute_values(":one", n(1))
                .expression_attribute_values(":max", n(max_active))
                .build(),
        )?;
        for round in 0..ADMIT_ROUNDS {
            let result = self
                .client
                .transact_write_items()
                .transact_items(TransactWriteItem::builder().put(put.clone()).build())
                .transact_items(
                    TransactWriteItem::builder()
                        .update(take_slot.clone())
                        .build(),
                )
                .send()
                .await;
            let err = match result {
                Ok(_) => return Ok(Admission::Created),
                Err(e) => e,
            };
            let reasons = cancellation_reasons(err)?;
            match cancelled(&reasons) {
                Cancelled::Exists => {
                    let (duplicate, freed) = self.inspect_slots(job, &slot).await?;
                    if let Some(other) = duplicate {
                        return Ok(Admission::Duplicate(Box::new(other)));
                    }
                    if !freed {
                        return Ok(Admission::Full);
                    }
                }
                Cancelled::Retry => backoff(round).await,
                Cancelled::Fatal => {
                    return Err(StoreError::Other(format!(
                        "export admission cancelled: {reasons:?}"
                    )));
                }
            }
        }
        Err(StoreError::Unavailable(
            "export slots kept changing; try again".into(),
        ))
    }

    async fn release_slot(&self, job: &ExportJob) -> Result<(), StoreError> {
        let slot = keys::export_slot(&job.spec.request_key());
        self.free_slot(&job.partner, &slot, &job.id).await
    }

    async fn get_job(
        &self,
        partner: &PartnerId,
        id: &ExportId,
    ) -> Result<Option<ExportJob>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(items::key_item(TableKey::export_job(partner, id))?))
            .consistent_read(true)
            .send()
            .await
            .map_err(classify)?;
        out.item.map(items::job_from_item).transpose()
    }

    async fn claim_job(
        &self,
        partner: &PartnerId,
        id: &ExportId,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Option<ExportJob>, StoreError> {
        let key = items::key_item(TableKey::export_job(partner, id))?;
        let claim = |update: &str, condition: &str| {
            self.conditional_update()
                .set_key(Some(key.clone()))
                .update_expression(update)
                .condition_expression(condition)
                .expression_attribute_names("#pk", PK)
                .expression_attribute_names("#st", "status")
                .expression_attribute_values(":running", s(ExportStatus::Running.as_str()))
                .expression_attribute_values(":lease", s(time::format(lease_until)))
                .expression_attribute_values(":one", n(1))
                .return_values(ReturnValue::AllNew)
        };
        const TAKE: &str = "SET #st = :running, leaseUntil = :lease, attempt = attempt + :one";
        // A job waiting for a worker: the usual case, a new export or a hand-over.
        let waiting = claim(TAKE, "attribute_exists(#pk) AND #st = :pending")
            .expression_attribute_values(":pending", s(ExportStatus::Pending.as_str()))
            .send()
            .await;
        if let Some(mut out) = unless_condition_failed(waiting)? {
            return out.attributes.take().map(items::job_from_item).transpose();
        }
        // A run that died without a word: its lease ran out. That counts as a failure.
        let abandoned = claim(
            &format!("{TAKE}, failures = if_not_exists(failures, :zero) + :one"),
            "attribute_exists(#pk) AND #st = :running AND leaseUntil < :now",
        )
        .expression_attribute_values(":now", s(time::format(now)))
        .expression_attribute_values(":zero", n(0))
        .send()
        .await;
        match unless_condition_failed(abandoned)? {
            Some(mut out) => out.attributes.take().map(items::job_from_item).transpose(),
            None => Ok(None),
        }
    }

    async fn update_job(&self, job: &ExportJob) -> Result<(), StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(items::job_to_item(job)?))
            .condition_expression("attempt = :attempt AND #st = :running")
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":attempt", n(job.attempt))
            .expression_attribute_values(":running", s(ExportStatus::Running.as_str()))
            .send()
            .await;
        match unless_condition_failed(result)? {
            Some(_) => Ok(()),
            None => Err(StoreError::TakenOver),
        }
    }
}

impl RequestCounter for DynamoStore {
    async fn count(
        &self,
        partner: &PartnerId,
        window_start: i64,
        limit: u32,
        expires_at: i64,
    ) -> Result<bool, StoreError> {
        let result = self
            .conditional_update()
            .set_key(Some(items::key_item(TableKey::rate_window(
                partner,
                window_start,
            ))?))
            .update_expression("ADD #n :one SET #ttl = :ttl")
            .condition_expression("attribute_not_exists(#n) OR #n < :limit")
            .expression_attribute_names("#n", "requests")
            .expression_attribute_names("#ttl", items::TTL)
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":limit", n(limit))
            .expression_attribute_values(":ttl", n(expires_at))
            .send()
            .await;
        Ok(unless_condition_failed(result)?.is_some())
    }
}
