//! The one classification of AWS SDK failures, for every adapter (DynamoDB and S3).

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;

use super::StoreError;

/// Error codes by which AWS services say "too many requests".
const THROTTLING: &[&str] = &[
    "ThrottlingException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "SlowDown",
];

/// Error codes of a service failing on its side; the same request may succeed later.
const TRANSIENT: &[&str] = &[
    "InternalServerError",
    "InternalError",
    "ServiceUnavailable",
    "TransactionInProgressException",
];

/// Maps an SDK failure to what a caller can act on.
pub(crate) fn classify<E>(err: SdkError<E, HttpResponse>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match &err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            StoreError::Unavailable(err.to_string())
        }
        SdkError::ServiceError(service) => {
            let code = service.err().code().unwrap_or_default();
            let status = service.raw().status();
            if THROTTLING.contains(&code) {
                StoreError::Throttled
            } else if TRANSIENT.contains(&code) || status.is_server_error() {
                // Any 5xx is the service failing, not the request: retryable.
                StoreError::Unavailable(format!("HTTP {} {code}", status.as_u16()))
            } else {
                StoreError::Other(format!(
                    "HTTP {} {code}: {}",
                    status.as_u16(),
                    service.err().message().unwrap_or_default()
                ))
            }
        }
        _ => StoreError::Other(err.to_string()),
    }
}

/// The result of a conditional write: `Some` if it was made, `None` if its condition did not hold
/// (`ConditionalCheckFailedException`), any other failure classified.
pub(crate) fn unless_condition_failed<T, E>(
    result: Result<T, SdkError<E, HttpResponse>>,
) -> Result<Option<T>, StoreError>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match result {
        Ok(out) => Ok(Some(out)),
        Err(SdkError::ServiceError(service))
            if service.err().code() == Some("ConditionalCheckFailedException") =>
        {
            Ok(None)
        }
        Err(e) => Err(classify(e)),
    }
}

/// Why a `TransactWriteItems` was cancelled, one code per action; any other failure classified.
pub(crate) fn cancellation_reasons(
    err: SdkError<
        aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError,
        HttpResponse,
    >,
) -> Result<Vec<String>, StoreError> {
    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
    match err.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(c)) => Ok(c
            .cancellation_reasons()
            .iter()
            .map(|r| r.code().unwrap_or("None").to_owned())
            .collect()),
        _ => Err(classify(err)),
    }
}
