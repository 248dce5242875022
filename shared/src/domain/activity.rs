//! The activity record: what a writer sends, how it is validated, and what is stored.

use std::collections::HashSet;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::chain::{ChainError, Link, Record};
use super::ids::{ActivityId, CustomerId, PartnerId};
use super::time::{self, MAX_FUTURE_SKEW};

/// Most writes of one DynamoDB transaction: a batch is written in one, with a write per
/// activity and one per distinct customer (its chain head).
pub const MAX_TRANSACTION_WRITES: usize = 100;
/// Most activities one request may record (all of one customer).
pub const MAX_BATCH: usize = MAX_TRANSACTION_WRITES - 1;
/// Largest `details` object, measured as compact UTF-8 JSON.
pub const MAX_DETAILS_BYTES: usize = 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Status {
    Succeeded,
    Failed,
    InProgress,
}

super::names::serde_names!(Status);

/// Where an activity's details live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Details {
    None,
    /// Compact JSON kept in the record itself.
    Inline(String),
    /// Compact JSON too large for the record, kept as an object in the bucket.
    External {
        key: String,
        size: usize,
    },
}

impl Details {
    pub fn size(&self) -> usize {
        match self {
            Self::None => 0,
            Self::Inline(json) => json.len(),
            Self::External { size, .. } => *size,
        }
    }
}

/// A validated activity, ready to be stored for a tenant.
#[derive(Debug, Clone, PartialEq)]
pub struct NewActivity {
    pub id: ActivityId,
    pub customer_id: CustomerId,
    pub customer_name: String,
    pub action: String,
    pub partner_user: String,
    pub occurred_at: DateTime<Utc>,
    pub resource_type: Option<String>,
    pub status: Status,
    /// Compact JSON of the details object, if any.
    pub details: Option<String>,
    /// Fingerprint of what the writer sent, to tell a retry from a different record with a reused id.
    pub content_hash: String,
}

/// A stored activity.
#[derive(Debug, Clone, PartialEq)]
pub struct Activity {
    pub id: ActivityId,
    pub customer_id: CustomerId,
    pub customer_name: String,
    pub action: String,
    pub partner_user: String,
    pub occurred_at: DateTime<Utc>,
    pub recorded_at: DateTime<Utc>,
    pub resource_type: Option<String>,
    pub status: Status,
    pub details: Details,
    pub content_hash: String,
    /// Expiry, seconds since the epoch (DynamoDB TTL).
    pub expires_at: i64,
    /// The `sub` of the token that recorded it (`None`: recorded before writers were kept).
    pub recorded_by: Option<String>,
    /// Its place in its customer's chain (`None`: recorded before the chain, not backfilled).
    pub chain: Option<Link>,
    /// Its place in its partner's feed (`None` until the sequencer has placed it, moments after
    /// it was recorded). Not part of the hashed record: it is given after the write.
    pub feed_position: Option<u64>,
}

impl Activity {
    /// The record its hash covers, recorded for `partner`; `details` is its details document
    /// when the activity holds only the key of details kept in the bucket.
    pub fn record(&self, partner: &PartnerId, details: Option<&str>) -> Result<Record, ChainError> {
        let inline = match &self.details {
            Details::Inline(json) => Some(json.as_str()),
            _ => None,
        };
        let details = match (details.or(inline), &self.details) {
            (Some(json), _) => Some(
                serde_json::from_str::<Value>(json)
                    .map_err(|e| ChainError::BadRecord(format!("details: {e}")))?,
            ),
            (None, Details::None | Details::Inline(_)) => None,
            (None, Details::External { .. }) => {
                return Err(ChainError::BadRecord(
                    "the details kept in the bucket are needed".into(),
                ));
            }
        };
        let text = |s: &str| Value::String(s.to_owned());
        Ok(Record {
            action: text(&self.action),
            customer_id: text(self.customer_id.as_str()),
            customer_name: text(&self.customer_name),
            details,
            id: text(self.id.as_str()),
            occurred_at: Value::String(time::format(self.occurred_at)),
            partner_id: partner.to_string(),
            partner_user: text(&self.partner_user),
            previous_recorded_at: self
                .chain
                .as_ref()
                .and_then(|l| l.previous_recorded_at)
                .map_or(Value::Null, |t| Value::String(time::format(t))),
            recorded_at: Value::String(time::format(self.recorded_at)),
            recorded_by: self.recorded_by.as_deref().map_or(Value::Null, text),
            resource_type: self.resource_type.as_deref().map(text),
            status: text(self.status.as_str()),
        })
    }
}

/// One reason an item of a batch was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// JSON-pointer-like location, e.g. `[3].customerId`.
    pub field: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchError {
    /// The body is not what the endpoint takes (not JSON, empty array, too many items).
    Malformed(String),
    /// Items are invalid; nothing may be written.
    Invalid(Vec<FieldError>),
    /// A details object is over the size limit.
    TooLarge(FieldError),
    /// Valid, but more writes than one transaction takes (activities + distinct customers).
    TooManyWrites(String),
}

/// Rules that depend on configuration and the clock.
#[derive(Debug, Clone, Copy)]
pub struct WriteRules {
    pub now: DateTime<Utc>,
    pub retention_days: u32,
}

impl WriteRules {
    pub fn oldest_accepted(&self) -> DateTime<Utc> {
        self.now - TimeDelta::days(i64::from(self.retention_days))
    }

    /// When an activity recorded at `recorded_at` expires: the retention period after it.
    pub fn expires_at(&self, recorded_at: DateTime<Utc>) -> i64 {
        (recorded_at + TimeDelta::days(i64::from(self.retention_days))).timestamp()
    }
}

/// An activity as a record request carries it: the one definition of its field names. Values
/// are taken as they come and checked one by one, so every problem can be named.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ActivityInput {
    id: Option<Value>,
    customer_id: Option<Value>,
    customer_name: Option<Value>,
    action: Option<Value>,
    partner_user: Option<Value>,
    occurred_at: Option<Value>,
    resource_type: Option<Value>,
    status: Option<Value>,
    details: Option<Value>,
}

/// The fields of an activity in a record request.
pub fn fields() -> &'static [&'static str] {
    super::names::fields_of::<ActivityInput>()
}

/// Longest `customerName`, `action` and `partnerUser`.
pub const MAX_LABEL_CHARS: usize = 256;
/// Longest `resourceType`.
pub const MAX_RESOURCE_TYPE_CHARS: usize = 64;

/// Parses and validates a record request body: one activity object or an array of 1–100.
/// All-or-nothing: any invalid item fails the whole batch, with every problem listed.
pub fn parse_batch(body: &[u8], rules: WriteRules) -> Result<Vec<NewActivity>, BatchError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| BatchError::Malformed(format!("body is not valid JSON: {e}")))?;
    let (items, single) = match value {
        Value::Array(items) => (items, false),
        obj @ Value::Object(_) => (vec![obj], true),
        _ => {
            return Err(BatchError::Malformed(
                "body must be an activity object or an array of them".into(),
            ));
        }
    };
    if items.is_empty() || items.len() > MAX_BATCH {
        return Err(BatchError::Malformed(format!(
            "an array body must hold between 1 and {MAX_BATCH} activities, got {}",
            items.len()
        )));
    }

    let mut errors = Vec::new();
    let mut parsed = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let prefix = if single {
            String::new()
        } else {
            format!("[{i}].")
        };
        match parse_item(item, &prefix, rules) {
            Ok(a) => parsed.push(a),
            Err(ItemError::Fields(mut e)) => errors.append(&mut e),
            Err(ItemError::TooLarge(e)) => return Err(BatchError::TooLarge(e)),
        }
    }
    let mut seen = HashSet::new();
    for (i, a) in parsed.iter().enumerate() {
        if !seen.insert((&a.customer_id, &a.id)) {
            errors.push(FieldError {
                field: format!("[{i}].id"),
                message: format!("id {} appears more than once in this batch", a.id),
            });
        }
    }
    if !errors.is_empty() {
        return Err(BatchError::Invalid(errors));
    }
    let customers = parsed
        .iter()
        .map(|a| &a.customer_id)
        .collect::<HashSet<_>>()
        .len();
    let writes = parsed.len() + customers;
    if writes > MAX_TRANSACTION_WRITES {
        return Err(BatchError::TooManyWrites(format!(
            "a batch is written in one transaction of at most {MAX_TRANSACTION_WRITES} writes, one per activity and one per distinct customer; this one needs {writes} ({} activities, {customers} customers)",
            parsed.len()
        )));
    }
    Ok(parsed)
}

enum ItemError {
    Fields(Vec<FieldError>),
    TooLarge(FieldError),
}

/// Collects the problems of one item, each named with the item's prefix (`[3].`).
struct Checker<'a> {
    prefix: &'a str,
    errors: Vec<FieldError>,
}

impl Checker<'_> {
    fn fail(&mut self, field: &str, message: impl Into<String>) {
        self.errors.push(FieldError {
            field: format!("{}{field}", self.prefix),
            message: message.into(),
        });
    }

    /// A string field; `None` when absent or null (and `required` reports it).
    fn text<'v>(
        &mut self,
        field: &str,
        value: &'v Option<Value>,
        required: bool,
    ) -> Option<&'v str> {
        match value {
            None | Some(Value::Null) => {
                if required {
                    self.fail(field, "is required");
                }
                None
            }
            Some(Value::String(s)) => Some(s.as_str()),
            Some(_) => {
                self.fail(field, "must be a string");
                None
            }
        }
    }

    /// A free-text field of 1..=max characters without control characters.
    fn label(
        &mut self,
        field: &str,
        value: &Option<Value>,
        max: usize,
        required: bool,
    ) -> Option<String> {
        let s = self.text(field, value, required)?;
        let n = s.chars().count();
        if n == 0 || n > max {
            self.fail(
                field,
                format!("must be between 1 and {max} characters long"),
            );
            return None;
        }
        if s.chars().any(char::is_control) {
            self.fail(field, "must not contain control characters");
            return None;
        }
        if s.trim().is_empty() {
            self.fail(field, "must not be blank");
            return None;
        }
        Some(s.to_owned())
    }

    /// A field parsed by `parse`, whose error names the problem.
    fn parsed<T, E: std::fmt::Display>(
        &mut self,
        field: &str,
        text: Option<&str>,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> Option<T> {
        parse(text?)
            .map_err(|e| self.fail(field, e.to_string()))
            .ok()
    }

    /// `occurredAt`: now when absent, else a timestamp within the accepted window.
    fn occurred_at(&mut self, text: Option<&str>, rules: WriteRules) -> Option<DateTime<Utc>> {
        let Some(text) = text else {
            return Some(time::truncate_millis(rules.now));
        };
        let t = self.parsed("occurredAt", Some(text), time::parse_timestamp)?;
        if t > rules.now + MAX_FUTURE_SKEW {
            self.fail(
                "occurredAt",
                format!(
                    "must not be more than {} minutes in the future",
                    MAX_FUTURE_SKEW.num_minutes()
                ),
            );
            return None;
        }
        if t < rules.oldest_accepted() {
            self.fail(
                "occurredAt",
                format!(
                    "is older than the {}-day retention period",
                    rules.retention_days
                ),
            );
            return None;
        }
        Some(t)
    }

    /// `status`: succeeded when absent.
    fn status(&mut self, value: &Option<Value>) -> Option<Status> {
        match self.text("status", value, false) {
            None => Some(Status::Succeeded),
            Some(s) => Status::parse(s).or_else(|| {
                self.fail(
                    "status",
                    format!("must be one of {}", super::names::choices_of::<Status>()),
                );
                None
            }),
        }
    }

    /// `details`: a JSON object, kept as compact JSON, at most [`MAX_DETAILS_BYTES`].
    fn details(&mut self, value: Option<Value>) -> Result<Option<String>, FieldError> {
        match value {
            None | Some(Value::Null) => Ok(None),
            Some(d @ Value::Object(_)) => {
                if let Some(at) = inexact_integer(&d, "details") {
                    self.fail(
                        "details",
                        format!(
                            "holds the integer {at}, beyond ±(2^53−1): numbers must be I-JSON (RFC 7493) so that every JSON reader, and the hash of the record (RFC 8785), sees the same number; send it as a string"
                        ),
                    );
                    return Ok(None);
                }
                let json = d.to_string();
                if json.len() > MAX_DETAILS_BYTES {
                    return Err(FieldError {
                        field: format!("{}details", self.prefix),
                        message: format!(
                            "is {} bytes as compact JSON; the limit is {MAX_DETAILS_BYTES}",
                            json.len()
                        ),
                    });
                }
                Ok(Some(json))
            }
            Some(_) => {
                self.fail("details", "must be a JSON object");
                Ok(None)
            }
        }
    }
}

/// Largest integer every JSON reader holds exactly (an IEEE 754 double's 53 bits).
const MAX_EXACT_INTEGER: u64 = (1 << 53) - 1;

/// The first integer in `value` that a double cannot hold exactly, with where it is
/// (`details.z[4] = 12345678901234567890`).
fn inexact_integer(value: &Value, at: &str) -> Option<String> {
    match value {
        Value::Number(n) => {
            let inexact = n.as_u64().is_some_and(|u| u > MAX_EXACT_INTEGER)
                || n.as_i64()
                    .is_some_and(|i| i.unsigned_abs() > MAX_EXACT_INTEGER);
            inexact.then(|| format!("{at} = {n}"))
        }
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, v)| inexact_integer(v, &format!("{at}[{i}]"))),
        Value::Object(members) => members
            .iter()
            .find_map(|(k, v)| inexact_integer(v, &format!("{at}.{k}"))),
        _ => None,
    }
}

fn parse_item(item: Value, prefix: &str, rules: WriteRules) -> Result<NewActivity, ItemError> {
    let Value::Object(obj) = item else {
        return Err(ItemError::Fields(vec![FieldError {
            field: prefix.trim_end_matches('.').to_owned(),
            message: "must be an activity object".into(),
        }]));
    };
    let mut c = Checker {
        prefix,
        errors: Vec::new(),
    };
    for key in obj.keys() {
        if !fields().contains(&key.as_str()) {
            c.fail(key, "is not a field of an activity");
        }
    }
    // Unknown fields are ignored here: they are reported above.
    let input: ActivityInput = match serde_json::from_value(Value::Object(obj)) {
        Ok(input) => input,
        Err(e) => {
            c.fail("", e.to_string());
            return Err(ItemError::Fields(c.errors));
        }
    };

    let id = match c.text("id", &input.id, false) {
        None => Some(ActivityId::generate()),
        given => c.parsed("id", given, ActivityId::parse),
    };
    let customer_id = {
        let text = c.text("customerId", &input.customer_id, true);
        c.parsed("customerId", text, |t| {
            CustomerId::parse(t)
                .map_err(|e| e.to_string())
                .and_then(|id| match id.is_partner_account() {
                    true => Err(format!(
                        "{} is reserved: the service records the partner's own account changes \
                         there",
                        CustomerId::PARTNER_ACCOUNT
                    )),
                    false => Ok(id),
                })
        })
    };
    let customer_name = c.label("customerName", &input.customer_name, MAX_LABEL_CHARS, true);
    let action = c.label("action", &input.action, MAX_LABEL_CHARS, true);
    let partner_user = c.label("partnerUser", &input.partner_user, MAX_LABEL_CHARS, true);
    let resource_type = c.label(
        "resourceType",
        &input.resource_type,
        MAX_RESOURCE_TYPE_CHARS,
        false,
    );
    let given_occurred_at = c.text("occurredAt", &input.occurred_at, false);
    let occurred_at = c.occurred_at(given_occurred_at, rules);
    let status = c.status(&input.status);
    let details = c.details(input.details).map_err(ItemError::TooLarge)?;

    let (
        Some(id),
        Some(customer_id),
        Some(customer_name),
        Some(action),
        Some(partner_user),
        Some(occurred_at),
        Some(status),
        true,
    ) = (
        id,
        customer_id,
        customer_name,
        action,
        partner_user,
        occurred_at,
        status,
        c.errors.is_empty(),
    )
    else {
        return Err(ItemError::Fields(c.errors));
    };

    let content_hash = content_hash(&[
        id.as_str(),
        customer_id.as_str(),
        &customer_name,
        &action,
        &partner_user,
        &given_occurred_at
            .map(|_| time::format(occurred_at))
            .unwrap_or_default(),
        resource_type.as_deref().unwrap_or(""),
        status.as_str(),
        details.as_deref().unwrap_or(""),
    ]);

    Ok(NewActivity {
        id,
        customer_id,
        customer_name,
        action,
        partner_user,
        occurred_at,
        resource_type,
        status,
        details,
        content_hash,
    })
}

impl NewActivity {
    /// An activity the service records itself (a change to the partner's settings), with a
    /// new id.
    #[allow(clippy::too_many_arguments)]
    pub fn by_service(
        customer_id: CustomerId,
        customer_name: &str,
        action: &str,
        partner_user: &str,
        occurred_at: DateTime<Utc>,
        resource_type: Option<&str>,
        details: &Value,
    ) -> Self {
        let id = ActivityId::generate();
        let details = details.to_string();
        let status = Status::Succeeded;
        let content_hash = content_hash(&[
            id.as_str(),
            customer_id.as_str(),
            customer_name,
            action,
            partner_user,
            &time::format(occurred_at),
            resource_type.unwrap_or(""),
            status.as_str(),
            &details,
        ]);
        Self {
            id,
            customer_id,
            customer_name: customer_name.to_owned(),
            action: action.to_owned(),
            partner_user: partner_user.to_owned(),
            occurred_at,
            resource_type: resource_type.map(str::to_owned),
            status,
            details: Some(details),
            content_hash,
        }
    }
}

/// SHA-256 over length-prefixed parts, so no two different inputs share a fingerprint by concatenation.
fn content_hash(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p.as_bytes());
    }
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rules() -> WriteRules {
        WriteRules {
            now: time::parse_timestamp("2026-11-25T12:00:00Z").unwrap(),
            retention_days: 365,
        }
    }

    fn minimal() -> Value {
        json!({"customerId": "c1", "customerName": "Contoso", "action": "created a referral", "partnerUser": "ann@p.example"})
    }

    fn parse(v: Value) -> Result<Vec<NewActivity>, BatchError> {
        parse_batch(v.to_string().as_bytes(), rules())
    }

    #[test]
    fn defaults_fill_id_time_and_status() {
        let a = parse(minimal()).unwrap().remove(0);
        assert_eq!(a.occurred_at, rules().now);
        assert_eq!(a.status, Status::Succeeded);
        assert_eq!(a.id.as_str().len(), 26, "a ULID");
        assert_eq!(a.details, None);
    }

    #[test]
    fn no_writer_records_under_the_partners_own_account() {
        let mut v = minimal();
        v["customerId"] = json!(CustomerId::PARTNER_ACCOUNT);
        let Err(BatchError::Invalid(errors)) = parse(v) else {
            panic!("the reserved customer id was accepted");
        };
        assert_eq!(errors[0].field, "customerId");
        assert!(errors[0].message.contains("reserved"), "{errors:?}");
        let mut v = minimal();
        v["customerId"] = json!("_partners");
        assert!(parse(v).is_ok(), "only the one id is reserved");
    }

    #[test]
    fn a_retry_has_the_same_fingerprint_and_a_change_does_not() {
        let mut v = minimal();
        v["id"] = json!("k1");
        let first = parse(v.clone()).unwrap().remove(0);
        let again = parse_batch(
            v.to_string().as_bytes(),
            WriteRules {
                now: rules().now + TimeDelta::seconds(30),
                ..rules()
            },
        )
        .unwrap()
        .remove(0);
        assert_eq!(first.content_hash, again.content_hash);
        v["action"] = json!("deleted a referral");
        assert_ne!(parse(v).unwrap().remove(0).content_hash, first.content_hash);
    }

    #[test]
    fn one_bad_item_fails_the_batch_and_is_named() {
        let mut bad = minimal();
        bad["status"] = json!("done");
        let Err(BatchError::Invalid(errors)) = parse(json!([minimal(), bad])) else {
            panic!("expected invalid")
        };
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].field, "[1].status");
    }

    #[test]
    fn every_problem_is_listed() {
        let Err(BatchError::Invalid(errors)) =
            parse(json!({"customerId": "", "action": 5, "extra": 1, "details": []}))
        else {
            panic!("expected invalid")
        };
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        for f in [
            "extra",
            "customerId",
            "customerName",
            "action",
            "partnerUser",
            "details",
        ] {
            assert!(fields.contains(&f), "{f} missing from {fields:?}");
        }
    }

    #[test]
    fn batch_size_and_body_shape() {
        assert!(matches!(parse(json!([])), Err(BatchError::Malformed(_))));
        assert!(matches!(parse(json!("x")), Err(BatchError::Malformed(_))));
        assert!(matches!(
            parse_batch(b"{", rules()),
            Err(BatchError::Malformed(_))
        ));
        let many: Vec<Value> = (0..100).map(|_| minimal()).collect();
        assert!(matches!(
            parse(Value::Array(many)),
            Err(BatchError::Malformed(_))
        ));
        let most: Vec<Value> = (0..99).map(|_| minimal()).collect();
        assert_eq!(parse(Value::Array(most)).unwrap().len(), 99);
    }

    #[test]
    fn activities_and_customers_together_fit_one_transaction() {
        let of = |customers: usize, n: usize| {
            let items: Vec<Value> = (0..n)
                .map(|i| {
                    let mut v = minimal();
                    v["customerId"] = json!(format!("c{}", i % customers));
                    v
                })
                .collect();
            parse(Value::Array(items))
        };
        assert_eq!(of(50, 50).map(|b| b.len()), Ok(50));
        assert_eq!(of(1, 99).map(|b| b.len()), Ok(99));
        let Err(BatchError::TooManyWrites(message)) = of(51, 51) else {
            panic!("51 activities of 51 customers need 102 writes")
        };
        assert!(
            message.contains("needs 102 (51 activities, 51 customers)"),
            "{message}"
        );
        assert!(matches!(of(2, 99), Err(BatchError::TooManyWrites(_))));
    }

    #[test]
    fn times_in_the_future_or_past_retention_are_refused() {
        let mut v = minimal();
        v["occurredAt"] = json!("2026-11-25T12:04:59Z");
        assert!(parse(v.clone()).is_ok());
        v["occurredAt"] = json!("2026-11-25T12:05:01Z");
        assert!(matches!(parse(v.clone()), Err(BatchError::Invalid(_))));
        v["occurredAt"] = json!("2025-11-01T00:00:00Z");
        assert!(matches!(parse(v), Err(BatchError::Invalid(_))));
    }

    #[test]
    fn duplicate_ids_in_one_batch_are_refused() {
        let mut v = minimal();
        v["id"] = json!("same");
        assert!(matches!(
            parse(json!([v.clone(), v])),
            Err(BatchError::Invalid(_))
        ));
    }

    #[test]
    fn details_limit_is_one_mebibyte_of_compact_json() {
        let filler = |n: usize| json!({"k": "x".repeat(n)});
        let overhead = filler(0).to_string().len();
        let mut v = minimal();
        v["details"] = filler(MAX_DETAILS_BYTES - overhead);
        let a = parse(v.clone()).unwrap().remove(0);
        assert_eq!(a.details.map(|d| d.len()), Some(MAX_DETAILS_BYTES));
        v["details"] = filler(MAX_DETAILS_BYTES - overhead + 1);
        assert!(matches!(parse(v), Err(BatchError::TooLarge(_))));
    }

    #[test]
    fn details_numbers_must_be_exact_in_every_json_reader() {
        let mut v = minimal();
        v["details"] = json!({"ok": [9007199254740991u64, -9007199254740991i64, 1e300, 2.5]});
        assert!(parse(v.clone()).is_ok());
        v["details"] = json!({"a": {"b": [1, 9007199254740992u64]}});
        let Err(BatchError::Invalid(errors)) = parse(v.clone()) else {
            panic!("2^53 is refused")
        };
        assert_eq!(errors[0].field, "details");
        assert!(
            errors[0]
                .message
                .contains("details.a.b[1] = 9007199254740992"),
            "{}",
            errors[0].message
        );
        v["details"] = json!({"n": -9007199254740992i64});
        assert!(matches!(parse(v), Err(BatchError::Invalid(_))));
    }

    #[test]
    fn details_keep_key_order_and_unicode() {
        let mut v = minimal();
        v["details"] = json!({"z": 1, "a": {"名稱": "台積電", "n": 1.5}});
        let a = parse(v).unwrap().remove(0);
        assert_eq!(
            a.details.as_deref(),
            Some(r#"{"z":1,"a":{"名稱":"台積電","n":1.5}}"#)
        );
    }
}
