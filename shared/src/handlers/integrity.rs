//! `GET /customers/{customerId}/checkpoint` (a customer's chain head, signed and anchored) and
//! `GET /integrity/public-key` (the key that checks it): README, "Tamper-evident log".

use chrono::{DateTime, TimeDelta, Utc};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::config::Config;
use crate::domain::chain::Head;
use crate::domain::integrity::anchor::{self, Anchor, Inconsistency};
use crate::domain::integrity::{Checkpoint, Key, checkpoint_message};
use crate::domain::{CustomerId, Identity, PartnerId, time};
use crate::http::params::{IntegrityRoute, integrity_route};
use crate::http::response::json;
use crate::http::{ApiError, edge, routes};
use crate::store::{Anchors, ChainIndex, Signer, StoreError};

/// The integrity routes through the edge, uncounted (in-process callers: the tests).
pub async fn handle<C: ChainIndex, A: Anchors, S: Signer>(
    config: &Config,
    store: &C,
    anchors: &A,
    signer: &S,
    req: Request,
) -> Response<Body> {
    edge::respond(config, routes::PUBLIC_KEY.permission, req, |who, req| {
        serve(config, store, anchors, signer, who, req)
    })
    .await
}

/// Answers a verified reader (`app::serve_api` puts it behind the whole edge).
pub async fn serve<C: ChainIndex, A: Anchors, S: Signer>(
    config: &Config,
    store: &C,
    anchors: &A,
    signer: &S,
    who: Identity,
    req: Request,
) -> Result<Response<Body>, ApiError> {
    match integrity_route(&req)? {
        IntegrityRoute::PublicKey => Ok(json(StatusCode::OK, &signer.public_key().await?)),
        IntegrityRoute::Chain { customer, from, to } => {
            let mut links = store
                .links_between(&who.partner, &customer, from, to)
                .await?
                .links;
            links.sort_unstable_by_key(|l| l.sequence);
            let view = ChainView {
                customer_id: customer.as_str(),
                from,
                to,
                links: links
                    .iter()
                    .map(|l| LinkView {
                        sequence: l.sequence,
                        hash: &l.hash,
                        previous_hash: &l.previous_hash,
                    })
                    .collect(),
            };
            Ok(json(StatusCode::OK, &view))
        }
        IntegrityRoute::Checkpoint(customer) => {
            let ports = AnchorPorts {
                chains: store,
                anchors,
                signer,
            };
            match anchored_checkpoint(
                &ports,
                &who.partner,
                &customer,
                Utc::now(),
                config.retention_days,
            )
            .await
            {
                Ok(Some(cp)) => Ok(json(StatusCode::OK, &cp)),
                Ok(None) => Err(ApiError::NotFound(format!(
                    "no activity of customer {customer} is chained yet"
                ))),
                Err(Refusal::Store(e)) => Err(e.into()),
                Err(Refusal::Inconsistent(why)) => {
                    tracing::error!(
                        partner = %who.partner,
                        customer = %customer,
                        inconsistency = %why,
                        "refused to sign a head that does not extend the latest anchor"
                    );
                    crate::metrics::emit(
                        "inconsistent",
                        &[(crate::metrics::CHAIN_INCONSISTENCIES, 1.0)],
                        crate::metrics::About {
                            partner: Some(who.partner.as_str()),
                            request_id: None,
                        },
                    );
                    Err(ApiError::ChainInconsistent(format!(
                        "customer {customer}: {why}; nothing was signed"
                    )))
                }
            }
        }
    }
}

/// `GET /customers/{id}/chain`: the links the log holds with sequences `from` to `to`, in
/// order (a sequence it does not hold is absent). What lets a reader that holds some of the
/// customer's activities check that those between them are in the log and linked, without
/// reading them (the page's Verify, for the sequences outside its view).
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct ChainView<'a> {
    customer_id: &'a str,
    from: u64,
    to: u64,
    links: Vec<LinkView<'a>>,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct LinkView<'a> {
    sequence: u64,
    hash: &'a str,
    previous_hash: &'a str,
}

/// What signing an anchored head uses: the chain in sequence order, the anchor store and the key.
pub struct AnchorPorts<'a, C, A, S> {
    pub chains: &'a C,
    pub anchors: &'a A,
    pub signer: &'a S,
}

/// Why no checkpoint was handed out.
#[derive(Debug)]
pub enum Refusal {
    Store(StoreError),
    Inconsistent(Inconsistency),
}

impl From<StoreError> for Refusal {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

/// The checkpoint of the customer's head, anchored (`None`: nothing chained yet). The latest
/// anchor is read (one listing) and its signature checked; the chain's links from its sequence
/// on (one read of the `bySequence` index) must extend it. The head they reach is signed and
/// anchored once; while the head has not moved, the anchor itself is the checkpoint. A chain
/// that does not extend the anchor is refused and nothing is signed.
pub async fn anchored_checkpoint<C: ChainIndex, A: Anchors, S: Signer>(
    ports: &AnchorPorts<'_, C, A, S>,
    partner: &PartnerId,
    customer: &CustomerId,
    now: DateTime<Utc>,
    retention_days: u32,
) -> Result<Option<Checkpoint>, Refusal> {
    let retention = TimeDelta::days(i64::from(retention_days));
    let public = ports.signer.public_key().await?;
    let verifier = public
        .key()
        .map_err(|e| StoreError::Other(format!("the signing key: {e}")))?;
    let from_anchor = extend_latest(
        ports.chains,
        ports.anchors,
        (&public.key_id, &verifier),
        partner,
        customer,
        (now, retention),
    )
    .await?;
    let Extended { latest, head } = from_anchor.map_err(Refusal::Inconsistent)?;
    let latest = latest.map(|(_, a)| a);
    let head = match head {
        Some(head) => head,
        None => match latest {
            None => return Ok(None),
            // The head has not moved since it was anchored, signed: that checkpoint.
            Some(Anchor {
                checkpoint: Some(signed),
                ..
            }) => return Ok(Some(signed)),
            // Anchored by a seal, which is signed but not per customer: signed now.
            Some(Anchor { head, .. }) => Head {
                sequence: head.sequence,
                hash: head.hash,
                recorded_at: None,
            },
        },
    };
    let mut checkpoint =
        sign_head(ports.signer, partner, customer, &head, now, retention_days).await?;
    // The key as the public key names it, as anchors read back name it.
    checkpoint.key_id = public.key_id;
    let key = anchor::key(&checkpoint).map_err(StoreError::Other)?;
    let body = serde_json::to_vec(&checkpoint).map_err(|e| StoreError::Other(e.to_string()))?;
    // Written once: a concurrent request that anchored the same name wins, with the same head.
    ports.anchors.put_new(&key, body).await?;
    Ok(Some(checkpoint))
}

/// A customer's latest anchor, and the head its chain reaches from there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extended {
    /// The latest anchor's object key and what it holds (`None`: nothing anchored yet).
    pub latest: Option<(String, Anchor)>,
    /// The last link reached from the anchor (`None`: nothing beyond it).
    pub head: Option<Head>,
}

/// What every head the service signs is checked by (a checkpoint, a seal, an export's
/// manifest): the customer's latest anchor is read (one listing; a signed one's signature checked
/// with `key`, its id and the key), and the chain's links from its sequence on (one read of the
/// `bySequence` index) must extend it. `Ok(Err(_))`: they do not.
pub async fn extend_latest<C: ChainIndex, A: Anchors>(
    chains: &C,
    anchors: &A,
    (key_id, verifier): (&str, &Key),
    partner: &PartnerId,
    customer: &CustomerId,
    (now, retention): (DateTime<Utc>, TimeDelta),
) -> Result<Result<Extended, Inconsistency>, StoreError> {
    let prefix = anchor::customer_prefix(partner.as_str(), customer.as_str());
    let latest = match anchors.first_key(&prefix).await? {
        Some(key) => {
            match anchor::from_key(&key, partner.as_str(), customer.as_str(), key_id, verifier) {
                Ok(a) => Some((key, a)),
                Err(e) => return Ok(Err(Inconsistency::BadAnchor(e))),
            }
        }
        None => None,
    };
    let anchored = latest.as_ref().map(|(_, a)| &a.head);
    let from = anchored.map_or(1, |a| a.sequence);
    let mut chain = chains
        .links_between(partner, customer, from, u64::MAX)
        .await?;
    Ok(
        anchor::extension(anchored, &mut chain.links, now, retention)
            .map(|head| Extended { latest, head }),
    )
}

/// `head` signed now, with the retention its activities are kept for.
async fn sign_head<S: Signer>(
    signer: &S,
    partner: &PartnerId,
    customer: &CustomerId,
    head: &Head,
    now: DateTime<Utc>,
    retention_days: u32,
) -> Result<Checkpoint, StoreError> {
    let issued_at = time::format(now);
    let message = checkpoint_message(
        partner.as_str(),
        customer.as_str(),
        (head.sequence, &head.hash),
        &issued_at,
        retention_days,
    )
    .map_err(|e| StoreError::Other(e.to_string()))?;
    let signed = signer.sign(&message).await?;
    Ok(Checkpoint {
        partner_id: partner.to_string(),
        customer_id: customer.to_string(),
        sequence: head.sequence,
        hash: head.hash.clone(),
        issued_at,
        retention_days,
        key_id: signed.key_id,
        signature: STANDARD.encode(&signed.der),
    })
}
