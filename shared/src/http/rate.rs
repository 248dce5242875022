//! A tenant's share of the API: at most `TENANT_RATE_LIMIT` requests per window of
//! `TENANT_RATE_WINDOW_SECONDS`, counted in the table, across every function and instance.
//!
//! API Gateway's throttling (the template's `ApiThrottlingRateLimit`) protects the account as a
//! whole; it cannot tell tenants apart (HTTP APIs have no usage plans, and WAF does not attach
//! to them). This limit runs in the functions, before any other work, on the verified tenant.

use chrono::{DateTime, Utc};

use super::error::{ApiError, ErrorCode};
use crate::config::{Config, RateLimit};
use crate::domain::PartnerId;
use crate::store::RequestCounter;

/// A window's counter outlives its window by this long (DynamoDB's TTL removes it later).
const COUNTER_KEEP_SECS: i64 = 3600;

/// Counts a request of `partner` (a verified tenant) against its window; `RateLimited` (429,
/// `Retry-After`: the seconds to the next window) past the limit. If the counter cannot be
/// reached the request goes through: the limit protects the service, an outage of it must not
/// stop it.
pub async fn admit_now<C: RequestCounter>(
    config: &Config,
    counter: &C,
    partner: &PartnerId,
) -> Result<(), ApiError> {
    let limit = config.rate_limit;
    if limit.requests == 0 {
        return Ok(());
    }
    admit(counter, partner, limit, Utc::now()).await
}

/// The counting of [`admit_now`] for `partner` at `now`.
pub async fn admit<C: RequestCounter>(
    counter: &C,
    partner: &PartnerId,
    limit: RateLimit,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    let window = i64::try_from(limit.window.as_secs())
        .unwrap_or(i64::MAX)
        .max(1);
    let start = now.timestamp().div_euclid(window) * window;
    match counter
        .count(
            partner,
            start,
            limit.requests,
            start + window + COUNTER_KEEP_SECS,
        )
        .await
    {
        Ok(true) => Ok(()),
        Ok(false) => {
            let retry_after = u64::try_from(start + window - now.timestamp())
                .unwrap_or(1)
                .max(1);
            Err(ApiError::Limited {
                code: ErrorCode::RateLimited,
                message: format!(
                    "more than {} requests in {} s from this partner; retry after {retry_after} s",
                    limit.requests,
                    limit.window.as_secs()
                ),
                retry_after,
            })
        }
        Err(e) => {
            tracing::warn!(error = %e, "rate limit not checked: the counter is unavailable");
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::store::memory::MemoryStore;

    #[tokio::test]
    async fn a_tenant_over_its_limit_waits_for_the_next_window_and_others_are_not_affected() {
        let store = MemoryStore::default();
        let limit = RateLimit {
            requests: 3,
            window: Duration::from_secs(10),
        };
        let (p1, p2) = (
            PartnerId::parse("p1").unwrap_or_else(|e| panic!("{e}")),
            PartnerId::parse("p2").unwrap_or_else(|e| panic!("{e}")),
        );
        let at =
            |s: &str| crate::domain::time::parse_timestamp(s).unwrap_or_else(|e| panic!("{e}"));
        for _ in 0..3 {
            assert!(
                admit(&store, &p1, limit, at("2026-11-28T10:00:01Z"))
                    .await
                    .is_ok()
            );
        }
        let refused = admit(&store, &p1, limit, at("2026-11-28T10:00:07Z")).await;
        let Err(ApiError::Limited {
            code, retry_after, ..
        }) = refused
        else {
            panic!("{refused:?}");
        };
        assert_eq!((code, retry_after), (ErrorCode::RateLimited, 3));
        assert!(
            admit(&store, &p2, limit, at("2026-11-28T10:00:07Z"))
                .await
                .is_ok()
        );
        assert!(
            admit(&store, &p1, limit, at("2026-11-28T10:00:10Z"))
                .await
                .is_ok()
        );
    }
}
