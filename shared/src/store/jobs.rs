//! Export job records in the activity table (key design in [`keys`](super::keys)).

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use chrono::{DateTime, Utc};

use super::dynamodb::DynamoStore;
use super::items;
use super::keys::{PK, TableKey};
use super::sdk_error::classify;
use super::{ExportJobs, StoreError};
use crate::domain::{ExportId, ExportJob, ExportStatus, PartnerId, time};

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
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
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(items::key_item(TableKey::export_job(partner, id))?))
            .update_expression(
                "SET #st = :running, leaseUntil = :lease, attempt = attempt + :one, rowCount = :zero, #bytes = :zero",
            )
            .condition_expression(
                "attribute_exists(#pk) AND (#st = :pending OR (#st = :running AND leaseUntil < :now))",
            )
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#st", "status")
            .expression_attribute_names("#bytes", "bytes")
            .expression_attribute_values(":running", s(ExportStatus::Running.as_str()))
            .expression_attribute_values(":pending", s(ExportStatus::Pending.as_str()))
            .expression_attribute_values(":lease", s(time::format(lease_until)))
            .expression_attribute_values(":now", s(time::format(now)))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":zero", n(0))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(mut out) => out.attributes.take().map(items::job_from_item).transpose(),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Ok(None)
            }
            Err(e) => Err(classify(e)),
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
        match result {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Err(StoreError::TakenOver)
            }
            Err(e) => Err(classify(e)),
        }
    }
}
