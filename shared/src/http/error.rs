//! The one mapping from failures to HTTP responses.

use lambda_http::http::{StatusCode, header};
use lambda_http::{Body, Response};
use serde_json::json;

use crate::domain::FieldError;
use crate::launch::LaunchError;
use crate::store::StoreError;

/// Every code an error body can carry (`openapi.yaml`'s `ErrorCode`; a contract test holds the
/// two equal).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ErrorCode {
    InvalidBody,
    ValidationFailed,
    BatchTooLarge,
    InvalidDateRange,
    InvalidSequenceRange,
    InvalidLimit,
    InvalidCursor,
    InvalidParameter,
    UnknownParameter,
    Unauthenticated,
    Forbidden,
    NotFound,
    IdempotencyConflict,
    PayloadTooLarge,
    Throttled,
    RateLimited,
    TooManyExports,
    ChainInconsistent,
    TooManyDestinations,
    VersionConflict,
    PreconditionFailed,
    ServiceUnavailable,
    InternalError,
}

crate::domain::names::serde_names!(ErrorCode);

#[derive(Debug)]
pub enum ApiError {
    /// Malformed or invalid input (400). `code` names the kind, e.g. `InvalidDateRange`.
    BadRequest {
        code: ErrorCode,
        message: String,
        fields: Vec<FieldError>,
    },
    /// No identity, or one that does not verify (401).
    Unauthenticated(String),
    /// A verified identity without a role that allows this (403).
    Forbidden(String),
    /// Unknown, or belonging to another tenant (404).
    NotFound(String),
    /// An id already used for different content (409).
    Conflict(String),
    /// Over a size limit (413).
    TooLarge(String),
    /// The customer's chain does not extend the head the service anchored last: nothing is
    /// signed (409).
    ChainInconsistent(String),
    /// The change does not fit the tenant's current state (409): `code` names why
    /// (`TooManyDestinations`, `VersionConflict`).
    State { code: ErrorCode, message: String },
    /// An `If-Match` that names another version than the current one (412).
    PreconditionFailed(String),
    /// Storage is throttling; retry later (429).
    Throttled,
    /// Over a per-tenant limit (429): `code` names it (`TooManyExports`, `RateLimited`);
    /// `retry_after` is in seconds.
    Limited {
        code: ErrorCode,
        message: String,
        retry_after: u64,
    },
    /// A transient storage failure; retry later (503).
    Unavailable,
    /// Anything else (500); the details are logged, never returned.
    Internal,
}

impl ApiError {
    pub fn bad_request(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::BadRequest {
            code,
            message: message.into(),
            fields: Vec::new(),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) | Self::ChainInconsistent(_) | Self::State { .. } => {
                StatusCode::CONFLICT
            }
            Self::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Throttled | Self::Limited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            Self::BadRequest { code, .. }
            | Self::Limited { code, .. }
            | Self::State { code, .. } => *code,
            Self::PreconditionFailed(_) => ErrorCode::PreconditionFailed,
            Self::Unauthenticated(_) => ErrorCode::Unauthenticated,
            Self::Forbidden(_) => ErrorCode::Forbidden,
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::Conflict(_) => ErrorCode::IdempotencyConflict,
            Self::ChainInconsistent(_) => ErrorCode::ChainInconsistent,
            Self::TooLarge(_) => ErrorCode::PayloadTooLarge,
            Self::Throttled => ErrorCode::Throttled,
            Self::Unavailable => ErrorCode::ServiceUnavailable,
            Self::Internal => ErrorCode::InternalError,
        }
    }

    fn message(&self) -> &str {
        match self {
            Self::BadRequest { message, .. }
            | Self::Limited { message, .. }
            | Self::State { message, .. }
            | Self::PreconditionFailed(message)
            | Self::Unauthenticated(message)
            | Self::Forbidden(message)
            | Self::NotFound(message)
            | Self::Conflict(message)
            | Self::ChainInconsistent(message)
            | Self::TooLarge(message) => message,
            Self::Throttled => "too many requests; retry after a short wait",
            Self::Unavailable => "the service is temporarily unavailable; retry after a short wait",
            Self::Internal => "internal error; quote the request id when reporting it",
        }
    }

    /// `{"error": {"code", "message", "fields"?, "requestId"?}}` with the mapped status.
    pub fn into_response(self, request_id: Option<&str>) -> Response<Body> {
        crate::metrics::emit(
            self.code().as_str(),
            &[(crate::metrics::REQUESTS_REFUSED, 1.0)],
            crate::metrics::About {
                partner: None,
                request_id,
            },
        );
        let mut error = json!({ "code": self.code(), "message": self.message() });
        if let Self::BadRequest { fields, .. } = &self
            && !fields.is_empty()
        {
            error["fields"] = json!(fields);
        }
        if let Some(id) = request_id {
            error["requestId"] = json!(id);
        }
        let mut builder = Response::builder()
            .status(self.status())
            .header(header::CONTENT_TYPE, "application/json");
        match &self {
            Self::Throttled | Self::Unavailable => {
                builder = builder.header(header::RETRY_AFTER, "1");
            }
            Self::Limited { retry_after, .. } => {
                builder = builder.header(header::RETRY_AFTER, retry_after.to_string());
            }
            _ => {}
        }
        if matches!(self, Self::Unauthenticated(_)) {
            builder = builder.header(header::WWW_AUTHENTICATE, "Bearer");
        }
        builder
            .body(Body::Text(json!({ "error": error }).to_string()))
            .unwrap_or_default()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Throttled => Self::Throttled,
            StoreError::Unavailable(detail) => {
                tracing::warn!(%detail, "storage unavailable");
                Self::Unavailable
            }
            StoreError::TakenOver | StoreError::Corrupt(_) | StoreError::Other(_) => {
                tracing::error!(error = %e, "storage failure");
                Self::Internal
            }
        }
    }
}

/// The export was recorded but its worker could not be started: the caller may retry, and a
/// later status read starts it again.
impl From<LaunchError> for ApiError {
    fn from(e: LaunchError) -> Self {
        tracing::warn!(error = %e, "export worker not started");
        Self::Unavailable
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(r: &Response<Body>) -> serde_json::Value {
        match r.body() {
            Body::Text(t) => serde_json::from_str(t).unwrap(),
            _ => panic!("text body expected"),
        }
    }

    #[test]
    fn errors_have_the_json_shape_and_mapped_status() {
        let r = ApiError::bad_request(ErrorCode::InvalidLimit, "limit must be 1-1000")
            .into_response(Some("r-1"));
        assert_eq!(r.status(), 400);
        let b = body(&r);
        assert_eq!(b["error"]["code"], "InvalidLimit");
        assert_eq!(b["error"]["message"], "limit must be 1-1000");
        assert_eq!(b["error"]["requestId"], "r-1");
    }

    #[test]
    fn internal_errors_reveal_nothing_but_the_request_id() {
        let e: ApiError = StoreError::Other("table arn:aws:... missing".into()).into();
        let r = e.into_response(Some("r-2"));
        assert_eq!(r.status(), 500);
        let text = body(&r).to_string();
        assert!(!text.contains("arn:aws"), "{text}");
        assert!(text.contains("r-2"));
    }

    #[test]
    fn retryable_errors_carry_retry_after() {
        let r: Response<Body> = ApiError::from(StoreError::Throttled).into_response(None);
        assert_eq!(r.status(), 429);
        assert!(r.headers().contains_key("retry-after"));
    }
}
