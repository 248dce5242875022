//! The init baseline: the `lambda_runtime` hello world (an echo of a greeting), built with the
//! same release profile as the functions.

use lambda_http::lambda_runtime::{self, Error, LambdaEvent, service_fn};
use serde_json::{Value, json};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async move {
        Ok::<_, Error>(json!({ "message": "hello", "request": event.context.request_id }))
    }))
    .await
}
