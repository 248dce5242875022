//! The export worker, invoked asynchronously (`InvocationType=Event`) with `{partnerId, exportId}`.
//! A returned error makes Lambda retry the event and, after the retries, send it to the
//! on-failure destination.

use activity_log::app::App;
use activity_log::handlers::export_worker;
use activity_log::launch::WorkerEvent;
use lambda_http::lambda_runtime::{self, Error, LambdaEvent, service_fn};

// One invocation at a time: a single-threaded runtime has no cross-thread wake-ups to pay for
// (BENCHMARKS.md, request CPU).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    // First: a current-thread runtime has started no other thread yet.
    activity_log::app::map_large_buffers_apart();
    // Names this function in its metrics (activity_log::metrics).
    activity_log::metrics::set_function(env!("CARGO_PKG_NAME"));
    let app = &App::start().await?;
    // Hands the rest of a long export to a new invocation of this function.
    let next = &app.worker_launcher()?;
    // The table, the bucket and the key that signs each file's manifest.
    let ports = &app.export_ports(next)?;
    lambda_runtime::run(service_fn(async |event: LambdaEvent<WorkerEvent>| {
        Ok::<_, Error>(export_worker::run(&app.config, ports, &event.payload).await?)
    }))
    .await
}
