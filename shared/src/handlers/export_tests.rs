//! The export API and worker against the in-memory store (the emulator-backed tests, with S3
//! multipart uploads and presigned links followed over HTTP, live in `tests/`).

use chrono::{TimeDelta, Utc};
use lambda_http::{Body, Response};
use serde_json::{Value, json};

use super::export_worker::{self, MAX_ATTEMPTS, RunOutcome, WorkerError};
use super::exports;
use crate::config::Config;
use crate::domain::{ExportId, PartnerId};
use crate::launch::WorkerEvent;
use crate::store::StoreError;
use crate::store::memory::MemoryStore;
use crate::testing::ApiRequest;
use crate::testing::doubles::{FlakyObjects, RecordingLauncher};
use crate::testing::fixtures::{self, activity, json_body as body, minutes_ago};

struct World {
    config: Config,
    store: MemoryStore,
    launcher: RecordingLauncher,
}

impl World {
    fn new() -> Self {
        Self {
            config: fixtures::config(),
            store: MemoryStore::default(),
            launcher: RecordingLauncher::default(),
        }
    }

    async fn seed(&self, partner: &str, items: Value) {
        let r = fixtures::record(&self.config, &self.store, &self.store, partner, &items).await;
        assert_eq!(r.status(), 201, "{}", body(&r));
    }

    async fn call(&self, req: ApiRequest) -> Response<Body> {
        let (config, store, launcher) = (&self.config, &self.store, &self.launcher);
        exports::handle(config, store, store, launcher, req.build()).await
    }

    async fn create(&self, partner: &str, request: &str) -> Response<Body> {
        self.call(ApiRequest::post("/exports", request).caller(partner, &["SalesAgent"]))
            .await
    }

    async fn status(&self, partner: &str, id: &str) -> Response<Body> {
        let req = ApiRequest::get("/exports/{exportId}").path_param("exportId", id);
        self.call(req.caller(partner, &["HelpdeskAgent"])).await
    }

    /// Runs the worker for every launch so far, as Lambda would.
    async fn run_launched(&self) -> Vec<Result<RunOutcome, WorkerError>> {
        let mut outcomes = Vec::new();
        for event in self.launcher.launched() {
            outcomes.push(self.run(&event, &self.store).await);
        }
        outcomes
    }

    async fn run(
        &self,
        event: &WorkerEvent,
        objects: &impl crate::store::ExportObjects,
    ) -> Result<RunOutcome, WorkerError> {
        export_worker::run(
            &self.config,
            &self.store,
            &self.store,
            &self.store,
            objects,
            event,
        )
        .await
    }
}

fn id_of(r: &Response<Body>) -> String {
    body(r)["id"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn an_export_is_created_launched_run_and_handed_out() {
    let w = World::new();
    w.seed(
        "p1",
        json!([
            activity("c1", "a1", &minutes_ago(30)),
            activity("c2", "a2", &minutes_ago(10))
        ]),
    )
    .await;

    let r = w.create("p1", "{}").await;
    assert_eq!(r.status(), 202, "{}", body(&r));
    let job = body(&r);
    let id = id_of(&r);
    assert_eq!(r.headers()["location"], format!("/exports/{id}").as_str());
    assert_eq!(
        (&job["status"], &job["format"], &job["timeZone"]),
        (&json!("pending"), &json!("csv"), &json!("UTC"))
    );
    assert_eq!(job["links"]["self"], format!("/exports/{id}"));
    assert!(job.get("downloadUrl").is_none());
    assert_eq!(
        w.launcher.launched(),
        [WorkerEvent {
            partner_id: "p1".into(),
            export_id: id.clone()
        }]
    );

    let outcomes = w.run_launched().await;
    assert!(
        matches!(
            outcomes[..],
            [Ok(RunOutcome::Succeeded {
                rows: 2,
                parts: 1,
                ..
            })]
        ),
        "{outcomes:?}"
    );
    let r = w.status("p1", &id).await;
    assert_eq!(r.status(), 200);
    let job = body(&r);
    assert_eq!(
        (&job["status"], &job["rowCount"]),
        (&json!("succeeded"), &json!(2))
    );
    let object_key = format!("exports/p1/{id}.csv");
    assert_eq!(
        job["downloadUrl"],
        format!("memory:///{object_key}?expires=900")
    );
    assert!(job["downloadUrlExpiresAt"].as_str().is_some());
    assert!(job["completedAt"].as_str().is_some());

    let file = w
        .store
        .object(&object_key)
        .unwrap_or_else(|| panic!("no file"));
    assert_eq!(job["bytes"], file.bytes.len());
    assert!(
        file.content_disposition
            .starts_with("attachment; filename=\"activity-log-all-")
    );
    let text = String::from_utf8(file.bytes).unwrap_or_default();
    let lines: Vec<&str> = text.trim_start_matches('\u{feff}').lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[0].starts_with("Date-Time,Affected customer,"));
    assert!(
        lines[1].contains(",a2,") && lines[2].contains(",a1,"),
        "newest first: {text}"
    );
}

#[tokio::test]
async fn an_export_takes_the_query_s_parameters_and_its_own() {
    let w = World::new();
    let r = w
        .create(
            "p1",
            r#"{"customerId":"c1","from":"2026-01-01","to":"2026-01-31","action":"placed an order",
                "status":"failed","format":"jsonl","timeZone":"Asia/Taipei"}"#,
        )
        .await;
    assert_eq!(r.status(), 202, "{}", body(&r));
    let job = body(&r);
    assert_eq!(job["customerId"], "c1");
    assert_eq!(job["from"], "2026-01-01T00:00:00.000Z");
    assert_eq!(job["to"], "2026-01-31T23:59:59.999Z");
    assert_eq!(job["filters"]["action"], "placed an order");
    assert_eq!(job["filters"]["status"], "failed");
    assert_eq!(job["filters"]["partnerUser"], Value::Null);
    assert_eq!(
        (&job["format"], &job["timeZone"]),
        (&json!("jsonl"), &json!("Asia/Taipei"))
    );
}

#[tokio::test]
async fn bad_export_requests_get_clear_errors_and_create_nothing() {
    let w = World::new();
    for (request, status, code) in [
        ("[]", 400, "InvalidBody"),
        ("{", 400, "InvalidBody"),
        (r#"{"form":"2026-01-01"}"#, 400, "InvalidBody"),
        (r#"{"from":20260101}"#, 400, "InvalidBody"),
        (r#"{"customerId":"a/b"}"#, 400, "InvalidParameter"),
        (r#"{"from":"yesterday"}"#, 400, "InvalidDateRange"),
        (
            r#"{"from":"2026-02-01","to":"2026-01-01"}"#,
            400,
            "InvalidDateRange",
        ),
        (r#"{"format":"xlsx"}"#, 400, "InvalidParameter"),
        (r#"{"timeZone":"Mars/Olympus"}"#, 400, "InvalidParameter"),
        (r#"{"status":"done"}"#, 400, "InvalidParameter"),
        (r#"{"action":""}"#, 400, "InvalidParameter"),
    ] {
        let r = w.create("p1", request).await;
        assert_eq!(r.status(), status, "{request}: {}", body(&r));
        assert_eq!(body(&r)["error"]["code"], code, "{request}");
    }
    let huge = json!({"action": "x".repeat(70 * 1024)}).to_string();
    let r = w.create("p1", &huge).await;
    assert_eq!(r.status(), 413);
    assert_eq!(body(&r)["error"]["code"], "PayloadTooLarge");
    assert!(w.launcher.launched().is_empty(), "nothing was started");
}

#[tokio::test]
async fn another_tenant_s_export_and_impossible_ids_are_not_found() {
    let w = World::new();
    let id = id_of(&w.create("p1", "{}").await);
    assert_eq!(w.status("p1", &id).await.status(), 200);
    assert_eq!(w.status("p2", &id).await.status(), 404);
    assert_eq!(
        w.status("p1", &ExportId::generate().to_string())
            .await
            .status(),
        404
    );
    let r = w.status("p1", "not-an-id").await;
    assert_eq!(r.status(), 404);
    assert_eq!(body(&r)["error"]["code"], "NotFound");
    // Lower case is the same id.
    assert_eq!(w.status("p1", &id.to_lowercase()).await.status(), 200);
}

#[tokio::test]
async fn a_job_left_pending_is_launched_again_when_read() {
    let w = World::new();
    let id = id_of(&w.create("p1", "{}").await);
    assert_eq!(w.launcher.launched().len(), 1);
    w.status("p1", &id).await;
    assert_eq!(w.launcher.launched().len(), 1, "a fresh job is left alone");

    // The launch was lost two and a half minutes ago.
    let partner = PartnerId::parse("p1").unwrap_or_else(|e| panic!("{e}"));
    let export_id = ExportId::parse(&id).unwrap_or_else(|e| panic!("{e}"));
    let mut job = w
        .store
        .job(&partner, &export_id)
        .unwrap_or_else(|| panic!("no job"));
    job.created_at = Utc::now() - TimeDelta::seconds(150);
    w.store.put_job(job);
    w.status("p1", &id).await;
    assert_eq!(w.launcher.launched().len(), 2, "launched again");
    // Only one run can claim it.
    let outcomes = w.run_launched().await;
    assert!(
        matches!(
            outcomes[..],
            [Ok(RunOutcome::Succeeded { .. }), Ok(RunOutcome::Skipped)]
        ),
        "{outcomes:?}"
    );
}

/// 10,000 rows, about 19 MB of CSV: four parts of at least 5 MiB.
async fn seed_four_parts(w: &World) {
    let details = json!({"note": "x".repeat(1800)});
    for batch in 0..100 {
        let items: Vec<Value> = (0..100)
            .map(|i| {
                let mut a = activity("c1", &format!("b{batch:03}-{i:03}"), &minutes_ago(5));
                a["details"] = details.clone();
                a
            })
            .collect();
        w.seed("p1", Value::Array(items)).await;
    }
}

#[tokio::test]
async fn transient_failures_release_the_job_and_permanent_ones_fail_it_with_a_plain_message() {
    let w = World::new();
    seed_four_parts(&w).await;

    // A transient failure: released for Lambda's retry, until the attempts run out.
    let id = id_of(&w.create("p1", "{}").await);
    let event = WorkerEvent {
        partner_id: "p1".into(),
        export_id: id.clone(),
    };
    for attempt in 1..=MAX_ATTEMPTS {
        let flaky = FlakyObjects::new(&w.store, || StoreError::Unavailable("503".into()));
        let outcome = w.run(&event, &flaky).await;
        let status = body(&w.status("p1", &id).await)["status"].clone();
        if attempt < MAX_ATTEMPTS {
            assert!(matches!(outcome, Err(WorkerError::Retry(_))), "{outcome:?}");
            assert_eq!(status, "pending");
        } else {
            assert!(
                matches!(outcome, Ok(RunOutcome::Failed { .. })),
                "{outcome:?}"
            );
            assert_eq!(status, "failed");
        }
    }
    assert!(w.store.object(&format!("exports/p1/{id}.csv")).is_none());

    // A permanent failure fails at once, and says nothing of the cause.
    let id = id_of(&w.create("p1", "{}").await);
    let event = WorkerEvent {
        partner_id: "p1".into(),
        export_id: id.clone(),
    };
    let broken = FlakyObjects::new(&w.store, || {
        StoreError::Other("AccessDenied for arn:aws:s3:::bucket".into())
    });
    let outcome = w.run(&event, &broken).await;
    let Ok(RunOutcome::Failed { error }) = outcome else {
        panic!("{outcome:?}");
    };
    assert!(
        error.starts_with("the export could not be completed"),
        "{error}"
    );
    let job = body(&w.status("p1", &id).await);
    assert_eq!(
        (&job["status"], &job["error"]),
        (&json!("failed"), &json!(error))
    );
    assert!(!job.to_string().contains("arn:aws"));

    // Without a fault the same rows export as four parts, all but the last at least 5 MiB.
    let id = id_of(&w.create("p1", "{}").await);
    let event = WorkerEvent {
        partner_id: "p1".into(),
        export_id: id.clone(),
    };
    let outcome = w.run(&event, &w.store).await;
    assert!(
        matches!(
            outcome,
            Ok(RunOutcome::Succeeded {
                rows: 10_000,
                parts: 4,
                ..
            })
        ),
        "{outcome:?}"
    );
    let parts = w
        .store
        .object(&format!("exports/p1/{id}.csv"))
        .map(|o| o.part_sizes)
        .unwrap_or_default();
    assert_eq!(parts.len(), 4);
    let min = crate::export::parts::MIN_PART_BYTES;
    assert!(parts[..3].iter().all(|&p| p >= min), "{parts:?}");
}
