//! `GET/POST /destinations`, `GET/PATCH/DELETE /destinations/{destinationId}` — a partner's
//! admins manage where its feed is streamed.

use activity_log::app::{App, serve_api};
use activity_log::handlers::destinations;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    // Names this function in its metrics (activity_log::metrics).
    activity_log::metrics::set_function(env!("CARGO_PKG_NAME"));
    let app = &App::start().await?;
    serve_api(app, env!("CARGO_PKG_NAME"), |who, req| {
        destinations::serve(&app.config, &app.store, who, req)
    })
    .await
}
