//! Test harness: the AWS emulator (moto) on a free port, isolated tables and buckets per test,
//! locally signed tokens, and `cargo lambda watch` for end-to-end runs. Also used by the
//! `devtool` binary behind `scripts/dev`.

pub mod cloudformation;
pub mod fault_proxy;
pub mod load;
pub mod receiver;
pub mod stream_pump;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use activity_log::app::{App, s3_client};
use activity_log::config::{AuthMode, Config, SdkSettings};
use activity_log::domain::{Activity, PartnerId};
use activity_log::handlers::export_worker::{self, ExportPorts, RunOutcome, WorkerError};
use activity_log::launch::{ExportLauncher, WorkerEvent};
use activity_log::store::memory::MemoryStore;
use activity_log::store::{ActivityReader, ChainIndex, ExportObjects};
use activity_log::testing::fixtures::{config_for, local_default, memory_log, synthetic_activity};
use activity_log::testing::storage::{
    create_anchor_bucket, create_bucket, create_signing_key, create_table,
};
use aws_config::{BehaviorVersion, Region};
use chrono::{TimeDelta, Utc};
use serde_json::json;

pub use activity_log::testing::fixtures::json_body;

/// The lines of `openapi.yaml` that list the time zone names, between these markers.
pub const TIME_ZONES_BEGIN: &str =
    "      # BEGIN time zones: generated from the code by `devtool openapi-time-zones`";
pub const TIME_ZONES_END: &str = "      # END time zones";

/// The `enum` of the `TimeZone` schema, from the names the code accepts: the lines between the
/// markers, a flow sequence of quoted names, wrapped.
pub fn time_zone_enum_lines() -> String {
    let mut out = String::from("      enum: [\n");
    let mut line = String::new();
    for name in activity_log::domain::time::time_zone_names() {
        let item = format!("\"{name}\", ");
        if line.len() + item.len() > 92 {
            out.push_str("        ");
            out.push_str(line.trim_end());
            out.push('\n');
            line.clear();
        }
        line.push_str(&item);
    }
    out.push_str("        ");
    out.push_str(line.trim_end().trim_end_matches(','));
    out.push_str("\n      ]\n");
    out
}

/// `text` (openapi.yaml) with the lines between the time zone markers replaced by
/// [`time_zone_enum_lines`]; `None` when the markers are missing.
pub fn with_time_zone_enum(text: &str) -> Option<String> {
    let begin = text.find(TIME_ZONES_BEGIN)? + TIME_ZONES_BEGIN.len() + 1;
    let end = begin + text.get(begin..)?.find(TIME_ZONES_END)?;
    Some(format!(
        "{}{}{}",
        &text[..begin],
        time_zone_enum_lines(),
        &text[end..]
    ))
}

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// A file of the repository, as text.
pub fn read_workspace_file(name: &str) -> String {
    std::fs::read_to_string(workspace_root().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free port: {e}"))
}

/// Finds a tool in the project venv first, then on PATH.
pub fn tool(name: &str) -> PathBuf {
    let venv = workspace_root().join(".venv/bin").join(name);
    if venv.exists() {
        venv
    } else {
        PathBuf::from(name)
    }
}

/// Polls `ready` until it holds or the deadline passes; never sleeps a fixed time to wait.
pub async fn wait_until<F, Fut>(what: &str, deadline: Duration, mut ready: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    let mut pause = Duration::from_millis(50);
    while !ready().await {
        assert!(
            start.elapsed() < deadline,
            "{what} not ready after {deadline:?}"
        );
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(1));
    }
}

/// Starts `program args…` in the background, stopped when this process exits (a watcher kills
/// it once our pid is gone, so a panicking test leaves nothing running).
///
/// The variables cargo sets for this test crate (`CARGO_PKG_*`, `CARGO_MANIFEST_DIR`, …) are not
/// passed on: a cargo started under them (`cargo lambda watch` runs `cargo run`) takes them for
/// changed build-script inputs (ring's build script reads them), builds ring again and with it
/// every AWS SDK crate, and the next cargo started without them builds it all back.
#[allow(clippy::zombie_processes)] // the caller owns the child; the watcher reaps the program
pub fn spawn_tied(program: &Path, args: &[&str], envs: &[(&str, String)], log: &Path) -> Child {
    let log_file =
        std::fs::File::create(log).unwrap_or_else(|e| panic!("log {}: {e}", log.display()));
    let err_file = log_file.try_clone().unwrap_or_else(|e| panic!("log: {e}"));
    let mut cmd = Command::new("bash");
    cmd.arg("-c")
        .arg(r#"set -m; parent=$1; shift; "$@" & child=$!; trap 'kill -- -$child 2>/dev/null; exit' TERM INT; while kill -0 "$parent" 2>/dev/null && kill -0 "$child" 2>/dev/null; do sleep 0.5; done; kill -- -$child 2>/dev/null; wait"#)
        .arg("tied")
        .arg(std::process::id().to_string())
        .arg(program)
        .args(args);
    for (name, _) in std::env::vars_os() {
        if name.to_str().is_some_and(set_by_cargo_for_this_crate) {
            cmd.env_remove(name);
        }
    }
    cmd.envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
        .current_dir(workspace_root())
        .stdin(Stdio::null())
        .stdout(log_file)
        .stderr(err_file);
    cmd.spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()))
}

/// Whether `name` is one of the variables cargo sets for the crate it builds or runs (cargo's
/// reference, "Environment variables Cargo sets for crates"), as opposed to the ones that
/// configure cargo itself (`CARGO_HOME`, `CARGO_TARGET_DIR`, `CARGO_INCREMENTAL`, …), which a
/// cargo started from a test must keep.
fn set_by_cargo_for_this_crate(name: &str) -> bool {
    name == "OUT_DIR"
        || name == "CARGO_CRATE_NAME"
        || name == "CARGO_PRIMARY_PACKAGE"
        || name == "CARGO_TARGET_TMPDIR"
        || name == "CARGO_RUSTC_CURRENT_DIR"
        || ["CARGO_PKG_", "CARGO_MANIFEST_", "CARGO_BIN_"]
            .iter()
            .any(|prefix| name.starts_with(prefix))
}

/// The emulator endpoint: `AWS_ENDPOINT_URL` if given, else a moto server started once per test
/// binary on a free port.
pub async fn emulator() -> String {
    static ENDPOINT: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    ENDPOINT.get_or_init(start_emulator).await.clone()
}

async fn start_emulator() -> String {
    let endpoint = match std::env::var("AWS_ENDPOINT_URL")
        .ok()
        .filter(|v| !v.is_empty())
    {
        Some(e) => e,
        None => {
            let port = free_port();
            let log = std::env::temp_dir().join(format!("activity-log-moto-{port}.log"));
            let child = spawn_tied(
                &tool("python"),
                &[
                    &workspace_root()
                        .join("tests/emulator/moto_server.py")
                        .display()
                        .to_string(),
                    "-H",
                    "127.0.0.1",
                    "-p",
                    &port.to_string(),
                ],
                &[],
                &log,
            );
            // Kept for the life of the test binary; the watcher stops the server when we exit.
            static SERVER: OnceLock<std::sync::Mutex<Child>> = OnceLock::new();
            let _ = SERVER.set(std::sync::Mutex::new(child));
            format!("http://127.0.0.1:{port}")
        }
    };
    let client = reqwest::Client::new();
    let probe = format!("{endpoint}/moto-api/");
    wait_until("the AWS emulator", Duration::from_secs(60), || {
        let (client, probe) = (client.clone(), probe.clone());
        async move { client.get(&probe).send().await.is_ok() }
    })
    .await;
    endpoint
}

/// The SDK configuration of the emulator at `endpoint`, with the local region and credentials.
pub async fn sdk_config(endpoint: &str) -> aws_config::SdkConfig {
    let key = local_default("AWS_ACCESS_KEY_ID");
    let secret = local_default("AWS_SECRET_ACCESS_KEY");
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(local_default("AWS_REGION")))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            key, secret, None, None, "tests",
        ))
        .load()
        .await
}

/// Creates the table and bucket (idempotent).
pub async fn create_storage(sdk: &aws_config::SdkConfig, table: &str, bucket: &str) {
    create_table(&aws_sdk_dynamodb::Client::new(sdk), table)
        .await
        .unwrap_or_else(|e| panic!("create table {table}: {e}"));
    create_bucket(&s3_client(sdk, &SdkSettings::default()), bucket)
        .await
        .unwrap_or_else(|e| panic!("create bucket {bucket}: {e}"));
}

/// Creates the signing key under `alias` unless it exists; its ARN.
pub async fn signing_key(sdk: &aws_config::SdkConfig, alias: &str) -> String {
    create_signing_key(&aws_sdk_kms::Client::new(sdk), alias)
        .await
        .unwrap_or_else(|e| panic!("signing key {alias}: {e}"))
}

pub fn unique_name(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        ulid::Ulid::generate().to_string().to_lowercase()
    )
}

/// An app with its own fresh table and bucket in the emulator, with the real SDK clients.
pub async fn isolated_app() -> App {
    let endpoint = emulator().await;
    let sdk = sdk_config(&endpoint).await;
    let (table, bucket) = (unique_name("activities"), unique_name("activity-log"));
    create_storage(&sdk, &table, &bucket).await;
    let key = signing_key(&sdk, &format!("alias/{table}")).await;
    App::with_clients(
        with_anchors(config_for(&table, &bucket, AuthMode::ApiGateway), &sdk).await,
        aws_sdk_dynamodb::Client::new(&sdk),
        s3_client(&sdk, &SdkSettings::default()),
    )
    .with_signer(&sdk, key)
    .with_anchors(&sdk)
}

/// The anchor bucket of `table` (Object Lock, compliance mode) in the emulator `sdk` reaches.
pub async fn anchor_bucket(sdk: &aws_config::SdkConfig, table: &str) -> String {
    let bucket = format!("anchors-{table}");
    create_anchor_bucket(&s3_client(sdk, &SdkSettings::default()), &bucket, 365)
        .await
        .unwrap_or_else(|e| panic!("anchor bucket {bucket}: {e}"));
    bucket
}

/// `config` anchoring in a fresh anchor bucket of its table.
async fn with_anchors(mut config: Config, sdk: &aws_config::SdkConfig) -> Config {
    config.anchors.bucket = Some(anchor_bucket(sdk, &config.table_name).await);
    config
}

/// An app with its own fresh table and bucket whose DynamoDB client goes through a
/// [`FaultProxy`](fault_proxy::FaultProxy) (to inject faults and count calls); S3 goes straight
/// to the emulator.
pub async fn app_behind_proxy() -> (App, fault_proxy::FaultProxy) {
    let endpoint = emulator().await;
    let direct = sdk_config(&endpoint).await;
    let (table, bucket) = (unique_name("activities"), unique_name("activity-log"));
    create_storage(&direct, &table, &bucket).await;
    let proxy = fault_proxy::FaultProxy::start(&endpoint).await;
    let via_proxy = sdk_config(&proxy.url).await;
    let key = signing_key(&direct, &format!("alias/{table}")).await;
    let app = App::with_clients(
        with_anchors(config_for(&table, &bucket, AuthMode::ApiGateway), &direct).await,
        aws_sdk_dynamodb::Client::new(&via_proxy),
        s3_client(&direct, &SdkSettings::default()),
    )
    .with_signer(&direct, key)
    .with_anchors(&direct);
    (app, proxy)
}

/// An access token of the local OpenID Connect provider, like `scripts/dev-token` prints.
pub fn token(partner: &str, roles: &[&str], sub: &str, ttl_secs: i64) -> String {
    activity_log::testing::fixtures::local_token(partner, roles, sub, ttl_secs)
}

/// A token of `partner` whose signature does not match its claims.
pub fn forged_token(partner: &str, roles: &[&str]) -> String {
    activity_log::testing::fixtures::refused_tokens(partner, roles)
        .into_iter()
        .find(|(what, _)| *what == "forged signature")
        .map(|(_, t)| t)
        .unwrap_or_default()
}

/// An S3 server that verifies SigV4 signatures and presigned-URL expiry (s3s-fs, installed by
/// `scripts/lib.sh` into `.local/tools`), on a free port over a temporary folder. Access key
/// and secret are `test`/`test`, like the emulator's.
pub async fn signature_checking_s3() -> String {
    static ENDPOINT: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    ENDPOINT
        .get_or_init(start_signature_checking_s3)
        .await
        .clone()
}

async fn start_signature_checking_s3() -> String {
    let binary = workspace_root().join(".local/tools/bin/s3s-fs");
    assert!(
        binary.exists(),
        "{} is missing: run scripts/test (it installs it)",
        binary.display()
    );
    let port = free_port();
    let root = std::env::temp_dir().join(format!("activity-log-s3s-{port}"));
    std::fs::create_dir_all(&root).unwrap_or_else(|e| panic!("{}: {e}", root.display()));
    let log = std::env::temp_dir().join(format!("activity-log-s3s-{port}.log"));
    let child = spawn_tied(
        &binary,
        &[
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--access-key",
            local_default("AWS_ACCESS_KEY_ID"),
            "--secret-key",
            local_default("AWS_SECRET_ACCESS_KEY"),
            &root.display().to_string(),
        ],
        &[],
        &log,
    );
    static SERVER: OnceLock<std::sync::Mutex<Child>> = OnceLock::new();
    let _ = SERVER.set(std::sync::Mutex::new(child));
    let endpoint = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    wait_until("s3s-fs", Duration::from_secs(60), || {
        let (client, url) = (client.clone(), endpoint.clone());
        async move { client.get(&url).send().await.is_ok() }
    })
    .await;
    endpoint
}

/// The ids of a page's items, in order.
pub fn ids(page: &serde_json::Value) -> Vec<String> {
    page["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Ids of recorded activities (request objects of one customer) in the order the log returns
/// them: newest first, ties by id, descending.
pub fn newest_first_ids(items: &[serde_json::Value]) -> Vec<String> {
    let field = |i: &serde_json::Value, f: &str| i[f].as_str().unwrap_or_default().to_owned();
    let mut keyed: Vec<(String, String)> = items
        .iter()
        .map(|i| (field(i, "occurredAt"), field(i, "id")))
        .collect();
    keyed.sort_by(|a, b| b.cmp(a));
    keyed.into_iter().map(|(_, id)| id).collect()
}

/// The whole service as developers run it: the functions under `cargo lambda watch` on a
/// free port (local token verification, router paths as in AWS), DynamoDB in the emulator and S3
/// at `s3_endpoint`, each in a fresh table and bucket.
pub struct LocalStack {
    pub base: String,
    pub table: String,
    pub bucket: String,
    /// The anchor bucket, in the emulator (whose S3 keeps Object Lock).
    pub anchor_bucket: String,
    pub log: PathBuf,
}

/// Starts a [`LocalStack`] with up to `concurrency` instances of each function, and waits until
/// the query and record functions give real answers (each function is built and started on its
/// first call). Code changes do not reload it. It runs until the test binary exits.
/// How often the local stack runs delivery's schedule (a minute in AWS).
pub const DELIVERY_SCHEDULE: std::time::Duration = std::time::Duration::from_secs(2);

pub async fn local_stack(
    s3_endpoint: &str,
    extra_env: &[(&str, String)],
    concurrency: usize,
) -> LocalStack {
    start_stack(s3_endpoint, extra_env, concurrency, false).await
}

/// [`local_stack`] that also delivers to streaming destinations: the stream pumped into
/// `deliver-feed` and its schedule ticking every [`DELIVERY_SCHEDULE`]. (The other stacks leave
/// it out: on two cores its polling takes from the writers.)
pub async fn local_stack_delivering(
    s3_endpoint: &str,
    extra_env: &[(&str, String)],
    concurrency: usize,
) -> LocalStack {
    start_stack(s3_endpoint, extra_env, concurrency, true).await
}

async fn start_stack(
    s3_endpoint: &str,
    extra_env: &[(&str, String)],
    concurrency: usize,
    delivering: bool,
) -> LocalStack {
    let endpoint = emulator().await;
    let (table, bucket) = (unique_name("stack"), unique_name("stack"));
    let key = stack_storage(&endpoint, s3_endpoint, &table, &bucket).await;
    let anchor_bucket = anchor_bucket(&sdk_config(&endpoint).await, &table).await;
    let port = free_port();
    let mut env = watch_env(&endpoint, s3_endpoint, port, &table, &bucket, key);
    env.extend([
        ("ANCHOR_BUCKET", anchor_bucket.clone()),
        ("ANCHOR_ENDPOINT_URL", endpoint.clone()),
    ]);
    env.extend(extra_env.iter().cloned());
    let log = start_watch(&env, port, concurrency);
    let base = format!("http://127.0.0.1:{port}");
    wait_for_functions(&base).await;
    // The table's stream into the sequencer (and delivery), as the event source mappings do in
    // AWS, and delivery's schedule.
    stream_pump::pump_into_function(&endpoint, &table, &base, stream_pump::SEQUENCER);
    if delivering {
        stream_pump::pump_into_function(&endpoint, &table, &base, stream_pump::DELIVERY);
        stream_pump::tick_function(&base, stream_pump::DELIVERY.function, DELIVERY_SCHEDULE);
    }
    eprintln!(
        "stack up at {base}; cargo lambda watch log: {}",
        log.display()
    );
    LocalStack {
        base,
        table,
        bucket,
        anchor_bucket,
        log,
    }
}

/// A fresh table in the emulator at `endpoint`, a fresh bucket at `s3_endpoint`, and a signing
/// key (its id).
async fn stack_storage(endpoint: &str, s3_endpoint: &str, table: &str, bucket: &str) -> String {
    let sdk = sdk_config(endpoint).await;
    create_table(&aws_sdk_dynamodb::Client::new(&sdk), table)
        .await
        .unwrap_or_else(|e| panic!("table: {e}"));
    create_bucket(
        &s3_client(&sdk_config(s3_endpoint).await, &SdkSettings::default()),
        bucket,
    )
    .await
    .unwrap_or_else(|e| panic!("bucket: {e}"));
    signing_key(&sdk, &format!("alias/{table}")).await
}

/// The functions' environment: the local defaults, the storage, the emulator's Lambda endpoint
/// at the watcher's own `port` (the export function starts the worker through it), local token
/// verification, and `cargo lambda` found through PATH (the project venv first).
fn watch_env(
    endpoint: &str,
    s3_endpoint: &str,
    port: u16,
    table: &str,
    bucket: &str,
    key: String,
) -> Vec<(&'static str, String)> {
    let local = |name: &'static str| (name, local_default(name).to_owned());
    let venv = tool("cargo-lambda")
        .parent()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    vec![
        local("AWS_REGION"),
        local("AWS_ACCESS_KEY_ID"),
        local("AWS_SECRET_ACCESS_KEY"),
        ("AWS_ENDPOINT_URL", endpoint.to_owned()),
        ("AWS_ENDPOINT_URL_S3", s3_endpoint.to_owned()),
        (
            "AWS_ENDPOINT_URL_LAMBDA",
            format!("http://127.0.0.1:{port}"),
        ),
        local("EXPORT_WORKER_FUNCTION"),
        ("TABLE_NAME", table.to_owned()),
        ("BUCKET_NAME", bucket.to_owned()),
        ("SIGNING_KEY_ID", key),
        ("AUTH_MODE", "local".to_owned()),
        (
            "LOCAL_OIDC_ISSUER",
            activity_log::testing::fixtures::local_issuer_url(),
        ),
        local("LOCAL_OIDC_AUDIENCE"),
        (
            "LOCAL_OIDC_JWKS_FILE",
            workspace_root()
                .join(local_default("LOCAL_OIDC_JWKS_FILE"))
                .display()
                .to_string(),
        ),
        local("CURSOR_SIGNING_KEY"),
        local("SUBSCRIPTIONS_URL_TEMPLATE"),
        (
            "PATH",
            format!("{venv}:{}", std::env::var("PATH").unwrap_or_default()),
        ),
    ]
}

/// `cargo lambda watch` on `port` with `env`, running until this test binary exits (the
/// watcher stops it); its log's path.
fn start_watch(env: &[(&str, String)], port: u16, concurrency: usize) -> PathBuf {
    let log = std::env::temp_dir().join(format!("activity-log-watch-{port}.log"));
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let child = spawn_tied(
        Path::new(&cargo),
        &[
            "lambda",
            "watch",
            "--ignore-changes",
            "--concurrency",
            &concurrency.to_string(),
            "-A",
            "127.0.0.1",
            "-P",
            &port.to_string(),
        ],
        env,
        &log,
    );
    std::mem::forget(child);
    log
}

/// Waits until the query function answers a listing and the record function refuses an empty
/// batch: both started and serving.
async fn wait_for_functions(base: &str) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(900))
        .build()
        .unwrap_or_else(|e| panic!("http client: {e}"));
    let reader = token("warmup", &["GlobalAdmin"], "t", 3600);
    let writer = token("warmup", &["ActivityWriter"], "t", 3600);
    let url = format!("{base}/activities");
    wait_until(
        "query-activity under cargo lambda watch",
        Duration::from_secs(900),
        || {
            let request = http.get(&url).bearer_auth(&reader);
            async move { request.send().await.is_ok_and(|r| r.status() == 200) }
        },
    )
    .await;
    wait_until(
        "record-activity under cargo lambda watch",
        Duration::from_secs(900),
        || {
            let request = http.post(&url).bearer_auth(&writer).json(&json!([]));
            async move { request.send().await.is_ok_and(|r| r.status() == 400) }
        },
    )
    .await;
}

/// The 100,000-row log of the large export tests: activities of 50 customers, half a second
/// apart from three days ago, of `partner`, in a memory store that answers in 1 MB-sized pages
/// (2,500 rows). The emulator's Query scans its whole table on every page (about 19 s a page
/// at this size), which would make such a test take most of an hour; the DynamoDB page source
/// is covered by the smaller tests.
pub async fn hundred_thousand_rows(partner: &PartnerId) -> MemoryStore {
    let base = Utc::now() - TimeDelta::days(3);
    let rows: Vec<Activity> = (0..100_000)
        .map(|n: u64| {
            let customer = format!("c{}", n % 50);
            synthetic_activity(n, &customer, base + TimeDelta::milliseconds(n as i64 * 500))
        })
        .collect();
    memory_log(partner, 2500, &rows).await
}

/// One export worker run of `event` in `app` (its jobs, details, signer and anchors), reading the log
/// from `reader`, writing the file to `objects` and handing over through `launcher`.
pub async fn run_export_worker<R, O, L>(
    app: &App,
    reader: &R,
    objects: &O,
    launcher: &L,
    event: &WorkerEvent,
) -> Result<RunOutcome, WorkerError>
where
    R: ActivityReader + ChainIndex,
    O: ExportObjects,
    L: ExportLauncher,
{
    let ports = ExportPorts {
        reader,
        blobs: &app.blobs,
        jobs: &app.store,
        objects,
        launcher,
        signer: app.signer().unwrap_or_else(|e| panic!("{e}")),
        anchors: app.anchors().unwrap_or_else(|e| panic!("{e}")),
    };
    export_worker::run(&app.config, &ports, event).await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A program started from a test sees the variables it is given and cargo's settings, but
    /// none of the variables cargo set for this test crate.
    #[test]
    fn a_tied_program_gets_none_of_the_variables_cargo_set_for_the_test_crate() {
        assert!(
            std::env::var_os("CARGO_PKG_NAME").is_some(),
            "cargo test sets CARGO_PKG_NAME for the test: the check below would prove nothing"
        );
        let log = std::env::temp_dir().join(format!("activity-log-env-{}.log", std::process::id()));
        let mut child = spawn_tied(
            Path::new("env"),
            &[],
            &[
                ("ACTIVITY_LOG_PROBE", "given".to_string()),
                ("CARGO_HOME", "/kept/cargo-home".to_string()),
            ],
            &log,
        );
        let status = child.wait().unwrap_or_else(|e| panic!("env: {e}"));
        assert!(status.success(), "env exited with {status}");
        let seen = std::fs::read_to_string(&log).unwrap_or_else(|e| panic!("log: {e}"));
        let _ = std::fs::remove_file(&log);
        let names: Vec<&str> = seen.lines().filter_map(|l| l.split('=').next()).collect();
        assert!(names.contains(&"ACTIVITY_LOG_PROBE"), "{seen}");
        assert!(seen.contains("CARGO_HOME=/kept/cargo-home"), "{seen}");
        for name in [
            "CARGO_PKG_NAME",
            "CARGO_PKG_VERSION",
            "CARGO_MANIFEST_DIR",
            "CARGO_CRATE_NAME",
        ] {
            assert!(!names.contains(&name), "{name} was passed on:\n{seen}");
        }
        assert!(!set_by_cargo_for_this_crate("CARGO_TARGET_DIR"));
        assert!(!set_by_cargo_for_this_crate("CARGO_INCREMENTAL"));
        assert!(!set_by_cargo_for_this_crate("CARGO"));
    }
}
