//! `GET /customers/{customerId}/checkpoint` (a customer's chain head, signed) and
//! `GET /integrity/public-key` (the key that checks it): README, "Tamper-evident log".

use chrono::{DateTime, TimeDelta, Utc};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::config::Config;
use crate::domain::integrity::{Checkpoint, checkpoint_message};
use crate::domain::{CustomerId, Identity, PartnerId, time};
use crate::http::params::{IntegrityRoute, integrity_route};
use crate::http::response::json;
use crate::http::{ApiError, edge, routes};
use crate::store::{Checkpoints, Signer, StoreError};

/// The integrity routes through the edge, uncounted (in-process callers: the tests).
pub async fn handle<C: Checkpoints, S: Signer>(
    config: &Config,
    store: &C,
    signer: &S,
    req: Request,
) -> Response<Body> {
    edge::respond(config, routes::PUBLIC_KEY.permission, req, |who, req| {
        serve(config, store, signer, who, req)
    })
    .await
}

/// Answers a verified reader (`app::serve_api` puts it behind the whole edge).
pub async fn serve<C: Checkpoints, S: Signer>(
    config: &Config,
    store: &C,
    signer: &S,
    who: Identity,
    req: Request,
) -> Result<Response<Body>, ApiError> {
    match integrity_route(&req)? {
        IntegrityRoute::PublicKey => Ok(json(StatusCode::OK, &signer.public_key().await?)),
        IntegrityRoute::Checkpoint(customer) => {
            let keep = TimeDelta::days(i64::from(config.retention_days));
            match current_checkpoint(store, signer, &who.partner, &customer, Utc::now(), keep)
                .await?
            {
                Some(cp) => Ok(json(StatusCode::OK, &cp)),
                None => Err(ApiError::NotFound(format!(
                    "no activity of customer {customer} is chained yet"
                ))),
            }
        }
    }
}

/// The signed checkpoint of the customer's current head (`None`: nothing chained yet). A head
/// is signed once: the checkpoint kept of it is handed out until the head moves (KMS has
/// request quotas and a price). Checkpoints are kept for `keep`.
pub async fn current_checkpoint<C: Checkpoints, S: Signer>(
    store: &C,
    signer: &S,
    partner: &PartnerId,
    customer: &CustomerId,
    now: DateTime<Utc>,
    keep: TimeDelta,
) -> Result<Option<Checkpoint>, StoreError> {
    let Some(head) = store.head(partner, customer).await? else {
        return Ok(None);
    };
    if let Some(kept) = store.checkpoint(partner, customer, head.sequence).await? {
        return Ok(Some(kept));
    }
    let issued_at = time::format(now);
    let message = checkpoint_message(
        partner.as_str(),
        customer.as_str(),
        head.sequence,
        &head.hash,
        &issued_at,
    )
    .map_err(|e| StoreError::Other(e.to_string()))?;
    let signed = signer.sign(&message).await?;
    let checkpoint = Checkpoint {
        partner_id: partner.to_string(),
        customer_id: customer.to_string(),
        sequence: head.sequence,
        hash: head.hash,
        issued_at,
        key_id: signed.key_id,
        signature: STANDARD.encode(&signed.der),
    };
    let expires_at = (now + keep).timestamp();
    store
        .keep_checkpoint(partner, customer, &checkpoint, expires_at)
        .await
        .map(Some)
}
