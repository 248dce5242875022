//! `openapi.yaml` and the code describe the same API: routes, parameters, body fields, the
//! shapes of activities and export jobs, and every error code the code can produce.

use std::collections::BTreeSet;

use activity_log::domain::names::fields_of;
use activity_log::domain::{
    Activity, ActivityId, ActivityQuery, CustomerId, DateRange, Details, ExportFormat, ExportJob,
    ExportLocale, ExportSpec, ExportStatus, Filters, PartnerId, Status,
};
use activity_log::handlers::exports::{DownloadLink, ExportView, FileLink};
use activity_log::http::ErrorCode;
use activity_log::http::response::{ActivityView, Links};
use activity_log_tests::read_workspace_file;
use serde_json::Value;

fn contract() -> Value {
    serde_norway::from_str(&read_workspace_file("openapi.yaml"))
        .unwrap_or_else(|e| panic!("openapi.yaml: {e}"))
}

fn set<I: IntoIterator<Item = S>, S: Into<String>>(items: I) -> BTreeSet<String> {
    items.into_iter().map(Into::into).collect()
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .map(|o| set(o.keys().cloned()))
        .unwrap_or_default()
}

/// Follows a local `$ref`.
/// The names a schema requires.
fn required(schema: &Value) -> BTreeSet<String> {
    set(schema["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r.as_str()))
}

fn resolve<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
    match v.get("$ref").and_then(Value::as_str) {
        Some(r) => r
            .trim_start_matches("#/")
            .split('/')
            .fold(doc, |node, part| &node[part]),
        None => v,
    }
}

fn schema<'a>(doc: &'a Value, name: &str) -> &'a Value {
    &doc["components"]["schemas"][name]
}

fn query_params(doc: &Value, path: &str) -> BTreeSet<String> {
    doc["paths"][path]["get"]["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| resolve(doc, p))
        .filter(|p| p["in"] == "query")
        .filter_map(|p| p["name"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn routes_match_the_router_and_the_template() {
    let doc = contract();
    let mut from_contract = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for method in keys(item) {
            from_contract.insert((method.to_uppercase(), path.clone()));
        }
    }
    let cargo = read_workspace_file("Cargo.toml");
    let template = read_workspace_file("template.yaml");
    for (method, path) in &from_contract {
        assert!(
            cargo.contains(&format!("\"{path}\""))
                && cargo.contains(&format!("method = \"{method}\"")),
            "{method} {path} not routed locally"
        );
        assert!(
            template.contains(&format!("Path: {path}\n")),
            "{path} not in template.yaml"
        );
    }
    assert_eq!(
        from_contract.len(),
        template.matches("Type: HttpApi\n").count(),
        "every API event is in the contract"
    );
}

#[test]
fn query_parameters_and_bodies_match_the_code() {
    let doc = contract();
    let list = set(activity_log::http::params::list_params().iter().copied());
    assert_eq!(query_params(&doc, "/activities"), list);
    let without_customer: BTreeSet<String> = list
        .iter()
        .filter(|p| *p != "customerId")
        .cloned()
        .collect();
    assert_eq!(
        query_params(&doc, "/customers/{customerId}/activities"),
        without_customer
    );
    assert_eq!(
        keys(&schema(&doc, "ActivityInput")["properties"]),
        set(activity_log::domain::activity::fields().iter().copied())
    );
    assert_eq!(
        keys(&schema(&doc, "ExportRequest")["properties"]),
        set(activity_log::http::params::export_fields().iter().copied())
    );
    assert_eq!(schema(&doc, "ActivityInput")["additionalProperties"], false);
}

fn sample(details: Details) -> Activity {
    Activity {
        feed_position: None,
        id: ActivityId::parse("a1").unwrap_or_else(|e| panic!("{e}")),
        customer_id: CustomerId::parse("c1").unwrap_or_else(|e| panic!("{e}")),
        customer_name: "Contoso".into(),
        action: "placed an order".into(),
        partner_user: "ann".into(),
        occurred_at: chrono::Utc::now(),
        recorded_at: chrono::Utc::now(),
        resource_type: None,
        status: Status::InProgress,
        details,
        content_hash: String::new(),
        expires_at: 0,
        recorded_by: Some("writer".into()),
        chain: Some(activity_log::domain::chain::Link {
            sequence: 1,
            hash: "ab".repeat(32),
            previous_hash: activity_log::domain::chain::GENESIS_HASH.into(),
            previous_recorded_at: None,
        }),
    }
}

#[test]
fn activity_shape_matches_what_the_api_returns() {
    let doc = contract();
    let s = schema(&doc, "Activity");
    let links = Links::new("https://x/{customerId}");
    for details in [
        Details::None,
        Details::Inline(r#"{"a":1}"#.into()),
        Details::External {
            key: "k".into(),
            size: 99_999,
        },
    ] {
        let a = sample(details);
        let v = serde_json::to_value(ActivityView::new(&a, None, &links)).unwrap_or_default();
        assert_eq!(keys(&v), keys(&s["properties"]), "{v}");
        assert_eq!(keys(&v), required(s));
        assert_eq!(
            keys(&v["links"]),
            keys(&s["properties"]["links"]["properties"])
        );
    }
    let statuses = set(schema(&doc, "Status")["enum"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str()));
    assert_eq!(
        statuses,
        set([Status::Succeeded, Status::Failed, Status::InProgress].map(Status::as_str))
    );
}

#[test]
fn export_job_shape_matches_what_the_api_returns() {
    let doc = contract();
    let s = schema(&doc, "ExportJob");
    let now = chrono::Utc::now();
    let spec = ExportSpec {
        query: ActivityQuery {
            customer: None,
            range: DateRange { from: now, to: now },
            filters: Filters::default(),
        },
        format: ExportFormat::Csv,
        time_zone: chrono_tz::Tz::UTC,
        locale: ExportLocale::TraditionalChinese,
    };
    let job = ExportJob {
        status: ExportStatus::Succeeded,
        row_count: 1,
        bytes: 1,
        completed_at: Some(now),
        error: Some("x".into()),
        attempt: 1,
        ..ExportJob::pending(
            PartnerId::parse("p").unwrap_or_else(|e| panic!("{e}")),
            spec,
            now,
            chrono::TimeDelta::days(1),
        )
    };
    let view = |job: &ExportJob, link| {
        serde_json::to_value(ExportView::new(job, link)).unwrap_or_else(|e| panic!("{e}"))
    };
    // Every member at once (an export has either a download or files).
    let link = DownloadLink {
        url: Some("https://dl".into()),
        files: Some(vec![FileLink {
            path: "region=r/accountId=p/eventDay=20261126/x-00001.parquet".into(),
            rows: 1,
            bytes: 1,
            sha256: "0".repeat(64),
            download_url: "https://dl/1".into(),
        }]),
        manifest_url: "https://dl/manifest".into(),
        expires_at: now,
    };
    let full = view(&job, Some(link));
    assert_eq!(keys(&full), keys(&s["properties"]));
    assert_eq!(
        keys(&full["files"][0]),
        keys(&s["properties"]["files"]["items"]["properties"])
    );
    let minimal = view(&ExportJob { error: None, ..job }, None);
    assert_eq!(keys(&minimal), required(s));
    assert_eq!(
        keys(&full["filters"]),
        keys(&s["properties"]["filters"]["properties"])
    );
}

#[test]
fn time_zones_and_languages_are_exactly_the_ones_the_code_accepts() {
    let doc = contract();
    let listed: Vec<&str> = schema(&doc, "TimeZone")["enum"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let known: Vec<&str> = activity_log::domain::time::time_zone_names().collect();
    assert_eq!(
        listed, known,
        "openapi.yaml's TimeZone enum is out of date: run `cargo run --bin devtool -- openapi-time-zones`"
    );
    let text = read_workspace_file("openapi.yaml");
    assert_eq!(
        activity_log_tests::with_time_zone_enum(&text).as_deref(),
        Some(text.as_str()),
        "the generated block is as devtool writes it"
    );
    // What the schema allows, the code takes; what it does not, the code refuses.
    let accepts = |zone: &str| {
        activity_log::handlers::exports::parse_spec(
            serde_json::json!({ "timeZone": zone })
                .to_string()
                .as_bytes(),
            chrono::Utc::now(),
        )
        .is_ok()
    };
    assert!(listed.iter().all(|z| accepts(z)));
    assert!(!accepts("KAUfURIza0w/8HA") && !accepts("asia/taipei"));

    let locales: BTreeSet<String> = set(schema(&doc, "Locale")["enum"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect::<Vec<_>>())
        .unwrap_or_default());
    assert_eq!(
        locales,
        set([ExportLocale::English, ExportLocale::TraditionalChinese].map(ExportLocale::as_str))
    );
    assert_eq!(
        activity_log::domain::names::fields_of::<ExportLocale>().len(),
        locales.len(),
        "every language the code has is in the contract"
    );
}

/// Every error code the code can produce (the variants of `ErrorCode`, which every error is
/// built with) is in the contract's enum, and the enum has no other.
#[test]
fn error_codes_match_the_code() {
    let doc = contract();
    let in_contract = set(schema(&doc, "ErrorCode")["enum"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c.as_str()));
    let produced: BTreeSet<String> = fields_of::<ErrorCode>()
        .iter()
        .map(|c| (*c).to_owned())
        .collect();
    assert!(produced.len() >= 15, "{produced:?}");
    assert_eq!(produced, in_contract);
}
