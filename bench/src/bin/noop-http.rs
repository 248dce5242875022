//! The request-CPU baseline: a `lambda_http` function that answers every API Gateway request
//! with `200 {}` and does nothing else. Same runtime flavour as the functions (single-threaded),
//! so the ratio to it is the cost of the function's own work.

use activity_log_bench::baseline::empty_ok;
use lambda_http::{Error, Request, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_http::run(service_fn(|_: Request| async { empty_ok() })).await
}
