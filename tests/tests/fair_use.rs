//! Fair use against the emulator, through the real SDK clients: list requests that read a
//! bounded amount (DynamoDB calls counted through the fault proxy), a tenant's export limit and
//! merged identical requests, exports handed over between invocations and resumed after a
//! kill, the failure cap, and the per-tenant rate limit over real HTTP.

use std::sync::Arc;
use std::time::{Duration, Instant};

use activity_log::app::App;
use activity_log::config::DEFAULT_LIST_MAX_READS;
use activity_log::domain::{Activity, ExportId, ExportJob, PartnerId};
use activity_log::handlers::export_worker::{self, MAX_FAILURES, RunOutcome, WorkerError};
use activity_log::handlers::{exports, query};
use activity_log::launch::WorkerEvent;
use activity_log::store::memory::MemoryStore;
use activity_log::store::s3::S3Blobs;
use activity_log::store::{ExportJobs, StoreError};
use activity_log::testing::ApiRequest;
use activity_log::testing::doubles::{FaultyObjects, InlineLauncher, RecordingLauncher};
use activity_log::testing::fixtures::{insert_activities, synthetic_activity};
use activity_log_tests::fault_proxy::FaultProxy;
use activity_log_tests::{
    app_behind_proxy, ids, isolated_app, json_body as body, local_stack, signature_checking_s3,
    token,
};
use activity_log_tests::{hundred_thousand_rows, run_export_worker};
use chrono::{TimeDelta, Utc};
use lambda_http::{Body, Response};
use serde_json::{Value, json};

const READER: &[&str] = &["BillingAdmin"];

fn partner(name: &str) -> PartnerId {
    PartnerId::parse(name).unwrap_or_else(|e| panic!("{e}"))
}

/// What each request of a paging read cost: items, DynamoDB Query calls and time.
struct Paged {
    ids: Vec<String>,
    pages: Vec<(usize, usize, Duration)>,
}

/// Pages `GET /activities?<params>` of p1 to its end, counting each request's Query calls.
async fn page_all(app: &App, proxy: &FaultProxy, params: &[(&str, &str)]) -> Paged {
    let mut cursor: Option<String> = None;
    let mut paged = Paged {
        ids: Vec::new(),
        pages: Vec::new(),
    };
    loop {
        let mut req = ApiRequest::get("/activities");
        for (k, v) in params {
            req = req.query(k, v);
        }
        if let Some(c) = &cursor {
            req = req.query("cursor", c);
        }
        let before = proxy.forwarded("Query");
        let started = Instant::now();
        let r = query::handle(
            &app.config,
            &app.store,
            &app.blobs,
            req.caller("p1", READER).build(),
        )
        .await;
        let took = started.elapsed();
        assert_eq!(r.status(), 200, "{}", body(&r));
        let page = body(&r);
        let items = ids(&page);
        paged
            .pages
            .push((items.len(), proxy.forwarded("Query") - before, took));
        paged.ids.extend(items);
        match page["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return paged,
        }
        assert!(paged.pages.len() < 1000, "paging does not end");
    }
}

#[tokio::test]
async fn a_sparse_filter_over_20000_activities_is_answered_page_by_page_within_the_bound() {
    const ROWS: u64 = 20_000;
    let (app, proxy) = app_behind_proxy().await;
    let now = Utc::now();
    // A year of activities, newest first by n; the oldest is the only "exported the log", every
    // 97th is "suspended a subscription".
    let rows: Vec<Activity> = (0..ROWS)
        .map(|n| {
            let at = now - TimeDelta::minutes(1) - TimeDelta::seconds((n * 1570) as i64);
            let mut a = synthetic_activity(n, &format!("c{}", n % 40), at);
            if n == ROWS - 1 {
                a.action = "exported the log".into();
            } else if n % 97 == 0 {
                a.action = "suspended a subscription".into();
            }
            a
        })
        .collect();
    let started = Instant::now();
    let mut writers = Vec::new();
    // Each writer has customers of its own, so no two append to one chain.
    for i in 0..4u64 {
        let part: Vec<Activity> = rows
            .iter()
            .filter(|a| {
                let n: u64 = a.customer_id.as_str()[1..].parse().unwrap_or(0);
                n % 4 == i
            })
            .cloned()
            .collect();
        let store = app.store.clone();
        writers.push(tokio::spawn(async move {
            insert_activities(&store, &partner("p1"), &part).await;
        }));
    }
    for w in writers {
        w.await.unwrap_or_else(|e| panic!("{e}"));
    }
    eprintln!("seeded {ROWS} activities in {:?}", started.elapsed());

    let from = activity_log::domain::time::format(now - TimeDelta::days(366));
    let sparse = page_all(
        &app,
        &proxy,
        &[("from", &from), ("action", "exported the log")],
    )
    .await;
    eprintln!(
        "sparse filter: {} requests (items, Query calls, time): {:?}",
        sparse.pages.len(),
        sparse.pages
    );
    assert_eq!(sparse.ids, ["act-000019999"], "the oldest is reached");
    assert!(
        sparse.pages.len() > 1,
        "the scan took more than one request"
    );
    for (items, queries, _) in &sparse.pages {
        assert!(
            *queries <= DEFAULT_LIST_MAX_READS && *queries >= 1,
            "{queries} Query calls in one request ({items} items)"
        );
    }
    assert!(
        sparse.pages.iter().any(|(items, _, _)| *items == 0),
        "a request may end with no item and a cursor"
    );

    // Exact paging: every 97th activity, in order, each once.
    let every_97th = page_all(
        &app,
        &proxy,
        &[
            ("from", &from),
            ("action", "suspended a subscription"),
            ("limit", "50"),
        ],
    )
    .await;
    let expected: Vec<String> = (0..ROWS - 1)
        .filter(|n| n % 97 == 0)
        .map(|n| format!("act-{n:09}"))
        .collect();
    assert_eq!(every_97th.ids, expected);
    assert!(
        every_97th
            .pages
            .iter()
            .all(|(_, q, _)| *q <= DEFAULT_LIST_MAX_READS)
    );
}

/// `POST /exports` of `request` by p-`partner`, launching nothing.
async fn create_export(
    app: &App,
    launcher: &RecordingLauncher,
    who: &str,
    request: &Value,
) -> Response<Body> {
    let req = ApiRequest::post("/exports", request.to_string())
        .caller(who, &["SalesAgent"])
        .build();
    exports::handle(&app.config, &app.store, &app.blobs, launcher, req).await
}

#[tokio::test]
async fn a_tenant_has_at_most_three_exports_under_way_and_the_same_request_is_one_job() {
    let app = isolated_app().await;
    let launcher = RecordingLauncher::default();
    let (from, to) = (
        activity_log::domain::time::format(Utc::now() - TimeDelta::days(30)),
        activity_log::domain::time::format(Utc::now()),
    );
    let request =
        |action: &str| json!({"from": from, "to": to, "action": action, "format": "jsonl"});
    let mut ids = Vec::new();
    for action in ["a", "b", "c"] {
        let r = create_export(&app, &launcher, "p1", &request(action)).await;
        assert_eq!(r.status(), 202, "{}", body(&r));
        ids.push(body(&r)["id"].as_str().unwrap_or_default().to_owned());
    }
    let full = create_export(&app, &launcher, "p1", &request("d")).await;
    assert_eq!(full.status(), 429, "{}", body(&full));
    assert_eq!(full.headers()["retry-after"], "30");
    assert_eq!(body(&full)["error"]["code"], "TooManyExports");
    // The same request twice: one job.
    let again = create_export(&app, &launcher, "p1", &request("b")).await;
    assert_eq!(again.status(), 202);
    assert_eq!(body(&again)["id"], ids[1].as_str());
    assert_eq!(launcher.launched().len(), 3, "nothing more was started");
    // Another tenant is not affected.
    let other = create_export(&app, &launcher, "p2", &request("d")).await;
    assert_eq!(other.status(), 202, "{}", body(&other));

    // Concurrent requests cannot pass the limit together.
    let results = futures_util::future::join_all((0..6).map(|i| {
        let (app, launcher, r) = (&app, &launcher, request(&format!("x{i}")));
        async move { create_export(app, launcher, "p3", &r).await.status() }
    }))
    .await;
    let accepted = results.iter().filter(|s| **s == 202).count();
    let refused = results.iter().filter(|s| **s == 429).count();
    assert_eq!((accepted, refused), (3, 3), "{results:?}");

    // When one of p1's has finished, there is room again.
    let finished = launcher.launched()[0].clone();
    let ports = app
        .export_ports(&launcher)
        .unwrap_or_else(|e| panic!("{e}"));
    let outcome = export_worker::run(&app.config, &ports, &finished).await;
    assert!(
        matches!(outcome, Ok(RunOutcome::Succeeded { .. })),
        "{outcome:?}"
    );
    let r = create_export(&app, &launcher, "p1", &request("d")).await;
    assert_eq!(r.status(), 202, "{}", body(&r));
}

async fn object_bytes(app: &App, key: &str) -> Vec<u8> {
    let out = app
        .blobs
        .client()
        .get_object()
        .bucket(app.blobs.bucket())
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GetObject {key}: {e}"));
    out.body
        .collect()
        .await
        .map(|b| b.into_bytes().to_vec())
        .unwrap_or_default()
}

async fn open_uploads(app: &App) -> usize {
    app.blobs
        .client()
        .list_multipart_uploads()
        .bucket(app.blobs.bucket())
        .send()
        .await
        .map(|o| o.uploads().len())
        .unwrap_or_else(|e| panic!("ListMultipartUploads: {e}"))
}

async fn job_of(app: &App, who: &PartnerId, id: &str) -> ExportJob {
    let id = ExportId::parse(id).unwrap_or_else(|e| panic!("{e}"));
    app.store
        .get_job(who, &id)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("no job {id}"))
}

/// Creates an export of `request` and lets `launcher` run it; waits for its end.
async fn export_through(app: &App, launcher: &InlineLauncher, request: &Value) -> ExportJob {
    let req = ApiRequest::post("/exports", request.to_string())
        .caller("p1", READER)
        .build();
    let r = exports::handle(&app.config, &app.store, &app.blobs, launcher, req).await;
    assert_eq!(r.status(), 202, "{}", body(&r));
    let id = body(&r)["id"].as_str().unwrap_or_default().to_owned();
    let deadline = Instant::now() + Duration::from_secs(900);
    loop {
        let job = job_of(app, &partner("p1"), &id).await;
        if !job.is_active() {
            return job;
        }
        assert!(Instant::now() < deadline, "export did not finish: {job:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_100000_row_export_with_a_short_time_budget_hands_over_and_equals_one_run() {
    let app = isolated_app().await;
    let p1 = partner("p1");
    let source = Arc::new(hundred_thousand_rows(&p1).await);
    let launcher_for = |app: &App| {
        InlineLauncher::new::<MemoryStore, S3Blobs, _, S3Blobs>(
            app.config.clone(),
            source.clone(),
            app.blobs.clone(),
            app.store.clone(),
            app.blobs.clone(),
        )
    };
    let request = json!({"from": activity_log::domain::time::format(Utc::now() - TimeDelta::days(4)),
                         "to": activity_log::domain::time::format(Utc::now())});

    let started = Instant::now();
    let one_run = export_through(&app, &launcher_for(&app), &request).await;
    let one_run_time = started.elapsed();
    assert_eq!(one_run.continuations, 0, "{one_run:?}");
    let expected = object_bytes(&app, &one_run.object_key()).await;

    let mut short = App::with_clients(
        app.config.clone(),
        app.store.client().clone(),
        app.blobs.client().clone(),
    );
    short.config.exports.time_budget = Duration::from_secs(2);
    let started = Instant::now();
    let handed_over = export_through(&short, &launcher_for(&short), &request).await;
    let handed_over_time = started.elapsed();
    eprintln!(
        "100,000 rows: one run {one_run_time:?}; with a 2 s budget {handed_over_time:?} in {} \
         invocations ({} bytes, {} failures)",
        handed_over.continuations + 1,
        handed_over.bytes,
        handed_over.failures
    );
    assert_ne!(
        handed_over.id, one_run.id,
        "a finished export is not merged with"
    );
    assert_eq!(
        (
            handed_over.status,
            handed_over.row_count,
            handed_over.failures
        ),
        (activity_log::domain::ExportStatus::Succeeded, 100_000, 0)
    );
    assert!(
        handed_over.continuations >= 2,
        "several hand-overs: {}",
        handed_over.continuations
    );
    let bytes = object_bytes(&app, &handed_over.object_key()).await;
    assert_eq!(bytes.len(), expected.len());
    assert!(bytes == expected, "the file differs from one run's");
    assert_eq!(open_uploads(&app).await, 0);
    let tails = app
        .blobs
        .client()
        .list_objects_v2()
        .bucket(app.blobs.bucket())
        .prefix("exports/")
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let keys: Vec<&str> = tails.contents().iter().filter_map(|o| o.key()).collect();
    let (manifests, files): (Vec<&str>, Vec<&str>) =
        keys.iter().partition(|k| k.ends_with(".manifest.json"));
    assert_eq!(
        (files.len(), manifests.len()),
        (2, 2),
        "two files, each with its manifest, and no tail or saved state left: {keys:?}"
    );
    // Both manifests describe the same bytes: the hand-overs kept the file's hash going.
    let digest = |key: String| {
        let app = &app;
        async move {
            let m: activity_log::domain::integrity::Manifest =
                serde_json::from_slice(&object_bytes(app, &key).await)
                    .unwrap_or_else(|e| panic!("{key}: {e}"));
            m.file.sha256
        }
    };
    assert_eq!(
        digest(format!("{}.manifest.json", one_run.object_key())).await,
        digest(format!("{}.manifest.json", handed_over.object_key())).await
    );
}

/// A job of p1 exporting `source` to `app`'s bucket, created directly.
async fn created_job(app: &App) -> (ExportJob, WorkerEvent) {
    let now = Utc::now();
    let spec = activity_log::testing::fixtures::csv_export_of_last_days(4, now);
    let job = ExportJob::pending(partner("p1"), spec, now, TimeDelta::days(1));
    app.store
        .create_job(&job)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let event = WorkerEvent::new(&job.partner, &job.id);
    (job, event)
}

/// Lets a killed run's lease run out.
async fn expire_lease(app: &App, job: &ExportJob) {
    let mut now = job_of(app, &job.partner, job.id.as_str()).await;
    now.lease_until = Some(Utc::now() - TimeDelta::seconds(1));
    app.store
        .update_job(&now)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
}

#[tokio::test]
async fn a_worker_killed_mid_way_resumes_from_its_last_part() {
    let app = isolated_app().await;
    let source = hundred_thousand_rows(&partner("p1")).await;
    let (job, event) = created_job(&app).await;
    let killed = FaultyObjects::hanging(&app.blobs, 3);
    let launcher = RecordingLauncher::default();
    tokio::select! {
        outcome = run_export_worker(&app, &source, &killed, &launcher, &event) => panic!("should hang: {outcome:?}"),
        () = killed.hung() => {}
    }
    assert_eq!(killed.parts(), 2);
    let saved = job_of(&app, &job.partner, job.id.as_str()).await;
    let checkpoint = saved
        .resume
        .clone()
        .unwrap_or_else(|| panic!("no checkpoint: {saved:?}"));
    assert_eq!(checkpoint.etags.len(), 2);
    assert!(checkpoint.rows > 0 && checkpoint.after.is_some());
    expire_lease(&app, &job).await;

    let resumed = FaultyObjects::counting(&app.blobs);
    let outcome = run_export_worker(&app, &source, &resumed, &launcher, &event).await;
    let Ok(RunOutcome::Succeeded { rows, parts, .. }) = outcome else {
        panic!("{outcome:?}");
    };
    assert_eq!(rows, 100_000);
    assert_eq!(
        resumed.parts() as i32,
        parts - 2,
        "the takeover uploads only the parts after the saved ones"
    );
    let done = job_of(&app, &job.partner, job.id.as_str()).await;
    assert_eq!((done.failures, done.attempt), (1, 2));
    let bytes = object_bytes(&app, &job.object_key()).await;
    let mut reader = csv::Reader::from_reader(&bytes[3..]);
    let mut seen = std::collections::HashSet::new();
    for row in reader.records() {
        let row = row.unwrap_or_else(|e| panic!("CSV: {e}"));
        assert!(seen.insert(row[7].to_owned()), "{} twice", &row[7]);
    }
    assert_eq!(seen.len(), 100_000, "no row lost or repeated at the seam");
    assert_eq!(open_uploads(&app).await, 0);
}

#[tokio::test]
async fn a_job_whose_failures_reach_the_cap_fails_with_no_object_and_no_open_upload() {
    let app = isolated_app().await;
    let source = hundred_thousand_rows(&partner("p1")).await;
    let (job, event) = created_job(&app).await;
    let flaky = FaultyObjects::failing(&app.blobs, MAX_FAILURES, || {
        StoreError::Unavailable("injected 503 on UploadPart".into())
    });
    let launcher = RecordingLauncher::default();
    let mut outcomes = Vec::new();
    for _ in 0..MAX_FAILURES {
        outcomes.push(run_export_worker(&app, &source, &flaky, &launcher, &event).await);
    }
    assert!(
        matches!(
            outcomes[..],
            [
                Err(WorkerError::Retry(_)),
                Err(WorkerError::Retry(_)),
                Ok(RunOutcome::Failed { .. })
            ]
        ),
        "{outcomes:?}"
    );
    let failed = job_of(&app, &job.partner, job.id.as_str()).await;
    assert_eq!(failed.status, activity_log::domain::ExportStatus::Failed);
    assert_eq!(failed.failures, MAX_FAILURES - 1);
    assert!(failed.error.is_some());
    assert_eq!(open_uploads(&app).await, 0, "the upload was aborted");
    let head = app
        .blobs
        .client()
        .head_object()
        .bucket(app.blobs.bucket())
        .key(job.object_key())
        .send()
        .await;
    assert!(head.is_err(), "no object");
}

#[tokio::test]
async fn a_burst_over_the_rate_limit_gets_429s_while_another_tenant_is_served() {
    let s3 = signature_checking_s3().await;
    let stack = local_stack(
        &s3,
        &[
            ("TENANT_RATE_LIMIT", "5".to_owned()),
            ("TENANT_RATE_WINDOW_SECONDS", "10".to_owned()),
        ],
        2,
    )
    .await;
    let http = reqwest::Client::new();
    let get = |who: &str| {
        let (http, url) = (http.clone(), format!("{}/activities", stack.base));
        let bearer = token(who, READER, "ann", 600);
        async move {
            http.get(url)
                .bearer_auth(bearer)
                .send()
                .await
                .unwrap_or_else(|e| panic!("{e}"))
        }
    };
    let burst: Vec<_> = (0..15).map(|_| get("burst-tenant")).collect();
    let responses = futures_util::future::join_all(burst).await;
    let statuses: Vec<u16> = responses.iter().map(|r| r.status().as_u16()).collect();
    let limited: Vec<&reqwest::Response> = responses.iter().filter(|r| r.status() == 429).collect();
    // Five per window; the burst can straddle two windows.
    assert!(limited.len() >= 5, "{statuses:?}");
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 429),
        "{statuses:?}"
    );
    let retry_after: u64 = limited[0]
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no Retry-After"));
    assert!((1..=10).contains(&retry_after), "{retry_after}");
    let mut last = None;
    for r in responses {
        if r.status() == 429 {
            last = Some(r.json::<Value>().await.unwrap_or_default());
        }
    }
    let error = last.unwrap_or_default();
    assert_eq!(error["error"]["code"], "RateLimited", "{error}");
    assert!(
        error["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );

    // Meanwhile another tenant is served.
    assert_eq!(get("calm-tenant").await.status(), 200);
}
