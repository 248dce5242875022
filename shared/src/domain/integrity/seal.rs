//! Seals: on a schedule, the heads that moved since the previous seal are anchored together
//! under one signature, so a truncation after a seal is refused even if nobody asked for a
//! checkpoint in between. Like CloudTrail's digest files, each seal names the previous one (the
//! SHA-256 of its signed message), so the seals form a chain of their own that no one can
//! rewrite without breaking it. One signature per seal, not per customer: 10,000 customers whose
//! heads moved cost 1 KMS signature per run, not 10,000.
//!
//! A seal is kept in the anchor bucket at `seals/<inverted sequence, 20 digits>.json` (the
//! latest lists first), and each head it anchors also gets an anchor object of its own
//! ([`anchor::sealed_key`](super::anchor::sealed_key)), which the checkpoint path reads.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::Key;
use crate::domain::chain::{ChainError, GENESIS_HASH};

/// The prefix of every seal.
pub const PREFIX: &str = "seals/";

/// The object key of seal number `sequence`.
pub fn key(sequence: u64) -> String {
    format!("{PREFIX}{:020}.json", u64::MAX - sequence)
}

/// One customer's head, as a seal lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SealedHead {
    pub partner_id: String,
    pub customer_id: String,
    pub sequence: u64,
    pub hash: String,
}

/// The heads anchored by one run of the sealer, signed as a whole.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Seal {
    /// 1, 2, 3, … in the order the seals were made.
    pub sequence: u64,
    /// SHA-256 of the previous seal's signed message ([`Seal::hash`]); 64 zeros for the first.
    pub previous_hash: String,
    /// When it was made, RFC 3339 UTC with milliseconds.
    pub sealed_at: String,
    /// Heads recorded up to this time were looked at; the next seal looks from a little before.
    pub covers_until: String,
    /// The retention the heads' activities are kept for (as a checkpoint signs it).
    pub retention_days: u32,
    /// The heads anchored, each one extending the customer's previous anchor.
    pub heads: Vec<SealedHead>,
    /// Heads that did not extend the customer's latest anchor: not anchored, and logged,
    /// counted (`ChainInconsistencies`) and alarmed.
    pub refused: Vec<SealedHead>,
    /// The signing key (its KMS key ARN in AWS).
    pub key_id: String,
    /// Standard base64 of the DER-encoded ECDSA P-256 / SHA-256 signature of [`Self::message`].
    #[serde(default)]
    pub signature: String,
}

impl Seal {
    /// The first seal's `previous_hash`.
    pub const GENESIS: &str = GENESIS_HASH;

    /// The signed message: JCS of the seal without `keyId` and `signature`.
    pub fn message(&self) -> Result<Vec<u8>, ChainError> {
        let mut value =
            serde_json::to_value(self).map_err(|e| ChainError::BadRecord(e.to_string()))?;
        if let Value::Object(m) = &mut value {
            m.remove("keyId");
            m.remove("signature");
        }
        serde_json_canonicalizer::to_vec(&value).map_err(|e| ChainError::BadRecord(e.to_string()))
    }

    /// SHA-256 of the signed message, lower-case hex: what the next seal names.
    pub fn hash(&self) -> Result<String, ChainError> {
        Ok(hex::encode(Sha256::digest(self.message()?)))
    }

    /// Whether `key` signed this seal as it stands.
    pub fn verify(&self, key: &Key) -> bool {
        self.message()
            .is_ok_and(|message| key.verifies(&message, &self.signature))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::signed::Signer;

    fn seal() -> Seal {
        Seal {
            sequence: 2,
            previous_hash: "ab".repeat(32),
            sealed_at: "2026-11-28T00:15:00.000Z".into(),
            covers_until: "2026-11-28T00:15:00.000Z".into(),
            retention_days: 365,
            heads: vec![SealedHead {
                partner_id: "p1".into(),
                customer_id: "客戶 #1".into(),
                sequence: 7,
                hash: "cd".repeat(32),
            }],
            refused: Vec::new(),
            key_id: String::new(),
            signature: String::new(),
        }
    }

    #[test]
    fn a_seal_is_signed_as_a_whole_and_names_the_previous_one() {
        let signer = Signer::new([7; 32], "key-1").unwrap();
        let key = Key::from_pem(&signer.public_key_pem().unwrap()).unwrap();
        let mut s = seal();
        signer.sign_seal(&mut s).unwrap();
        assert!(s.verify(&key));
        let text = String::from_utf8(s.message().unwrap()).unwrap();
        assert!(text.starts_with(r#"{"coversUntil":"#), "{text}");
        assert!(
            !text.contains("signature") && !text.contains("keyId"),
            "{text}"
        );
        // Any member changed: the signature no longer holds, and the hash the next one names
        // changes.
        let hash = s.hash().unwrap();
        let mut other = s.clone();
        other.heads[0].sequence = 6;
        assert!(!other.verify(&key));
        assert_ne!(other.hash().unwrap(), hash);
        assert_eq!(hash.len(), 64);
        // The latest lists first.
        assert!(super::key(3) < super::key(2));
    }
}
