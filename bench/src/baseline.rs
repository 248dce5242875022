//! What the request-CPU baselines (`noop-http`, `sdk-floor`) answer: `200 {}`.

use lambda_http::{Body, Error, Response};

pub fn empty_ok() -> Result<Response<Body>, Error> {
    Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(Body::from("{}"))
        .map_err(Error::from)
}
