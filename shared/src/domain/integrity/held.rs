//! Checkpoints a verifier already holds: the service signed them earlier, so the history it
//! shows now must extend each of them. A log that only answers "does this chain reach the head
//! I sign now?" would sign a truncated or rewritten chain just as readily; a held checkpoint is
//! what catches that (the rule of transparency logs: anyone holding an old head checks that
//! the new one extends it).
//!
//! The rules, for each held checkpoint (its signature already checked by the caller):
//! - a newer signed checkpoint (issued later) may not be at a lower sequence: activities the
//!   service had signed for were taken away ([`Finding::RolledBack`]);
//! - the activity at its sequence must be there, with its hash ([`Finding::HeldRewritten`]),
//!   unless it has expired ([`Finding::HeldMissing`]): it was recorded before the checkpoint
//!   was issued and before any later activity, so it may be gone once the checkpoint, or the
//!   first activity after it that is still there, is older than the retention;
//! - a held checkpoint after the signed head being checked (an older export's manifest) or
//!   whose activity an export left out (its period and filters) says nothing about these rows.
//!
//! The links from the held activity on to the signed head are the chain's own check
//! ([`verify_linked`](crate::domain::chain::verify_linked)), which runs first.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::domain::chain::{Expiry, Finding, Linked, SignedHead};
use crate::domain::time;

/// A checkpoint held from an earlier check: the head it signed and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldHead {
    pub sequence: u64,
    pub hash: String,
    pub issued_at: DateTime<Utc>,
}

/// What the held checkpoints vouched for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HeldSummary {
    /// Held checkpoints whose activity is among the rows with the held hash.
    pub extended: usize,
    /// Held checkpoints whose activity has expired (the checkpoint is older than the retention).
    pub expired: usize,
    /// Held checkpoints these rows cannot speak to: after the signed head checked here, or
    /// (rows that are not the whole chain) their activity is not among them.
    pub not_covered: usize,
}

/// Checks `rows` (one customer's, sorted by sequence, none after `signed`: what
/// [`verify_linked`](crate::domain::chain::verify_linked) leaves) and the signed head, issued
/// at `signed_issued_at`, against the held checkpoints. `contiguous` as for the chain: the rows
/// are the whole retained chain (then a held activity that is not among them is missing unless
/// expired).
pub fn check_held<R: Linked>(
    rows: &[R],
    signed: &SignedHead,
    signed_issued_at: DateTime<Utc>,
    held: &[HeldHead],
    contiguous: Option<Expiry>,
) -> Result<HeldSummary, Finding> {
    let mut summary = HeldSummary::default();
    for h in held {
        if h.sequence > signed.sequence {
            if h.issued_at <= signed_issued_at {
                return Err(Finding::RolledBack {
                    sequence: signed.sequence,
                    issued_at: time::format(signed_issued_at),
                    held_sequence: h.sequence,
                    held_issued_at: time::format(h.issued_at),
                });
            }
            summary.not_covered += 1;
            continue;
        }
        let at = rows.partition_point(|r| r.sequence() < h.sequence);
        match rows.get(at).filter(|r| r.sequence() == h.sequence) {
            Some(row) if row.has_hash(&h.hash) => summary.extended += 1,
            Some(row) => {
                return Err(Finding::HeldRewritten {
                    id: row.id().to_owned(),
                    sequence: h.sequence,
                    held_issued_at: time::format(h.issued_at),
                });
            }
            None => match contiguous {
                Some(e) if expired(h, rows.get(at), e) => summary.expired += 1,
                Some(_) => {
                    return Err(Finding::HeldMissing {
                        sequence: h.sequence,
                        held_issued_at: time::format(h.issued_at),
                    });
                }
                None => summary.not_covered += 1,
            },
        }
    }
    Ok(summary)
}

/// Whether the held activity may have expired: recorded no later than the checkpoint was
/// issued, and no later than `next` (the first retained activity after it), so gone with either.
fn expired<R: Linked>(held: &HeldHead, next: Option<&R>, e: Expiry) -> bool {
    let old = |t: DateTime<Utc>| t + e.retention <= e.now;
    old(held.issued_at) || next.and_then(Linked::recorded_at).is_some_and(old)
}
