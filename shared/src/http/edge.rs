//! The HTTP edge, applied once to every request before a handler runs: the request named in
//! the logs, the caller verified, counted against its tenant's rate limit, its route's
//! permission checked; then the handler, and its error mapped (and counted) to the one JSON
//! error response. Handlers take the verified caller and answer `Result<_, ApiError>`.

use std::future::Future;

use lambda_http::{Body, Request, Response};
use tracing::Instrument as _;

use super::{ApiError, identity, rate, request_id};
use crate::config::Config;
use crate::domain::{Identity, PartnerId, Permission};
use crate::store::RequestCounter;

/// Answers `req` through the edge, without counting it against a rate limit (handlers called
/// in-process, as the tests do): `handler` runs only for a verified caller with `permission`.
pub async fn respond<F, Fut>(
    config: &Config,
    permission: Permission,
    req: Request,
    handler: F,
) -> Response<Body>
where
    F: FnOnce(Identity, Request) -> Fut,
    Fut: Future<Output = Result<Response<Body>, ApiError>>,
{
    through(
        config,
        permission,
        req,
        async |_: &PartnerId| Ok(()),
        handler,
    )
    .await
}

/// Answers `req` through the whole edge, as a function does: `handler` runs only for a
/// verified caller within its tenant's rate limit (counted in `counter`) and with `permission`.
pub async fn respond_counted<C, F, Fut>(
    config: &Config,
    permission: Permission,
    counter: &C,
    req: Request,
    handler: F,
) -> Response<Body>
where
    C: RequestCounter,
    F: FnOnce(Identity, Request) -> Fut,
    Fut: Future<Output = Result<Response<Body>, ApiError>>,
{
    let admit = async |partner: &PartnerId| rate::admit_now(config, counter, partner).await;
    through(config, permission, req, admit, handler).await
}

async fn through<A, F, Fut>(
    config: &Config,
    permission: Permission,
    req: Request,
    admit: A,
    handler: F,
) -> Response<Body>
where
    A: AsyncFnOnce(&PartnerId) -> Result<(), ApiError>,
    F: FnOnce(Identity, Request) -> Fut,
    Fut: Future<Output = Result<Response<Body>, ApiError>>,
{
    let rid = request_id(&req);
    // Every line logged from here on names the request, and the partner once it is known.
    let span = tracing::info_span!(
        "request",
        request_id = rid.as_deref().unwrap_or_default(),
        partner = tracing::field::Empty
    );
    let answer = async {
        let who = identity::identify(&req, config)?;
        tracing::Span::current().record("partner", who.partner.as_str());
        admit(&who.partner).await?;
        identity::require(&who, permission)?;
        handler(who, req).await
    }
    .instrument(span)
    .await;
    answer.unwrap_or_else(|e| e.into_response(rid.as_deref()))
}
