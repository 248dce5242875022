//! The scheduled sealer (EventBridge Scheduler, every `SealPeriodMinutes`): the heads that moved
//! since the previous seal, each checked against the customer's latest anchor as the checkpoint
//! path checks it, are anchored together under one signature ([`seal`](crate::domain::integrity::seal)).
//! A truncation or rewrite after a seal is then refused (409) even if nobody asked for a
//! checkpoint in between; a head that does not extend its anchor is not sealed, and is logged,
//! counted and alarmed like a refused checkpoint.
//!
//! Cost of a run: the previous seal (1 listing, 1 read), the moved heads (one query per
//! partition of the `byHeadMoved` index), then per moved customer 1 listing (its latest anchor),
//! 1 query (its links from there) and 1 write (its anchor), [`CONCURRENCY`] customers at a time,
//! and 1 signature.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, TimeDelta, Utc};
use futures_util::{StreamExt as _, TryStreamExt as _, stream};
use serde::Serialize;

use crate::domain::chain::Head;
use crate::domain::integrity::anchor::{self, Inconsistency};
use crate::domain::integrity::{Key, Seal, SealedHead, seal};
use crate::domain::time;
use crate::handlers::integrity::{Extended, extend_latest};
use crate::store::{Anchors, ChainIndex, HeadsMoved, MovedHead, Signer, StoreError};

/// How far before the previous seal's end a run looks again: a head's `recordedAt` is set
/// before its write commits, and writers' clocks differ a little, so a head can become visible
/// with a time somewhat before the previous run's end. Looking again costs a few heads read
/// twice; a head already anchored is not sealed again.
pub const LOOK_BACK: TimeDelta = TimeDelta::minutes(5);

/// Customers checked at once.
pub const CONCURRENCY: usize = 32;

/// What the sealer reads and writes: the moved heads, the chains by sequence, the anchor
/// bucket and the key.
pub struct SealPorts<'a, H, C, A, S> {
    pub heads: &'a H,
    pub chains: &'a C,
    pub anchors: &'a A,
    pub signer: &'a S,
}

/// What one run did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SealReport {
    /// The seal written (`None`: no head moved beyond its anchor, nothing signed).
    pub seal: Option<u64>,
    /// Customers whose moved heads were looked at.
    pub looked_at: usize,
    /// Heads anchored by the seal.
    pub sealed: usize,
    /// Heads already anchored (by a checkpoint request, or an earlier seal).
    pub already_anchored: usize,
    /// Heads that did not extend their latest anchor: not sealed.
    pub refused: usize,
}

/// One customer's moved head, checked against its latest anchor.
enum Checked {
    /// The head the chain reaches from the anchor (at or past the moved one): to seal.
    Extends(SealedHead),
    /// Nothing past the latest anchor.
    Anchored,
    /// Not an extension of the latest anchor.
    Refused(SealedHead, Inconsistency),
}

/// One run: seals the heads that moved since the previous seal, as of `now`.
pub async fn seal<H: HeadsMoved, C: ChainIndex, A: Anchors, S: Signer>(
    ports: &SealPorts<'_, H, C, A, S>,
    now: DateTime<Utc>,
    retention_days: u32,
) -> Result<SealReport, StoreError> {
    let public = ports.signer.public_key().await?;
    let verifier = public
        .key()
        .map_err(|e| StoreError::Other(format!("the signing key: {e}")))?;
    let previous = previous_seal(ports.anchors, &verifier).await?;
    let from = match &previous {
        Some(p) => {
            time::parse_timestamp(&p.covers_until).map_err(|e| {
                StoreError::Corrupt(format!("seal {}: coversUntil: {e}", p.sequence))
            })? - LOOK_BACK
        }
        None => time::earliest(),
    };
    let mut moved = ports.heads.heads_moved(from, now).await?;
    // One per customer: its furthest head.
    moved.sort_by(|a, b| {
        (a.partner.as_str(), a.customer.as_str(), b.sequence).cmp(&(
            b.partner.as_str(),
            b.customer.as_str(),
            a.sequence,
        ))
    });
    moved.dedup_by(|a, b| a.partner == b.partner && a.customer == b.customer);
    let looked_at = moved.len();
    let retention = TimeDelta::days(i64::from(retention_days));
    let checked: Vec<Checked> = stream::iter(moved)
        .map(|m| check(ports, &verifier, &public.key_id, m, now, retention))
        .buffer_unordered(CONCURRENCY)
        .try_collect()
        .await?;
    let (mut heads, mut refused, mut already_anchored) = (Vec::new(), Vec::new(), 0);
    for c in checked {
        match c {
            Checked::Extends(h) => heads.push(h),
            Checked::Anchored => already_anchored += 1,
            Checked::Refused(h, why) => {
                report_refusal(&h, &why);
                refused.push(h);
            }
        }
    }
    let mut report = SealReport {
        seal: None,
        looked_at,
        sealed: heads.len(),
        already_anchored,
        refused: refused.len(),
    };
    if heads.is_empty() && refused.is_empty() {
        return Ok(report);
    }
    let by_customer = |h: &SealedHead| (h.partner_id.clone(), h.customer_id.clone());
    heads.sort_by_key(by_customer);
    refused.sort_by_key(by_customer);
    let mut sealed = Seal {
        sequence: previous.as_ref().map_or(1, |p| p.sequence + 1),
        previous_hash: match &previous {
            Some(p) => p.hash().map_err(|e| StoreError::Other(e.to_string()))?,
            None => Seal::GENESIS.to_owned(),
        },
        sealed_at: time::format(now),
        covers_until: time::format(now),
        retention_days,
        heads,
        refused,
        key_id: public.key_id,
        signature: String::new(),
    };
    let message = sealed
        .message()
        .map_err(|e| StoreError::Other(e.to_string()))?;
    sealed.signature = STANDARD.encode(ports.signer.sign(&message).await?.der);
    let body = serde_json::to_vec(&sealed).map_err(|e| StoreError::Other(e.to_string()))?;
    if !ports
        .anchors
        .put_new(&seal::key(sealed.sequence), body)
        .await?
    {
        return Err(StoreError::Other(format!(
            "seal {} was written by another run; this one stops",
            sealed.sequence
        )));
    }
    // Each head's own anchor, which the checkpoint path reads: after the seal it names.
    stream::iter(&sealed.heads)
        .map(|h| {
            let key = anchor::sealed_key(
                &h.partner_id,
                &h.customer_id,
                &Head {
                    sequence: h.sequence,
                    hash: h.hash.clone(),
                    recorded_at: None,
                },
                retention_days,
                &sealed.sealed_at,
                sealed.sequence,
            );
            let body = serde_json::to_vec(&serde_json::json!({
                "head": h, "seal": seal::key(sealed.sequence),
            }));
            async move {
                let body = body.map_err(|e| StoreError::Other(e.to_string()))?;
                ports.anchors.put_new(&key, body).await
            }
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect::<Vec<bool>>()
        .await?;
    report.seal = Some(sealed.sequence);
    Ok(report)
}

/// The latest seal, its signature checked (`None`: no seal yet).
async fn previous_seal<A: Anchors>(
    anchors: &A,
    verifier: &Key,
) -> Result<Option<Seal>, StoreError> {
    let Some(key) = anchors.first_key(seal::PREFIX).await? else {
        return Ok(None);
    };
    let body = anchors
        .get(&key)
        .await?
        .ok_or_else(|| StoreError::Corrupt(format!("{key} is listed but cannot be read")))?;
    let previous: Seal =
        serde_json::from_slice(&body).map_err(|e| StoreError::Corrupt(format!("{key}: {e}")))?;
    if !previous.verify(verifier) {
        return Err(StoreError::Corrupt(format!(
            "{key} is not signed by the service's key"
        )));
    }
    Ok(Some(previous))
}

/// `moved` checked as the checkpoint path checks a head before it signs: the latest anchor
/// read (its signature checked when it has one), the links from it followed.
async fn check<H, C: ChainIndex, A: Anchors, S>(
    ports: &SealPorts<'_, H, C, A, S>,
    verifier: &Key,
    key_id: &str,
    moved: MovedHead,
    now: DateTime<Utc>,
    retention: TimeDelta,
) -> Result<Checked, StoreError> {
    let (partner, customer) = (moved.partner.as_str(), moved.customer.as_str());
    let listed = SealedHead {
        partner_id: partner.to_owned(),
        customer_id: customer.to_owned(),
        sequence: moved.sequence,
        hash: moved.hash.clone(),
    };
    let extended = extend_latest(
        ports.chains,
        ports.anchors,
        (key_id, verifier),
        &moved.partner,
        &moved.customer,
        (now, retention),
    )
    .await?;
    Ok(match extended {
        Ok(Extended {
            head: Some(head), ..
        }) => Checked::Extends(SealedHead {
            sequence: head.sequence,
            hash: head.hash,
            ..listed
        }),
        Ok(Extended { head: None, .. }) => Checked::Anchored,
        Err(why) => Checked::Refused(listed, why),
    })
}

/// A head not sealed: logged and counted, as a refused checkpoint is.
fn report_refusal(head: &SealedHead, why: &Inconsistency) {
    tracing::error!(
        partner = %head.partner_id,
        customer = %head.customer_id,
        inconsistency = %why,
        "refused to seal a head that does not extend the latest anchor"
    );
    crate::metrics::emit(
        "inconsistent",
        &[(crate::metrics::CHAIN_INCONSISTENCIES, 1.0)],
        crate::metrics::About {
            partner: Some(&head.partner_id),
            request_id: None,
        },
    );
}
