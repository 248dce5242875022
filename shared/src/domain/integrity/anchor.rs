//! Anchors: every head the service signs is kept in an append-only store (an S3 bucket under
//! Object Lock in compliance mode), and a new head is signed only if it extends the latest
//! anchor. So the service never signs two inconsistent heads: a chain truncated with its head
//! set back, or rewritten at or before an anchored sequence, is refused, not signed.
//!
//! An anchor's object key carries the whole signed checkpoint, so the latest is found and
//! checked with one listing (keys list in ascending order; the sequence is written inverted so
//! the latest comes first): `anchors/<partner>/<customer>/<inverted sequence, 20 digits>.<hash>.
//! <retentionDays>.<issuedAt>.<signature, base64url of DER>`. The object itself holds the
//! checkpoint's JSON, for anyone reading the bucket.
//!
//! A head anchored by a scheduled seal ([`seal`](super::seal)) carries no signature of its own:
//! its name ends `.!<seal's sequence>` instead, and the seal object (`seals/…`) that lists it is
//! signed. Both kinds are written only by the integrity and sealing functions (the bucket's
//! policy) and kept under Object Lock.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::{DateTime, TimeDelta, Utc};

use super::{Checkpoint, HeldHead, Key};
use crate::domain::chain::{GENESIS_HASH, Head, Link};
use crate::domain::time;

/// The prefix of every anchor.
pub const PREFIX: &str = "anchors/";

/// The prefix of a customer's anchors.
pub fn customer_prefix(partner: &str, customer: &str) -> String {
    format!("{PREFIX}{partner}/{customer}/")
}

/// The object key of the anchor of `checkpoint`.
pub fn key(checkpoint: &Checkpoint) -> Result<String, String> {
    let der = STANDARD
        .decode(&checkpoint.signature)
        .map_err(|e| format!("the checkpoint's signature is not base64: {e}"))?;
    Ok(format!(
        "{}{:020}.{}.{}.{}.{}",
        customer_prefix(&checkpoint.partner_id, &checkpoint.customer_id),
        u64::MAX - checkpoint.sequence,
        checkpoint.hash,
        checkpoint.retention_days,
        checkpoint.issued_at,
        URL_SAFE_NO_PAD.encode(der)
    ))
}

/// The object key of the anchor of `head`, sealed by seal number `seal` at `sealed_at`.
pub fn sealed_key(
    partner: &str,
    customer: &str,
    head: &Head,
    retention_days: u32,
    sealed_at: &str,
    seal: u64,
) -> String {
    format!(
        "{}{:020}.{}.{retention_days}.{sealed_at}.!{seal}",
        customer_prefix(partner, customer),
        u64::MAX - head.sequence,
        head.hash,
    )
}

/// A customer's anchored head, as its anchor's name carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anchor {
    /// The head, and when it was anchored.
    pub head: HeldHead,
    /// The signed checkpoint, when the anchor is one (`None`: anchored by a seal, which is
    /// signed instead).
    pub checkpoint: Option<Checkpoint>,
}

/// The anchor an object key carries, if `key` is one of the customer's anchors: a signed one
/// whose signature `verifier` checks (`key_id`: the key's id, which the name leaves out), or one
/// a seal anchored.
pub fn from_key(
    object_key: &str,
    partner: &str,
    customer: &str,
    key_id: &str,
    verifier: &Key,
) -> Result<Anchor, String> {
    let bad = |why: &str| format!("anchor {object_key}: {why}");
    let name = object_key
        .strip_prefix(&customer_prefix(partner, customer))
        .ok_or_else(|| bad("not under the customer's prefix"))?;
    let mut parts = name.splitn(5, '.');
    let (Some(inverted), Some(hash), Some(retention_days), Some(issued_at), Some(signature)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(bad("not an anchor's name"));
    };
    let inverted: u64 = inverted
        .parse()
        .map_err(|_| bad("no sequence in its name"))?;
    let retention_days: u32 = retention_days
        .parse()
        .map_err(|_| bad("no retention in its name"))?;
    // issuedAt has dots of its own (milliseconds): the signature is what follows the last one.
    let (issued_at, signature) = match signature.rsplit_once('.') {
        Some((millis, signature)) => (format!("{issued_at}.{millis}"), signature),
        None => return Err(bad("not an anchor's name")),
    };
    if let Some(seal) = signature.strip_prefix('!') {
        seal.parse::<u64>()
            .map_err(|_| bad("no seal in its name"))?;
        let issued = time::parse_timestamp(&issued_at).map_err(|_| bad("no time in its name"))?;
        return Ok(Anchor {
            head: HeldHead {
                sequence: u64::MAX - inverted,
                hash: hash.to_owned(),
                issued_at: issued,
            },
            checkpoint: None,
        });
    }
    let der = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| bad("its signature is not base64url"))?;
    let checkpoint = Checkpoint {
        partner_id: partner.to_owned(),
        customer_id: customer.to_owned(),
        sequence: u64::MAX - inverted,
        hash: hash.to_owned(),
        issued_at,
        retention_days,
        key_id: key_id.to_owned(),
        signature: STANDARD.encode(der),
    };
    if !checkpoint.verify(verifier) {
        return Err(bad("not signed by the service's key"));
    }
    Ok(Anchor {
        head: checkpoint.held().map_err(|e| bad(&e.to_string()))?,
        checkpoint: Some(checkpoint),
    })
}

/// Why the service refuses to sign a customer's head.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Inconsistency {
    #[error("the activity at the anchored sequence {sequence} does not have the anchored hash")]
    AnchoredChanged { sequence: u64 },
    #[error(
        "the activity at the anchored sequence {sequence} is missing, and the anchor is not old enough for it to have expired"
    )]
    AnchoredMissing { sequence: u64 },
    #[error("sequence {sequence} does not link to the activity before it")]
    NotLinked { sequence: u64 },
    #[error("sequence {sequence} is missing after the anchored checkpoint")]
    Gap { sequence: u64 },
    #[error("{0}")]
    BadAnchor(String),
}

/// The head to sign: the last link reached from the latest anchor (`None`: nothing anchored
/// yet, then from the chain's start) along `links` (the customer's links from the anchored
/// sequence on, in any order). A chain truncated behind the anchor (its head set back) has no
/// activity at the anchored sequence: refused as missing. `Ok(None)`: nothing beyond the anchor (hand out the anchor itself). An anchor older than
/// `retention` may have lost its activities to expiry, and so may a chain without an anchor (none
/// signed in the retention period): the links are then followed from the first one there is.
pub fn extension(
    anchor: Option<&HeldHead>,
    links: &mut [Link],
    now: DateTime<Utc>,
    retention: TimeDelta,
) -> Result<Option<Head>, Inconsistency> {
    links.sort_by_key(|l| l.sequence);
    let (anchored, anchored_hash) = anchor.map_or((0, GENESIS_HASH), |a| (a.sequence, &a.hash));
    let expired = anchor.is_some_and(|a| a.issued_at + retention <= now);
    let mut rest = links
        .iter()
        .skip_while(|l| l.sequence < anchored)
        .peekable();
    let mut at = Head {
        sequence: anchored,
        hash: anchored_hash.to_owned(),
        recorded_at: None,
    };
    match rest.peek() {
        Some(l) if anchored > 0 && l.sequence == anchored => {
            if l.hash != anchored_hash {
                return Err(Inconsistency::AnchoredChanged { sequence: anchored });
            }
            rest.next();
        }
        Some(l) if (expired || anchor.is_none()) && l.sequence > anchored => {
            // The anchored activity and maybe more have expired, or nothing was anchored in the
            // retention period (the oldest activities expired): start at the first there is.
            at = Head {
                sequence: l.sequence - 1,
                hash: l.previous_hash.clone(),
                recorded_at: l.previous_recorded_at,
            };
        }
        _ if anchored > 0 && !expired => {
            return Err(Inconsistency::AnchoredMissing { sequence: anchored });
        }
        _ => {}
    }
    for l in rest {
        if l.sequence == at.sequence {
            // Two activities show one sequence.
            return Err(Inconsistency::NotLinked {
                sequence: l.sequence,
            });
        }
        if l.sequence != at.sequence + 1 {
            return Err(Inconsistency::Gap {
                sequence: at.sequence + 1,
            });
        }
        if l.previous_hash != at.hash {
            return Err(Inconsistency::NotLinked {
                sequence: l.sequence,
            });
        }
        at = Head {
            sequence: l.sequence,
            hash: l.hash.clone(),
            recorded_at: None,
        };
    }
    Ok((at.sequence > anchored).then_some(at))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::chain::Record;
    use crate::testing::signed::Signer;
    use serde_json::json;

    fn record(n: u64) -> Record {
        Record::from_row(
            "p1",
            json!({"action": format!("a{n}"), "customerId": "c1", "customerName": "C",
                   "id": format!("a-{n}"), "occurredAt": "2026-11-25T01:02:03.004Z",
                   "partnerUser": "u", "recordedAt": "2026-11-25T01:02:04.000Z",
                   "recordedBy": null, "status": "succeeded"})
            .as_object()
            .unwrap(),
        )
        .unwrap()
    }

    fn chain(n: u64) -> Vec<Link> {
        let mut head = Head::genesis();
        (1..=n)
            .map(|i| head.append(&mut record(i)).unwrap())
            .collect()
    }

    fn signer() -> Signer {
        Signer::new([7; 32], "key-1").unwrap()
    }

    fn anchored(links: &[Link], sequence: u64, issued_at: &str) -> Checkpoint {
        let l = &links[sequence as usize - 1];
        signer()
            .checkpoint(
                "p1",
                "客戶 #1",
                &Head {
                    sequence,
                    hash: l.hash.clone(),
                    recorded_at: None,
                },
                issued_at,
            )
            .unwrap()
    }

    fn now() -> DateTime<Utc> {
        crate::domain::time::parse_timestamp("2026-11-28T00:00:00.000Z").unwrap()
    }

    const YEAR: TimeDelta = TimeDelta::days(365);

    #[test]
    fn the_key_carries_the_checkpoint_and_the_latest_lists_first() {
        let links = chain(12);
        let verifier = Key::from_pem(&signer().public_key_pem().unwrap()).unwrap();
        let at_9 = anchored(&links, 9, "2026-11-25T01:00:00.000Z");
        let at_10 = anchored(&links, 10, "2026-11-25T01:00:00.000Z");
        let (k9, k10) = (key(&at_9).unwrap(), key(&at_10).unwrap());
        assert!(k10 < k9, "{k10} lists before {k9}");
        assert!(k9.starts_with("anchors/p1/客戶 #1/"));
        let read = from_key(&k9, "p1", "客戶 #1", "key-1", &verifier).unwrap();
        assert_eq!(read.head, at_9.held().unwrap());
        assert_eq!(read.checkpoint, Some(at_9.clone()));
        // Another hash in the name: the signature no longer holds.
        let forged = k9.replace(&at_9.hash, &at_10.hash);
        let refused = from_key(&forged, "p1", "客戶 #1", "key-1", &verifier).unwrap_err();
        assert!(
            refused.ends_with("not signed by the service's key"),
            "{refused}"
        );
        assert!(from_key("anchors/p1/客戶 #1/x", "p1", "客戶 #1", "key-1", &verifier).is_err());
        assert!(from_key(&k9, "p1", "c2", "key-1", &verifier).is_err());
    }

    /// A head a seal anchored: its name carries the head and the seal, no signature; it lists
    /// in the same order as signed ones.
    #[test]
    fn a_sealed_anchor_names_its_head_and_its_seal() {
        let links = chain(12);
        let verifier = Key::from_pem(&signer().public_key_pem().unwrap()).unwrap();
        let head = Head {
            sequence: 11,
            hash: links[10].hash.clone(),
            recorded_at: None,
        };
        let k11 = sealed_key("p1", "客戶 #1", &head, 365, "2026-11-25T02:00:00.000Z", 42);
        assert!(k11.ends_with(".365.2026-11-25T02:00:00.000Z.!42"), "{k11}");
        let k10 = key(&anchored(&links, 10, "2026-11-25T01:00:00.000Z")).unwrap();
        assert!(k11 < k10, "{k11} lists before {k10}");
        let read = from_key(&k11, "p1", "客戶 #1", "key-1", &verifier).unwrap();
        assert_eq!(read.checkpoint, None);
        assert_eq!((read.head.sequence, &read.head.hash), (11, &head.hash));
        let no_seal = k11.replace(".!42", ".!x");
        assert!(from_key(&no_seal, "p1", "客戶 #1", "key-1", &verifier).is_err());
    }

    #[test]
    fn a_head_that_extends_the_anchor_is_reached_by_its_links() {
        let links = chain(8);
        let anchor = anchored(&links, 5, "2026-11-27T00:00:00.000Z");
        let mut from_5 = links[4..].to_vec();
        let head = extension(Some(&anchor.held().unwrap()), &mut from_5, now(), YEAR).unwrap();
        assert_eq!(
            head.map(|h| (h.sequence, h.hash)),
            Some((8, links[7].hash.clone()))
        );
        // Nothing since the anchor: the anchor is the checkpoint.
        let mut only_5 = links[4..5].to_vec();
        assert_eq!(
            extension(Some(&anchor.held().unwrap()), &mut only_5, now(), YEAR),
            Ok(None)
        );
        // Nothing anchored yet: from the start, or from the first activity not expired.
        let mut all = links.clone();
        let head = extension(None, &mut all, now(), YEAR).unwrap();
        assert_eq!(head.map(|h| h.sequence), Some(8));
        let mut from_3 = links[2..].to_vec();
        let head = extension(None, &mut from_3, now(), YEAR).unwrap();
        assert_eq!(head.map(|h| h.sequence), Some(8));
    }

    #[test]
    fn truncation_rewrite_and_deletion_behind_the_anchor_are_refused() {
        let links = chain(8);
        let anchor = anchored(&links, 6, "2026-11-27T00:00:00.000Z");
        // Truncated to 4 and the head set back: nothing from the anchored sequence on.
        let mut truncated: Vec<Link> = Vec::new();
        assert_eq!(
            extension(Some(&anchor.held().unwrap()), &mut truncated, now(), YEAR),
            Err(Inconsistency::AnchoredMissing { sequence: 6 })
        );
        // Rewritten from 3 on, every hash recomputed: the anchored activity's hash changed.
        let mut head = Head {
            sequence: 2,
            hash: links[1].hash.clone(),
            recorded_at: None,
        };
        let mut rewritten: Vec<Link> = (3..=8)
            .map(|i| head.append(&mut record(100 + i)).unwrap())
            .collect();
        assert_eq!(
            extension(Some(&anchor.held().unwrap()), &mut rewritten, now(), YEAR),
            Err(Inconsistency::AnchoredChanged { sequence: 6 })
        );
        // The anchored activity deleted (the head left alone).
        let mut deleted: Vec<Link> = links[6..].to_vec();
        assert_eq!(
            extension(Some(&anchor.held().unwrap()), &mut deleted, now(), YEAR),
            Err(Inconsistency::AnchoredMissing { sequence: 6 })
        );
        // A year on it may have expired: the links from the first there is are followed.
        let later = now() + TimeDelta::days(400);
        let head = extension(Some(&anchor.held().unwrap()), &mut deleted, later, YEAR).unwrap();
        assert_eq!(head.map(|h| h.sequence), Some(8));
        // An activity after the anchor deleted.
        let mut gap: Vec<Link> = links[5..]
            .iter()
            .filter(|l| l.sequence != 7)
            .cloned()
            .collect();
        assert_eq!(
            extension(Some(&anchor.held().unwrap()), &mut gap, now(), YEAR),
            Err(Inconsistency::Gap { sequence: 7 })
        );
        // An activity after the anchor relinked elsewhere.
        let mut relinked = links[5..].to_vec();
        relinked[2].previous_hash = "ab".repeat(32);
        assert_eq!(
            extension(Some(&anchor.held().unwrap()), &mut relinked, now(), YEAR),
            Err(Inconsistency::NotLinked { sequence: 8 })
        );
    }
}
