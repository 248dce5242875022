//! `GET /customers/{customerId}/checkpoint` and `GET /integrity/public-key` — a customer's chain
//! head signed with the service's KMS key and anchored, and that key's public half. The one API
//! function allowed to sign.

use activity_log::app::{App, serve_api};
use activity_log::handlers::integrity;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    // Names this function in its metrics (activity_log::metrics).
    activity_log::metrics::set_function(env!("CARGO_PKG_NAME"));
    let app = &App::start().await?;
    let signer = app.signer()?;
    let anchors = app.anchors()?;
    serve_api(app, env!("CARGO_PKG_NAME"), |who, req| {
        integrity::serve(&app.config, &app.store, anchors, signer, who, req)
    })
    .await
}
