//! Delivery, run by the table stream's new feed entries and by a schedule: sends each
//! destination its tenant's feed after its cursor (activity_log::handlers::deliver). A
//! destination's failure is kept on the destination, not returned: only a storage failure fails
//! the run.

use std::time::{Duration, Instant};

use activity_log::app::App;
use activity_log::handlers::deliver;
use activity_log::sinks::{Https, Sinks};
use lambda_http::lambda_runtime::{self, Error, LambdaEvent, service_fn};

/// Time kept back from the invocation's deadline to give claims back and log.
const MARGIN: Duration = Duration::from_secs(15);

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    // Names this function in its metrics (activity_log::metrics).
    activity_log::metrics::set_function(env!("CARGO_PKG_NAME"));
    let app = &App::start().await?;
    let sinks = &Sinks {
        https: Https::new(
            app.config.delivery.request_timeout,
            app.config.allow_private_endpoints,
        )?,
        accounts: app.partner_accounts(),
    };
    lambda_runtime::run(service_fn(async |event: LambdaEvent<serde_json::Value>| {
        let left = Duration::from_millis(event.context.deadline)
            .checked_sub(Duration::from_millis(now_ms()))
            .unwrap_or_default()
            .saturating_sub(MARGIN)
            .max(Duration::from_secs(1));
        let deadline = Instant::now() + left;
        let report = deliver::run(&app.config, &app.store, sinks, event.payload, deadline).await?;
        Ok::<_, Error>(serde_json::to_value(report)?)
    }))
    .await
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or_default()
}
