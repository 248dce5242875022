//! `POST /activities` — records activities for the caller's tenant.

use activity_log::app::{App, serve_api};
use activity_log::handlers::record;

// One invocation at a time: a single-threaded runtime has no cross-thread wake-ups to pay for
// (BENCHMARKS.md, request CPU).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    // Names this function in its metrics (activity_log::metrics).
    activity_log::metrics::set_function(env!("CARGO_PKG_NAME"));
    let app = &App::start().await?;
    serve_api(app, env!("CARGO_PKG_NAME"), |who, req| {
        record::serve(&app.config, &app.store, &app.blobs, who, req)
    })
    .await
}
