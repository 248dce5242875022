//! The sealer, run by EventBridge Scheduler every `SealPeriodMinutes`: the chain heads that
//! moved since the previous seal, checked against their anchors and anchored together under one
//! signature (activity_log::handlers::seal). A returned error fails the run; the next one looks
//! back over what it missed.

use activity_log::app::App;
use activity_log::handlers::seal::{SealPorts, seal};
use lambda_http::lambda_runtime::{self, Error, LambdaEvent, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    // Names this function in its metrics (activity_log::metrics).
    activity_log::metrics::set_function(env!("CARGO_PKG_NAME"));
    let app = &App::start().await?;
    let signer = app.signer()?;
    let anchors = app.anchors()?;
    let ports = &SealPorts {
        heads: &app.store,
        chains: &app.store,
        anchors,
        signer,
    };
    // The schedule's event carries nothing the run needs.
    lambda_runtime::run(service_fn(async |_: LambdaEvent<serde_json::Value>| {
        let report = seal(ports, chrono::Utc::now(), app.config.retention_days).await?;
        Ok::<_, Error>(serde_json::to_value(report)?)
    }))
    .await
}
