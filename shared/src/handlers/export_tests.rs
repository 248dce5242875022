//! The export API and worker against the in-memory store (the emulator-backed tests, with S3
//! multipart uploads and presigned links followed over HTTP, live in `tests/`).

use chrono::{TimeDelta, Utc};
use lambda_http::{Body, Response};
use serde_json::{Value, json};

use super::export_worker::{self, ExportPorts, MAX_FAILURES, RunOutcome, WorkerError};
use super::exports;
use crate::config::Config;
use crate::domain::{ExportId, PartnerId};
use crate::launch::WorkerEvent;
use crate::store::StoreError;
use crate::store::memory::MemoryStore;
use crate::testing::ApiRequest;
use crate::testing::doubles::LocalSigner;
use crate::testing::doubles::{FaultyObjects, RecordingLauncher};
use crate::testing::fixtures::{self, activity, json_body as body, minutes_ago};

struct World {
    config: Config,
    store: MemoryStore,
    launcher: RecordingLauncher,
    signer: LocalSigner,
}

impl World {
    fn new() -> Self {
        Self::with_store(MemoryStore::default())
    }

    fn with_store(store: MemoryStore) -> Self {
        Self {
            config: fixtures::config(),
            store,
            launcher: RecordingLauncher::default(),
            signer: LocalSigner::new("export-tests", 3),
        }
    }

    /// p1's export `id` as stored.
    fn job(&self, id: &str) -> crate::domain::ExportJob {
        let partner = PartnerId::parse("p1").unwrap_or_else(|e| panic!("{e}"));
        let export_id = ExportId::parse(id).unwrap_or_else(|e| panic!("{e}"));
        self.store
            .job(&partner, &export_id)
            .unwrap_or_else(|| panic!("no job {id}"))
    }

    /// Records `items` (one activity or an array of any length, sent in batches that fit).
    async fn seed(&self, partner: &str, items: Value) {
        let batches = match items {
            Value::Array(all) => all
                .chunks(fixtures::SEED_CHUNK)
                .map(|c| Value::Array(c.to_vec()))
                .collect(),
            one => vec![one],
        };
        for batch in batches {
            let r = fixtures::record(&self.config, &self.store, &self.store, partner, &batch).await;
            assert_eq!(r.status(), 201, "{}", body(&r));
        }
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
        let ports = ExportPorts {
            reader: &self.store,
            blobs: &self.store,
            jobs: &self.store,
            objects,
            launcher: &self.launcher,
            signer: &self.signer,
            anchors: &self.store,
        };
        export_worker::run(&self.config, &ports, event).await
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
    assert_eq!(job["requestedBy"], "user-1", "the token's subject");
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
    let header = csv::Reader::from_reader(text.trim_start_matches('\u{feff}').as_bytes())
        .headers()
        .map(|h| h.iter().take(2).map(str::to_owned).collect::<Vec<_>>())
        .unwrap_or_default();
    assert_eq!(header, ["Date-Time", "Affected customer"]);
    assert!(
        lines[1].contains(",\"a2\",") && lines[2].contains(",\"a1\","),
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
                "status":"failed","format":"jsonl","timeZone":"Asia/Taipei","locale":"zh-TW"}"#,
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
        (&job["format"], &job["timeZone"], &job["locale"]),
        (&json!("jsonl"), &json!("Asia/Taipei"), &json!("zh-TW"))
    );
    let defaults = body(&w.create("p1", "{}").await);
    assert_eq!(
        (
            &defaults["format"],
            &defaults["timeZone"],
            &defaults["locale"]
        ),
        (&json!("csv"), &json!("UTC"), &json!("en"))
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
        (r#"{"timeZone":"asia/taipei"}"#, 400, "InvalidParameter"),
        (r#"{"locale":"zh-tw"}"#, 400, "InvalidParameter"),
        (r#"{"locale":"fr"}"#, 400, "InvalidParameter"),
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
    let mut job = w.job(&id);
    job.created_at = Utc::now() - TimeDelta::seconds(150);
    job.pending_since = job.created_at;
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
    let metrics = crate::metrics::capture();

    // A transient failure: released for Lambda's retry, until the attempts run out.
    let id = id_of(&w.create("p1", "{}").await);
    let event = WorkerEvent {
        partner_id: "p1".into(),
        export_id: id.clone(),
    };
    for attempt in 1..=MAX_FAILURES {
        let flaky = FaultyObjects::flaky(&w.store, || StoreError::Unavailable("503".into()));
        let outcome = w.run(&event, &flaky).await;
        let status = body(&w.status("p1", &id).await)["status"].clone();
        if attempt < MAX_FAILURES {
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
    assert_eq!(w.store.open_uploads(), 0, "the upload was aborted");

    // A permanent failure fails at once, and says nothing of the cause.
    let id = id_of(&w.create("p1", "{}").await);
    let event = WorkerEvent {
        partner_id: "p1".into(),
        export_id: id.clone(),
    };
    let broken = FaultyObjects::flaky(&w.store, || {
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

    // Each invocation published its duration and outcome; the two exports that ended failed
    // count in ExportsFailed, the one that succeeded gives its rows.
    let lines = metrics.take();
    let outcomes: Vec<&str> = lines
        .iter()
        .map(|l| l["Outcome"].as_str().unwrap_or_default())
        .collect();
    let retries = usize::try_from(MAX_FAILURES - 1).unwrap_or_default();
    let mut expected = vec!["error"; retries];
    expected.extend(["failed", "failed", "succeeded"]);
    assert_eq!(outcomes, expected);
    assert!(lines.iter().all(|l| l["ExportDuration"].is_number()));
    let failed: f64 = lines
        .iter()
        .filter_map(|l| l["ExportsFailed"].as_f64())
        .sum();
    assert_eq!(failed, 2.0);
    assert_eq!(
        lines.last().map(|l| &l["ExportRows"]),
        Some(&json!(10_000.0))
    );
    assert!(lines.iter().all(|l| l["partner"] == "p1"));
}

/// An export request for a fixed period (identical requests are merged only for the same
/// resolved period).
fn fixed_period(action: Option<&str>) -> String {
    let mut request = json!({"from": minutes_ago(60 * 24), "to": minutes_ago(0)});
    if let Some(a) = action {
        request["action"] = json!(a);
    }
    request.to_string()
}

#[tokio::test]
async fn a_tenant_runs_at_most_three_exports_and_identical_requests_share_one() {
    let w = World::new();
    w.seed("p1", json!([activity("c1", "a1", &minutes_ago(30))]))
        .await;
    let requests: Vec<String> = ["a", "b", "c", "d"]
        .iter()
        .map(|a| fixed_period(Some(a)))
        .collect();
    let mut ids = Vec::new();
    for request in &requests[..3] {
        let r = w.create("p1", request).await;
        assert_eq!(r.status(), 202, "{}", body(&r));
        ids.push(id_of(&r));
    }
    let full = w.create("p1", &requests[3]).await;
    assert_eq!(full.status(), 429, "{}", body(&full));
    assert_eq!(full.headers()["retry-after"], "30");
    assert_eq!(body(&full)["error"]["code"], "TooManyExports");
    assert!(
        body(&full)["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains('3'))
    );

    // The same request again is the same job, and starts nothing.
    let again = w.create("p1", &requests[0]).await;
    assert_eq!(again.status(), 202);
    assert_eq!(id_of(&again), ids[0]);
    assert_eq!(w.launcher.launched().len(), 3);

    // Another tenant is not affected.
    assert_eq!(w.create("p2", &requests[3]).await.status(), 202);

    // Once one has finished, there is room again; the finished one is not merged with.
    for outcome in w.run_launched().await {
        assert!(
            matches!(outcome, Ok(RunOutcome::Succeeded { .. })),
            "{outcome:?}"
        );
    }
    let r = w.create("p1", &requests[3]).await;
    assert_eq!(r.status(), 202, "{}", body(&r));
    let r = w.create("p1", &requests[0]).await;
    assert_eq!(r.status(), 202);
    assert_ne!(
        id_of(&r),
        ids[0],
        "a finished export is not handed out again"
    );
}

/// Runs the job of `event` to its end, as each hand-over's new invocation would; returns the
/// last outcome and the number of hand-overs.
async fn run_to_end(w: &World, event: &WorkerEvent) -> (RunOutcome, u32) {
    let mut continued = 0;
    loop {
        match w.run(event, &w.store).await {
            Ok(RunOutcome::Continued { .. }) => continued += 1,
            Ok(end) => return (end, continued),
            Err(e) => panic!("{e}"),
        }
    }
}

fn event_of(partner: &str, id: &str) -> WorkerEvent {
    WorkerEvent {
        partner_id: partner.into(),
        export_id: id.into(),
    }
}

/// The file of an export of `request` run in one go, after `seed`.
/// The export id and file of an export of what `w` holds, made in one run.
async fn single_run_file(w: &World, request: &str) -> (String, Vec<u8>) {
    let id = id_of(&w.create("p1", request).await);
    let (end, continued) = run_to_end(w, &event_of("p1", &id)).await;
    assert!(matches!(end, RunOutcome::Succeeded { .. }), "{end:?}");
    assert_eq!(continued, 0);
    let file = w
        .store
        .object(&format!("exports/p1/{id}.csv"))
        .map(|o| o.bytes)
        .unwrap_or_default();
    (id, file)
}

#[tokio::test]
async fn an_export_out_of_time_hands_over_and_the_file_is_the_same() {
    let rows: Vec<Value> = (0..30)
        .map(|i| {
            let mut a = activity("c1", &format!("a{i:02}"), &minutes_ago(i + 1));
            a["details"] = json!({"n": i, "note": "line, \"quoted\""});
            a
        })
        .collect();
    let request = fixed_period(None);
    let mut w = World::with_store(MemoryStore::with_page_size(7));
    w.seed("p1", Value::Array(rows)).await;
    let (first, expected) = single_run_file(&w, &request).await;
    let launched_before = w.launcher.launched().len();

    // No time at all: every invocation writes one row, saves its tail and hands over.
    w.config.exports.time_budget = std::time::Duration::ZERO;
    let id = id_of(&w.create("p1", &request).await);
    let event = event_of("p1", &id);
    let (end, continued) = run_to_end(&w, &event).await;
    assert!(
        matches!(end, RunOutcome::Succeeded { rows: 30, .. }),
        "{end:?}"
    );
    assert!(continued >= 30, "one row per invocation: {continued}");
    assert_eq!(
        w.launcher.launched().len() - launched_before,
        1 + continued as usize,
        "each hand-over starts the next invocation"
    );
    let job = body(&w.status("p1", &id).await);
    assert_eq!(
        (&job["status"], &job["rowCount"]),
        (&json!("succeeded"), &json!(30))
    );
    let file = w
        .store
        .object(&format!("exports/p1/{id}.csv"))
        .map(|o| o.bytes)
        .unwrap_or_default();
    assert_eq!(
        String::from_utf8_lossy(&file),
        String::from_utf8_lossy(&expected)
    );
    let mut left = w.store.small_objects();
    left.sort();
    assert_eq!(
        left,
        [
            format!("exports/p1/{first}.csv.manifest.json"),
            format!("exports/p1/{id}.csv.manifest.json")
        ],
        "no tail or saved state left behind, only the files' manifests"
    );
    assert_eq!(w.store.open_uploads(), 0);
    // Both manifests describe the same bytes, handed over or not.
    let manifest = |key: &str| -> crate::domain::integrity::Manifest {
        serde_json::from_slice(&w.store.small_object(key).unwrap_or_default())
            .unwrap_or_else(|e| panic!("{key}: {e}"))
    };
    let (one, many) = (
        manifest(&format!("exports/p1/{first}.csv.manifest.json")),
        manifest(&format!("exports/p1/{id}.csv.manifest.json")),
    );
    assert_eq!(one.file.sha256, many.file.sha256);
    assert_eq!(
        many.file.sha256,
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&file))
    );
    assert_eq!((many.file.rows, many.file.bytes), (30, file.len() as u64));
    let key = crate::store::Signer::public_key(&w.signer)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let signed = |m: &crate::domain::integrity::Manifest| {
        key.verifies(&m.message().unwrap_or_default(), &m.signature)
    };
    assert!(signed(&many) && signed(&one), "manifests are signed");
    let mut edited = many.clone();
    edited.file.rows += 1;
    assert!(!signed(&edited));
    // One signature for the whole manifest: the customer's head is in the signed message.
    assert_eq!(many.customers[0].head.sequence, 30);
    assert_eq!(many.customers[0].anchor, None, "nothing was anchored yet");
    assert!(many.customers[0].left_out.is_empty());
    assert_eq!(many.customers.len(), 1);
    assert_eq!(many.export.format, "csv");
    assert_eq!(many.export.customer_id, None);
    assert_eq!(
        (
            many.customers[0].first_sequence,
            many.customers[0].last_sequence,
            many.customers[0].rows
        ),
        (1, 30, 30)
    );
}

/// Runs the worker on `objects` until an upload hangs, then drops the run: killed without
/// warning.
async fn kill_run(w: &World, event: &WorkerEvent, objects: &FaultyObjects<'_, MemoryStore>) {
    tokio::select! {
        outcome = w.run(event, objects) => panic!("the run should hang: {outcome:?}"),
        () = objects.hung() => {}
    }
}

#[tokio::test]
async fn a_run_killed_mid_way_is_resumed_from_its_last_part() {
    let w = World::new();
    seed_four_parts(&w).await;
    let request = fixed_period(None);
    // The file of one uninterrupted run, for comparison (a finished export is not merged with).
    let id = id_of(&w.create("p1", &request).await);
    run_to_end(&w, &event_of("p1", &id)).await;
    let expected = w
        .store
        .object(&format!("exports/p1/{id}.csv"))
        .map(|o| o.bytes)
        .unwrap_or_default();

    let id = id_of(&w.create("p1", &request).await);
    let event = event_of("p1", &id);
    // Killed without warning while uploading part 3: nothing after part 2 was saved.
    let killed = FaultyObjects::hanging(&w.store, 3);
    kill_run(&w, &event, &killed).await;
    assert_eq!(killed.parts(), 2);
    let mut job = w.job(&id);
    assert_eq!(job.resume.as_ref().map(|c| c.etags.len()), Some(2));
    // Its lease runs out; the next invocation takes over.
    job.lease_until = Some(Utc::now() - TimeDelta::seconds(1));
    w.store.put_job(job);

    let healthy = FaultyObjects::counting(&w.store);
    let outcome = w.run(&event, &healthy).await;
    assert!(
        matches!(outcome, Ok(RunOutcome::Succeeded { parts: 4, .. })),
        "{outcome:?}"
    );
    assert_eq!(healthy.parts(), 2, "parts 3 and 4 only");
    let job = w.job(&id);
    assert_eq!(
        (job.failures, job.attempt),
        (1, 2),
        "the killed run counts as a failure"
    );
    let file = w
        .store
        .object(&format!("exports/p1/{id}.csv"))
        .map(|o| o.bytes)
        .unwrap_or_default();
    assert_eq!(file.len(), expected.len());
    assert!(file == expected, "same bytes as one run");
}

#[tokio::test]
async fn runs_killed_until_the_cap_fail_the_job_and_leave_no_upload() {
    let w = World::new();
    seed_four_parts(&w).await;
    let id = id_of(&w.create("p1", &fixed_period(None)).await);
    let event = event_of("p1", &id);
    for _ in 0..MAX_FAILURES {
        kill_run(&w, &event, &FaultyObjects::hanging(&w.store, 2)).await;
        let mut job = w.job(&id);
        job.lease_until = Some(Utc::now() - TimeDelta::seconds(1));
        w.store.put_job(job);
    }
    assert_eq!(w.store.open_uploads(), 1);
    let outcome = w.run(&event, &w.store).await;
    assert!(
        matches!(outcome, Ok(RunOutcome::Failed { .. })),
        "{outcome:?}"
    );
    let job = body(&w.status("p1", &id).await);
    assert_eq!(job["status"], "failed");
    assert_eq!(w.store.open_uploads(), 0, "the upload was aborted");
    assert!(w.store.object(&format!("exports/p1/{id}.csv")).is_none());
    assert_eq!(
        w.store.small_objects(),
        Vec::<String>::new(),
        "neither the tail nor the manifest state of the saved part is left behind"
    );
    // Its slot is free again.
    for action in ["a", "b", "c"] {
        assert_eq!(
            w.create("p1", &fixed_period(Some(action))).await.status(),
            202
        );
    }
}

/// A launcher whose invocations are refused (Lambda throttling the account, say).
#[derive(Clone)]
struct RefusingLauncher;

impl crate::launch::ExportLauncher for RefusingLauncher {
    async fn launch(
        &self,
        _partner: &PartnerId,
        _id: &ExportId,
    ) -> Result<(), crate::launch::LaunchError> {
        Err(crate::launch::LaunchError {
            function: "export-worker".into(),
            reason: "TooManyRequestsException".into(),
        })
    }
}

#[tokio::test]
async fn an_export_that_could_not_be_started_holds_no_slot() {
    let w = World::new();
    for action in ["a", "b", "c", "d"] {
        let req = ApiRequest::post("/exports", fixed_period(Some(action)))
            .caller("p1", &["SalesAgent"])
            .build();
        let r = exports::handle(&w.config, &w.store, &w.store, &RefusingLauncher, req).await;
        assert_eq!(r.status(), 503, "{}", body(&r));
        assert!(r.headers().contains_key("retry-after"));
    }
    for action in ["a", "b", "c"] {
        let r = w.create("p1", &fixed_period(Some(action))).await;
        assert_eq!(r.status(), 202, "{}", body(&r));
    }
}

/// The manifest of p1's export `id`.
fn manifest_of(w: &World, id: &str) -> crate::domain::integrity::Manifest {
    let key = format!("exports/p1/{id}.jsonl.manifest.json");
    serde_json::from_slice(&w.store.small_object(&key).unwrap_or_default())
        .unwrap_or_else(|e| panic!("{key}: {e}"))
}

/// c1's activities 1–6, every other one a `refund`, then one more for c2.
async fn seed_alternating(w: &World) {
    let items: Vec<Value> = (1..=6)
        .map(|n| {
            let mut a = activity("c1", &format!("a{n}"), &minutes_ago(60 - n));
            if n % 2 == 0 {
                a["action"] = json!("refund");
            }
            a
        })
        .chain([activity("c2", "b1", &minutes_ago(5))])
        .collect();
    w.seed("p1", Value::Array(items)).await;
}

#[tokio::test]
async fn a_manifest_names_the_export_and_the_runs_it_leaves_out() {
    let w = World::new();
    seed_alternating(&w).await;
    let id = id_of(&w.create("p1", &orders_in_jsonl(Some("c1"))).await);
    let (end, _) = run_to_end(&w, &event_of("p1", &id)).await;
    assert!(
        matches!(end, RunOutcome::Succeeded { rows: 3, .. }),
        "{end:?}"
    );
    let m = manifest_of(&w, &id);
    assert_eq!(m.export.customer_id.as_deref(), Some("c1"));
    assert_eq!(m.export.action.as_deref(), Some("placed an order"));
    assert_eq!(
        (m.export.format.as_str(), m.export.locale.as_str()),
        ("jsonl", "en")
    );
    assert_eq!(m.retention_days, w.config.retention_days);
    let c1 = &m.customers[0];
    assert_eq!((c1.first_sequence, c1.last_sequence, c1.rows), (1, 5, 3));
    // 2 and 4 (refunds) left out, each with the hashes the rows around it link to.
    let runs: Vec<(u64, u64)> = c1.left_out.iter().map(|l| (l.first, l.last)).collect();
    assert_eq!(runs, [(2, 2), (4, 4)]);
    assert_eq!(
        c1.head.sequence, 6,
        "the head, past the last row of the file"
    );
    let rows: Vec<Value> = String::from_utf8_lossy(
        &w.store
            .object(&format!("exports/p1/{id}.jsonl"))
            .map(|o| o.bytes)
            .unwrap_or_default(),
    )
    .lines()
    .map(|l| serde_json::from_str(l).unwrap_or_default())
    .collect();
    let at = |s: u64| {
        rows.iter()
            .find(|r| r["sequence"] == s)
            .unwrap_or_else(|| panic!("no row {s}"))
    };
    assert_eq!(c1.left_out[0].previous_hash, at(1)["hash"]);
    assert_eq!(at(3)["previousHash"], c1.left_out[0].hash.as_str());
    assert_eq!(at(5)["previousHash"], c1.left_out[1].hash.as_str());
}

/// p1's export of its orders (every customer's, or `customer`'s) over the fixed period, in
/// JSON Lines.
fn orders_in_jsonl(customer: Option<&str>) -> String {
    let mut request: Value =
        serde_json::from_str(&fixed_period(Some("placed an order"))).unwrap_or_default();
    if let Some(c) = customer {
        request["customerId"] = json!(c);
    }
    request["format"] = json!("jsonl");
    request.to_string()
}

/// [`seed_alternating`], then c1's head anchored ([`anchor_c1`]).
async fn alternating_anchored() -> (World, PartnerId) {
    let w = World::new();
    seed_alternating(&w).await;
    let partner = PartnerId::parse("p1").unwrap_or_else(|e| panic!("{e}"));
    anchor_c1(&w, &partner).await;
    (w, partner)
}

/// c1's head (6) signed and anchored, as a checkpoint request does.
async fn anchor_c1(w: &World, partner: &PartnerId) {
    let ports = super::integrity::AnchorPorts {
        chains: &w.store,
        anchors: &w.store,
        signer: &w.signer,
    };
    let c1 = crate::domain::CustomerId::parse("c1").unwrap_or_else(|e| panic!("{e}"));
    let signed = super::integrity::anchored_checkpoint(&ports, partner, &c1, Utc::now(), 365).await;
    assert!(
        matches!(signed, Ok(Some(ref cp)) if cp.sequence == 6),
        "{signed:?}"
    );
}

#[tokio::test]
async fn a_gap_the_log_does_not_hold_is_not_listed_as_left_out() {
    let (w, partner) = alternating_anchored().await;
    // Someone deletes refund a4, before the anchor, from the table: the head still extends the
    // anchor, but the export of the orders cannot vouch for 4 (the verifier reports it missing).
    assert!(w.store.remove_activity(&partner, "c1", "a4"));
    let id = id_of(&w.create("p1", &orders_in_jsonl(None)).await);
    let (end, _) = run_to_end(&w, &event_of("p1", &id)).await;
    assert!(
        matches!(end, RunOutcome::Succeeded { rows: 4, .. }),
        "{end:?}"
    );
    let m = manifest_of(&w, &id);
    let c1 = &m.customers[0];
    let runs: Vec<(u64, u64)> = c1.left_out.iter().map(|l| (l.first, l.last)).collect();
    assert_eq!(runs, [(2, 2)], "4 is gone, so it is not vouched for");
    assert_eq!(
        c1.anchor
            .as_deref()
            .map(|k| k.starts_with("anchors/p1/c1/")),
        Some(true)
    );
    assert_eq!(m.customers[1].customer_id, "c2");
}

#[tokio::test]
async fn a_chain_that_does_not_extend_its_anchor_fails_the_export_and_nothing_is_signed() {
    // c1's head signed and anchored at 6, then its last activity deleted.
    let (w, partner) = alternating_anchored().await;
    assert!(w.store.remove_activity(&partner, "c1", "a6"));
    let id = id_of(&w.create("p1", &fixed_period(None)).await);
    let (end, _) = run_to_end(&w, &event_of("p1", &id)).await;
    assert_eq!(
        end,
        RunOutcome::Failed {
            error: "the log of customer c1 no longer extends what the service signed before (the activity at the anchored sequence 6 is missing, and the anchor is not old enough for it to have expired); the export was not signed".into()
        }
    );
    assert!(
        !w.store
            .small_objects()
            .iter()
            .any(|k| k.ends_with(".manifest.json")),
        "no manifest"
    );
}

/// An export of c1's 30 activities handed over after its first run, which saved a tail.
async fn handed_over(w: &mut World) -> (String, WorkerEvent) {
    let rows: Vec<Value> = (0..30)
        .map(|i| activity("c1", &format!("a{i:02}"), &minutes_ago(i + 1)))
        .collect();
    w.seed("p1", Value::Array(rows)).await;
    w.config.exports.time_budget = std::time::Duration::ZERO;
    let id = id_of(&w.create("p1", &fixed_period(None)).await);
    let event = event_of("p1", &id);
    let first = w.run(&event, &w.store).await;
    assert!(
        matches!(first, Ok(RunOutcome::Continued { .. })),
        "{first:?}"
    );
    (id, event)
}

const TAMPERED: &str = "the export's saved progress was changed in storage, so the service will not sign it; create a new export";

#[tokio::test]
async fn a_resume_point_changed_in_the_table_is_not_gone_on_from() {
    let mut w = World::with_store(MemoryStore::with_page_size(7));
    let (id, event) = handed_over(&mut w).await;
    // Someone moves the point past rows it has not written: they would be "left out".
    let mut job = w.job(&id);
    if let Some(point) = job.resume.as_mut() {
        point.rows += 5;
    }
    w.store.put_job(job);
    let outcome = w.run(&event, &w.store).await;
    assert_eq!(
        outcome.ok(),
        Some(RunOutcome::Failed {
            error: TAMPERED.into()
        })
    );
    assert!(
        !w.store
            .small_objects()
            .iter()
            .any(|k| k.ends_with(".manifest.json")),
        "nothing signed"
    );
}

#[tokio::test]
async fn a_tail_changed_in_the_bucket_is_not_gone_on_from() {
    let mut w = World::with_store(MemoryStore::with_page_size(7));
    let (id, event) = handed_over(&mut w).await;
    let tail = w
        .job(&id)
        .resume
        .and_then(|p| p.tail_key)
        .unwrap_or_else(|| panic!("a tail"));
    let mut bytes = w.store.small_object(&tail).unwrap_or_default();
    bytes.extend_from_slice(b"a forged row\r\n");
    crate::store::ExportObjects::put_bytes(&w.store, &tail, bytes)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let outcome = w.run(&event, &w.store).await;
    assert_eq!(
        outcome.ok(),
        Some(RunOutcome::Failed {
            error: TAMPERED.into()
        })
    );
}

/// An object of the memory store, written in one request or as a multipart upload.
fn stored(w: &World, key: &str) -> Option<Vec<u8>> {
    w.store
        .small_object(key)
        .or_else(|| w.store.object(key).map(|o| o.bytes))
}

/// The manifest of p1's Parquet export `id`, and its files' events in the manifest's order.
fn parquet_export(w: &World, id: &str) -> (crate::domain::integrity::Manifest, Vec<Vec<Value>>) {
    let key = format!("exports/p1/{id}.parquet.manifest.json");
    let manifest: crate::domain::integrity::Manifest =
        serde_json::from_slice(&w.store.small_object(&key).unwrap_or_default())
            .unwrap_or_else(|e| panic!("{key}: {e}"));
    let mut concatenated = sha2::Sha256::default();
    let events = manifest
        .files
        .iter()
        .map(|f| {
            let key = format!("exports/p1/{id}/{}", f.path);
            let bytes = stored(w, &key).unwrap_or_else(|| panic!("{key} is not there"));
            assert_eq!(
                (
                    hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes)),
                    bytes.len() as u64
                ),
                (f.sha256.clone(), f.bytes),
                "{key}: the manifest's digest and size"
            );
            sha2::Digest::update(&mut concatenated, &bytes);
            let events = crate::export::parquet::events(bytes).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(events.len() as u64, f.rows, "{key}: rows");
            events
        })
        .collect();
    assert_eq!(
        manifest.file.sha256,
        hex::encode(sha2::Digest::finalize(concatenated)),
        "the file digest is the files' bytes one after another"
    );
    (manifest, events)
}

/// 3 activities a day on 4 days (UTC noon and after), of c1 and c2, with details, one failed.
async fn seed_four_days(w: &World) -> Vec<Value> {
    let noon = Utc::now()
        .date_naive()
        .and_hms_opt(12, 0, 0)
        .unwrap_or_default()
        .and_utc();
    let items: Vec<Value> = (0..12)
        .map(|n| {
            let at = noon - TimeDelta::days(n / 3 + 1) + TimeDelta::minutes(n % 3);
            let customer = if n % 2 == 0 { "c1" } else { "c2" };
            let mut a = activity(
                customer,
                &format!("d{n:02}"),
                &crate::domain::time::format(at),
            );
            a["details"] = json!({"n": n, "sku": format!("SKU-{n}"), "nested": {"ok": true}});
            if n == 4 {
                a["status"] = json!("failed");
                a["action"] = json!("cancelled the subscription");
            }
            a
        })
        .collect();
    w.seed("p1", Value::Array(items.clone())).await;
    items
}

fn five_days() -> String {
    json!({"format": "parquet", "from": minutes_ago(60 * 24 * 5), "to": minutes_ago(0)}).to_string()
}

#[tokio::test]
async fn a_parquet_export_is_a_file_a_day_of_ocsf_events_that_its_signed_manifest_lists() {
    let w = World::new();
    let items = seed_four_days(&w).await;
    let id = id_of(&w.create("p1", &five_days()).await);
    let (end, _) = run_to_end(&w, &event_of("p1", &id)).await;
    assert!(
        matches!(
            end,
            RunOutcome::Succeeded {
                rows: 12,
                parts: 4,
                ..
            }
        ),
        "{end:?}"
    );
    let (manifest, files) = parquet_export(&w, &id);
    assert_eq!(
        (manifest.file.rows, manifest.export.format.as_str()),
        (12, "parquet")
    );
    let key = crate::store::Signer::public_key(&w.signer)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(key.verifies(&manifest.message().unwrap_or_default(), &manifest.signature));
    let days: Vec<String> = manifest
        .files
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let parts: Vec<&str> = f.path.split('/').collect();
            assert_eq!(parts.len(), 4, "{}", f.path);
            assert_eq!(parts[0], "region=us-east-1");
            assert_eq!(parts[1], "accountId=p1");
            assert_eq!(parts[3], format!("{id}-{:05}.parquet", i + 1));
            parts[2].trim_start_matches("eventDay=").to_owned()
        })
        .collect();
    // Newest first, as the log is read: one file per day.
    let mut sorted = days.clone();
    sorted.sort();
    sorted.reverse();
    sorted.dedup();
    assert_eq!(days, sorted, "one file per day, newest first");
    assert_eq!(days.len(), 4);
    for (file, day) in files.iter().zip(&days) {
        assert_eq!(file.len(), 3, "{day}");
        for e in file {
            let time = e["time"].as_i64().unwrap_or_default();
            let at = chrono::DateTime::from_timestamp_millis(time).unwrap_or_default();
            assert_eq!(&at.format("%Y%m%d").to_string(), day, "{e}");
        }
    }
    let events: Vec<&Value> = files.iter().flatten().collect();
    for item in &items {
        let id = item["id"].as_str().unwrap_or_default();
        let e = events
            .iter()
            .find(|e| e["metadata"]["uid"] == id)
            .unwrap_or_else(|| panic!("{id} is not in the export"));
        let failed = item["status"] == "failed";
        assert_eq!(e["class_uid"], 6003);
        assert_eq!(e["category_uid"], 6);
        let (activity_id, status_id) = if failed { (4, 2) } else { (1, 1) };
        assert_eq!(
            (&e["activity_id"], &e["status_id"]),
            (&json!(activity_id), &json!(status_id)),
            "{e}"
        );
        assert_eq!(e["type_uid"], 600_300 + activity_id);
        assert_eq!(e["severity_id"], 1);
        assert_eq!(e["actor"]["user"]["name"], item["partnerUser"]);
        assert_eq!(e["api"]["operation"], item["action"]);
        assert_eq!(
            e["resources"],
            json!([{"uid": item["customerId"], "name": "Contoso Ltd.", "type": "order"}])
        );
        assert_eq!(e["unmapped"], item["details"]);
        assert_eq!(e["metadata"]["version"], "1.5.0");
        assert_eq!(e["metadata"]["product"]["name"], "activity-log");
        assert_eq!(
            e["cloud"],
            json!({"provider": "AWS", "region": "us-east-1"})
        );
        let occurred =
            crate::domain::time::parse_timestamp(item["occurredAt"].as_str().unwrap_or_default())
                .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(e["time"], occurred.timestamp_millis());
        assert!(
            e["sequence"].as_u64().is_some_and(|s| (1..=6).contains(&s)),
            "{e}"
        );
        assert_eq!(e["sequence"], e["metadata"]["sequence"]);
        assert_eq!(e["hash"].as_str().map(str::len), Some(64), "{e}");
    }
    // The status hands out a link per file, and no single download.
    let job = body(&w.status("p1", &id).await);
    assert_eq!(job["downloadUrl"], Value::Null, "{job}");
    let links = job["files"].as_array().cloned().unwrap_or_default();
    assert_eq!(links.len(), 4, "{job}");
    for (link, f) in links.iter().zip(&manifest.files) {
        assert_eq!(
            (&link["path"], &link["rows"]),
            (&json!(f.path), &json!(f.rows))
        );
        assert_eq!(link["sha256"], f.sha256);
        assert!(
            link["downloadUrl"]
                .as_str()
                .is_some_and(|u| u.contains(&f.path)),
            "{link}"
        );
    }
    assert!(job["manifestUrl"].is_string());
    // Nothing but the files and the manifest is left.
    let mut left = w.store.small_objects();
    left.retain(|k| !k.ends_with(".parquet"));
    assert_eq!(left, [format!("exports/p1/{id}.parquet.manifest.json")]);
    assert_eq!(w.store.open_uploads(), 0);
}

#[tokio::test]
async fn a_parquet_export_handed_over_row_by_row_reads_the_same_as_one_run() {
    let mut w = World::with_store(MemoryStore::with_page_size(5));
    seed_four_days(&w).await;
    let request = five_days();
    let first = id_of(&w.create("p1", &request).await);
    let (end, continued) = run_to_end(&w, &event_of("p1", &first)).await;
    assert!(
        matches!(end, RunOutcome::Succeeded { .. }) && continued == 0,
        "{end:?}"
    );
    let (one, one_run) = parquet_export(&w, &first);

    // No time at all: each invocation writes one row, ends its file and hands over.
    w.config.exports.time_budget = std::time::Duration::ZERO;
    let id = id_of(&w.create("p1", &request).await);
    let (end, continued) = run_to_end(&w, &event_of("p1", &id)).await;
    assert!(
        matches!(end, RunOutcome::Succeeded { rows: 12, .. }),
        "{end:?}"
    );
    assert!(continued >= 12, "{continued}");
    let (many, handed_over) = parquet_export(&w, &id);
    assert_eq!(many.files.len(), 12, "a file per run");
    let strip = |files: Vec<Vec<Value>>| -> Vec<Value> { files.into_iter().flatten().collect() };
    assert_eq!(
        strip(handed_over),
        strip(one_run),
        "the same events in the same order"
    );
    assert_eq!((many.file.rows, one.file.rows), (12, 12));
    assert_eq!(
        many.customers, one.customers,
        "the same chains, heads and runs"
    );
    let mut left = w.store.small_objects();
    left.retain(|k| !k.ends_with(".parquet"));
    left.sort();
    let mut expected = [
        format!("exports/p1/{first}.parquet.manifest.json"),
        format!("exports/p1/{id}.parquet.manifest.json"),
    ];
    expected.sort();
    assert_eq!(left, expected, "no saved state is left behind");
}

#[tokio::test]
async fn a_parquet_file_ends_at_its_size_limit_and_the_next_goes_on_in_the_same_partition() {
    let mut w = World::new();
    seed_four_days(&w).await;
    let request = five_days();
    let whole = id_of(&w.create("p1", &request).await);
    run_to_end(&w, &event_of("p1", &whole)).await;
    let (one, one_run) = parquet_export(&w, &whole);

    // Smaller than any file: each file ends after its first row, in one run.
    w.config.exports.file_bytes = 1;
    let id = id_of(&w.create("p1", &request).await);
    let (end, continued) = run_to_end(&w, &event_of("p1", &id)).await;
    assert!(
        matches!(
            end,
            RunOutcome::Succeeded {
                rows: 12,
                parts: 12,
                ..
            }
        ) && continued == 0,
        "{end:?}"
    );
    let (split, files) = parquet_export(&w, &id);
    assert!(files.iter().all(|f| f.len() == 1), "a row a file");
    let partitions = |m: &crate::domain::integrity::Manifest| -> Vec<String> {
        let mut days: Vec<String> = m
            .files
            .iter()
            .map(|f| {
                f.path
                    .rsplit_once('/')
                    .map_or("", |(dir, _)| dir)
                    .to_owned()
            })
            .collect();
        days.dedup();
        days
    };
    assert_eq!(partitions(&split), partitions(&one), "the same partitions");
    assert_eq!(one.files.len(), 4, "a file a day without the limit");
    let names: Vec<String> = split
        .files
        .iter()
        .map(|f| f.path.rsplit('/').next().unwrap_or_default().to_owned())
        .collect();
    let numbered: Vec<String> = (1..=12).map(|n| format!("{id}-{n:05}.parquet")).collect();
    assert_eq!(names, numbered);
    let strip = |files: Vec<Vec<Value>>| -> Vec<Value> { files.into_iter().flatten().collect() };
    assert_eq!(
        strip(files),
        strip(one_run),
        "the same events in the same order"
    );
    assert_eq!(split.customers, one.customers);
}

#[tokio::test]
async fn a_parquet_run_removes_the_local_files_killed_runs_left_and_no_others() {
    let local = || {
        tempfile::Builder::new()
            .prefix("activity-log-export-")
            .suffix(".parquet")
            .tempfile()
            .unwrap_or_else(|e| panic!("{e}"))
    };
    // A run killed an hour ago left its file; another run is writing one now.
    let (file, stale) = local().keep().unwrap_or_else(|e| panic!("{e}"));
    file.set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(3600))
        .unwrap_or_else(|e| panic!("{e}"));
    let writing = local();
    let w = World::new();
    seed_four_days(&w).await;
    let id = id_of(&w.create("p1", &five_days()).await);
    let (end, _) = run_to_end(&w, &event_of("p1", &id)).await;
    assert!(matches!(end, RunOutcome::Succeeded { .. }), "{end:?}");
    assert!(!stale.exists(), "{} is left", stale.display());
    assert!(writing.path().exists(), "a file being written was removed");
}

#[tokio::test]
async fn a_parquet_export_read_back_holds_the_rows_of_the_json_lines_export() {
    let w = World::new();
    seed_four_days(&w).await;
    let request = |format: &str| {
        let mut r: Value = serde_json::from_str(&five_days()).unwrap_or_default();
        r["format"] = json!(format);
        r.to_string()
    };
    let parquet = id_of(&w.create("p1", &request("parquet")).await);
    run_to_end(&w, &event_of("p1", &parquet)).await;
    let jsonl = id_of(&w.create("p1", &request("jsonl")).await);
    run_to_end(&w, &event_of("p1", &jsonl)).await;
    let (_, files) = parquet_export(&w, &parquet);
    let lines = stored(&w, &format!("exports/p1/{jsonl}.jsonl")).unwrap_or_default();
    let rows: Vec<Value> = String::from_utf8_lossy(&lines)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let events: Vec<Value> = files.into_iter().flatten().collect();
    assert_eq!(events.len(), rows.len());
    for (event, row) in events.iter().zip(&rows) {
        let back = crate::domain::ocsf::api_row(event).unwrap_or_else(|e| panic!("{e}: {event}"));
        for (k, v) in back.as_object().into_iter().flatten() {
            assert_eq!(&row[k], v, "{k} of {}", row["id"]);
        }
        // Every member the chain's record hashes is there.
        for k in [
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
            "recordedBy",
            "previousRecordedAt",
            "sequence",
            "hash",
            "previousHash",
        ] {
            assert!(back.get(k).is_some(), "{k} of {}", row["id"]);
        }
    }
}
