//! Local-stack helper used by `scripts/dev`:
//!   devtool storage <endpoint> <table> <bucket> <key-alias> <anchor-bucket>
//!                                                 create the table, bucket, signing key and anchor
//!                                                 bucket (Object Lock) in the emulator
//!   devtool seed <api-url> <writer-token>         record demo activities through the API
//!   devtool export <api-url> <reader-token>       export the demo log as CSV; prints the link
//!   devtool destination <api-url> <admin-token> <name> <url>
//!                                                 add an HTTPS webhook destination (once)
//!   devtool pump <endpoint> <table> <lambda-url>  the table's stream into the sequencer and
//!                                                 delivery under cargo lambda watch, and
//!                                                 delivery's schedule, until stopped

use std::process::ExitCode;

use chrono::{TimeDelta, Utc};
use serde_json::{Value, json};

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["storage", endpoint, table, bucket, alias, anchors] => {
            let sdk = activity_log_tests::sdk_config(endpoint).await;
            activity_log_tests::create_storage(&sdk, table, bucket).await;
            let key = activity_log_tests::signing_key(&sdk, alias).await;
            let bucket_made = activity_log::testing::storage::create_anchor_bucket(
                &activity_log::app::s3_client(&sdk, &Default::default()),
                anchors,
                365,
            )
            .await;
            bucket_made
                .map(|()| {
                    format!(
                        "table {table}, bucket {bucket}, signing key {alias} ({key}) and anchor bucket {anchors} are ready"
                    )
                })
                .map_err(|e| format!("anchor bucket {anchors}: {e}"))
        }
        ["seed", api, token] => seed(api, token, demo()).await,
        ["seed-other", api, token] => seed(api, token, other_partner()).await,
        ["export", api, token] => export(api, token).await,
        ["destination", api, token, name, url] => destination(api, token, name, url).await,
        ["pump", endpoint, table, lambda] => pump(endpoint, table, lambda).await,
        ["openapi-time-zones"] => openapi_time_zones(),
        _ => Err("usage: devtool storage <endpoint> <table> <bucket> <key-alias> <anchor-bucket> | devtool seed|seed-other <api-url> <writer-token> | devtool export <api-url> <reader-token> | devtool destination <api-url> <admin-token> <name> <url> | devtool pump <endpoint> <table> <lambda-url> | devtool openapi-time-zones".into()),
    };
    match result {
        Ok(msg) => {
            println!("{msg}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("devtool: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Plays the stream's event source mapping: every batch of the table's stream to the
/// sequencer, until the process is stopped.
async fn pump(endpoint: &str, table: &str, lambda: &str) -> Result<String, String> {
    use activity_log_tests::stream_pump::{
        DELIVERY, SEQUENCER, Stream, invoke, pump_into_function, tick_function,
    };
    // Delivery on threads of its own: the stream's new feed entries, and its schedule.
    pump_into_function(endpoint, table, lambda, DELIVERY);
    tick_function(
        lambda,
        DELIVERY.function,
        std::time::Duration::from_secs(10),
    );
    let http = reqwest::Client::new();
    let stream = Stream::of_table(endpoint, table, &SEQUENCER).await?;
    eprintln!(
        "devtool: pumping the stream of {table} into sequence-feed and deliver-feed at {lambda}"
    );
    stream
        .pump(|event| invoke(&http, lambda, SEQUENCER.function, event))
        .await
        .map(|()| String::new())
}

/// Writes the time zone names the code accepts into openapi.yaml's `TimeZone` schema.
fn openapi_time_zones() -> Result<String, String> {
    let path = activity_log_tests::workspace_root().join("openapi.yaml");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let updated = activity_log_tests::with_time_zone_enum(&text).ok_or_else(|| {
        format!(
            "openapi.yaml has no {:?} … {:?} markers",
            activity_log_tests::TIME_ZONES_BEGIN.trim(),
            activity_log_tests::TIME_ZONES_END.trim()
        )
    })?;
    std::fs::write(&path, updated).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(format!(
        "openapi.yaml lists {} time zone names",
        activity_log::domain::time::time_zone_names().count()
    ))
}

fn at(hours_ago: i64) -> String {
    activity_log::domain::time::format(Utc::now() - TimeDelta::hours(hours_ago))
}

/// A few customers (one with a Chinese company name), the portal's kinds of actions, and one
/// order with many products whose details are kept in the bucket.
fn demo() -> Vec<Value> {
    let customers = [
        ("contoso", "Contoso Ltd."),
        ("taipei-cloud", "台北雲端科技股份有限公司"),
        ("fabrikam", "Fabrikam, Inc."),
        ("northwind", "Northwind Traders"),
    ];
    let actions = [
        ("created a referral", "referral", "succeeded"),
        ("placed an order", "order", "succeeded"),
        ("updated the billing profile", "billingProfile", "succeeded"),
        ("reset a user password", "user", "succeeded"),
        ("assigned licenses", "license", "failed"),
        ("requested a support ticket", "supportTicket", "inProgress"),
    ];
    let users = [
        "ann@partner.example",
        "bo@partner.example",
        "chen.wei@partner.example",
    ];
    let mut items = Vec::new();
    for (i, (id, name)) in customers.iter().enumerate() {
        for j in 0..6 {
            let (action, resource, status) = actions[(i + j) % actions.len()];
            items.push(json!({
                "id": format!("demo-{id}-{j}"),
                "customerId": id,
                "customerName": name,
                "action": action,
                "partnerUser": users[(i + j) % users.len()],
                "occurredAt": at((i * 37 + j * 53) as i64 + 1),
                "resourceType": resource,
                "status": status,
                "details": {"source": "demo", "ticket": format!("T-{}", 1000 + i * 10 + j)},
            }));
        }
    }
    // Three months of older history, one activity per customer every two days: the default
    // month holds more than one page of the page's 50 rows, the last 90 days several.
    for (i, (id, name)) in customers.iter().enumerate() {
        for k in 0..40_usize {
            let (action, resource, status) = actions[(i + k) % actions.len()];
            items.push(json!({
                "id": format!("demo-{id}-history-{k:02}"),
                "customerId": id,
                "customerName": name,
                "action": action,
                "partnerUser": users[(i + 2 * k) % users.len()],
                "occurredAt": at((17 * 24 + k * 48 + i * 5) as i64),
                "resourceType": resource,
                "status": status,
                "details": {"source": "demo", "ticket": format!("H-{}", 2000 + i * 100 + k)},
            }));
        }
    }
    let products: Vec<Value> = (1..=400)
        .map(|n| json!({"sku": format!("CFQ7TTC0LH{n:04}"), "name": format!("Microsoft 365 E{} seat bundle {n}", 3 + n % 3), "quantity": n % 50 + 1, "unitPrice": 32.0 + f64::from(n % 9)}))
        .collect();
    items.push(json!({
        "id": "demo-taipei-cloud-big-order",
        "customerId": "taipei-cloud",
        "customerName": "台北雲端科技股份有限公司",
        "action": "placed an order",
        "partnerUser": "chen.wei@partner.example",
        "occurredAt": at(2),
        "resourceType": "order",
        "details": {"orderId": "ORD-2026-0042", "currency": "TWD", "products": products},
    }));
    items
}

/// Another partner's few activities: its admin sees these and none of demo-partner's.
fn other_partner() -> Vec<Value> {
    [
        ("placed an order", "order", 3),
        ("created a referral", "referral", 30),
        ("updated the billing profile", "billingProfile", 200),
    ]
    .iter()
    .enumerate()
    .map(|(n, (action, resource, hours_ago))| {
        json!({
            "id": format!("other-adatum-{n}"),
            "customerId": "adatum",
            "customerName": "Adatum Corporation",
            "action": action,
            "partnerUser": "olivia@other-partner.example",
            "occurredAt": at(*hours_ago),
            "resourceType": resource,
        })
    })
    .collect()
}

async fn seed(api: &str, token: &str, items: Vec<Value>) -> Result<String, String> {
    let client = reqwest::Client::new();
    for chunk in items.chunks(20) {
        let r = client
            .post(format!("{api}/activities"))
            .bearer_auth(token)
            .json(&chunk)
            .send()
            .await
            .map_err(|e| format!("POST /activities: {e}"))?;
        let status = r.status();
        if !status.is_success() {
            let text = r.text().await.unwrap_or_default();
            return Err(format!("POST /activities answered {status}: {text}"));
        }
    }
    Ok(format!("seeded {} activities", items.len()))
}

/// Adds an HTTPS webhook destination named `name` unless the partner has one of that name.
async fn destination(api: &str, token: &str, name: &str, url: &str) -> Result<String, String> {
    let client = reqwest::Client::new();
    let listed: Value = client
        .get(format!("{api}/destinations"))
        .bearer_auth(token)
        .send()
        .await
        .map_err(|e| format!("GET /destinations: {e}"))?
        .json()
        .await
        .map_err(|e| format!("GET /destinations: {e}"))?;
    let exists = listed["items"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|d| d["name"] == name);
    if exists {
        return Ok(format!("destination {name:?} is there already"));
    }
    let r = client
        .post(format!("{api}/destinations"))
        .bearer_auth(token)
        .json(&json!({"type": "https", "name": name, "url": url}))
        .send()
        .await
        .map_err(|e| format!("POST /destinations: {e}"))?;
    let status = r.status();
    let text = r.text().await.unwrap_or_default();
    if status != reqwest::StatusCode::CREATED {
        return Err(format!("POST /destinations answered {status}: {text}"));
    }
    Ok(format!("destination {name:?} added"))
}

/// Starts a CSV export of the whole demo log and waits for it; prints the download link.
async fn export(api: &str, token: &str) -> Result<String, String> {
    let client = reqwest::Client::new();
    let r = client
        .post(format!("{api}/exports"))
        .bearer_auth(token)
        .json(&json!({"timeZone": "Asia/Taipei"}))
        .send()
        .await
        .map_err(|e| format!("POST /exports: {e}"))?;
    if r.status() != reqwest::StatusCode::ACCEPTED {
        return Err(format!("POST /exports answered {}", r.status()));
    }
    let job: Value = r.json().await.map_err(|e| e.to_string())?;
    let id = job["id"].as_str().ok_or("no export id")?.to_owned();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(600);
    loop {
        let job: Value = client
            .get(format!("{api}/exports/{id}"))
            .bearer_auth(token)
            .send()
            .await
            .map_err(|e| format!("GET /exports/{id}: {e}"))?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        match job["status"].as_str() {
            Some("succeeded") => {
                return job["downloadUrl"]
                    .as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| "no link".into());
            }
            Some("failed") => return Err(format!("export failed: {}", job["error"])),
            _ if std::time::Instant::now() > deadline => {
                return Err("export did not finish in 10 minutes".into());
            }
            _ => tokio::time::sleep(std::time::Duration::from_millis(250)).await,
        }
    }
}
