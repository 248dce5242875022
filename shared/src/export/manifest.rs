//! An export's manifest (README, "Tamper-evident log"): the file's SHA-256, its rows, and for
//! each customer the sequences it holds. Tracked while the file is written — saved with every
//! part, so a run that goes on from a part goes on from the same state — and signed when the
//! file is complete.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::digest::common::hazmat::{SerializableState, SerializedState};
use sha2::{Digest, Sha256};

use crate::domain::Activity;

/// What the manifest says of the file so far.
#[derive(Clone)]
pub struct ManifestState {
    hasher: Sha256,
    /// Bytes hashed (uploaded).
    pub bytes: u64,
    /// Rows encoded.
    pub rows: u64,
    /// Rows without a sequence (recorded before the chain).
    pub unchained: u64,
    /// By customer id.
    pub customers: BTreeMap<String, Held>,
}

/// The sequences of one customer in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Held {
    pub rows: u64,
    pub first: u64,
    pub last: u64,
}

/// The state as saved between runs.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Saved {
    /// The SHA-256 state after `bytes` bytes, hex.
    sha256_state: String,
    bytes: u64,
    rows: u64,
    unchained: u64,
    customers: BTreeMap<String, Held>,
}

impl Default for ManifestState {
    fn default() -> Self {
        Self {
            hasher: Sha256::new(),
            bytes: 0,
            rows: 0,
            unchained: 0,
            customers: BTreeMap::new(),
        }
    }
}

impl ManifestState {
    /// A row written to the file.
    pub fn row(&mut self, a: &Activity) {
        self.rows += 1;
        let Some(link) = &a.chain else {
            self.unchained += 1;
            return;
        };
        let s = link.sequence;
        // Looked up by reference: a key is allocated once per customer, not once per row.
        match self.customers.get_mut(a.customer_id.as_str()) {
            Some(h) => {
                h.rows += 1;
                h.first = h.first.min(s);
                h.last = h.last.max(s);
            }
            None => {
                self.customers.insert(
                    a.customer_id.to_string(),
                    Held {
                        rows: 1,
                        first: s,
                        last: s,
                    },
                );
            }
        }
    }

    /// Bytes of the file, in order (each part as it is uploaded).
    pub fn hash(&mut self, bytes: &[u8]) {
        self.hasher.update(bytes);
        self.bytes += bytes.len() as u64;
    }

    /// The SHA-256 of the bytes so far, lower-case hex.
    pub fn sha256(&self) -> String {
        hex::encode(self.hasher.clone().finalize())
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let saved = Saved {
            sha256_state: hex::encode(self.hasher.serialize()),
            bytes: self.bytes,
            rows: self.rows,
            unchained: self.unchained,
            customers: self.customers.clone(),
        };
        serde_json::to_vec(&saved).unwrap_or_default()
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        let saved: Saved =
            serde_json::from_slice(bytes).map_err(|e| format!("manifest state: {e}"))?;
        let raw = hex::decode(&saved.sha256_state).map_err(|e| format!("hash state: {e}"))?;
        let state = SerializedState::<Sha256>::try_from(raw.as_slice())
            .map_err(|_| "hash state of the wrong size".to_owned())?;
        let hasher = Sha256::deserialize(&state).map_err(|e| format!("hash state: {e}"))?;
        Ok(Self {
            hasher,
            bytes: saved.bytes,
            rows: saved.rows,
            unchained: saved.unchained,
            customers: saved.customers,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::chain::Link;
    use crate::testing::fixtures::synthetic_activity;
    use chrono::Utc;

    #[test]
    fn a_state_saved_and_restored_hashes_and_counts_on_as_if_never_stopped() {
        let mut whole = ManifestState::default();
        let mut stopped = ManifestState::default();
        let rows: Vec<Activity> = (1..=5)
            .map(|n| {
                let mut a = synthetic_activity(n, if n % 2 == 0 { "c2" } else { "c1" }, Utc::now());
                a.chain = (n != 3).then(|| Link {
                    sequence: 10 + n,
                    hash: String::new(),
                    previous_hash: String::new(),
                    previous_recorded_at: None,
                });
                a
            })
            .collect();
        for (i, a) in rows.iter().enumerate() {
            let part = format!("part {i} with an odd length{}", "x".repeat(i * 37));
            whole.row(a);
            whole.hash(part.as_bytes());
            stopped.row(a);
            stopped.hash(part.as_bytes());
            if i == 2 {
                stopped = ManifestState::from_bytes(&stopped.to_bytes()).unwrap();
            }
        }
        assert_eq!(stopped.sha256(), whole.sha256());
        assert_eq!(
            (stopped.bytes, stopped.rows, stopped.unchained),
            (whole.bytes, 5, 1)
        );
        assert_eq!(
            stopped.customers["c1"],
            Held {
                rows: 2,
                first: 11,
                last: 15
            }
        );
        assert_eq!(
            stopped.customers["c2"],
            Held {
                rows: 2,
                first: 12,
                last: 14
            }
        );
        let mut plain = Sha256::new();
        for i in 0..5 {
            plain.update(format!("part {i} with an odd length{}", "x".repeat(i * 37)));
        }
        assert_eq!(whole.sha256(), hex::encode(plain.finalize()));
        assert!(ManifestState::from_bytes(b"{}").is_err());
    }
}
