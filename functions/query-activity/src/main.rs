//! `GET /activities`, `GET /customers/{customerId}/activities[/{activityId}]` — reads the
//! caller's tenant's activity log.

use activity_log::app::{App, init_tracing};
use activity_log::handlers::query;
use lambda_http::{Error, Request, service_fn};

// One invocation at a time: a single-threaded runtime has no cross-thread wake-ups to pay for
// (BENCHMARKS.md, request CPU).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    init_tracing();
    let app = App::from_env().await?;
    let app = &app;
    lambda_http::run(service_fn(move |req: Request| async move {
        Ok::<_, Error>(query::handle(&app.config, &app.store, &app.blobs, req).await)
    }))
    .await
}
