//! What the tests of every crate share: the local development defaults, a configuration, sample
//! activities, times relative to now, and the record request.

use chrono::{DateTime, TimeDelta, Utc};
use lambda_http::{Body, Response};
use serde_json::{Value, json};

use super::ApiRequest;
use crate::config::{AuthMode, Config};
use crate::domain::{
    Activity, ActivityId, ActivityQuery, CustomerId, DateRange, Details, ExportFormat,
    ExportLocale, ExportSpec, Filters, PartnerId, Status, time,
};
use crate::handlers::record;
use crate::store::memory::MemoryStore;
use crate::store::{ActivityWriter, DetailsBlobs};

/// An export of the last `days` days up to `now`: every customer, no filter, CSV in UTC with
/// an English header row.
pub fn csv_export_of_last_days(days: i64, now: DateTime<Utc>) -> ExportSpec {
    ExportSpec {
        query: ActivityQuery {
            customer: None,
            range: DateRange {
                from: now - TimeDelta::days(days),
                to: now,
            },
            filters: Filters::default(),
        },
        format: ExportFormat::Csv,
        time_zone: chrono_tz::Tz::UTC,
        locale: ExportLocale::English,
    }
}

/// `scripts/local.env`: the one place of the local development defaults.
const LOCAL_ENV: &str = include_str!("../../../scripts/local.env");

fn lookup(name: &str) -> Option<&'static str> {
    LOCAL_ENV
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .find(|(k, _)| k.trim() == name)
        .map(|(_, v)| v.trim())
}

/// A local development default by name (`LOCAL_JWT_SECRET`, `CURSOR_SIGNING_KEY`, …).
pub fn local_default(name: &str) -> &'static str {
    lookup(name).unwrap_or_else(|| panic!("scripts/local.env has no {name}"))
}

/// The configuration from the local defaults (a table and bucket named `t` and `b`, identities
/// from API Gateway's authorizer); tests change what they test.
pub fn config() -> Config {
    Config::from_lookup(|name| lookup(name).map(str::to_owned))
        .unwrap_or_else(|e| panic!("local defaults: {e}"))
}

/// [`config`] with its own table and bucket names and `auth`.
pub fn config_for(table: &str, bucket: &str, auth: AuthMode) -> Config {
    Config {
        table_name: table.into(),
        bucket_name: bucket.into(),
        auth,
        ..config()
    }
}

/// `minutes` ago, as the API writes times.
pub fn minutes_ago(minutes: i64) -> String {
    time::format(Utc::now() - TimeDelta::minutes(minutes))
}

/// A record request item for `customer` with the activity id `id`, occurred `at`.
pub fn activity(customer: &str, id: &str, at: &str) -> Value {
    json!({"id": id, "customerId": customer, "customerName": "Contoso Ltd.", "action": "placed an order",
           "partnerUser": "ann@partner.example", "occurredAt": at, "resourceType": "order"})
}

/// Activity `n` (`act-000000042`) of a synthetic log, for `customer`, occurred at `occurred_at`:
/// a mix of ASCII and CJK customer names and small inline details. The benchmarks and the large
/// tests write, read and export it.
pub fn synthetic_activity(n: u64, customer: &str, occurred_at: DateTime<Utc>) -> Activity {
    let id = format!("act-{n:09}");
    Activity {
        id: ActivityId::parse(&id).unwrap_or_else(|e| panic!("{id}: {e}")),
        customer_id: CustomerId::parse(customer).unwrap_or_else(|e| panic!("{customer}: {e}")),
        customer_name: if n.is_multiple_of(3) {
            "台北雲端科技股份有限公司".into()
        } else {
            "Contoso, Ltd.".into()
        },
        action: "placed an order".into(),
        partner_user: "chen.wei@partner.example".into(),
        occurred_at,
        recorded_at: occurred_at,
        resource_type: Some("order".into()),
        status: Status::Succeeded,
        details: Details::Inline(format!(
            r#"{{"orderId":"ORD-{n}","seats":{},"sku":"CFQ7TTC0LH18"}}"#,
            n % 50
        )),
        content_hash: format!("synthetic-{n}"),
        expires_at: (occurred_at + TimeDelta::days(365)).timestamp(),
    }
}

/// A memory store holding `rows` of `partner`, read `page_size` items per storage page.
pub async fn memory_log(partner: &PartnerId, page_size: usize, rows: &[Activity]) -> MemoryStore {
    let store = MemoryStore::with_page_size(page_size);
    for chunk in rows.chunks(1000) {
        store
            .insert_all(partner, chunk)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    store
}

/// `POST /activities` of `payload` by an `ActivityWriter` of `partner`.
pub async fn record<W: ActivityWriter, B: DetailsBlobs>(
    config: &Config,
    writer: &W,
    blobs: &B,
    partner: &str,
    payload: &Value,
) -> Response<Body> {
    let req = ApiRequest::post("/activities", payload.to_string())
        .caller(partner, &["ActivityWriter"])
        .build();
    record::handle(config, writer, blobs, req).await
}

/// The JSON body of a handler's response (`Null` when it is not JSON).
pub fn json_body(r: &Response<Body>) -> Value {
    serde_json::from_slice(r.body().as_ref()).unwrap_or(Value::Null)
}
