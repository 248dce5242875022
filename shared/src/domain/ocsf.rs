//! Activities as OCSF events: class API Activity (6003) of the Open Cybersecurity Schema
//! Framework 1.5.0, the form Amazon Security Lake takes custom sources in and SIEMs import
//! (README, "Analytics"). [`ApiActivity::of`] is the mapping, one field to a line, the same table
//! as README's; the Parquet export writes it (`crate::export::parquet`).
//!
//! Beside the OCSF fields an event carries its place in its customer's chain (`sequence`,
//! `hash`, `previous_hash`, `previous_recorded_at`) and in its partner's feed (`feed_position`),
//! so that a row found in Athena can be checked against a checkpoint, and `recorded_by`; these
//! are not OCSF attributes ([`EXTENSION_COLUMNS`]).

use std::borrow::Cow;

use chrono::{DateTime, Utc};

use super::activity::{Activity, Status};

/// The OCSF version the events follow (`metadata.version`).
pub const OCSF_VERSION: &str = "1.5.0";
/// Application Activity.
pub const CATEGORY_UID: i32 = 6;
pub const CATEGORY_NAME: &str = "Application Activity";
/// API Activity.
pub const CLASS_UID: i32 = 6003;
pub const CLASS_NAME: &str = "API Activity";
/// `metadata.product`.
pub const PRODUCT_NAME: &str = "activity-log";
pub const VENDOR_NAME: &str = "activity-log";
pub const PRODUCT_VERSION: &str = env!("CARGO_PKG_VERSION");
/// The columns beside OCSF's own: the chain, the feed and the writer.
pub const EXTENSION_COLUMNS: [&str; 6] = [
    "sequence",
    "hash",
    "previous_hash",
    "previous_recorded_at",
    "feed_position",
    "recorded_by",
];

/// OCSF's `activity_id` of API Activity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActivityKind {
    Create = 1,
    Read = 2,
    Update = 3,
    Delete = 4,
    Other = 99,
}

impl ActivityKind {
    pub fn id(self) -> i32 {
        self as i32
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Create => "Create",
            Self::Read => "Read",
            Self::Update => "Update",
            Self::Delete => "Delete",
            Self::Other => "Other",
        }
    }

    /// The kind of an action, from its first word (`created a referral`, `Update subscription`):
    /// [`VERBS`], else `Other`.
    pub fn of_action(action: &str) -> Self {
        let verb = action
            .split(|c: char| !c.is_alphanumeric())
            .find(|w| !w.is_empty())
            .unwrap_or_default()
            .to_lowercase();
        VERBS
            .iter()
            .find(|(words, _)| words.contains(&verb.as_str()))
            .map_or(Self::Other, |(_, kind)| *kind)
    }
}

/// The first words of actions (the portal's past tense, and the imperative of API operation
/// names) and the kind each makes.
pub const VERBS: [(&[&str], ActivityKind); 4] = [
    (
        &[
            "create",
            "created",
            "add",
            "added",
            "place",
            "placed",
            "register",
            "registered",
            "request",
            "requested",
            "invite",
            "invited",
            "provision",
            "provisioned",
            "new",
            "submit",
            "submitted",
            "purchase",
            "purchased",
        ],
        ActivityKind::Create,
    ),
    (
        &[
            "read",
            "view",
            "viewed",
            "get",
            "list",
            "listed",
            "download",
            "downloaded",
            "export",
            "exported",
            "search",
            "searched",
        ],
        ActivityKind::Read,
    ),
    (
        &[
            "update",
            "updated",
            "change",
            "changed",
            "modify",
            "modified",
            "edit",
            "edited",
            "reset",
            "assign",
            "assigned",
            "set",
            "rename",
            "renamed",
            "enable",
            "enabled",
            "disable",
            "disabled",
            "move",
            "moved",
            "transfer",
            "transferred",
            "upgrade",
            "upgraded",
            "renew",
            "renewed",
            "suspend",
            "suspended",
            "reactivate",
            "reactivated",
            "approve",
            "approved",
            "pause",
            "paused",
            "resume",
            "resumed",
        ],
        ActivityKind::Update,
    ),
    (
        &[
            "delete",
            "deleted",
            "remove",
            "removed",
            "cancel",
            "canceled",
            "cancelled",
            "revoke",
            "revoked",
            "unassign",
            "unassigned",
            "terminate",
            "terminated",
            "deprovision",
            "deprovisioned",
        ],
        ActivityKind::Delete,
    ),
];

/// OCSF's `status_id` and `status` of an activity's status; `InProgress` is Other, named.
pub fn status(s: Status) -> (i32, &'static str) {
    match s {
        Status::Succeeded => (1, "Success"),
        Status::Failed => (2, "Failure"),
        Status::InProgress => (99, "In progress"),
    }
}

/// The activity's status from OCSF's `status_id` (what [`status`] gives).
pub fn status_of_id(id: i32) -> Option<Status> {
    match id {
        1 => Some(Status::Succeeded),
        2 => Some(Status::Failed),
        99 => Some(Status::InProgress),
        _ => None,
    }
}

/// `severity_id` 1: an activity record is informational, whatever its status.
pub const SEVERITY: (i32, &str) = (1, "Informational");

/// One activity as an API Activity event, borrowing from the activity. `None`: the attribute is
/// absent (null in Parquet).
#[derive(Debug, Clone, PartialEq)]
pub struct ApiActivity<'a> {
    pub time: DateTime<Utc>,
    pub activity: ActivityKind,
    pub severity: (i32, &'static str),
    pub status: (i32, &'static str),
    /// `actor.user.name`.
    pub user_name: &'a str,
    /// `api.operation`.
    pub operation: &'a str,
    /// `api.service.name`.
    pub service_name: &'static str,
    /// `resources[0]`: the customer's account, its resource type.
    pub resource_uid: &'a str,
    pub resource_name: &'a str,
    pub resource_type: Option<&'a str>,
    /// `src_endpoint`: the service's API it was recorded through, and the writer.
    pub src_svc_name: &'static str,
    pub src_uid: Option<&'a str>,
    /// `cloud`.
    pub cloud_provider: &'static str,
    pub cloud_region: &'a str,
    /// `metadata.uid`, `metadata.tenant_uid` (the partner), `metadata.logged_time`,
    /// `metadata.sequence`.
    pub uid: &'a str,
    pub tenant_uid: &'a str,
    pub logged_time: DateTime<Utc>,
    pub metadata_sequence: Option<u64>,
    /// `unmapped`: the details, JSON text.
    pub unmapped: Option<Cow<'a, str>>,
    // The extension columns.
    pub sequence: Option<u64>,
    pub hash: Option<&'a str>,
    pub previous_hash: Option<&'a str>,
    pub previous_recorded_at: Option<DateTime<Utc>>,
    pub feed_position: Option<u64>,
    pub recorded_by: Option<&'a str>,
}

impl<'a> ApiActivity<'a> {
    /// The mapping (README, "Analytics", the same table): `details` is the activity's details
    /// document (fetched from the bucket when kept there), `partner` whose log it is, `region`
    /// the service's.
    pub fn of(
        a: &'a Activity,
        details: Option<&'a str>,
        partner: &'a str,
        region: &'a str,
    ) -> Self {
        let link = a.chain.as_ref();
        Self {
            time: a.occurred_at,
            activity: ActivityKind::of_action(&a.action),
            severity: SEVERITY,
            status: status(a.status),
            user_name: &a.partner_user,
            operation: &a.action,
            service_name: PRODUCT_NAME,
            resource_uid: a.customer_id.as_str(),
            resource_name: &a.customer_name,
            resource_type: a.resource_type.as_deref(),
            src_svc_name: PRODUCT_NAME,
            src_uid: a.recorded_by.as_deref(),
            cloud_provider: "AWS",
            cloud_region: region,
            uid: a.id.as_str(),
            tenant_uid: partner,
            logged_time: a.recorded_at,
            metadata_sequence: link.map(|l| l.sequence),
            unmapped: details.map(Cow::Borrowed),
            sequence: link.map(|l| l.sequence),
            hash: link.map(|l| l.hash.as_str()),
            previous_hash: link.map(|l| l.previous_hash.as_str()),
            previous_recorded_at: link.and_then(|l| l.previous_recorded_at),
            feed_position: a.feed_position,
            recorded_by: a.recorded_by.as_deref(),
        }
    }

    /// The same mapping of an activity as the API and the feed write it (`row`: an event's
    /// `activity`), at `feed_position` in its partner's feed.
    pub fn of_row(
        row: &'a serde_json::Value,
        feed_position: Option<u64>,
        partner: &'a str,
        region: &'a str,
    ) -> Result<Self, String> {
        use serde_json::Value;
        let text = |k: &str| row.get(k).and_then(Value::as_str);
        let required = |k: &str| text(k).ok_or_else(|| format!("{k} is missing"));
        let time = |k: &str| -> Result<Option<DateTime<Utc>>, String> {
            text(k)
                .map(|t| super::time::parse_timestamp(t).map_err(|e| format!("{k}: {e}")))
                .transpose()
        };
        let at = |k: &str| time(k)?.ok_or_else(|| format!("{k} is missing"));
        let state =
            Status::parse(required("status")?).ok_or("status is not one the service writes")?;
        let sequence = row.get("sequence").and_then(Value::as_u64);
        let action = required("action")?;
        Ok(Self {
            time: at("occurredAt")?,
            activity: ActivityKind::of_action(action),
            severity: SEVERITY,
            status: status(state),
            user_name: required("partnerUser")?,
            operation: action,
            service_name: PRODUCT_NAME,
            resource_uid: required("customerId")?,
            resource_name: required("customerName")?,
            resource_type: text("resourceType"),
            src_svc_name: PRODUCT_NAME,
            src_uid: text("recordedBy"),
            cloud_provider: "AWS",
            cloud_region: region,
            uid: required("id")?,
            tenant_uid: partner,
            logged_time: at("recordedAt")?,
            metadata_sequence: sequence,
            unmapped: row
                .get("details")
                .filter(|d| !d.is_null())
                .map(|d| Cow::Owned(d.to_string())),
            sequence,
            hash: text("hash"),
            previous_hash: text("previousHash"),
            previous_recorded_at: time("previousRecordedAt")?,
            feed_position,
            recorded_by: text("recordedBy"),
        })
    }

    /// `class_uid * 100 + activity_id`.
    pub fn type_uid(&self) -> i64 {
        i64::from(CLASS_UID) * 100 + i64::from(self.activity.id())
    }

    /// `API Activity: Create`.
    pub fn type_name(&self) -> String {
        format!("{CLASS_NAME}: {}", self.activity.name())
    }
}

/// The activity an event holds, as the API and the JSON Lines export write it (`id`,
/// `customerId`, …, `details`, and its chain link): [`ApiActivity::of`] read backwards, so that
/// a Parquet export is checked as a JSON Lines one is (`activity-log-verify`). `event` is OCSF
/// JSON (`crate::export::parquet::events`).
pub fn api_row(event: &serde_json::Value) -> Result<serde_json::Value, String> {
    use serde_json::{Value, json};
    let text = |pointer: &str| -> Value {
        event
            .pointer(pointer)
            .and_then(Value::as_str)
            .map_or(Value::Null, Value::from)
    };
    let time = |pointer: &str| -> Result<Value, String> {
        match event.pointer(pointer) {
            None | Some(Value::Null) => Ok(Value::Null),
            Some(v) => v
                .as_i64()
                .and_then(DateTime::<Utc>::from_timestamp_millis)
                .map(|t| Value::from(super::time::format(t)))
                .ok_or_else(|| format!("{pointer} is not a time in milliseconds")),
        }
    };
    let number = |pointer: &str| event.pointer(pointer).cloned().unwrap_or(Value::Null);
    let status = event
        .pointer("/status_id")
        .and_then(Value::as_i64)
        .and_then(|id| i32::try_from(id).ok())
        .and_then(status_of_id)
        .ok_or("status_id is not one the service writes")?;
    let mut row = json!({
        "id": text("/metadata/uid"),
        "customerId": text("/resources/0/uid"),
        "customerName": text("/resources/0/name"),
        "action": text("/api/operation"),
        "partnerUser": text("/actor/user/name"),
        "occurredAt": time("/time")?,
        "recordedAt": time("/metadata/logged_time")?,
        "resourceType": text("/resources/0/type"),
        "status": status.as_str(),
        "recordedBy": text("/recorded_by"),
        "sequence": number("/sequence"),
        "hash": text("/hash"),
        "previousHash": text("/previous_hash"),
        "previousRecordedAt": time("/previous_recorded_at")?,
        "feedPosition": number("/feed_position"),
    });
    if let Some(details) = event.get("unmapped") {
        row["details"] = details.clone();
    }
    Ok(row)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_map_by_their_first_word_and_the_rest_is_other() {
        for (action, kind) in [
            ("created a referral", ActivityKind::Create),
            ("placed an order", ActivityKind::Create),
            ("Create customer", ActivityKind::Create),
            ("requested a support ticket", ActivityKind::Create),
            ("viewed the invoice", ActivityKind::Read),
            ("updated the billing profile", ActivityKind::Update),
            ("reset a user password", ActivityKind::Update),
            ("assigned licenses", ActivityKind::Update),
            ("Changed a subscription", ActivityKind::Update),
            ("  deleted a user", ActivityKind::Delete),
            ("Remove user license", ActivityKind::Delete),
            ("cancelled the subscription", ActivityKind::Delete),
            ("logged in", ActivityKind::Other),
            ("", ActivityKind::Other),
            ("已建立推薦", ActivityKind::Other),
            ("updater ran", ActivityKind::Other),
        ] {
            assert_eq!(ActivityKind::of_action(action), kind, "{action:?}");
        }
    }

    #[test]
    fn no_word_makes_two_kinds() {
        let mut seen = std::collections::BTreeSet::new();
        for (words, _) in VERBS {
            for w in words {
                assert!(seen.insert(*w), "{w} twice");
                assert_eq!(*w, w.to_lowercase(), "{w}: the table is lower case");
            }
        }
    }

    #[test]
    fn statuses_go_and_come_back() {
        for s in [Status::Succeeded, Status::Failed, Status::InProgress] {
            assert_eq!(status_of_id(status(s).0), Some(s));
        }
        assert_eq!(status_of_id(0), None);
    }
}
