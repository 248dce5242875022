//! The sequencer, run by the table stream's event source mapping: each activity the batch's
//! records inserted gets its tenant's next feed position (activity_log::handlers::feed). A
//! returned error fails the batch; Lambda delivers it again, and what was placed stays placed.

use activity_log::app::App;
use activity_log::domain::feed::StreamEvent;
use activity_log::handlers::feed::sequence;
use lambda_http::lambda_runtime::{self, Error, LambdaEvent, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    // Names this function in its metrics (activity_log::metrics).
    activity_log::metrics::set_function(env!("CARGO_PKG_NAME"));
    let app = &App::start().await?;
    lambda_runtime::run(service_fn(async |event: LambdaEvent<StreamEvent>| {
        let report = sequence(&app.store, &event.payload).await?;
        Ok::<_, Error>(serde_json::to_value(report)?)
    }))
    .await
}
