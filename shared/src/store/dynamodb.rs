//! DynamoDB adapter: one table, an LSI for a customer's log by time and a GSI for a tenant's.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, KeysAndAttributes, LocalSecondaryIndex, Projection, ProjectionType, Put,
    ReturnValuesOnConditionCheckFailure, ScalarAttributeType, TimeToLiveSpecification,
    TransactWriteItem,
};

use super::keys::{self, PARTNER_PK, PARTNER_SK, PK, SK, TIME_SK};
use super::{ActivityReader, ActivityWriter, InsertOutcome, StoreError, StorePage};
use crate::domain::query::MAX_LIMIT;
use crate::domain::{
    Activity, ActivityId, ActivityQuery, CustomerId, Details, PageKey, PartnerId, Status, time,
};

/// Name of the TTL attribute (epoch seconds).
pub const TTL: &str = "ttl";

#[derive(Clone, Debug)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    async fn batch_get(
        &self,
        keys: Vec<HashMap<String, AttributeValue>>,
    ) -> Result<Vec<Activity>, StoreError> {
        let mut found = Vec::new();
        let mut pending = KeysAndAttributes::builder()
            .set_keys(Some(keys))
            .consistent_read(true)
            .build()
            .map_err(|e| StoreError::Other(e.to_string()))?;
        for attempt in 0..8 {
            let out = self
                .client
                .batch_get_item()
                .request_items(&self.table, pending.clone())
                .send()
                .await
                .map_err(classify)?;
            let mut out = out;
            let items = out
                .responses
                .as_mut()
                .and_then(|r| r.remove(&self.table))
                .unwrap_or_default();
            for item in items {
                found.push(from_item(item)?);
            }
            match out.unprocessed_keys().and_then(|u| u.get(&self.table)) {
                Some(rest) if !rest.keys().is_empty() => {
                    pending = rest.clone();
                    backoff(attempt).await;
                }
                _ => return Ok(found),
            }
        }
        Err(StoreError::Throttled)
    }
}

async fn backoff(attempt: u32) {
    tokio::time::sleep(Duration::from_millis(25 * 2u64.pow(attempt.min(6)))).await;
}

/// Maps an SDK failure to what a caller can act on.
pub(crate) fn classify<E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static>(
    err: SdkError<E, aws_sdk_dynamodb::config::http::HttpResponse>,
) -> StoreError {
    match &err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            StoreError::Unavailable(err.to_string())
        }
        SdkError::ServiceError(service) => {
            let code = service.err().code().unwrap_or_default();
            match code {
                "ThrottlingException"
                | "ProvisionedThroughputExceededException"
                | "RequestLimitExceeded"
                | "SlowDown" => StoreError::Throttled,
                "InternalServerError"
                | "ServiceUnavailable"
                | "InternalError"
                | "TransactionInProgressException" => StoreError::Unavailable(code.to_owned()),
                // Any other 5xx is the service failing, not the request: retryable.
                _ if service.raw().status().is_server_error() => StoreError::Unavailable(format!(
                    "HTTP {} {code}",
                    service.raw().status().as_u16()
                )),
                _ => StoreError::Other(format!(
                    "{code}: {}",
                    service.err().message().unwrap_or_default()
                )),
            }
        }
        _ => StoreError::Other(err.to_string()),
    }
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn key_of(
    partner: &PartnerId,
    customer: &CustomerId,
    id: &ActivityId,
) -> HashMap<String, AttributeValue> {
    HashMap::from([
        (PK.to_owned(), s(keys::customer_pk(partner, customer))),
        (SK.to_owned(), s(keys::activity_sk(id))),
    ])
}

pub fn to_item(partner: &PartnerId, a: &Activity) -> HashMap<String, AttributeValue> {
    let page_key = PageKey::of(a);
    let mut item = key_of(partner, &a.customer_id, &a.id);
    item.insert(TIME_SK.into(), s(keys::time_sk(&page_key)));
    item.insert(PARTNER_PK.into(), s(keys::partner_pk(partner)));
    item.insert(PARTNER_SK.into(), s(keys::partner_sk(&page_key)));
    item.insert("partnerId".into(), s(partner.as_str()));
    item.insert("id".into(), s(a.id.as_str()));
    item.insert("customerId".into(), s(a.customer_id.as_str()));
    item.insert("customerName".into(), s(&a.customer_name));
    item.insert("action".into(), s(&a.action));
    item.insert("partnerUser".into(), s(&a.partner_user));
    item.insert("occurredAt".into(), s(time::format(a.occurred_at)));
    item.insert("recordedAt".into(), s(time::format(a.recorded_at)));
    if let Some(rt) = &a.resource_type {
        item.insert("resourceType".into(), s(rt));
    }
    item.insert("status".into(), s(a.status.as_str()));
    match &a.details {
        Details::None => {}
        Details::Inline(json) => {
            item.insert("details".into(), s(json));
        }
        Details::External { key, size } => {
            item.insert("detailsKey".into(), s(key));
            item.insert("detailsSize".into(), AttributeValue::N(size.to_string()));
        }
    }
    item.insert("contentHash".into(), s(&a.content_hash));
    item.insert(TTL.into(), AttributeValue::N(a.expires_at.to_string()));
    item
}

fn number(item: &HashMap<String, AttributeValue>, name: &str) -> Result<i64, StoreError> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| StoreError::Other(format!("stored activity lacks {name}")))
}

/// The attributes a listed activity needs: everything but keys, fingerprint and TTL, which
/// only writes use. Query results carry about half the bytes (BENCHMARKS.md, request CPU).
const LISTED: [&str; 12] = [
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
    "detailsKey",
    "detailsSize",
];

/// Reads a stored activity, taking its strings out of the item rather than copying them.
/// `contentHash` and the TTL are absent from query results (see [`LISTED`]): then empty and 0.
pub fn from_item(mut item: HashMap<String, AttributeValue>) -> Result<Activity, StoreError> {
    let bad = |what: &str| StoreError::Other(format!("stored activity has a bad {what}"));
    let details = if let Some(AttributeValue::S(json)) = item.remove("details") {
        Details::Inline(json)
    } else if let Some(AttributeValue::S(key)) = item.remove("detailsKey") {
        Details::External {
            key,
            size: usize::try_from(number(&item, "detailsSize")?).map_err(|_| bad("detailsSize"))?,
        }
    } else {
        Details::None
    };
    let mut take = |name: &str| match item.remove(name) {
        Some(AttributeValue::S(v)) => Ok(v),
        _ => Err(StoreError::Other(format!("stored activity lacks {name}"))),
    };
    let id = ActivityId::parse(&take("id")?).map_err(|_| bad("id"))?;
    let customer_id = CustomerId::parse(&take("customerId")?).map_err(|_| bad("customerId"))?;
    let customer_name = take("customerName")?;
    let action = take("action")?;
    let partner_user = take("partnerUser")?;
    let occurred_at = time::parse_timestamp(&take("occurredAt")?).map_err(|_| bad("occurredAt"))?;
    let recorded_at = time::parse_timestamp(&take("recordedAt")?).map_err(|_| bad("recordedAt"))?;
    let status = Status::parse(&take("status")?).ok_or_else(|| bad("status"))?;
    let resource_type = take("resourceType").ok();
    let content_hash = take("contentHash").unwrap_or_default();
    Ok(Activity {
        id,
        customer_id,
        customer_name,
        action,
        partner_user,
        occurred_at,
        recorded_at,
        resource_type,
        status,
        details,
        content_hash,
        expires_at: if item.contains_key(TTL) {
            number(&item, TTL)?
        } else {
            0
        },
    })
}

impl ActivityWriter for DynamoStore {
    async fn insert_all(
        &self,
        partner: &PartnerId,
        items: &[Activity],
    ) -> Result<InsertOutcome, StoreError> {
        let mut writes = Vec::with_capacity(items.len());
        for a in items {
            let put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(to_item(partner, a)))
                .condition_expression("attribute_not_exists(#pk)")
                .expression_attribute_names("#pk", PK)
                .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::None)
                .build()
                .map_err(|e| StoreError::Other(e.to_string()))?;
            writes.push(TransactWriteItem::builder().put(put).build());
        }

        let mut attempt = 0;
        loop {
            let result = self
                .client
                .transact_write_items()
                .set_transact_items(Some(writes.clone()))
                .send()
                .await;
            let err = match result {
                Ok(_) => return Ok(InsertOutcome::Written),
                Err(e) => e,
            };
            let reasons: Vec<String> = match err.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(c)) => c
                    .cancellation_reasons()
                    .iter()
                    .filter_map(|r| r.code().map(str::to_owned))
                    .collect(),
                _ => return Err(classify(err)),
            };
            if reasons.iter().any(|r| r == "ConditionalCheckFailed") {
                let keys = items
                    .iter()
                    .map(|a| key_of(partner, &a.customer_id, &a.id))
                    .collect();
                let existing = self.batch_get(keys).await?;
                if !existing.is_empty() {
                    return Ok(InsertOutcome::Existing(existing));
                }
            } else if !reasons.iter().any(|r| {
                matches!(
                    r.as_str(),
                    "TransactionConflict" | "ThrottlingError" | "ProvisionedThroughputExceeded"
                )
            }) {
                return Err(StoreError::Other(format!(
                    "transaction cancelled: {reasons:?}"
                )));
            }
            attempt += 1;
            if attempt >= 6 {
                return Err(
                    if reasons
                        .iter()
                        .any(|r| r != "TransactionConflict" && r != "None")
                    {
                        StoreError::Throttled
                    } else {
                        StoreError::Unavailable("transaction conflicts persisted".into())
                    },
                );
            }
            backoff(attempt).await;
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
            .set_key(Some(key_of(partner, customer, id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(classify)?;
        out.item.map(from_item).transpose()
    }

    async fn query_page(
        &self,
        partner: &PartnerId,
        query: &ActivityQuery,
        after: Option<&PageKey>,
        want: usize,
    ) -> Result<StorePage, StoreError> {
        let lo = keys::range_low(query.range.from);
        let hi = keys::range_high(query.range.to);
        let mut req = self
            .client
            .query()
            .table_name(&self.table)
            .scan_index_forward(false)
            .expression_attribute_values(":lo", s(lo))
            .expression_attribute_values(":hi", s(hi));
        let time_attr = match &query.customer {
            Some(customer) => {
                req = req
                    .index_name(keys::BY_TIME_INDEX)
                    .consistent_read(true)
                    .key_condition_expression("#p = :p AND #t BETWEEN :lo AND :hi")
                    .expression_attribute_names("#p", PK)
                    .expression_attribute_names("#t", TIME_SK)
                    .expression_attribute_values(":p", s(keys::customer_pk(partner, customer)));
                if let Some(k) = after {
                    let mut start = key_of(partner, &k.customer_id, &k.id);
                    start.insert(TIME_SK.into(), s(keys::time_sk(k)));
                    req = req.set_exclusive_start_key(Some(start));
                }
                TIME_SK
            }
            None => {
                req = req
                    .index_name(keys::BY_PARTNER_TIME_INDEX)
                    .key_condition_expression("#p = :p AND #t BETWEEN :lo AND :hi")
                    .expression_attribute_names("#p", PARTNER_PK)
                    .expression_attribute_names("#t", PARTNER_SK)
                    .expression_attribute_values(":p", s(keys::partner_pk(partner)));
                if let Some(k) = after {
                    let mut start = key_of(partner, &k.customer_id, &k.id);
                    start.insert(PARTNER_PK.into(), s(keys::partner_pk(partner)));
                    start.insert(PARTNER_SK.into(), s(keys::partner_sk(k)));
                    req = req.set_exclusive_start_key(Some(start));
                }
                PARTNER_SK
            }
        };

        let f = &query.filters;
        let mut conditions = Vec::new();
        for (name, attr, value) in [
            ("#fa", "action", f.action.as_deref()),
            ("#fu", "partnerUser", f.partner_user.as_deref()),
            ("#fr", "resourceType", f.resource_type.as_deref()),
            ("#fs", "status", f.status.map(Status::as_str)),
        ] {
            if let Some(v) = value {
                let placeholder = name.replace('#', ":");
                conditions.push(format!("{name} = {placeholder}"));
                req = req
                    .expression_attribute_names(name, attr)
                    .expression_attribute_values(placeholder, s(v));
            }
        }
        if !conditions.is_empty() {
            req = req.filter_expression(conditions.join(" AND "));
        } else if want <= MAX_LIMIT {
            // Without filters every item read is returned: read just what the caller needs.
            // (Larger wants, as an export's, read whole 1 MB pages.)
            req = req.limit(i32::try_from(want.max(1)).unwrap_or(1));
        }

        let mut projection = String::new();
        for (i, name) in LISTED.iter().enumerate() {
            let placeholder = format!("#l{i}");
            if i > 0 {
                projection.push_str(", ");
            }
            projection.push_str(&placeholder);
            req = req.expression_attribute_names(placeholder, *name);
        }
        req = req.projection_expression(projection);

        let mut out = req.send().await.map_err(classify)?;
        let items = out
            .items
            .take()
            .unwrap_or_default()
            .into_iter()
            .map(from_item)
            .collect::<Result<Vec<_>, _>>()?;
        let last_evaluated = match out.last_evaluated_key() {
            None => None,
            Some(k) => {
                let pk = k.get(PK).and_then(|v| v.as_s().ok());
                let sk = k.get(SK).and_then(|v| v.as_s().ok());
                let tk = k.get(time_attr).and_then(|v| v.as_s().ok());
                let (Some(pk), Some(sk), Some(tk)) = (pk, sk, tk) else {
                    return Err(StoreError::Other("unexpected LastEvaluatedKey".into()));
                };
                Some(
                    keys::page_key_from(partner, pk, sk, tk)
                        .ok_or_else(|| StoreError::Other("unreadable LastEvaluatedKey".into()))?,
                )
            }
        };
        Ok(StorePage {
            items,
            last_evaluated,
        })
    }
}

/// Creates the activity table as `template.yaml` declares it (for the local stack and tests),
/// and waits until it is active.
pub async fn create_table(client: &Client, table: &str) -> Result<(), StoreError> {
    let attr = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
    };
    let key = |name: &str, kind: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
    };
    let all = Projection::builder()
        .projection_type(ProjectionType::All)
        .build();
    let built = |e: aws_sdk_dynamodb::error::BuildError| StoreError::Other(e.to_string());

    let result = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .set_attribute_definitions(Some(
            [PK, SK, TIME_SK, PARTNER_PK, PARTNER_SK]
                .into_iter()
                .map(attr)
                .collect::<Result<_, _>>()
                .map_err(built)?,
        ))
        .key_schema(key(PK, KeyType::Hash).map_err(built)?)
        .key_schema(key(SK, KeyType::Range).map_err(built)?)
        .local_secondary_indexes(
            LocalSecondaryIndex::builder()
                .index_name(keys::BY_TIME_INDEX)
                .key_schema(key(PK, KeyType::Hash).map_err(built)?)
                .key_schema(key(TIME_SK, KeyType::Range).map_err(built)?)
                .projection(all.clone())
                .build()
                .map_err(built)?,
        )
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(keys::BY_PARTNER_TIME_INDEX)
                .key_schema(key(PARTNER_PK, KeyType::Hash).map_err(built)?)
                .key_schema(key(PARTNER_SK, KeyType::Range).map_err(built)?)
                .projection(all)
                .build()
                .map_err(built)?,
        )
        .send()
        .await;
    if let Err(e) = result {
        if e.as_service_error()
            .is_some_and(|s| s.is_resource_in_use_exception())
        {
            return Ok(());
        }
        return Err(classify(e));
    }

    // The SDK waiter polls no faster than every 20 s; poll DescribeTable directly.
    for attempt in 0..200 {
        let out = client
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(classify)?;
        let active = out
            .table()
            .and_then(|t| t.table_status())
            .is_some_and(|s| s.as_str() == "ACTIVE");
        if active {
            client
                .update_time_to_live()
                .table_name(table)
                .time_to_live_specification(
                    TimeToLiveSpecification::builder()
                        .attribute_name(TTL)
                        .enabled(true)
                        .build()
                        .map_err(built)?,
                )
                .send()
                .await
                .map_err(classify)?;
            return Ok(());
        }
        backoff(attempt.min(2)).await;
    }
    Err(StoreError::Unavailable(format!(
        "table {table} did not become active"
    )))
}
