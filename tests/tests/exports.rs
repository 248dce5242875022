//! Exports in-process against the emulator: the export API handler, the worker (launched inline
//! as Lambda would, asynchronously), multipart upload to S3, the presigned link followed with a
//! plain HTTP client, and the file parsed back.

use std::sync::Arc;
use std::time::Duration;

use activity_log::app::App;
use activity_log::domain::ExportLocale;
use activity_log::domain::feed::FeedEntry;
use activity_log::domain::{ActivityId, CustomerId, PartnerId};
use activity_log::export::csv::{header as csv_header, restore};
use activity_log::handlers::{exports, query, record};
use activity_log::store::dynamodb::DynamoStore;
use activity_log::store::memory::MemoryStore;
use activity_log::store::s3::S3Blobs;
use activity_log::store::{ActivityReader, ChainIndex, FeedAppend, FeedLog as _};
use activity_log::testing::ApiRequest;
use activity_log::testing::doubles::InlineLauncher;
use activity_log::testing::fixtures::{assert_no_formula_cell, minutes_ago as at};
use activity_log_tests::{hundred_thousand_rows, isolated_app};
use activity_log_tests::{json_body as body, newest_first_ids};
use chrono::{TimeDelta, Utc};
use lambda_http::{Body, Response};
use serde_json::{Value, json};

/// Runs the worker in the background, reading activities from `R` (the app's DynamoDB store
/// unless a test says otherwise).
type Launcher = InlineLauncher;

fn launcher_with<R: ActivityReader + ChainIndex + 'static>(
    app: &App,
    reader: impl Into<Arc<R>>,
) -> Launcher {
    InlineLauncher::new::<R, S3Blobs, DynamoStore, S3Blobs>(
        app.config.clone(),
        reader,
        app.blobs.clone(),
        app.store.clone(),
        app.blobs.clone(),
    )
}

fn launcher(app: &App) -> Launcher {
    launcher_with::<DynamoStore>(app, app.store.clone())
}

async fn export_request(
    app: &Arc<App>,
    partner: &str,
    roles: &[&str],
    payload: Value,
) -> Response<Body> {
    export_request_with(app, &launcher(app), partner, roles, payload).await
}

async fn export_request_with(
    app: &Arc<App>,
    launcher: &Launcher,
    partner: &str,
    roles: &[&str],
    payload: Value,
) -> Response<Body> {
    let req = ApiRequest::post("/exports", payload.to_string())
        .caller(partner, roles)
        .build();
    exports::handle(&app.config, &app.store, &app.blobs, launcher, req).await
}

async fn export_status(app: &Arc<App>, partner: &str, id: &str) -> Response<Body> {
    let req = ApiRequest::get("/exports/{exportId}")
        .path_param("exportId", id)
        .caller(partner, &["SalesAgent"])
        .build();
    exports::handle(&app.config, &app.store, &app.blobs, &launcher(app), req).await
}

/// Starts an export and polls it to an end state; returns the final job.
async fn run_export(app: &Arc<App>, partner: &str, payload: Value) -> Value {
    run_export_with(app, &launcher(app), partner, payload).await
}

async fn run_export_with(
    app: &Arc<App>,
    launcher: &Launcher,
    partner: &str,
    payload: Value,
) -> Value {
    let r = export_request_with(app, launcher, partner, &["BillingAdmin"], payload).await;
    assert_eq!(r.status(), 202, "{}", body(&r));
    let id = body(&r)["id"].as_str().unwrap_or_default().to_owned();
    assert_eq!(r.headers()["location"], format!("/exports/{id}").as_str());
    // Poll the status as a client would, with a deadline.
    let deadline = std::time::Instant::now() + Duration::from_secs(600);
    loop {
        let job = body(&export_status(app, partner, &id).await);
        if matches!(job["status"].as_str(), Some("succeeded" | "failed")) {
            return job;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "export did not finish: {job}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn download(job: &Value) -> (reqwest::header::HeaderMap, Vec<u8>) {
    let url = job["downloadUrl"]
        .as_str()
        .unwrap_or_else(|| panic!("no link in {job}"));
    let r = reqwest::get(url)
        .await
        .unwrap_or_else(|e| panic!("download: {e}"));
    assert_eq!(r.status(), 200);
    let headers = r.headers().clone();
    (
        headers,
        r.bytes().await.map(|b| b.to_vec()).unwrap_or_default(),
    )
}

async fn seed(app: &App, partner: &str, items: &[Value]) {
    for chunk in items.chunks(activity_log::testing::fixtures::SEED_CHUNK) {
        let req = ApiRequest::post("/activities", Value::Array(chunk.to_vec()).to_string())
            .caller(partner, &["ActivityWriter"])
            .build();
        let r = record::handle(&app.config, &app.store, &app.blobs, req).await;
        assert_eq!(r.status(), 201, "{}", body(&r));
    }
}

const EVIL_NAME: &str = r#"Contoso;=HYPERLINK("http://evil.example","x")"#;

fn sample() -> Vec<Value> {
    let mut items: Vec<Value> = (0..30)
        .map(|i| json!({"id": format!("a{i:03}"), "customerId": "tw-01", "customerName": "台北雲端科技股份有限公司",
                        "action": "placed an order", "partnerUser": "chen.wei@partner.example",
                        "occurredAt": at(i * 7 + 1), "details": {"n": i, "note": "line, with \"quotes\""}}))
        .collect();
    items.push(json!({"id": "evil", "customerId": "tw-01", "customerName": "=HYPERLINK(\"http://evil.example\",\"x\")",
                      "action": "-2+3", "partnerUser": "@admin", "occurredAt": at(500)}));
    // Formulas after a `;` or `,`, for spreadsheets that split lines on `;` (German, French, …).
    // (A tab cannot be recorded: free-text fields refuse control characters.)
    items.push(json!({"id": "evil-semicolon", "customerId": "tw-01", "customerName": EVIL_NAME,
                      "action": "a,=1+1;\"=2\"", "partnerUser": "ann;@admin,-1", "resourceType": "x;+y",
                      "occurredAt": at(510), "details": {"n": [1, -2], "f": "x;=1"}}));
    items.push(json!({"id": "big", "customerId": "tw-01", "customerName": "Contoso", "action": "placed an order",
                      "partnerUser": "ann", "occurredAt": at(600), "details": {"products": vec!["SKU-0001"; 5000]}}));
    items
}

#[tokio::test]
async fn csv_export_is_excel_compatible_and_complete() {
    let app = Arc::new(isolated_app().await);
    let items = sample();
    seed(&app, "p1", &items).await;
    seed(&app, "p2", &[json!({"customerId": "tw-01", "customerName": "Other tenant", "action": "x", "partnerUser": "u"})]).await;

    let job = run_export(
        &app,
        "p1",
        json!({"customerId": "tw-01", "timeZone": "Asia/Taipei"}),
    )
    .await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["rowCount"], items.len());
    let expires = job["downloadUrlExpiresAt"]
        .as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
    assert!(expires.is_some_and(|e| e.with_timezone(&Utc) <= Utc::now() + TimeDelta::minutes(15)));

    let (headers, bytes) = download(&job).await;
    assert_eq!(job["bytes"], bytes.len());
    assert!(
        headers["content-disposition"]
            .to_str()
            .unwrap_or_default()
            .starts_with("attachment; filename=\"activity-log-tw-01-")
    );
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap_or_default()
            .starts_with("text/csv")
    );
    assert!(bytes.starts_with(b"\xEF\xBB\xBF"), "BOM");
    let text = String::from_utf8(bytes[3..].to_vec()).unwrap_or_default();
    assert!(text.ends_with("\r\n"), "CRLF line ends");
    assert!(!text.replace("\r\n", "").contains('\n'), "no bare LF");

    let mut reader = csv::ReaderBuilder::new().from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .map(|h| h.iter().map(str::to_owned).collect())
        .unwrap_or_default();
    // The English header (its words are held by the encoder's own tests).
    assert_eq!(header, csv_header(ExportLocale::English));
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap_or_default()).collect();
    let ids: Vec<&str> = rows.iter().map(|r| &r[7]).collect();
    let expected = newest_first_ids(&items);
    assert_eq!(ids, expected, "every row once, newest first");
    assert_eq!(&rows[0][1], "台北雲端科技股份有限公司");
    assert!(
        rows.iter().all(|r| r[0].ends_with("+08:00")),
        "Taipei offsets"
    );
    let first_utc = chrono::DateTime::parse_from_rfc3339(&rows[0][0])
        .map(|t| t.with_timezone(&Utc))
        .ok();
    assert_eq!(
        first_utc.map(activity_log::domain::time::format).as_deref(),
        items
            .iter()
            .find(|i| i["id"] == expected[0].as_str())
            .and_then(|i| i["occurredAt"].as_str())
    );
    let evil = rows
        .iter()
        .find(|r| &r[7] == "evil")
        .unwrap_or_else(|| panic!("evil row"));
    assert_eq!(&evil[1], "'=HYPERLINK(\"http://evil.example\",\"x\")");
    assert_eq!((&evil[2], &evil[3]), ("'-2+3", "'@admin"));
    let semicolon = rows
        .iter()
        .find(|r| &r[7] == "evil-semicolon")
        .unwrap_or_else(|| panic!("evil-semicolon row"));
    assert_eq!(
        &semicolon[1],
        "Contoso;'=HYPERLINK(\"http://evil.example\",\"x\")"
    );
    assert_eq!(
        (&semicolon[2], &semicolon[3], &semicolon[5]),
        ("a,'=1+1;'\"=2\"", "ann;'@admin,'-1", "x;'+y")
    );
    // `restore` gives back the recorded text, the details as the query API returns them.
    for (row, item) in [(evil, &items[30]), (semicolon, &items[31])] {
        for (column, field) in [
            (1, "customerName"),
            (2, "action"),
            (3, "partnerUser"),
            (5, "resourceType"),
        ] {
            assert_eq!(
                restore(&row[column]),
                item[field].as_str().unwrap_or_default(),
                "{field}"
            );
        }
    }
    assert_eq!(
        serde_json::from_str::<Value>(&restore(&semicolon[8])).ok(),
        Some(json!({"n": [1, -2], "f": "x;=1"}))
    );
    assert_no_formula_cell(&text);
    let big = rows
        .iter()
        .find(|r| &r[7] == "big")
        .unwrap_or_else(|| panic!("big row"));
    assert_eq!(
        serde_json::from_str::<Value>(&restore(&big[8])).ok(),
        Some(json!({"products": vec!["SKU-0001"; 5000]})),
        "details kept in the bucket are exported whole"
    );

    // Another tenant cannot see the job.
    let id = job["id"].as_str().unwrap_or_default();
    assert_eq!(export_status(&app, "p2", id).await.status(), 404);
}

#[tokio::test]
async fn json_lines_export_matches_the_query_api() {
    let app = Arc::new(isolated_app().await);
    let items = sample();
    seed(&app, "p1", &items[..30]).await;
    // Placed in the tenant's feed, as the sequencer does: each line carries its position.
    let entries: Vec<FeedEntry> = items[..30]
        .iter()
        .map(|a| FeedEntry {
            customer_id: CustomerId::parse(a["customerId"].as_str().unwrap_or_default())
                .unwrap_or_else(|e| panic!("{e}")),
            activity_id: ActivityId::parse(a["id"].as_str().unwrap_or_default())
                .unwrap_or_else(|e| panic!("{e}")),
            expires_at: i64::MAX,
        })
        .collect();
    let partner = PartnerId::parse("p1").unwrap_or_else(|e| panic!("{e}"));
    let placed = app.store.append_feed(&partner, 0, &entries).await;
    assert_eq!(placed.ok(), Some(FeedAppend::Appended));
    let job = run_export(
        &app,
        "p1",
        json!({"format": "jsonl", "timeZone": "Asia/Taipei"}),
    )
    .await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let (headers, bytes) = download(&job).await;
    assert_eq!(headers["content-type"], "application/x-ndjson");
    let lines: Vec<Value> = String::from_utf8(bytes)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or(Value::Null))
        .collect();
    let req = ApiRequest::get("/activities")
        .query("limit", "1000")
        .caller("p1", &["GlobalAdmin"])
        .build();
    let listed = body(&query::handle(&app.config, &app.store, &app.blobs, req).await);
    let mut positions: Vec<u64> = lines
        .iter()
        .filter_map(|l| l["feedPosition"].as_u64())
        .collect();
    positions.sort_unstable();
    assert_eq!(positions, (1..=30).collect::<Vec<u64>>());
    assert_eq!(
        Value::Array(lines),
        listed["items"],
        "one line per activity, as the API returns it (UTC)"
    );
}

#[tokio::test]
async fn bad_export_requests_are_refused_with_json_errors() {
    let app = Arc::new(isolated_app().await);
    for (payload, code) in [
        (json!({"timeZone": "Mars/Olympus"}), "InvalidParameter"),
        (json!({"format": "xlsx"}), "InvalidParameter"),
        (
            json!({"from": "2026-11-02", "to": "2026-11-01"}),
            "InvalidDateRange",
        ),
        (json!({"limit": 5}), "InvalidBody"),
        (json!(["x"]), "InvalidBody"),
        (json!({"status": "done"}), "InvalidParameter"),
    ] {
        let r = export_request(&app, "p1", &["GlobalAdmin"], payload.clone()).await;
        assert_eq!(r.status(), 400, "{payload}");
        assert_eq!(body(&r)["error"]["code"], code, "{payload}");
    }
    assert_eq!(
        export_request(&app, "p1", &["ActivityWriter"], json!({}))
            .await
            .status(),
        403
    );
    let anonymous = ApiRequest::post("/exports", "{}").build();
    let r = exports::handle(
        &app.config,
        &app.store,
        &app.blobs,
        &launcher(&app),
        anonymous,
    )
    .await;
    assert_eq!(r.status(), 401);
    assert_eq!(
        export_status(&app, "p1", "01JZZZZZZZZZZZZZZZZZZZZZZZ")
            .await
            .status(),
        404
    );
    assert_eq!(export_status(&app, "p1", "not-an-id").await.status(), 404);
}

#[tokio::test]
async fn a_failed_export_leaves_no_file_and_says_why() {
    let mut app = isolated_app().await;
    seed(&app, "p1", &sample()[..3]).await;
    // The worker writes into a bucket that does not exist: the upload cannot start.
    app.blobs = activity_log::store::s3::S3Blobs::new(
        app.blobs.client().clone(),
        "no-such-bucket-for-exports",
    );
    let app = Arc::new(app);
    let job = run_export(&app, "p1", json!({})).await;
    assert_eq!(job["status"], "failed", "{job}");
    assert!(job["error"].as_str().is_some_and(|e| !e.is_empty()));
    assert!(job.get("downloadUrl").is_none());
}

/// 100,000 rows through the whole export path — API, job records in DynamoDB, worker, multipart
/// upload to S3, presigned download — with the rows read from the in-memory store in 1 MB-sized
/// pages ([`hundred_thousand_rows`]).
#[tokio::test]
async fn exports_100000_rows() {
    let app = Arc::new(isolated_app().await);
    let partner = PartnerId::parse("p1").unwrap_or_else(|e| panic!("{e}"));
    let source = Arc::new(hundred_thousand_rows(&partner).await);
    let started = std::time::Instant::now();
    let job = run_export_with(
        &app,
        &launcher_with::<MemoryStore>(&app, source),
        "p1",
        json!({}),
    )
    .await;
    eprintln!("exported 100000 rows in {:?}: {job}", started.elapsed());
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["rowCount"], 100_000);
    let (_, bytes) = download(&job).await;
    assert_eq!(job["bytes"], bytes.len());
    assert!(
        bytes.len() > activity_log::config::DEFAULT_PART_BYTES,
        "more than one part"
    );
    let mut reader = csv::Reader::from_reader(&bytes[3..]);
    let mut ids = std::collections::HashSet::new();
    let mut previous = String::from("~");
    for row in reader.records() {
        let row = row.unwrap_or_else(|e| panic!("CSV: {e}"));
        assert!(row[0] <= *previous, "newest first");
        previous = row[0].to_owned();
        assert!(ids.insert(row[7].to_owned()), "{} twice", &row[7]);
    }
    assert_eq!(ids.len(), 100_000);
}

/// A Parquet export's file goes up from the local disk where the worker kept it: in one
/// PutObject when it fits a part, else as a multipart upload of parts read from the file, each
/// with the export's content type and file name. A file that cannot be read leaves nothing.
#[tokio::test]
async fn a_file_goes_up_from_the_disk_in_one_request_or_in_parts() {
    use activity_log::store::ExportObjects;
    use std::io::Write;

    let app = isolated_app().await;
    let s3 = app.blobs.client();
    let bucket = app.blobs.bucket();
    let part = activity_log::config::DEFAULT_PART_BYTES;
    let large: Vec<u8> = (0..2 * part + 12_345)
        .map(|i| (i * 7 % 251) as u8)
        .collect();
    let small = b"PAR1 one request".to_vec();
    for (name, bytes, etag_parts) in [("large", &large, Some("-3")), ("small", &small, None)] {
        let mut file = tempfile::NamedTempFile::new().unwrap_or_else(|e| panic!("{e}"));
        file.write_all(bytes).unwrap_or_else(|e| panic!("{e}"));
        let key = format!("exports/p1/x/{name}.parquet");
        let disposition = format!("attachment; filename=\"{name}.parquet\"");
        app.blobs
            .put_file(
                &key,
                file.path(),
                "application/vnd.apache.parquet",
                &disposition,
                part,
            )
            .await
            .unwrap_or_else(|e| panic!("{key}: {e}"));
        let got = s3
            .get_object()
            .bucket(bucket)
            .key(&key)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GetObject {key}: {e}"));
        assert_eq!(got.content_type(), Some("application/vnd.apache.parquet"));
        assert_eq!(got.content_disposition(), Some(disposition.as_str()));
        let etag = got.e_tag().unwrap_or_default().trim_matches('"').to_owned();
        match etag_parts {
            Some(parts) => assert!(etag.ends_with(parts), "{name}: three parts, {etag}"),
            None => assert!(!etag.contains('-'), "{name}: one request, {etag}"),
        }
        let body = got.body.collect().await.map(|b| b.to_vec());
        assert!(
            body.as_ref().is_ok_and(|b| b == bytes),
            "{name}: the file's bytes"
        );
    }

    let missing = app
        .blobs
        .put_file(
            "exports/p1/x/missing.parquet",
            &std::env::temp_dir().join("activity-log-no-such-file.parquet"),
            "application/vnd.apache.parquet",
            "attachment",
            part,
        )
        .await;
    assert!(missing.is_err(), "{missing:?}");
    let listed = s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix("exports/p1/x/missing")
        .send()
        .await
        .unwrap_or_else(|e| panic!("ListObjectsV2: {e}"));
    assert_eq!(listed.key_count(), Some(0), "no object");
    let uploads = s3
        .list_multipart_uploads()
        .bucket(bucket)
        .send()
        .await
        .unwrap_or_else(|e| panic!("ListMultipartUploads: {e}"));
    assert!(uploads.uploads().is_empty(), "no upload left open");
}

/// 40 activities over five days (09:00 UTC and after, recorded oldest first) of three customers:
/// subscriptions changed and cancelled, orders, invoices viewed, passwords reset, sign-ins
/// (no resource type), billing profiles in progress, users removed; one with details large
/// enough to be kept in the bucket.
fn analytics_sample() -> Vec<Value> {
    let kinds = [
        ("changed a subscription", Some("subscription"), "succeeded"),
        ("placed an order", Some("order"), "succeeded"),
        ("cancelled the subscription", Some("subscription"), "failed"),
        ("viewed the invoice", Some("invoice"), "succeeded"),
        ("reset a user password", Some("user"), "failed"),
        ("signed in to the portal", None, "succeeded"),
        (
            "updated the billing profile",
            Some("billingProfile"),
            "inProgress",
        ),
        ("removed a user", Some("user"), "succeeded"),
    ];
    let customers = [
        ("contoso", "Contoso Ltd."),
        ("fabrikam", "Fabrikam, Inc."),
        ("taipei-cloud", "台北雲端科技股份有限公司"),
    ];
    let today = Utc::now()
        .date_naive()
        .and_hms_opt(9, 0, 0)
        .unwrap_or_default()
        .and_utc();
    let mut items = Vec::new();
    for days_ago in (1..=5).rev() {
        for k in 0..8usize {
            let (action, resource, status) = kinds[(k + days_ago as usize) % kinds.len()];
            let (customer, name) = customers[k % customers.len()];
            let at = today - TimeDelta::days(days_ago) + TimeDelta::minutes(k as i64 * 7);
            let user = ["ann@partner.example", "bo@partner.example"][(k + days_ago as usize) % 2];
            let mut a = json!({
                "id": format!("an-{days_ago}-{k}"),
                "customerId": customer,
                "customerName": name,
                "action": action,
                "partnerUser": user,
                "occurredAt": activity_log::domain::time::format(at),
                "status": status,
                "details": {"n": k, "sku": format!("SKU-{days_ago}{k}")},
            });
            if let Some(r) = resource {
                a["resourceType"] = json!(r);
            }
            if days_ago == 3 && k == 5 {
                a["details"] = json!({"products": (0..400).map(|p| format!("product {p:04} with a long name")).collect::<Vec<_>>()});
            }
            items.push(a);
        }
    }
    items
}

/// The files of a finished Parquet export, downloaded through their links into `dir` under
/// their paths; checks each against the manifest's digest.
async fn download_files(job: &Value, dir: &std::path::Path) -> Vec<Value> {
    let files = job["files"]
        .as_array()
        .cloned()
        .unwrap_or_else(|| panic!("no files in {job}"));
    for f in &files {
        let path = f["path"].as_str().unwrap_or_default();
        let url = f["downloadUrl"].as_str().unwrap_or_default();
        let r = reqwest::get(url)
            .await
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(
            r.headers()["content-type"],
            "application/vnd.apache.parquet"
        );
        let bytes = r.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
        let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
        assert_eq!(
            (json!(digest), json!(bytes.len())),
            (f["sha256"].clone(), f["bytes"].clone()),
            "{path}"
        );
        let target = dir.join(path);
        std::fs::create_dir_all(target.parent().unwrap_or(dir)).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(&target, bytes).unwrap_or_else(|e| panic!("{e}"));
    }
    files
}

fn day(at: &Value) -> String {
    let t = activity_log::domain::time::parse_timestamp(at.as_str().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}"));
    t.format("%Y%m%d").to_string()
}

#[tokio::test]
async fn parquet_exports_read_in_duckdb_as_valid_ocsf_and_the_same_when_handed_over() {
    let app = Arc::new(isolated_app().await);
    let items = analytics_sample();
    seed(&app, "p1", &items).await;
    let period = json!({"format": "parquet",
                        "from": activity_log::domain::time::format(Utc::now() - TimeDelta::days(6)),
                        "to": activity_log::domain::time::format(Utc::now())});
    let job = run_export(&app, "p1", period.clone()).await;
    assert_eq!(
        (&job["status"], &job["rowCount"]),
        (&json!("succeeded"), &json!(40)),
        "{job}"
    );
    assert_eq!(job["downloadUrl"], Value::Null);
    let root = std::env::temp_dir().join(activity_log_tests::unique_name("parquet-export"));
    let (one_run, handed_over) = (root.join("one-run"), root.join("handed-over"));
    let files = download_files(&job, &one_run).await;
    assert_eq!(files.len(), 5, "a file a day: {files:?}");

    // The same export with no time at all: a run per row, each ending its file.
    let mut config = app.config.clone();
    config.exports.time_budget = Duration::ZERO;
    let zero = InlineLauncher::new::<DynamoStore, S3Blobs, DynamoStore, S3Blobs>(
        config,
        app.store.clone(),
        app.blobs.clone(),
        app.store.clone(),
        app.blobs.clone(),
    );
    let again = run_export_with(&app, &zero, "p1", period).await;
    assert_eq!(
        (&again["status"], &again["rowCount"]),
        (&json!("succeeded"), &json!(40)),
        "{again}"
    );
    assert_ne!(again["id"], job["id"]);
    assert_eq!(
        download_files(&again, &handed_over).await.len(),
        40,
        "a file per run"
    );

    // What README's queries must return, from what was recorded.
    let (first_day, last_day) = (day(&items[8]["occurredAt"]), day(&items[31]["occurredAt"]));
    let kind = |a: &Value| {
        activity_log::domain::ocsf::ActivityKind::of_action(
            a["action"].as_str().unwrap_or_default(),
        )
    };
    let mut changes: Vec<Value> = items
        .iter()
        .filter(|a| {
            let d = day(&a["occurredAt"]);
            kind(a) == activity_log::domain::ocsf::ActivityKind::Update
                && a["resourceType"] == "subscription"
                && ["contoso", "fabrikam"].contains(&a["customerId"].as_str().unwrap_or_default())
                && d >= first_day
                && d <= last_day
        })
        .map(|a| {
            json!([
                a["occurredAt"],
                a["partnerUser"],
                a["action"],
                a["customerId"]
            ])
        })
        .collect();
    changes.sort_by_key(|r| (r[0].to_string(), r[3].to_string()));
    assert!(
        !changes.is_empty(),
        "the sample has subscription changes in the period"
    );
    let mut failures = std::collections::BTreeMap::<(String, String), u64>::new();
    for a in items.iter().filter(|a| a["status"] == "failed") {
        *failures
            .entry((
                day(&a["occurredAt"]),
                a["partnerUser"].as_str().unwrap_or_default().to_owned(),
            ))
            .or_default() += 1;
    }
    let failures: Vec<Value> = failures
        .into_iter()
        .map(|((d, u), n)| json!([d, u, n]))
        .collect();
    // contoso's newest activity, as the API shows it: the head of its chain.
    let req = ApiRequest::get("/customers/{customerId}/activities")
        .path_param("customerId", "contoso")
        .query("limit", "1")
        .query(
            "from",
            &activity_log::domain::time::format(Utc::now() - TimeDelta::days(6)),
        )
        .caller("p1", &["BillingAdmin"])
        .build();
    let newest =
        body(&query::handle(&app.config, &app.store, &app.blobs, req).await)["items"][0].clone();
    let latest = vec![json!([
        newest["sequence"],
        newest["hash"],
        newest["previousHash"],
        newest["id"]
    ])];
    assert!(
        newest["sequence"].as_u64().is_some_and(|s| s > 1),
        "{newest}"
    );

    let expect = json!({
        "dir": one_run,
        "same_as": handed_over,
        "rows": 40,
        "values": {"<partner id>": "p1", "<export id>": job["id"], "<first day>": first_day, "<last day>": last_day},
        "queries": {"subscription-changes": changes, "failures-by-day": failures, "latest-link": latest},
    });
    let expect_file = root.join("expect.json");
    std::fs::write(&expect_file, expect.to_string()).unwrap_or_else(|e| panic!("{e}"));
    // In DuckDB a query's export_id is the directory's; the view adds it as Athena's
    // projection does.
    let out = std::process::Command::new(activity_log_tests::tool("python"))
        .arg(activity_log_tests::workspace_root().join("tests/analytics/check_parquet.py"))
        .arg(&expect_file)
        .output()
        .unwrap_or_else(|e| panic!("cannot run check_parquet.py: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "check_parquet.py failed:\n{stdout}");
    assert!(stdout.contains("passed, 0 failed"), "{stdout}");

    // activity-log-verify checks the downloaded files against the signed manifest.
    let manifest = reqwest::get(job["manifestUrl"].as_str().unwrap_or_default())
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .bytes()
        .await
        .unwrap_or_default();
    let manifest_file = root.join("manifest.json");
    std::fs::write(&manifest_file, &manifest).unwrap_or_else(|e| panic!("{e}"));
    // The inline launcher's worker signs with this key.
    let key = activity_log::store::Signer::public_key(
        &activity_log::testing::doubles::LocalSigner::new("inline-launcher", 7),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let key_file = root.join("key.pem");
    std::fs::write(&key_file, key.pem).unwrap_or_else(|e| panic!("{e}"));
    let verified =
        activity_log_verify::verify_parquet_files(&one_run, &manifest_file, &key_file, &[])
            .unwrap_or_else(|e| panic!("{e}"));
    let lines = verified.lines();
    assert!(
        lines
            .last()
            .is_some_and(|l| l.starts_with("OK: 40 rows of 3 customers")),
        "{lines:?}"
    );
    // A file changed, and a file slipped in, are each named.
    let first = files[0]["path"].as_str().unwrap_or_default();
    let original = std::fs::read(one_run.join(first)).unwrap_or_default();
    std::fs::write(one_run.join(first), [&original[..], b"x"].concat())
        .unwrap_or_else(|e| panic!("{e}"));
    let changed =
        activity_log_verify::verify_parquet_files(&one_run, &manifest_file, &key_file, &[]);
    assert!(
        matches!(&changed, Err(activity_log_verify::Error::Failed(m)) if m.contains(first) && m.contains("not the file the manifest describes")),
        "{changed:?}"
    );
    std::fs::write(one_run.join(first), &original).unwrap_or_else(|e| panic!("{e}"));
    let stray = one_run.join(first).with_file_name("extra.parquet");
    std::fs::copy(one_run.join(first), &stray).unwrap_or_else(|e| panic!("{e}"));
    let slipped =
        activity_log_verify::verify_parquet_files(&one_run, &manifest_file, &key_file, &[]);
    assert!(
        matches!(&slipped, Err(activity_log_verify::Error::Failed(m)) if m.contains("extra.parquet")),
        "{slipped:?}"
    );
    let _ = std::fs::remove_dir_all(&root);
}
