//! The stored shapes of the table's items, mapped to and from DynamoDB attributes with
//! serde_dynamo. Keys come from [`keys`](super::keys); the attribute names are these structs'
//! field names.

use std::collections::HashMap;
use std::sync::LazyLock;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::StoreError;
use super::keys::{IndexKeys, TableKey};
use crate::domain::chain::{Head, Link};
use crate::domain::names::fields_of;
use crate::domain::{
    Activity, ActivityId, ActivityQuery, CustomerId, DateRange, Details, ExportFormat, ExportId,
    ExportJob, ExportLocale, ExportSpec, ExportStatus, Filters, PageKey, PartnerId, ResumePoint,
    Status, time,
};

pub type Item = HashMap<String, AttributeValue>;

/// Name of the TTL attribute (epoch seconds) of every item.
pub const TTL: &str = "ttl";

/// Attributes only writes use: query results leave them out ([`listed`]).
const WRITE_ONLY: [&str; 2] = ["contentHash", TTL];

/// An activity as stored, without its keys.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredActivity {
    id: ActivityId,
    customer_id: CustomerId,
    customer_name: String,
    action: String,
    partner_user: String,
    #[serde(with = "time::millis")]
    occurred_at: DateTime<Utc>,
    #[serde(with = "time::millis")]
    recorded_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    resource_type: Option<String>,
    status: Status,
    /// Compact JSON kept in the item, or
    #[serde(default, skip_serializing_if = "Option::is_none")]
    details: Option<String>,
    /// the object key and size of details kept in the bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    details_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    details_size: Option<usize>,
    /// Absent from query results (see [`WRITE_ONLY`]): then empty.
    #[serde(default)]
    content_hash: String,
    /// Absent from query results: then 0.
    #[serde(default)]
    ttl: i64,
    /// Absent from activities recorded before writers were kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    recorded_by: Option<String>,
    /// The chain link; absent from activities recorded before the chain (until backfilled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sequence: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    previous_hash: Option<String>,
    /// Absent for sequence 1.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::millis::option"
    )]
    previous_recorded_at: Option<DateTime<Utc>>,
    /// Set by the sequencer after the write (never by the writer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    feed_position: Option<u64>,
}

/// The attributes a listed activity needs: everything but keys, fingerprint and TTL. Query
/// results carry about half the bytes (BENCHMARKS.md, request CPU).
pub fn listed() -> &'static [&'static str] {
    static LISTED: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
        fields_of::<StoredActivity>()
            .iter()
            .copied()
            .filter(|f| !WRITE_ONLY.contains(f))
            .collect()
    });
    &LISTED
}

/// What is written: keys, index keys, the tenant and the activity.
#[derive(Serialize)]
struct ActivityItem<'a> {
    #[serde(flatten)]
    key: TableKey,
    #[serde(flatten)]
    index: IndexKeys,
    #[serde(rename = "partnerId")]
    partner_id: &'a PartnerId,
    #[serde(flatten)]
    activity: StoredActivity,
}

fn corrupt(what: &str) -> impl Fn(serde_dynamo::Error) -> StoreError + '_ {
    move |e| StoreError::Corrupt(format!("{what}: {e}"))
}

pub fn activity_to_item(partner: &PartnerId, a: &Activity) -> Result<Item, StoreError> {
    let (details, details_key, details_size) = match &a.details {
        Details::None => (None, None, None),
        Details::Inline(json) => (Some(json.clone()), None, None),
        Details::External { key, size } => (None, Some(key.clone()), Some(*size)),
    };
    let page_key = PageKey::of(a);
    let item = ActivityItem {
        key: TableKey::activity(partner, &a.customer_id, &a.id),
        index: IndexKeys::activity(partner, &page_key),
        partner_id: partner,
        activity: StoredActivity {
            id: a.id.clone(),
            customer_id: a.customer_id.clone(),
            customer_name: a.customer_name.clone(),
            action: a.action.clone(),
            partner_user: a.partner_user.clone(),
            occurred_at: a.occurred_at,
            recorded_at: a.recorded_at,
            resource_type: a.resource_type.clone(),
            status: a.status,
            details,
            details_key,
            details_size,
            content_hash: a.content_hash.clone(),
            ttl: a.expires_at,
            recorded_by: a.recorded_by.clone(),
            sequence: a.chain.as_ref().map(|l| l.sequence),
            hash: a.chain.as_ref().map(|l| l.hash.clone()),
            previous_hash: a.chain.as_ref().map(|l| l.previous_hash.clone()),
            previous_recorded_at: a.chain.as_ref().and_then(|l| l.previous_recorded_at),
            feed_position: a.feed_position,
        },
    };
    serde_dynamo::to_item(item).map_err(|e| StoreError::Other(format!("activity item: {e}")))
}

/// Reads a stored activity, moving its strings out of the item rather than copying them.
pub fn activity_from_item(item: Item) -> Result<Activity, StoreError> {
    let s: StoredActivity = serde_dynamo::from_item(item).map_err(corrupt("stored activity"))?;
    let details = match (s.details, s.details_key, s.details_size) {
        (Some(json), _, _) => Details::Inline(json),
        (None, Some(key), Some(size)) => Details::External { key, size },
        (None, Some(_), None) => {
            return Err(StoreError::Corrupt(
                "stored activity has detailsKey without detailsSize".into(),
            ));
        }
        (None, None, _) => Details::None,
    };
    Ok(Activity {
        id: s.id,
        customer_id: s.customer_id,
        customer_name: s.customer_name,
        action: s.action,
        partner_user: s.partner_user,
        occurred_at: s.occurred_at,
        recorded_at: s.recorded_at,
        resource_type: s.resource_type,
        status: s.status,
        details,
        content_hash: s.content_hash,
        expires_at: s.ttl,
        recorded_by: s.recorded_by,
        chain: match (s.sequence, s.hash, s.previous_hash) {
            (Some(sequence), Some(hash), Some(previous_hash)) => Some(Link {
                sequence,
                hash,
                previous_hash,
                previous_recorded_at: s.previous_recorded_at,
            }),
            (None, None, None) => None,
            _ => {
                return Err(StoreError::Corrupt(
                    "stored activity has part of a chain link".into(),
                ));
            }
        },
        feed_position: s.feed_position,
    })
}

/// A chain head as stored, without its key.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredHead {
    sequence: u64,
    hash: String,
    /// When its activity was recorded.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::millis::option"
    )]
    recorded_at: Option<DateTime<Utc>>,
}

#[derive(Serialize)]
struct HeadItem<'a> {
    #[serde(flatten)]
    key: TableKey,
    #[serde(rename = "partnerId")]
    partner_id: &'a PartnerId,
    #[serde(rename = "customerId")]
    customer_id: &'a CustomerId,
    /// Its partition of the `byHeadMoved` index.
    #[serde(rename = "headShard")]
    head_shard: String,
    #[serde(flatten)]
    head: StoredHead,
}

pub fn head_to_item(
    partner: &PartnerId,
    customer: &CustomerId,
    head: &Head,
) -> Result<Item, StoreError> {
    let key = TableKey::chain_head(partner, customer);
    let item = HeadItem {
        head_shard: super::keys::head_shard(&key.pk),
        key,
        partner_id: partner,
        customer_id: customer,
        head: StoredHead {
            sequence: head.sequence,
            hash: head.hash.clone(),
            recorded_at: head.recorded_at,
        },
    };
    serde_dynamo::to_item(item).map_err(|e| StoreError::Other(format!("chain head item: {e}")))
}

pub fn head_from_item(item: Item) -> Result<Head, StoreError> {
    let s: StoredHead = serde_dynamo::from_item(item).map_err(corrupt("chain head"))?;
    Ok(Head {
        sequence: s.sequence,
        hash: s.hash,
        recorded_at: s.recorded_at,
    })
}

/// A head as the `byHeadMoved` index lists it.
pub fn moved_head_of(item: Item) -> Result<super::MovedHead, StoreError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Listed {
        partner_id: PartnerId,
        customer_id: CustomerId,
        sequence: u64,
        hash: String,
    }
    let l: Listed = serde_dynamo::from_item(item).map_err(corrupt("moved head"))?;
    Ok(super::MovedHead {
        partner: l.partner_id,
        customer: l.customer_id,
        sequence: l.sequence,
        hash: l.hash,
    })
}

/// The chain link of an item of the `bySequence` index (`None`: the head, which carries a
/// sequence too).
pub fn link_of(item: &Item) -> Result<Option<Link>, StoreError> {
    let text = |name: &str| match item.get(name) {
        Some(AttributeValue::S(s)) => Ok(s.clone()),
        _ => Err(StoreError::Corrupt(format!("a chain link without {name}"))),
    };
    if !text(super::keys::SK)?.starts_with(super::keys::ACTIVITY_SK_PREFIX) {
        return Ok(None);
    }
    let sequence = match item.get(super::keys::SEQUENCE) {
        Some(AttributeValue::N(n)) => n
            .parse::<u64>()
            .map_err(|_| StoreError::Corrupt(format!("sequence {n}")))?,
        _ => return Err(StoreError::Corrupt("a chain link without sequence".into())),
    };
    Ok(Some(Link {
        sequence,
        hash: text("hash")?,
        previous_hash: text("previousHash")?,
        // Not in the index: the anchor's check does not need it.
        previous_recorded_at: None,
    }))
}

/// An export job as stored, without its key.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredJob {
    partner_id: PartnerId,
    export_id: ExportId,
    status: ExportStatus,
    format: ExportFormat,
    time_zone: chrono_tz::Tz,
    /// Absent on jobs stored before exports had a language: English.
    #[serde(default)]
    locale: ExportLocale,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    customer_id: Option<CustomerId>,
    #[serde(with = "time::millis")]
    from: DateTime<Utc>,
    #[serde(with = "time::millis")]
    to: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    filter_action: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    filter_partner_user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    filter_resource_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    filter_status: Option<Status>,
    row_count: u64,
    bytes: u64,
    #[serde(with = "time::millis")]
    created_at: DateTime<Utc>,
    #[serde(
        default,
        with = "time::millis::option",
        skip_serializing_if = "Option::is_none"
    )]
    completed_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    attempt: u32,
    /// Absent from jobs written before failures were counted apart from runs: then 0.
    #[serde(default)]
    failures: u32,
    #[serde(default)]
    continuations: u32,
    /// Stored as `checkpoint`, its name when jobs were first saved.
    #[serde(
        default,
        rename = "checkpoint",
        skip_serializing_if = "Option::is_none"
    )]
    resume: Option<ResumePoint>,
    /// Absent from older jobs: then `createdAt`.
    #[serde(
        default,
        with = "time::millis::option",
        skip_serializing_if = "Option::is_none"
    )]
    pending_since: Option<DateTime<Utc>>,
    #[serde(
        default,
        with = "time::millis::option",
        skip_serializing_if = "Option::is_none"
    )]
    lease_until: Option<DateTime<Utc>>,
    ttl: i64,
    /// Absent from jobs stored before the asker was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    requested_by: Option<String>,
}

#[derive(Serialize)]
struct JobItem {
    #[serde(flatten)]
    key: TableKey,
    #[serde(flatten)]
    job: StoredJob,
}

pub fn job_to_item(job: &ExportJob) -> Result<Item, StoreError> {
    let q = &job.spec.query;
    let f = &q.filters;
    let item = JobItem {
        key: TableKey::export_job(&job.partner, &job.id),
        job: StoredJob {
            partner_id: job.partner.clone(),
            export_id: job.id.clone(),
            status: job.status,
            format: job.spec.format,
            time_zone: job.spec.time_zone,
            locale: job.spec.locale,
            customer_id: q.customer.clone(),
            from: q.range.from,
            to: q.range.to,
            filter_action: f.action.clone(),
            filter_partner_user: f.partner_user.clone(),
            filter_resource_type: f.resource_type.clone(),
            filter_status: f.status,
            row_count: job.row_count,
            bytes: job.bytes,
            created_at: job.created_at,
            completed_at: job.completed_at,
            error: job.error.clone(),
            attempt: job.attempt,
            failures: job.failures,
            continuations: job.continuations,
            resume: job.resume.clone(),
            pending_since: Some(job.pending_since),
            lease_until: job.lease_until,
            ttl: job.expires_at,
            requested_by: job.requested_by.clone(),
        },
    };
    serde_dynamo::to_item(item).map_err(|e| StoreError::Other(format!("export job item: {e}")))
}

pub fn job_from_item(item: Item) -> Result<ExportJob, StoreError> {
    let s: StoredJob = serde_dynamo::from_item(item).map_err(corrupt("export job"))?;
    Ok(ExportJob {
        id: s.export_id,
        partner: s.partner_id,
        spec: ExportSpec {
            query: ActivityQuery {
                customer: s.customer_id,
                range: DateRange {
                    from: s.from,
                    to: s.to,
                },
                filters: Filters {
                    action: s.filter_action,
                    partner_user: s.filter_partner_user,
                    resource_type: s.filter_resource_type,
                    status: s.filter_status,
                },
            },
            format: s.format,
            time_zone: s.time_zone,
            locale: s.locale,
        },
        status: s.status,
        row_count: s.row_count,
        bytes: s.bytes,
        created_at: s.created_at,
        completed_at: s.completed_at,
        error: s.error,
        attempt: s.attempt,
        failures: s.failures,
        continuations: s.continuations,
        resume: s.resume,
        pending_since: s.pending_since.unwrap_or(s.created_at),
        lease_until: s.lease_until,
        expires_at: s.ttl,
        requested_by: s.requested_by,
    })
}

/// Key attributes ([`TableKey`], [`IndexKeys`]) as an item.
pub fn key_item<K: Serialize>(key: K) -> Result<Item, StoreError> {
    serde_dynamo::to_item(key).map_err(|e| StoreError::Other(format!("key: {e}")))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use chrono::TimeDelta;

    use super::*;
    use crate::testing::fixtures::synthetic_activity;

    fn names(item: &Item) -> BTreeSet<&str> {
        item.keys().map(String::as_str).collect()
    }

    fn partner() -> PartnerId {
        PartnerId::parse("p1").unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn an_activity_item_holds_the_key_design_and_reads_back_whole() {
        let mut a = synthetic_activity(7, "客戶 #1", Utc::now());
        a.occurred_at = time::truncate_millis(a.occurred_at);
        a.recorded_at = a.occurred_at;
        a.chain = Some(Link {
            sequence: 3,
            hash: "ab".repeat(32),
            previous_hash: "cd".repeat(32),
            previous_recorded_at: Some(a.recorded_at),
        });
        let item = activity_to_item(&partner(), &a).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            names(&item),
            BTreeSet::from([
                "pk",
                "sk",
                "tsk",
                "gpk",
                "gsk",
                "partnerId",
                "id",
                "customerId",
                "customerName",
                "action",
                "partnerUser",
                "occurredAt",
                "recordedAt",
                "resourceType",
                "status",
                "details",
                "contentHash",
                "ttl",
                "recordedBy",
                "sequence",
                "hash",
                "previousHash",
                "previousRecordedAt"
            ])
        );
        assert_eq!(item["pk"], AttributeValue::S("P#p1#C#客戶 #1".into()));
        assert_eq!(item["sk"], AttributeValue::S("A#act-000000007".into()));
        assert_eq!(item["ttl"], AttributeValue::N(a.expires_at.to_string()));
        assert_eq!(item["sequence"], AttributeValue::N("3".into()));
        assert_eq!(item["status"], AttributeValue::S("succeeded".into()));
        assert_eq!(activity_from_item(item).ok(), Some(a.clone()));

        // Details kept in the bucket, no resource type.
        let external = Activity {
            details: Details::External {
                key: "details/p1/x.json".into(),
                size: 400_000,
            },
            resource_type: None,
            ..a
        };
        let item = activity_to_item(&partner(), &external).unwrap_or_else(|e| panic!("{e}"));
        assert!(!item.contains_key("details") && !item.contains_key("resourceType"));
        assert_eq!(item["detailsSize"], AttributeValue::N("400000".into()));
        assert_eq!(activity_from_item(item).ok(), Some(external));
    }

    #[test]
    fn a_listed_item_lacks_only_keys_fingerprint_and_ttl() {
        let a = synthetic_activity(1, "c1", time::truncate_millis(Utc::now()));
        let mut item = activity_to_item(&partner(), &a).unwrap_or_else(|e| panic!("{e}"));
        item.retain(|name, _| listed().contains(&name.as_str()));
        assert!(listed().contains(&"detailsKey") && !listed().contains(&"pk"));
        let read = activity_from_item(item).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((read.content_hash.as_str(), read.expires_at), ("", 0));
        assert_eq!(read.id, a.id);
    }

    #[test]
    fn unreadable_items_are_corrupt_not_panics() {
        let a = synthetic_activity(1, "c1", Utc::now());
        let mut item = activity_to_item(&partner(), &a).unwrap_or_else(|e| panic!("{e}"));
        item.insert("status".into(), AttributeValue::S("lost".into()));
        assert!(matches!(
            activity_from_item(item),
            Err(StoreError::Corrupt(_))
        ));
        let mut item = activity_to_item(&partner(), &a).unwrap_or_else(|e| panic!("{e}"));
        item.insert("id".into(), AttributeValue::S("has space".into()));
        assert!(matches!(
            activity_from_item(item),
            Err(StoreError::Corrupt(_))
        ));
    }

    #[test]
    fn an_export_job_item_reads_back_whole() {
        let now = time::truncate_millis(Utc::now());
        let spec = ExportSpec {
            query: ActivityQuery {
                customer: Some(CustomerId::parse("台北").unwrap_or_else(|e| panic!("{e}"))),
                range: DateRange {
                    from: now - TimeDelta::days(30),
                    to: now,
                },
                filters: Filters {
                    action: Some("placed an order".into()),
                    partner_user: None,
                    resource_type: Some("order".into()),
                    status: Some(Status::Failed),
                },
            },
            format: ExportFormat::JsonLines,
            time_zone: chrono_tz::Asia::Taipei,
            locale: ExportLocale::TraditionalChinese,
        };
        let job = ExportJob {
            status: ExportStatus::Running,
            attempt: 2,
            failures: 1,
            continuations: 3,
            resume: Some(ResumePoint {
                upload_id: "upload-1".into(),
                etags: vec!["\"e1\"".into(), "\"e2\"".into()],
                uploaded_bytes: 10 << 20,
                rows: 30_000,
                after: Some(PageKey {
                    occurred_at: time::truncate_millis(now),
                    customer_id: CustomerId::parse("台北#1").unwrap_or_else(|e| panic!("{e}")),
                    id: ActivityId::parse("a-9").unwrap_or_else(|e| panic!("{e}")),
                }),
                tail_key: Some("exports/p1/X.csv.tail-2".into()),
                tail_sha256: Some("ab".repeat(32)),
                manifest_state: Some("exports/p1/X.csv.manifest-state-2".into()),
                manifest_state_sha256: Some("cd".repeat(32)),
                files: vec![crate::domain::integrity::DataFile {
                    path: "region=us-east-1/accountId=p1/eventDay=20261126/X-00001.parquet".into(),
                    sha256: "ef".repeat(32),
                    bytes: 1234,
                    rows: 56,
                }],
                signature: Some("MEUCIQ==".into()),
            }),
            lease_until: Some(now),
            row_count: 40_000,
            requested_by: Some("ann@partner.example".into()),
            ..ExportJob::pending(partner(), spec, now, TimeDelta::days(7))
        };
        let item = job_to_item(&job).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(item["pk"], AttributeValue::S(format!("P#p1#X#{}", job.id)));
        assert_eq!(item["sk"], AttributeValue::S("EXPORT".into()));
        assert_eq!(item["timeZone"], AttributeValue::S("Asia/Taipei".into()));
        assert_eq!(item["format"], AttributeValue::S("jsonl".into()));
        assert_eq!(item["filterStatus"], AttributeValue::S("failed".into()));
        assert_eq!(
            item["requestedBy"],
            AttributeValue::S("ann@partner.example".into())
        );
        assert!(!item.contains_key("filterPartnerUser") && !item.contains_key("completedAt"));
        let mut older = item.clone();
        assert_eq!(job_from_item(item).ok(), Some(job.clone()));
        // Stored before the asker was recorded.
        older.remove("requestedBy");
        let read = job_from_item(older).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(read.requested_by, None);
        assert_eq!(
            read,
            ExportJob {
                requested_by: None,
                ..job
            }
        );
    }
}
