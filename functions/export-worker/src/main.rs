//! The export worker, invoked asynchronously (`InvocationType=Event`) with `{partnerId, exportId}`.
//! A returned error makes Lambda retry the event and, after the retries, send it to the
//! on-failure destination.

use activity_log::app::{App, init_tracing};
use activity_log::handlers::export_worker::{self, RunOutcome};
use activity_log::store::lambda::WorkerEvent;
use lambda_http::Error;
use lambda_http::lambda_runtime::{self, LambdaEvent, service_fn};
use serde_json::{Value, json};

// One invocation at a time: a single-threaded runtime has no cross-thread wake-ups to pay for
// (BENCHMARKS.md, request CPU).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    init_tracing();
    let app = App::from_env().await?;
    let app = &app;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<WorkerEvent>| async move {
            let outcome = export_worker::run(
                &app.config,
                &app.store,
                &app.blobs,
                &app.store,
                &app.blobs,
                &event.payload,
            )
            .await?;
            Ok::<Value, Error>(match outcome {
                RunOutcome::Succeeded { rows, bytes, parts } => {
                    json!({"status": "succeeded", "rows": rows, "bytes": bytes, "parts": parts})
                }
                RunOutcome::Failed(error) => json!({"status": "failed", "error": error}),
                RunOutcome::Skipped => json!({"status": "skipped"}),
            })
        },
    ))
    .await
}
