//! The benchmark harness behind `scripts/bench` (budgets and figures: BENCHMARKS.md).
//!
//!   bench <binaries> <report.json>
//!
//! `<binaries>` is `cargo lambda build --release`'s output folder (`target/lambda`), holding
//! `<name>/bootstrap` for the four functions and for `hello-runtime`, `noop-http`, `sdk-floor` and
//! `export-bench`. Everything runs against the AWS emulator (moto, started here) behind a
//! loopback proxy that counts what the functions ask of DynamoDB and S3. Function processes talk
//! to a stand-in Lambda Runtime API; their CPU time and peak RSS come from the kernel (`wait4`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use activity_log::domain::feed::{FeedEntry, MAX_APPEND};
use activity_log::domain::{
    Activity, ActivityQuery, CustomerId, DateRange, ExportFormat, ExportJob, ExportLocale,
    ExportSpec, ExportStatus, Filters, PartnerId,
};
use activity_log::store::dynamodb::DynamoStore;
use activity_log::store::{ExportJobs, FeedAppend, FeedLog};
use activity_log::testing::ApiRequest;
use activity_log::testing::fixtures::{TEST_CURSOR_KEY, local_default};
use activity_log::testing::fixtures::{insert_activities, stream_inserts, synthetic_activity};
use activity_log_bench::process::{Measured, Stdout};
use activity_log_bench::runtime_stub::{Outcome, RuntimeStub};
use activity_log_tests::fault_proxy::{Fault, FaultProxy};
use activity_log_tests::{create_storage, sdk_config};
use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use hyper::body::Bytes;
use serde_json::{Value, json};

type Fallible<T> = Result<T, String>;

const API_TABLE: &str = "bench-api";
const EXPORT_TABLE: &str = "bench-export";
/// Records go to a table of their own, so the query benchmark's table stays the same size
/// (the emulator scans a whole table per Query).
const RECORD_TABLE: &str = "bench-records";
const BUCKET: &str = "bench-exports";
const API_PARTNER: &str = "partner-bench";
/// The sequencer's own table and tenant (its throughput).
const FEED_TABLE: &str = "bench-feed";
const FEED_PARTNER: &str = "partner-feed";
const DELIVERY_PARTNER: &str = "partner-delivery";
/// The anchor bucket of the functions under test (`anchors-<table>`, as the harness names it).
const ANCHORED_TABLE: &str = "bench";
const ANCHOR_BUCKET: &str = "anchors-bench";
const EXPORT_PARTNER: &str = "partner-export";
const INVOKE_DEADLINE: Duration = Duration::from_secs(600);

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Harness {
    bins: PathBuf,
    logs: PathBuf,
    /// The proxy in front of the emulator: what the functions use.
    proxy: FaultProxy,
    /// The emulator itself: what seeding and the Python export use.
    emulator: String,
    sdk: aws_config::SdkConfig,
}

impl Harness {
    fn bin(&self, name: &str) -> PathBuf {
        self.bins.join(name).join("bootstrap")
    }

    /// The environment a deployed function gets, pointed at the proxy and `runtime`.
    fn function_env(&self, name: &str, table: &str, runtime: &str) -> Vec<(String, String)> {
        [
            ("AWS_LAMBDA_RUNTIME_API", runtime),
            ("AWS_LAMBDA_FUNCTION_NAME", name),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"),
            ("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/bench"),
            ("AWS_LAMBDA_LOG_STREAM_NAME", "bench"),
            ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_DEFAULT_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("AWS_ENDPOINT_URL", &self.proxy.url),
            ("TABLE_NAME", table),
            ("BUCKET_NAME", BUCKET),
            ("AUTH_MODE", "apigateway"),
            // Not local mode, so not the development key.
            ("CURSOR_SIGNING_KEY", TEST_CURSOR_KEY),
            (
                "SUBSCRIPTIONS_URL_TEMPLATE",
                local_default("SUBSCRIPTIONS_URL_TEMPLATE"),
            ),
            ("EXPORT_WORKER_FUNCTION", "export-worker"),
            // The emulator's KMS key the export worker signs manifests with.
            ("SIGNING_KEY_ID", SIGNING_KEY_ALIAS),
            // The integrity function starts only with its anchor store named (its init is
            // measured; the harness asks it for no checkpoint).
            ("ANCHOR_BUCKET", ANCHOR_BUCKET),
            // The harness sends its requests back to back from one partner: the rate counter is
            // updated on every request (its cost is in the figures) but never refuses one.
            ("TENANT_RATE_LIMIT", "1000000"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
    }

    /// Starts `name` under a fresh runtime stub and waits for its first `/invocation/next`.
    /// Returns the process, the stub and the time from exec to that call.
    async fn start(&self, name: &str, table: &str) -> Fallible<(Measured, RuntimeStub, Duration)> {
        let stub = RuntimeStub::start().await.map_err(|e| e.to_string())?;
        let env = self.function_env(name, table, &stub.address);
        let log = self.logs.join(format!("{name}.log"));
        let started = Instant::now();
        let process = Measured::spawn(&self.bin(name), &[], &env, &log, Stdout::Log)
            .map_err(|e| format!("{name}: {e}"))?;
        let ready = stub
            .first_next(Duration::from_secs(30))
            .await
            .map_err(|e| format!("{name}: {e} (log: {})", log.display()))?;
        Ok((process, stub, ready.duration_since(started)))
    }

    /// Starts `name`, hands it one API Gateway `event` and returns the response body.
    async fn invoke_once(&self, name: &str, table: &str, event: Value) -> Fallible<Value> {
        let (process, stub, _) = self.start(name, table).await?;
        let outcome = stub
            .invoke(Bytes::from(event.to_string()), INVOKE_DEADLINE)
            .await;
        process.kill_and_measure().map_err(|e| e.to_string())?;
        Ok(api_status(outcome?)?.1)
    }
}

/// An API Gateway response as the function returned it, status checked.
fn api_status(outcome: Outcome) -> Fallible<(u16, Value)> {
    match outcome {
        Outcome::Response(body) => {
            let v: Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
            let status = v["statusCode"].as_u64().unwrap_or(0) as u16;
            let body = v["body"]
                .as_str()
                .and_then(|b| serde_json::from_str(b).ok())
                .unwrap_or(Value::Null);
            Ok((status, body))
        }
        Outcome::Error(body) => Err(format!(
            "the function reported an error: {}",
            String::from_utf8_lossy(&body)
        )),
    }
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

/// Writes `rows` activities for `partner` (newest `now`, 10 ms apart) straight to the emulator.
async fn seed(
    store: &DynamoStore,
    partner: &PartnerId,
    customers: u64,
    rows: u64,
    now: DateTime<Utc>,
) -> Fallible<Vec<Activity>> {
    let batch: Vec<Activity> = (0..rows)
        .map(|i| {
            let when = now - TimeDelta::milliseconds(i64::try_from(i).unwrap_or(0) * 10);
            synthetic_activity(i, &format!("customer-{}", i % customers), when)
        })
        .collect();
    insert_activities(store, partner, &batch).await;
    Ok(batch)
}

/// Places `rows` in `partner`'s feed after its head, as the sequencer does.
async fn place_in_feed(
    store: &DynamoStore,
    partner: &PartnerId,
    rows: &[Activity],
) -> Fallible<()> {
    let mut head = store.feed_head(partner).await.map_err(|e| e.to_string())?;
    for chunk in rows.chunks(MAX_APPEND) {
        let entries: Vec<FeedEntry> = chunk.iter().map(feed_entry).collect();
        match store.append_feed(partner, head, &entries).await {
            Ok(FeedAppend::Appended) => head += entries.len() as u64,
            other => return Err(format!("placing the bench's feed: {other:?}")),
        }
    }
    Ok(())
}

fn feed_entry(a: &Activity) -> FeedEntry {
    FeedEntry {
        customer_id: a.customer_id.clone(),
        activity_id: a.id.clone(),
        expires_at: a.expires_at,
    }
}

fn spec(customer: Option<&str>, now: DateTime<Utc>) -> Fallible<ExportSpec> {
    Ok(ExportSpec {
        query: ActivityQuery {
            customer: customer
                .map(CustomerId::parse)
                .transpose()
                .map_err(|e| e.to_string())?,
            range: DateRange {
                from: now - TimeDelta::days(30),
                to: now + TimeDelta::minutes(1),
            },
            filters: Filters::default(),
        },
        format: ExportFormat::Csv,
        time_zone: chrono_tz::Asia::Taipei,
        locale: ExportLocale::English,
    })
}

// ---------------------------------------------------------------------------------------------
// 1. Init

async fn init(h: &Harness, runs: usize) -> Fallible<Value> {
    let names = [
        "hello-runtime",
        "noop-http",
        "record-activity",
        "query-activity",
        "export-activity",
        "export-worker",
        "integrity",
    ];
    let mut samples: BTreeMap<&str, Vec<Duration>> = BTreeMap::new();
    // Interleaved, so that a noisy moment hits every binary alike.
    for _ in 0..runs {
        for name in names {
            let (process, _stub, init) = h.start(name, API_TABLE).await?;
            process.kill_and_measure().map_err(|e| e.to_string())?;
            samples.entry(name).or_default().push(init);
        }
    }
    let hello = median(samples.get("hello-runtime").cloned().unwrap_or_default());
    let mut out = serde_json::Map::new();
    for (name, s) in samples {
        let (min, max) = (
            s.iter().min().copied().unwrap_or_default(),
            s.iter().max().copied().unwrap_or_default(),
        );
        let m = median(s);
        out.insert(
            name.to_owned(),
            json!({
                "medianMs": millis(m),
                "minMs": millis(min),
                "maxMs": millis(max),
                "ratioToHello": m.as_secs_f64() / hello.as_secs_f64().max(1e-9),
            }),
        );
    }
    Ok(json!({ "runs": runs, "binaries": out }))
}

// ---------------------------------------------------------------------------------------------
// 3. Request CPU

/// The number of the next request-CPU invocation, over the whole run.
static SERIAL: AtomicUsize = AtomicUsize::new(1);

/// CPU of `count` warm invocations: the difference between a process that served `warm`
/// invocations and one that served `warm + count` (so init and warm-up cancel out).
async fn request_cpu(
    h: &Harness,
    name: &str,
    table: &str,
    warm: usize,
    count: usize,
    event: &dyn Fn(usize) -> Value,
    expect: u16,
) -> Fallible<Value> {
    let mut totals = Vec::new();
    let mut latencies = Vec::new();
    let mut peak = 0;
    for served in [warm, warm + count] {
        let (process, stub, _) = h.start(name, table).await?;
        for i in 0..served {
            // Unique across processes and rounds: a repeated record id would be a replay,
            // which reads the stored record back instead of writing it.
            let serial = SERIAL.fetch_add(1, Ordering::Relaxed);
            let started = Instant::now();
            let outcome = stub
                .invoke(Bytes::from(event(serial).to_string()), INVOKE_DEADLINE)
                .await?;
            let (status, body) = api_status(outcome)?;
            if status != expect {
                return Err(format!(
                    "{name}: invocation {i} answered {status} (expected {expect}): {body}"
                ));
            }
            if i >= warm {
                latencies.push(started.elapsed());
            }
        }
        peak = process.peak_rss_kib().map_err(|e| e.to_string())?;
        let usage = process.kill_and_measure().map_err(|e| e.to_string())?;
        totals.push(usage);
    }
    let [short, long] = totals[..] else {
        return Err("two runs expected".into());
    };
    let per_request = long.cpu().saturating_sub(short.cpu()) / u32::try_from(count).unwrap_or(1);
    Ok(json!({
        "invocations": count,
        "warmUp": warm,
        "cpuPerRequestUs": micros(per_request),
        "cpuShortRunMs": millis(short.cpu()),
        "cpuLongRunMs": millis(long.cpu()),
        "wallMedianMs": millis(median(latencies)),
        "peakRssKib": peak,
    }))
}

/// A request-CPU case: function, table, the event of invocation `i`, the expected status.
type Case<'a> = (&'a str, &'a str, &'a dyn Fn(usize) -> Value, u16);

/// Rounds of the request-CPU measurement (`BENCH_REQUESTS` invocations split among them).
/// The signing key of the functions that sign (created in the emulator).
const SIGNING_KEY_ALIAS: &str = "alias/bench-signing";

/// Record functions built from earlier commits (scripts/bench, `BENCH_RECORD_BEFORE`) are
/// `record-activity-before-<commit>`.
const RECORD_BEFORE: &str = "record-activity-before-";

const REQUEST_ROUNDS: usize = 3;

/// The round with the median CPU per request, with every round's figure beside it.
fn median_round(mut runs: Vec<Value>) -> Fallible<Value> {
    let cpu = |v: &Value| v["cpuPerRequestUs"].as_f64().unwrap_or(f64::MAX);
    let all: Vec<f64> = runs.iter().map(cpu).collect();
    if runs.is_empty() {
        return Err("no request-CPU rounds".into());
    }
    runs.sort_by(|a, b| cpu(a).total_cmp(&cpu(b)));
    let mut median = runs.swap_remove(runs.len() / 2);
    median["roundsCpuPerRequestUs"] = json!(all);
    Ok(median)
}

async fn requests(h: &Harness, count: usize, now: DateTime<Utc>) -> Fallible<Value> {
    let partner = PartnerId::parse(API_PARTNER).map_err(|e| e.to_string())?;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&h.sdk), API_TABLE);
    // A customer with more than one page (100 rows, the default limit) of history, every
    // activity placed in the tenant's feed (the sequencer's appends).
    let rows = seed(&store, &partner, 1, 150, now - TimeDelta::hours(1)).await?;
    place_in_feed(&store, &partner, &rows).await?;
    // A finished export, for the status call that presigns its link.
    let job = ExportJob::pending(
        partner.clone(),
        spec(Some("customer-0"), now)?,
        now,
        TimeDelta::days(7),
    );
    store.create_job(&job).await.map_err(|e| e.to_string())?;
    let mut job = store
        .claim_job(&partner, &job.id, now, now + TimeDelta::minutes(15))
        .await
        .map_err(|e| e.to_string())?
        .ok_or("the new export job could not be claimed")?;
    job.status = ExportStatus::Succeeded;
    job.row_count = 150;
    job.bytes = 30_000;
    job.completed_at = Some(now);
    store.update_job(&job).await.map_err(|e| e.to_string())?;

    let reader = |route: ApiRequest| route.caller(API_PARTNER, &["GlobalAdmin"]).event();
    let from = (now - TimeDelta::days(1)).to_rfc3339_opts(SecondsFormat::Secs, true);
    let to = (now + TimeDelta::minutes(1)).to_rfc3339_opts(SecondsFormat::Secs, true);
    let query = {
        let (from, to) = (from.clone(), to.clone());
        move |_: usize| {
            reader(
                ApiRequest::get("/customers/{customerId}/activities")
                    .path_param("customerId", "customer-0")
                    .query("from", &from)
                    .query("to", &to),
            )
        }
    };
    let record_of = |customer: String| {
        move |i: usize| {
            let body = json!([{
                "id": format!("rec-{i:08}"),
                "customerId": customer,
                "customerName": "Fabrikam, Inc.",
                "action": "changed a subscription",
                "partnerUser": "chen.wei@partner.example",
                "resourceType": "subscription",
                "status": "succeeded",
                "details": {"subscriptionId": "sub-4711", "seats": 25},
            }]);
            ApiRequest::post("/activities", body.to_string())
                .caller(API_PARTNER, &["ActivityWriter"])
                .event()
        }
    };
    let feed = |_: usize| {
        reader(
            ApiRequest::get("/feed")
                .query("after", "0")
                .query("limit", "100"),
        )
    };
    // Every request appends to one customer's chain, as a busy integration's would; each earlier
    // build to a customer of its own.
    let record = record_of("fabrikam".to_owned());
    let befores: Vec<String> = std::fs::read_dir(&h.bins)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str().map(str::to_owned))
        .filter(|name| name.starts_with(RECORD_BEFORE) && h.bin(name).exists())
        .collect();
    let before_events: Vec<Box<dyn Fn(usize) -> Value>> = befores
        .iter()
        .map(|name| Box::new(record_of(format!("fabrikam-{name}"))) as Box<dyn Fn(usize) -> Value>)
        .collect();
    let export_id = job.id.to_string();
    let status = |_: usize| {
        reader(ApiRequest::get("/exports/{exportId}").path_param("exportId", &export_id))
    };

    // Rounds interleave the five processes, so a noisy moment on the machine hits each of them;
    // the round with the median CPU per request is reported, with every round's figure.
    let warm = 30;
    let per_round = count.div_ceil(REQUEST_ROUNDS);
    let mut cases: Vec<Case> = vec![
        ("noop-http", API_TABLE, &query, 200),
        ("sdk-floor", API_TABLE, &query, 200),
        ("record-activity", RECORD_TABLE, &record, 201),
        ("query-activity", API_TABLE, &query, 200),
        ("export-activity", API_TABLE, &status, 200),
        ("feed-floor", API_TABLE, &feed, 200),
        ("query-activity", API_TABLE, &feed, 200),
    ];
    // The record function as it was at earlier commits (scripts/bench builds them from
    // BENCH_RECORD_BEFORE), measured in the same rounds: what came since, as a ratio.
    for (name, event) in befores.iter().zip(&before_events) {
        cases.push((name, RECORD_TABLE, event.as_ref(), 201));
    }
    let mut rounds: Vec<Vec<Value>> = vec![Vec::new(); cases.len()];
    for _ in 0..REQUEST_ROUNDS {
        for (runs, &(name, table, event, expect)) in rounds.iter_mut().zip(&cases) {
            runs.push(request_cpu(h, name, table, warm, per_round, event, expect).await?);
        }
    }
    let mut medians = rounds.into_iter().map(median_round);
    let mut next = || medians.next().ok_or("a request-CPU case is missing")?;
    let (noop, floor, rec, q, st) = (next()?, next()?, next()?, next()?, next()?);
    let (feed_floor, feed_read) = (next()?, next()?);
    let mut record_before = serde_json::Map::new();
    for name in &befores {
        let run = next()?;
        let commit = name.trim_start_matches(RECORD_BEFORE).to_owned();
        record_before.insert(commit, run);
    }

    // A full batch (99 activities of one customer and its chain head, one TransactWriteItems),
    // then the same batch again: the
    // replay reads the stored records back with BatchGetItem, and the proxy answers part of
    // its keys as UnprocessedKeys twice, which the store must ask for again.
    let (process, stub, _) = h.start("record-activity", RECORD_TABLE).await?;
    let batch: Vec<Value> = (0..99)
        .map(|i| {
            json!({
                "id": format!("batch-{i:03}"),
                "customerId": "fabrikam",
                "customerName": "Fabrikam, Inc.",
                "action": "assigned a license",
                "partnerUser": "chen.wei@partner.example",
                "resourceType": "license",
                "details": {"seats": i},
            })
        })
        .collect();
    let event = ApiRequest::post("/activities", Value::Array(batch).to_string())
        .caller(API_PARTNER, &["ActivityWriter"])
        .event()
        .to_string();
    let (first, _) = api_status(
        stub.invoke(Bytes::from(event.clone()), INVOKE_DEADLINE)
            .await?,
    )?;
    h.proxy.inject("BatchGetItem", Fault::UnprocessedKeys, 2);
    let (replay, replay_body) =
        api_status(stub.invoke(Bytes::from(event), INVOKE_DEADLINE).await?)?;
    h.proxy.heal();
    process.kill_and_measure().map_err(|e| e.to_string())?;
    let replayed = replay_body["items"].as_array().map_or(0, Vec::len);
    if first != 201 || !(200..300).contains(&replay) || replayed != 99 {
        return Err(format!(
            "batch of 99: {first}, replay: {replay} with {replayed} items"
        ));
    }
    let batch = json!({
        "firstStatus": first,
        "replayStatus": replay,
        "replayItems": replayed,
        "unprocessedKeysInjected": h.proxy.injected("BatchGetItem"),
    });

    // One status answer, kept for the presign-expiry count, and the size of a query page.
    let body = h
        .invoke_once("export-activity", API_TABLE, status(0))
        .await?;
    let page = h.invoke_once("query-activity", API_TABLE, query(0)).await?["items"]
        .as_array()
        .map_or(0, Vec::len);

    let feed_items = h.invoke_once("query-activity", API_TABLE, feed(0)).await?["items"]
        .as_array()
        .map_or(0, Vec::len);
    let noop_us = noop["cpuPerRequestUs"].as_f64().unwrap_or(0.0).max(1e-9);
    let ratio = |v: &Value| v["cpuPerRequestUs"].as_f64().unwrap_or(0.0) / noop_us;
    let feed_floor_us = feed_floor["cpuPerRequestUs"]
        .as_f64()
        .unwrap_or(0.0)
        .max(1e-9);
    Ok(json!({
        "noop": noop,
        "sdkFloor": {"ratioToNoop": ratio(&floor), "run": floor},
        "record": {"ratioToNoop": ratio(&rec), "activitiesPerRequest": 1, "run": rec},
        "recordBefore": record_before
            .into_iter()
            .map(|(commit, run)| (commit, json!({"ratioToNoop": ratio(&run), "run": run})))
            .collect::<serde_json::Map<_, _>>(),
        "query": {"ratioToNoop": ratio(&q), "itemsPerPage": page, "run": q},
        "exportStatus": {"ratioToNoop": ratio(&st), "run": st},
        "feedFloor": {"ratioToNoop": ratio(&feed_floor), "run": feed_floor},
        "feed": {
            "ratioToFeedFloor": feed_read["cpuPerRequestUs"].as_f64().unwrap_or(0.0) / feed_floor_us,
            "itemsPerPage": feed_items,
            "run": feed_read,
        },
        "statusAnswer": body,
        "batch": batch,
    }))
}

// ---------------------------------------------------------------------------------------------
// Streaming: the sequencer

/// The sequencer (`sequence-feed`) placing `count` activities of 50 customers, handed their
/// stream records 100 at a time as the event source mapping would, against the emulator
/// through the proxy: activities placed per second of wall time, and its CPU per activity.
async fn sequencer(h: &Harness, count: usize, now: DateTime<Utc>) -> Fallible<Value> {
    let partner = PartnerId::parse(FEED_PARTNER).map_err(|e| e.to_string())?;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&h.sdk), FEED_TABLE);
    let rows = seed(
        &store,
        &partner,
        50,
        count as u64,
        now - TimeDelta::minutes(5),
    )
    .await?;
    let events: Vec<String> = rows
        .chunks(100)
        .map(|chunk| stream_inserts(&partner, chunk).to_string())
        .collect();
    let (process, stub, _) = h.start("sequence-feed", FEED_TABLE).await?;
    let calls_before = h.proxy.seen().len();
    let started = Instant::now();
    let mut placed = 0;
    for event in events {
        match stub.invoke(Bytes::from(event), INVOKE_DEADLINE).await? {
            Outcome::Response(body) => {
                let report: Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
                placed += report["placed"].as_u64().unwrap_or(0);
            }
            Outcome::Error(body) => {
                return Err(format!(
                    "sequence-feed failed: {}",
                    String::from_utf8_lossy(&body)
                ));
            }
        }
    }
    let wall = started.elapsed();
    let usage = process.kill_and_measure().map_err(|e| e.to_string())?;
    let head = store.feed_head(&partner).await.map_err(|e| e.to_string())?;
    if placed != count as u64 || head != count as u64 {
        return Err(format!(
            "sequence-feed placed {placed} of {count} (feed head {head})"
        ));
    }
    Ok(json!({
        "activities": count,
        "batches": count.div_ceil(100),
        "wallSeconds": wall.as_secs_f64(),
        "activitiesPerSecond": count as f64 / wall.as_secs_f64().max(1e-9),
        "cpuPerActivityUs": micros(usage.cpu()) / count as f64,
        "transactions": h.proxy.seen()[calls_before..]
            .iter()
            .filter(|s| s.operation == "TransactWriteItems")
            .count(),
    }))
}

/// Delivery's throughput to an HTTPS endpoint on this machine that acknowledges at once: `count`
/// activities placed in a tenant's feed, one webhook destination from position 0, the release
/// `deliver-feed` run on its schedule's event until the destination has them all.
async fn delivery(h: &Harness, count: usize, now: DateTime<Utc>) -> Fallible<Value> {
    use activity_log::domain::destination::{
        DEFAULT_AUTO_PAUSE_MINUTES, Destination, DestinationId, HttpsFormat, Target,
    };
    use activity_log::store::{DestinationChange, Destinations};
    use activity_log_tests::receiver::Receiver;
    let partner = PartnerId::parse(DELIVERY_PARTNER).map_err(|e| e.to_string())?;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&h.sdk), FEED_TABLE);
    let rows = seed(
        &store,
        &partner,
        50,
        count as u64,
        now - TimeDelta::minutes(5),
    )
    .await?;
    for chunk in rows.chunks(100) {
        let event =
            serde_json::from_value(stream_inserts(&partner, chunk)).map_err(|e| e.to_string())?;
        activity_log::handlers::feed::sequence(&store, &event)
            .await
            .map_err(|e| e.to_string())?;
    }
    let receiver = Receiver::start(Vec::new()).await;
    let config = activity_log::testing::fixtures::config();
    let d = Destination {
        id: DestinationId::generate(),
        name: "bench".into(),
        target: Target::Https {
            url: receiver.url.clone(),
            format: HttpsFormat::Webhook,
        },
        secret: Some("whsec_bench".into()),
        paused: None,
        auto_pause_after_minutes: DEFAULT_AUTO_PAUSE_MINUTES,
        created_at: now,
        created_by: "bench".into(),
        updated_at: now,
        updated_by: "bench".into(),
        version: 1,
        delivered: 0,
        last_delivered_at: None,
        failing: None,
    };
    let record = activity_log::handlers::destinations::change_record(
        &config,
        &partner,
        "bench",
        "Create streaming destination",
        &d,
        json!({}),
        now,
    )
    .map_err(|e| e.to_string())?;
    store
        .change_destination(
            &partner,
            &DestinationChange::Create(Box::new(d.clone())),
            &record,
        )
        .await
        .map_err(|e| e.to_string())?;
    let (process, stub, _) = h.start("deliver-feed", FEED_TABLE).await?;
    let scheduled = json!({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}});
    let calls_before = h.proxy.seen().len();
    let started = Instant::now();
    let mut events = 0;
    for _ in 0..20 {
        match stub
            .invoke(Bytes::from(scheduled.to_string()), INVOKE_DEADLINE)
            .await?
        {
            Outcome::Response(body) => {
                let report: Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
                events += report["events"].as_u64().unwrap_or(0);
            }
            Outcome::Error(body) => {
                return Err(format!(
                    "deliver-feed failed: {}",
                    String::from_utf8_lossy(&body)
                ));
            }
        }
        if events >= count as u64 {
            break;
        }
    }
    let wall = started.elapsed();
    let usage = process.kill_and_measure().map_err(|e| e.to_string())?;
    let stored = store
        .destination(&partner, &d.id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("the bench destination is gone")?;
    let requests = receiver.received().len();
    if stored.delivered != count as u64 || events != count as u64 {
        return Err(format!(
            "deliver-feed delivered {events} of {count} (cursor {})",
            stored.delivered
        ));
    }
    Ok(json!({
        "activities": count,
        "requests": requests,
        "wallSeconds": wall.as_secs_f64(),
        "activitiesPerSecond": count as f64 / wall.as_secs_f64().max(1e-9),
        "cpuPerActivityUs": micros(usage.cpu()) / count as f64,
        "storageCalls": h.proxy.seen().len() - calls_before,
    }))
}

// ---------------------------------------------------------------------------------------------
// 4-6. Exports

/// The verifier's throughput on this one core (`verify-bench`).
async fn verifier(h: &Harness) -> Fallible<Value> {
    let rows = env_usize("BENCH_VERIFY_ROWS", 200_000).to_string();
    side_bench(h, "verify-bench", &rows)
}

/// One run of the sealer over many customers whose heads moved, against an emulator of its own
/// (`seal-bench`).
async fn sealer(h: &Harness) -> Fallible<Value> {
    let customers = env_usize("BENCH_SEAL_CUSTOMERS", 10_000).to_string();
    side_bench(h, "seal-bench", &customers)
}

/// What the benchmark binary `name`, run with `arg`, printed: one JSON object.
fn side_bench(h: &Harness, name: &str, arg: &str) -> Fallible<Value> {
    let log = h.logs.join(format!("{name}.log"));
    let process = Measured::spawn(&h.bin(name), &[arg], &[], &log, Stdout::Piped)
        .map_err(|e| e.to_string())?;
    let (out, usage) = process.output_and_measure().map_err(|e| e.to_string())?;
    if usage.code != Some(0) {
        return Err(format!("{name} failed; see {}", log.display()));
    }
    serde_json::from_str(out.trim()).map_err(|e| format!("{name}: {e}: {out}"))
}

async fn export_bench(h: &Harness, args: &[&str]) -> Fallible<Value> {
    let log = h.logs.join("export-bench.log");
    let process = Measured::spawn(&h.bin("export-bench"), args, &[], &log, Stdout::Piped)
        .map_err(|e| e.to_string())?;
    let (out, usage) = process.output_and_measure().map_err(|e| e.to_string())?;
    if usage.code != Some(0) {
        return Err(format!(
            "export-bench {args:?} failed; see {}",
            log.display()
        ));
    }
    serde_json::from_str(out.trim()).map_err(|e| format!("export-bench: {e}: {out}"))
}

/// Downloads an object and counts its CSV data rows (the header excluded), all distinct.
async fn count_rows(h: &Harness, key: &str) -> Fallible<(usize, usize)> {
    let s3 = activity_log::app::s3_client(&h.sdk, &activity_log::config::SdkSettings::default());
    let object = s3
        .get_object()
        .bucket(BUCKET)
        .key(key)
        .send()
        .await
        .map_err(|e| format!("download {key}: {e}"))?;
    let bytes = object
        .body
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .into_bytes();
    let mut reader = csv::Reader::from_reader(&bytes[..]);
    let mut ids = std::collections::HashSet::new();
    let mut rows = 0;
    for record in reader.records() {
        let record = record.map_err(|e| e.to_string())?;
        rows += 1;
        ids.insert(record.get(7).unwrap_or("").to_owned());
    }
    Ok((rows, ids.len()))
}

async fn exports(h: &Harness, rows: u64, now: DateTime<Utc>) -> Fallible<Value> {
    // 4. Memory with pages from memory: 10,000 and 1,000,000 rows, one process each.
    let small = export_bench(h, &["memory", "10000"]).await?;
    let large = export_bench(h, &["memory", "1000000"]).await?;
    // 5. CPU against the raw csv crate.
    let cpu = export_bench(h, &["cpu", "200000", "5"]).await?;
    // Parquet (OCSF): memory at both sizes, and throughput against CSV through the same worker.
    // Whole chains, as the CSV figures' filtered ones would measure the manifest's state.
    let parquet_small = export_bench(h, &["memory", "10000", "parquet", "whole"]).await?;
    let parquet_large = export_bench(h, &["memory", "1000000", "parquet", "whole"]).await?;
    let whole_csv = export_bench(h, &["memory", "1000000", "csv", "whole"]).await?;
    let formats = export_bench(h, &["formats", "200000", "3"]).await?;

    // 4 and 6 against the emulator: the export-worker binary, then Python with boto3.
    let partner = PartnerId::parse(EXPORT_PARTNER).map_err(|e| e.to_string())?;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&h.sdk), EXPORT_TABLE);
    let seeding = Instant::now();
    seed(&store, &partner, 20, rows, now - TimeDelta::minutes(1)).await?;
    let seeded_in = seeding.elapsed();

    let job = ExportJob::pending(partner.clone(), spec(None, now)?, now, TimeDelta::days(7));
    store.create_job(&job).await.map_err(|e| e.to_string())?;
    let (process, stub, init) = h.start("export-worker", EXPORT_TABLE).await?;
    let event = json!({"partnerId": EXPORT_PARTNER, "exportId": job.id.to_string()});
    let started = Instant::now();
    let answer = stub
        .invoke(Bytes::from(event.to_string()), INVOKE_DEADLINE)
        .await?;
    let wall = started.elapsed();
    let peak = process.peak_rss_kib().map_err(|e| e.to_string())?;
    let usage = process.kill_and_measure().map_err(|e| e.to_string())?;
    let answer: Value = match answer {
        Outcome::Response(b) => serde_json::from_slice(&b).map_err(|e| e.to_string())?,
        Outcome::Error(b) => return Err(String::from_utf8_lossy(&b).into_owned()),
    };
    if answer["status"] != "succeeded" || answer["rows"].as_u64() != Some(rows) {
        return Err(format!("the export worker answered {answer}"));
    }
    let (csv_rows, distinct) = count_rows(h, &job.object_key()).await?;
    if csv_rows as u64 != rows || distinct as u64 != rows {
        return Err(format!(
            "the exported file has {csv_rows} rows ({distinct} distinct), expected {rows}"
        ));
    }

    let python = activity_log_tests::tool("python");
    let script = activity_log_tests::workspace_root().join("bench/python/boto3_export.py");
    let key = format!("exports/{EXPORT_PARTNER}/boto3.csv");
    let env: Vec<(String, String)> = [
        ("AWS_ENDPOINT_URL", h.emulator.as_str()),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    let from = (now - TimeDelta::days(30)).to_rfc3339_opts(SecondsFormat::Millis, true);
    let to = (now + TimeDelta::minutes(1)).to_rfc3339_opts(SecondsFormat::Millis, true);
    let script_s = script.display().to_string();
    let args = [
        script_s.as_str(),
        EXPORT_TABLE,
        EXPORT_PARTNER,
        &from,
        &to,
        BUCKET,
        &key,
        "Asia/Taipei",
    ];
    let started = Instant::now();
    let py = Measured::spawn(
        &python,
        &args,
        &env,
        &h.logs.join("boto3_export.log"),
        Stdout::Piped,
    )
    .map_err(|e| e.to_string())?;
    let (py_out, py_usage) = py.output_and_measure().map_err(|e| e.to_string())?;
    let py_wall = started.elapsed();
    if py_usage.code != Some(0) {
        return Err(format!("the boto3 export failed: {py_out}"));
    }
    let py_report: Value = serde_json::from_str(py_out.trim()).map_err(|e| e.to_string())?;
    let (py_rows, py_distinct) = count_rows(h, &key).await?;
    if py_rows as u64 != rows || py_distinct as u64 != rows {
        return Err(format!(
            "the boto3 file has {py_rows} rows ({py_distinct} distinct), expected {rows}"
        ));
    }

    let per_100k = |d: Duration| millis(d) * 100_000.0 / rows as f64;
    let kib = |v: &Value| v["peakRssKib"].as_u64().unwrap_or(0);
    Ok(json!({
        "memory": {
            "ratio1mTo10k": kib(&large) as f64 / kib(&small).max(1) as f64,
            "rows10k": small,
            "rows1m": large,
        },
        "cpu": cpu,
        "parquet": {
            "memory": {
                "ratio1mTo10k": kib(&parquet_large) as f64 / kib(&parquet_small).max(1) as f64,
                "rows10k": parquet_small,
                "rows1m": parquet_large,
            },
            "formats": formats,
            "csvWhole1m": whole_csv,
        },
        "emulator": {
            "rows": rows,
            "seedSeconds": seeded_in.as_secs_f64(),
            "ours": {
                "answer": answer,
                "initMs": millis(init),
                "wallSeconds": wall.as_secs_f64(),
                "cpuMs": millis(usage.cpu()),
                "userMs": millis(usage.user),
                "systemMs": millis(usage.system),
                "cpuMsPer100k": per_100k(usage.cpu()),
                "peakRssKib": peak,
                "fileRows": csv_rows,
            },
            "boto3": {
                "report": py_report,
                "wallSeconds": py_wall.as_secs_f64(),
                "cpuMs": millis(py_usage.cpu()),
                "userMs": millis(py_usage.user),
                "systemMs": millis(py_usage.system),
                "cpuMsPer100k": per_100k(py_usage.cpu()),
                "peakRssKib": py_report["peakRssKib"],
                "fileRows": py_rows,
            },
            "boto3CpuToOurs": py_usage.cpu().as_secs_f64() / usage.cpu().as_secs_f64().max(1e-9),
        },
    }))
}

// ---------------------------------------------------------------------------------------------
// 7. Service limits, counted from what went through the proxy

fn limits(h: &Harness, requests: &Value) -> Value {
    let status_answer = &requests["statusAnswer"];
    let seen = h.proxy.seen();
    let mut counts: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut uploads: BTreeMap<String, Vec<(u32, usize)>> = BTreeMap::new();
    for s in &seen {
        let e = counts.entry(s.operation.clone()).or_default();
        e.0 += 1;
        e.1 = e.1.max(s.items);
        if s.operation == "UploadPart" {
            let q = |name: &str| {
                s.query
                    .split('&')
                    .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
                    .map(str::to_owned)
            };
            if let (Some(upload), Some(n)) = (q("uploadId"), q("partNumber")) {
                uploads
                    .entry(upload)
                    .or_default()
                    .push((n.parse().unwrap_or(0), s.body_bytes));
            }
        }
    }
    let mut smallest_non_final = usize::MAX;
    let mut most_parts = 0;
    for parts in uploads.values_mut() {
        parts.sort();
        most_parts = most_parts.max(parts.len());
        for (_, size) in parts.iter().take(parts.len().saturating_sub(1)) {
            smallest_non_final = smallest_non_final.min(*size);
        }
    }
    let expires = status_answer["downloadUrl"]
        .as_str()
        .and_then(|u| {
            u.split(['?', '&'])
                .find_map(|kv| kv.strip_prefix("X-Amz-Expires="))
        })
        .and_then(|v| v.parse::<u64>().ok());
    let ops: serde_json::Map<String, Value> = counts
        .into_iter()
        .map(|(op, (calls, max_items))| (op, json!({"calls": calls, "maxItems": max_items})))
        .collect();
    json!({
        "operations": ops,
        "multipartUploads": uploads.len(),
        "mostParts": most_parts,
        "smallestNonFinalPartBytes": (smallest_non_final != usize::MAX).then_some(smallest_non_final),
        "presignExpiresSeconds": expires,
        "batchOf99": requests["batch"].clone(),
    })
}

// ---------------------------------------------------------------------------------------------

async fn run(bins: PathBuf, report: PathBuf) -> Fallible<()> {
    let logs = report
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
        .join("logs");
    std::fs::create_dir_all(&logs).map_err(|e| e.to_string())?;
    let emulator = activity_log_tests::emulator().await;
    let sdk = sdk_config(&emulator).await;
    for table in [API_TABLE, RECORD_TABLE, EXPORT_TABLE, FEED_TABLE] {
        create_storage(&sdk, table, BUCKET).await;
    }
    activity_log_tests::signing_key(&sdk, SIGNING_KEY_ALIAS).await;
    // The anchors the export worker checks a manifest's heads against (none: nothing sealed).
    let anchors = activity_log_tests::anchor_bucket(&sdk, ANCHORED_TABLE).await;
    debug_assert_eq!(anchors, ANCHOR_BUCKET);
    let proxy = FaultProxy::start(&emulator).await;
    let h = Harness {
        bins,
        logs,
        proxy,
        emulator,
        sdk,
    };
    let now = Utc::now();
    let total = Instant::now();
    let step = |what: &str| eprintln!("bench: {what} ({:.0} s)", total.elapsed().as_secs_f64());

    // BENCH_ONLY=init,requests,sequencer,delivery,exports,verifier,sealer picks parts (for profiling one of them);
    // default all.
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    let wanted = |part: &str| only.is_empty() || only.split(',').any(|p| p == part);
    let mut init_figures = Value::Null;
    if wanted("init") {
        step("init");
        init_figures = init(&h, env_usize("BENCH_INIT_RUNS", 31)).await?;
    }
    let mut requests_figures = Value::Null;
    if wanted("requests") {
        step("request CPU");
        requests_figures = requests(&h, env_usize("BENCH_REQUESTS", 500), now).await?;
    }
    let mut sequencer_figures = Value::Null;
    if wanted("sequencer") {
        step("sequencer");
        sequencer_figures = sequencer(&h, env_usize("BENCH_FEED_ACTIVITIES", 4_900), now).await?;
    }
    let mut delivery_figures = Value::Null;
    if wanted("delivery") {
        step("delivery");
        delivery_figures = delivery(&h, env_usize("BENCH_DELIVERY_ACTIVITIES", 5_000), now).await?;
    }
    let mut exports_figures = Value::Null;
    if wanted("exports") {
        step("exports");
        let rows = env_usize("BENCH_EXPORT_ROWS", 100_000) as u64;
        exports_figures = exports(&h, rows, now).await?;
    }
    let mut verifier_figures = Value::Null;
    if wanted("verifier") {
        step("verifier");
        verifier_figures = verifier(&h).await?;
    }
    let mut sealer_figures = Value::Null;
    if wanted("sealer") {
        step("sealer");
        sealer_figures = sealer(&h).await?;
    }
    let (init, requests, exports) = (init_figures, requests_figures, exports_figures);
    step("limits");
    let limits = limits(&h, &requests);
    let out = json!({
        "when": Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true),
        "seconds": total.elapsed().as_secs_f64(),
        "init": init,
        "requests": requests,
        "exports": exports,
        "sequencer": sequencer_figures,
        "delivery": delivery_figures,
        "verifier": verifier_figures,
        "sealer": sealer_figures,
        "limits": limits,
    });
    let text = serde_json::to_string_pretty(&out).map_err(|e| e.to_string())?;
    std::fs::write(&report, text + "\n").map_err(|e| e.to_string())?;
    step("done");
    Ok(())
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(bins), Some(report)) = (args.first(), args.get(1)) else {
        eprintln!("usage: bench <target/lambda> <report.json>");
        std::process::exit(2);
    };
    if let Err(e) = run(PathBuf::from(bins), PathBuf::from(report)).await {
        eprintln!("bench failed: {e}");
        std::process::exit(1);
    }
}
