//! Export job records in the activity table (`pk = P#<partner>#X#<exportId>`, `sk = EXPORT`);
//! they carry no index keys, so they never appear in activity queries.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use chrono::{DateTime, Utc};

use super::dynamodb::{DynamoStore, TTL, classify};
use super::{ExportJobs, StoreError};
use crate::domain::{
    ActivityQuery, CustomerId, DateRange, ExportFormat, ExportId, ExportJob, ExportSpec,
    ExportStatus, Filters, PartnerId, Status, time,
};

const SK_VALUE: &str = "EXPORT";

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn key(partner: &PartnerId, id: &ExportId) -> HashMap<String, AttributeValue> {
    HashMap::from([
        ("pk".to_owned(), s(format!("P#{partner}#X#{id}"))),
        ("sk".to_owned(), s(SK_VALUE)),
    ])
}

pub fn job_to_item(job: &ExportJob) -> HashMap<String, AttributeValue> {
    let mut item = key(&job.partner, &job.id);
    let q = &job.spec.query;
    item.insert("partnerId".into(), s(job.partner.as_str()));
    item.insert("exportId".into(), s(job.id.as_str()));
    item.insert("status".into(), s(job.status.as_str()));
    item.insert("format".into(), s(job.spec.format.as_str()));
    item.insert("timeZone".into(), s(job.spec.time_zone.name()));
    if let Some(c) = &q.customer {
        item.insert("customerId".into(), s(c.as_str()));
    }
    item.insert("from".into(), s(time::format(q.range.from)));
    item.insert("to".into(), s(time::format(q.range.to)));
    let f = &q.filters;
    for (name, value) in [
        ("filterAction", f.action.as_deref()),
        ("filterPartnerUser", f.partner_user.as_deref()),
        ("filterResourceType", f.resource_type.as_deref()),
        ("filterStatus", f.status.map(Status::as_str)),
    ] {
        if let Some(v) = value {
            item.insert(name.into(), s(v));
        }
    }
    item.insert("rowCount".into(), n(job.row_count));
    item.insert("bytes".into(), n(job.bytes));
    item.insert("createdAt".into(), s(time::format(job.created_at)));
    if let Some(t) = job.completed_at {
        item.insert("completedAt".into(), s(time::format(t)));
    }
    if let Some(e) = &job.error {
        item.insert("error".into(), s(e));
    }
    item.insert("attempt".into(), n(job.attempt));
    if let Some(t) = job.lease_until {
        item.insert("leaseUntil".into(), s(time::format(t)));
    }
    item.insert(TTL.into(), n(job.expires_at));
    item
}

pub fn job_from_item(item: &HashMap<String, AttributeValue>) -> Result<ExportJob, StoreError> {
    let bad = |what: &str| StoreError::Other(format!("export job has a bad {what}"));
    let text = |name: &str| {
        item.get(name)
            .and_then(|v| v.as_s().ok())
            .map(String::as_str)
    };
    let req = |name: &str| text(name).ok_or_else(|| bad(name));
    let num = |name: &str| -> Result<u64, StoreError> {
        item.get(name)
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| bad(name))
    };
    let stamp = |name: &str| -> Result<Option<DateTime<Utc>>, StoreError> {
        text(name)
            .map(|t| time::parse_timestamp(t).map_err(|_| bad(name)))
            .transpose()
    };
    Ok(ExportJob {
        id: ExportId::parse(req("exportId")?).map_err(|_| bad("exportId"))?,
        partner: PartnerId::parse(req("partnerId")?).map_err(|_| bad("partnerId"))?,
        spec: ExportSpec {
            query: ActivityQuery {
                customer: text("customerId")
                    .map(|c| CustomerId::parse(c).map_err(|_| bad("customerId")))
                    .transpose()?,
                range: DateRange {
                    from: stamp("from")?.ok_or_else(|| bad("from"))?,
                    to: stamp("to")?.ok_or_else(|| bad("to"))?,
                },
                filters: Filters {
                    action: text("filterAction").map(str::to_owned),
                    partner_user: text("filterPartnerUser").map(str::to_owned),
                    resource_type: text("filterResourceType").map(str::to_owned),
                    status: text("filterStatus")
                        .map(|v| Status::parse(v).ok_or_else(|| bad("filterStatus")))
                        .transpose()?,
                },
            },
            format: ExportFormat::parse(req("format")?).ok_or_else(|| bad("format"))?,
            time_zone: req("timeZone")?.parse().map_err(|_| bad("timeZone"))?,
        },
        status: ExportStatus::parse(req("status")?).ok_or_else(|| bad("status"))?,
        row_count: num("rowCount")?,
        bytes: num("bytes")?,
        created_at: stamp("createdAt")?.ok_or_else(|| bad("createdAt"))?,
        completed_at: stamp("completedAt")?,
        error: text("error").map(str::to_owned),
        attempt: u32::try_from(num("attempt")?).map_err(|_| bad("attempt"))?,
        lease_until: stamp("leaseUntil")?,
        expires_at: i64::try_from(num(TTL)?).map_err(|_| bad(TTL))?,
    })
}

impl ExportJobs for DynamoStore {
    async fn create_job(&self, job: &ExportJob) -> Result<(), StoreError> {
        self.client()
            .put_item()
            .table_name(self.table())
            .set_item(Some(job_to_item(job)))
            .condition_expression("attribute_not_exists(pk)")
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
            .client()
            .get_item()
            .table_name(self.table())
            .set_key(Some(key(partner, id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(classify)?;
        out.item().map(job_from_item).transpose()
    }

    async fn claim_job(
        &self,
        partner: &PartnerId,
        id: &ExportId,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Option<ExportJob>, StoreError> {
        let result = self
            .client()
            .update_item()
            .table_name(self.table())
            .set_key(Some(key(partner, id)))
            .update_expression(
                "SET #st = :running, leaseUntil = :lease, attempt = attempt + :one, rowCount = :zero, #bytes = :zero",
            )
            .condition_expression(
                "attribute_exists(pk) AND (#st = :pending OR (#st = :running AND leaseUntil < :now))",
            )
            .expression_attribute_names("#st", "status")
            .expression_attribute_names("#bytes", "bytes")
            .expression_attribute_values(":running", s("running"))
            .expression_attribute_values(":pending", s("pending"))
            .expression_attribute_values(":lease", s(time::format(lease_until)))
            .expression_attribute_values(":now", s(time::format(now)))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":zero", n(0))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(out) => out.attributes().map(job_from_item).transpose(),
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
            .client()
            .put_item()
            .table_name(self.table())
            .set_item(Some(job_to_item(job)))
            .condition_expression("attempt = :attempt AND #st = :running")
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":attempt", n(job.attempt))
            .expression_attribute_values(":running", s("running"))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Err(StoreError::Other(format!(
                    "export {} was taken over by a later run",
                    job.id
                )))
            }
            Err(e) => Err(classify(e)),
        }
    }
}
