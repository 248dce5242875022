//! `POST /exports`, `GET /exports/{id}` — starts exports and hands out download links.

use activity_log::app::{App, init_tracing};
use activity_log::handlers::exports;
use lambda_http::{Error, Request, service_fn};

// One invocation at a time: a single-threaded runtime has no cross-thread wake-ups to pay for
// (BENCHMARKS.md, request CPU).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    init_tracing();
    let app = App::from_env().await?;
    let launcher = app.export_launcher()?;
    let (app, launcher) = (&app, &launcher);
    lambda_http::run(service_fn(move |req: Request| async move {
        Ok::<_, Error>(exports::handle(&app.config, &app.store, &app.blobs, launcher, req).await)
    }))
    .await
}
