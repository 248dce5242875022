//! The HTTP edge: identity, parameters, cursors, responses and the one error mapping.

pub mod cursor;
pub mod error;
pub mod identity;
pub mod params;
pub mod response;

pub use error::ApiError;

use lambda_http::{Request, RequestExt};

/// The request id to quote in errors and logs.
pub fn request_id(req: &Request) -> Option<String> {
    req.lambda_context_ref()
        .map(|c| c.request_id.clone())
        .filter(|id| !id.is_empty())
}
