//! A customer's chain head signed by the service's key (`GET /customers/{id}/checkpoint`).

use serde::{Deserialize, Serialize};

use chrono::{DateTime, Utc};

use super::{HeldHead, Key};
use crate::domain::chain::{ChainError, SignedHead};
use crate::domain::time;

/// The signed message of a checkpoint:
/// `JCS({partnerId, customerId, sequence, hash, issuedAt, retentionDays})`.
pub fn checkpoint_message(
    partner: &str,
    customer: &str,
    head: (u64, &str),
    issued_at: &str,
    retention_days: u32,
) -> Result<Vec<u8>, ChainError> {
    let (sequence, hash) = head;
    let message = serde_json::json!({
        "partnerId": partner,
        "customerId": customer,
        "sequence": sequence,
        "hash": hash,
        "issuedAt": issued_at,
        "retentionDays": retention_days,
    });
    serde_json_canonicalizer::to_vec(&message).map_err(|e| ChainError::BadRecord(e.to_string()))
}

/// A customer's chain head signed by the service's key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Checkpoint {
    pub partner_id: String,
    pub customer_id: String,
    pub sequence: u64,
    pub hash: String,
    /// RFC 3339 UTC with milliseconds, as signed.
    pub issued_at: String,
    /// How long the service keeps an activity after recording it, as signed: what tells an
    /// expired start of the chain from a deleted one (not the verifier's to choose).
    pub retention_days: u32,
    /// The signing key (its KMS key ARN in AWS).
    pub key_id: String,
    /// Standard base64 of the DER-encoded ECDSA P-256 / SHA-256 signature of [`Self::message`].
    pub signature: String,
}

impl Checkpoint {
    /// The signed message: `JCS({partnerId, customerId, sequence, hash, issuedAt,
    /// retentionDays})`.
    pub fn message(&self) -> Result<Vec<u8>, ChainError> {
        checkpoint_message(
            &self.partner_id,
            &self.customer_id,
            (self.sequence, &self.hash),
            &self.issued_at,
            self.retention_days,
        )
    }

    /// The signed retention.
    pub fn retention(&self) -> chrono::TimeDelta {
        chrono::TimeDelta::days(i64::from(self.retention_days))
    }

    /// Whether `key` signed this checkpoint as it stands.
    pub fn verify(&self, key: &Key) -> bool {
        self.message()
            .is_ok_and(|message| key.verifies(&message, &self.signature))
    }

    /// When it was issued, as signed.
    pub fn issued(&self) -> Result<DateTime<Utc>, ChainError> {
        time::parse_timestamp(&self.issued_at)
            .map_err(|e| ChainError::BadRecord(format!("issuedAt {}: {e}", self.issued_at)))
    }

    /// The head it vouches for, and when, as a checkpoint held for later checks.
    pub fn held(&self) -> Result<HeldHead, ChainError> {
        Ok(HeldHead {
            sequence: self.sequence,
            hash: self.hash.clone(),
            issued_at: self.issued()?,
        })
    }

    /// The head it vouches for.
    pub fn head(&self) -> SignedHead {
        SignedHead {
            sequence: self.sequence,
            hash: self.hash.clone(),
        }
    }
}
