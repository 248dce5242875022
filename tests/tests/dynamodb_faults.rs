//! DynamoDB failing under the handlers: a loopback proxy in front of the emulator injects
//! throttling, 500/503s, lost responses and `UnprocessedKeys` into the real SDK client's calls.
//! Pass means the caller sees success or a retryable 429/503 with `Retry-After`, never a partial
//! write reported as success, and a retry of the same request stores each activity exactly once.

use activity_log::app::App;
use activity_log::domain::{ExportStatus, PartnerId};
use activity_log::handlers::export_worker::{self, RunOutcome, WorkerError};
use activity_log::handlers::query;
use activity_log::launch::WorkerEvent;
use activity_log::store::ExportJobs;
use activity_log::testing::ApiRequest;
use activity_log::testing::doubles::RecordingLauncher;
use activity_log::testing::fixtures;
use activity_log_tests::fault_proxy::{Fault, FaultProxy};
use activity_log_tests::{app_behind_proxy, ids, json_body as body};
use chrono::{TimeDelta, Utc};
use lambda_http::{Body, Response};
use serde_json::{Value, json};

const READER: &[&str] = &["BillingAdmin"];
/// More than the SDK's standard retry mode attempts, so the fault reaches the handler.
const PERSISTENT: usize = 1_000;

/// The same batch on every call (a retry must repeat the content exactly).
fn batch(n: usize) -> Value {
    static NOW: std::sync::OnceLock<chrono::DateTime<Utc>> = std::sync::OnceLock::new();
    let now = *NOW.get_or_init(Utc::now);
    Value::Array(
        (0..n)
            .map(|i| {
                json!({"id": format!("a{i:03}"), "customerId": "c1", "customerName": "Contoso Ltd.",
                   "action": "changed a subscription", "partnerUser": "ann@partner.example",
                   "occurredAt": activity_log::domain::time::format(now - TimeDelta::seconds(i as i64))})
            })
            .collect(),
    )
}

async fn post(app: &App, payload: &Value) -> Response<Body> {
    fixtures::record(&app.config, &app.store, &app.blobs, "p1", payload).await
}

/// Records `payload`, which must succeed (201); the answer's body.
async fn recorded(app: &App, payload: &Value) -> Value {
    let r = post(app, payload).await;
    assert_eq!(r.status(), 201, "{}", body(&r));
    body(&r)
}

async fn list(app: &App) -> Response<Body> {
    let req = ApiRequest::get("/activities")
        .query("limit", "1000")
        .caller("p1", READER)
        .build();
    query::handle(&app.config, &app.store, &app.blobs, req).await
}

/// Every stored id, read with no fault armed.
async fn stored_ids(app: &App, proxy: &FaultProxy) -> Vec<String> {
    proxy.heal();
    let r = list(app).await;
    assert_eq!(r.status(), 200, "{}", body(&r));
    let mut all = ids(&body(&r));
    all.sort();
    all
}

fn expected_ids(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("a{i:03}")).collect()
}

/// A retryable error: the status, a `Retry-After` header and the JSON error shape.
fn assert_retryable(r: &Response<Body>, status: u16, code: &str) {
    assert_eq!(r.status(), status, "{}", body(r));
    assert!(
        r.headers().contains_key("retry-after"),
        "no Retry-After on {status}"
    );
    let b = body(r);
    assert_eq!(b["error"]["code"], code, "{b}");
    assert!(
        b["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
}

#[tokio::test]
async fn throttling_the_sdk_retries_away_is_invisible_to_the_caller() {
    let (app, proxy) = app_behind_proxy().await;
    proxy.inject("TransactWriteItems", Fault::Throttle, 1);
    proxy.inject("TransactWriteItems", Fault::InternalError, 1);
    recorded(&app, &batch(5)).await;
    assert_eq!(proxy.injected("TransactWriteItems"), 2);
    assert_eq!(stored_ids(&app, &proxy).await, expected_ids(5));
}

#[tokio::test]
async fn persistent_throttling_is_a_429_that_wrote_nothing_and_the_retry_writes_once() {
    let (app, proxy) = app_behind_proxy().await;
    for fault in [Fault::Throttle, Fault::ThroughputExceeded] {
        proxy.inject("TransactWriteItems", fault, PERSISTENT);
        let r = post(&app, &batch(25)).await;
        assert_retryable(&r, 429, "Throttled");
        assert!(stored_ids(&app, &proxy).await.is_empty(), "{fault:?}");
    }
    assert!(proxy.injected("TransactWriteItems") >= 2 * 3);
    recorded(&app, &batch(25)).await;
    assert_eq!(stored_ids(&app, &proxy).await, expected_ids(25));
}

#[tokio::test]
async fn persistent_server_errors_are_a_503_that_wrote_nothing() {
    let (app, proxy) = app_behind_proxy().await;
    for fault in [
        Fault::InternalError,
        Fault::Unavailable,
        Fault::BareServerError,
    ] {
        proxy.inject("TransactWriteItems", fault, PERSISTENT);
        let r = post(&app, &batch(10)).await;
        assert_retryable(&r, 503, "ServiceUnavailable");
        assert!(stored_ids(&app, &proxy).await.is_empty(), "{fault:?}");
    }
    recorded(&app, &batch(10)).await;
    assert_eq!(stored_ids(&app, &proxy).await, expected_ids(10));
}

/// The write lands but every answer is lost: the caller sees a 503, not a success; its retry
/// is recognised as the same batch and nothing is stored twice.
#[tokio::test]
async fn a_write_whose_answer_was_lost_is_retried_without_duplicates() {
    let (app, proxy) = app_behind_proxy().await;
    proxy.inject("TransactWriteItems", Fault::LoseResponse, PERSISTENT);
    let r = post(&app, &batch(20)).await;
    assert_retryable(&r, 503, "ServiceUnavailable");
    assert!(proxy.forwarded("TransactWriteItems") >= 1);
    // The first attempt was applied; the SDK's retries found the items there (condition check).
    assert_eq!(stored_ids(&app, &proxy).await, expected_ids(20));

    let r = recorded(&app, &batch(20)).await;
    assert_eq!(r["items"].as_array().map(Vec::len), Some(20));
    assert_eq!(stored_ids(&app, &proxy).await, expected_ids(20));
}

/// The retry of a stored batch reads the existing items with `BatchGetItem`; keys it leaves
/// unprocessed are asked for again until every item is back.
#[tokio::test]
async fn unprocessed_keys_are_fetched_again() {
    let (app, proxy) = app_behind_proxy().await;
    let r = recorded(&app, &batch(30)).await;
    let first = r;

    proxy.inject("BatchGetItem", Fault::UnprocessedKeys, 3);
    let r = recorded(&app, &batch(30)).await;
    assert_eq!(proxy.injected("BatchGetItem"), 3);
    assert!(proxy.forwarded("BatchGetItem") >= 4);
    let again = r;
    assert_eq!(ids(&again), ids(&first));
    assert_eq!(again["items"], first["items"]);
    assert_eq!(stored_ids(&app, &proxy).await, expected_ids(30));
}

#[tokio::test]
async fn reads_under_faults_are_retryable_errors_never_partial_pages() {
    let (app, proxy) = app_behind_proxy().await;
    recorded(&app, &batch(12)).await;

    // A fault the SDK retries away: the full page.
    proxy.inject("Query", Fault::Throttle, 1);
    let r = list(&app).await;
    assert_eq!(r.status(), 200, "{}", body(&r));
    assert_eq!(ids(&body(&r)).len(), 12);

    for (fault, status, code) in [
        (Fault::Throttle, 429, "Throttled"),
        (Fault::ThroughputExceeded, 429, "Throttled"),
        (Fault::InternalError, 503, "ServiceUnavailable"),
        (Fault::Unavailable, 503, "ServiceUnavailable"),
        (Fault::BareServerError, 503, "ServiceUnavailable"),
    ] {
        proxy.heal();
        proxy.inject("Query", fault, PERSISTENT);
        assert_retryable(&list(&app).await, status, code);

        proxy.inject("GetItem", fault, PERSISTENT);
        let req = ApiRequest::get("/customers/{customerId}/activities/{activityId}")
            .path_param("customerId", "c1")
            .path_param("activityId", "a001")
            .caller("p1", READER)
            .build();
        let r = query::handle(&app.config, &app.store, &app.blobs, req).await;
        assert_retryable(&r, status, code);
    }
    assert_eq!(stored_ids(&app, &proxy).await, expected_ids(12));
}

/// The export worker's page reads fail: the job goes back to `pending` with no object and no
/// open upload, and the invocation fails so Lambda retries it; the retry completes the file.
#[tokio::test]
async fn an_export_interrupted_by_throttling_is_released_and_completes_on_retry() {
    let (app, proxy) = app_behind_proxy().await;
    for chunk in 0..4 {
        let items: Vec<Value> = (0..25)
            .map(|i| {
                let n = chunk * 25 + i;
                json!({"id": format!("e{n:03}"), "customerId": "c1", "customerName": "Contoso Ltd.",
                       "action": "exported", "partnerUser": "ann@partner.example",
                       "occurredAt": activity_log::domain::time::format(Utc::now() - TimeDelta::seconds(n))})
            })
            .collect();
        recorded(&app, &Value::Array(items)).await;
    }
    let partner = PartnerId::parse("p1").unwrap_or_else(|e| panic!("{e}"));
    let now = Utc::now();
    let spec = activity_log::testing::fixtures::csv_export_of_last_days(1, now);
    let job =
        activity_log::domain::ExportJob::pending(partner.clone(), spec, now, TimeDelta::days(1));
    app.store
        .create_job(&job)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let event = WorkerEvent::new(&partner, &job.id);
    let launcher = RecordingLauncher::default();
    let ports = app
        .export_ports(&launcher)
        .unwrap_or_else(|e| panic!("{e}"));
    let run = || export_worker::run(&app.config, &ports, &event);

    proxy.inject("Query", Fault::Throttle, PERSISTENT);
    let outcome = run().await;
    assert!(matches!(outcome, Err(WorkerError::Retry(_))), "{outcome:?}");
    proxy.heal();
    let after = app
        .store
        .get_job(&partner, &job.id)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("job vanished"));
    assert_eq!(after.status, ExportStatus::Pending);
    let s3 = app.blobs.client();
    let head = s3
        .head_object()
        .bucket(app.blobs.bucket())
        .key(job.object_key())
        .send()
        .await;
    assert!(head.is_err(), "an object is visible after the failed run");
    // The upload stays open for the retry to go on with, and the job says which one.
    let open = open_uploads(s3, &app).await;
    let saved = after.resume.as_ref().map(|c| c.upload_id.as_str());
    assert_eq!(open.first().map(String::as_str), saved, "{open:?}");
    assert_eq!(open.len(), 1);

    match run().await {
        Ok(RunOutcome::Succeeded { rows, .. }) => assert_eq!(rows, 100),
        other => panic!("the retry did not succeed: {other:?}"),
    }
    assert!(
        open_uploads(s3, &app).await.is_empty(),
        "an upload was left open"
    );
    let object = s3
        .get_object()
        .bucket(app.blobs.bucket())
        .key(job.object_key())
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let bytes = object
        .body
        .collect()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_bytes();
    let mut reader = csv::Reader::from_reader(
        bytes
            .strip_prefix(b"\xEF\xBB\xBF".as_slice())
            .unwrap_or(&bytes),
    );
    let rows = reader.records().filter(|r| r.is_ok()).count();
    assert_eq!(rows, 100);
}

/// The ids of the multipart uploads open in the app's bucket.
async fn open_uploads(s3: &aws_sdk_s3::Client, app: &App) -> Vec<String> {
    s3.list_multipart_uploads()
        .bucket(app.blobs.bucket())
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .uploads()
        .iter()
        .filter_map(|u| u.upload_id().map(str::to_owned))
        .collect()
}
