//! The measuring parts of the benchmark harness, against the real baseline binaries: the
//! runtime stub drives `lambda_runtime` as Lambda's Runtime API does, and the process
//! figures come back from the kernel.

use std::path::Path;
use std::time::Duration;

use activity_log::testing::ApiRequest;
use activity_log_bench::process::{Measured, Stdout};
use activity_log_bench::runtime_stub::{Outcome, RuntimeStub};
use hyper::body::Bytes;

fn lambda_env(runtime: &str) -> Vec<(String, String)> {
    [
        ("AWS_LAMBDA_RUNTIME_API", runtime),
        ("AWS_LAMBDA_FUNCTION_NAME", "harness-test"),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"),
        ("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/harness-test"),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "test"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect()
}

async fn serve(binary: &str, event: serde_json::Value) -> (serde_json::Value, Measured) {
    let stub = RuntimeStub::start()
        .await
        .unwrap_or_else(|e| panic!("stub: {e}"));
    let log = std::env::temp_dir().join(format!("bench-harness-{binary}.log"));
    let process = Measured::spawn(
        Path::new(&std::env::var(format!("CARGO_BIN_EXE_{binary}")).unwrap_or_default()),
        &[],
        &lambda_env(&stub.address),
        &log,
        Stdout::Log,
    )
    .unwrap_or_else(|e| panic!("spawn {binary}: {e}"));
    stub.first_next(Duration::from_secs(60))
        .await
        .unwrap_or_else(|e| panic!("{binary}: {e}"));
    let answer = stub
        .invoke(Bytes::from(event.to_string()), Duration::from_secs(60))
        .await
        .unwrap_or_else(|e| panic!("{binary}: {e}"));
    let body = match answer {
        Outcome::Response(b) => serde_json::from_slice(&b).unwrap_or_else(|e| panic!("{e}")),
        Outcome::Error(b) => panic!("{binary} failed: {}", String::from_utf8_lossy(&b)),
    };
    (body, process)
}

#[tokio::test]
async fn the_stub_drives_a_lambda_http_function_and_the_kernel_accounts_it() {
    let event = ApiRequest::get("/activities")
        .caller("partner-1", &["GlobalAdmin"])
        .event();
    let (answer, process) = serve("noop-http", event).await;
    assert_eq!(answer["statusCode"], 200, "{answer}");
    assert_eq!(answer["body"], "{}", "{answer}");
    let peak = process.peak_rss_kib().unwrap_or_else(|e| panic!("{e}"));
    assert!(peak > 100, "VmHWM {peak} KiB");
    let usage = process.kill_and_measure().unwrap_or_else(|e| panic!("{e}"));
    assert!(usage.cpu() > Duration::ZERO, "{usage:?}");
    assert_eq!(usage.code, None, "killed, not exited");
}

#[tokio::test]
async fn the_stub_passes_the_event_and_the_request_id() {
    let (answer, process) = serve("hello-runtime", serde_json::json!({"any": "event"})).await;
    assert_eq!(answer["message"], "hello", "{answer}");
    assert!(
        answer["request"]
            .as_str()
            .is_some_and(|id| id.starts_with("bench-")),
        "{answer}"
    );
    process.kill_and_measure().unwrap_or_else(|e| panic!("{e}"));
}
