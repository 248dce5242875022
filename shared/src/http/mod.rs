//! The HTTP edge: identity, parameters, cursors, responses and the one error mapping.

pub mod cursor;
#[cfg(feature = "service")]
pub mod edge;
#[cfg(feature = "service")]
pub mod error;
#[cfg(feature = "service")]
pub mod identity;
#[cfg(feature = "service")]
pub mod params;
#[cfg(feature = "service")]
pub mod rate;
#[cfg(feature = "service")]
pub mod response;
pub mod routes;

#[cfg(feature = "service")]
pub use error::{ApiError, ErrorCode};

/// The request id to quote in errors and logs: API Gateway's (`requestId` of its access log and
/// its `apigw-requestid` response header), or else the Lambda invocation's.
#[cfg(feature = "service")]
pub fn request_id(req: &lambda_http::Request) -> Option<String> {
    use lambda_http::RequestExt;
    use lambda_http::request::RequestContext;
    let api = match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.request_id.clone(),
        _ => None,
    };
    api.filter(|id| !id.is_empty()).or_else(|| {
        req.lambda_context_ref()
            .map(|c| c.request_id.clone())
            .filter(|id| !id.is_empty())
    })
}

/// Everything but RFC 3986's unreserved characters is escaped in a path segment.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `text` as one segment of a URL's path (a customer id in the activities' links, the
/// verifier's requests).
pub fn path_segment(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, SEGMENT).to_string()
}
