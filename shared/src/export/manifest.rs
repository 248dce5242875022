//! An export's manifest (README, "Tamper-evident log"): the file's SHA-256, its rows, and for
//! each customer the sequences it holds (as runs, so the gaps between them are known). Tracked while the file is written — saved with every
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
    /// By customer id.
    pub customers: BTreeMap<String, Held>,
}

/// The sequences of one customer in the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Held {
    pub rows: u64,
    /// Runs of consecutive sequences: first → last, disjoint and not touching.
    runs: BTreeMap<u64, u64>,
}

impl Held {
    fn new(sequence: u64) -> Self {
        Self {
            rows: 1,
            runs: BTreeMap::from([(sequence, sequence)]),
        }
    }

    /// One more row at `s`: joins the run it touches, or both runs it closes the gap between.
    fn add(&mut self, s: u64) {
        self.rows += 1;
        let before = self.runs.range(..=s).next_back().map(|(&a, &b)| (a, b));
        if before.is_some_and(|(_, b)| b >= s) {
            return;
        }
        let after = s
            .checked_add(1)
            .and_then(|n| self.runs.get(&n).map(|&b| (n, b)));
        let start = match before {
            Some((a, b)) if b + 1 == s => a,
            _ => s,
        };
        let end = match after {
            Some((n, b)) => {
                self.runs.remove(&n);
                b
            }
            None => s,
        };
        self.runs.insert(start, end);
    }

    pub fn first(&self) -> u64 {
        self.runs.first_key_value().map_or(0, |(&a, _)| a)
    }

    pub fn last(&self) -> u64 {
        self.runs.last_key_value().map_or(0, |(_, &b)| b)
    }

    /// The runs of sequences between the first and the last that the file does not hold, in
    /// order (first, last; inclusive).
    pub fn gaps(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.runs
            .iter()
            .zip(self.runs.keys().skip(1))
            .map(|((_, &end), &next)| (end + 1, next - 1))
    }
}

/// The state as saved between runs.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Saved {
    /// The SHA-256 state after `bytes` bytes, hex.
    sha256_state: String,
    bytes: u64,
    rows: u64,
    customers: BTreeMap<String, Held>,
}

impl Default for ManifestState {
    fn default() -> Self {
        Self {
            hasher: Sha256::new(),
            bytes: 0,
            rows: 0,
            customers: BTreeMap::new(),
        }
    }
}

impl ManifestState {
    /// A row written to the file. One without a link (its chain members stripped in storage)
    /// is counted in the file's rows only: the verifier names it.
    pub fn row(&mut self, a: &Activity) {
        self.rows += 1;
        let Some(link) = &a.chain else {
            return;
        };
        let s = link.sequence;
        // Looked up by reference: a key is allocated once per customer, not once per row.
        match self.customers.get_mut(a.customer_id.as_str()) {
            Some(h) => h.add(s),
            None => {
                self.customers
                    .insert(a.customer_id.to_string(), Held::new(s));
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
    fn runs_join_whatever_order_the_sequences_come_in() {
        let mut h = Held::new(10);
        for s in [3, 8, 4, 9, 20, 5, 1, 21, 9, 19] {
            h.add(s);
        }
        assert_eq!(h.rows, 11);
        assert_eq!((h.first(), h.last()), (1, 21));
        assert_eq!(h.gaps().collect::<Vec<_>>(), [(2, 2), (6, 7), (11, 18)]);
        h.add(2);
        h.add(6);
        h.add(7);
        assert_eq!(h.gaps().collect::<Vec<_>>(), [(11, 18)]);
        assert_eq!(h.runs.len(), 2);
    }

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
        assert_eq!((stopped.bytes, stopped.rows), (whole.bytes, 5));
        let c1 = &stopped.customers["c1"];
        assert_eq!((c1.rows, c1.first(), c1.last()), (2, 11, 15));
        assert_eq!(c1.gaps().collect::<Vec<_>>(), [(12, 14)]);
        let c2 = &stopped.customers["c2"];
        assert_eq!((c2.rows, c2.first(), c2.last()), (2, 12, 14));
        assert_eq!(c2.gaps().collect::<Vec<_>>(), [(13, 13)]);
        let mut plain = Sha256::new();
        for i in 0..5 {
            plain.update(format!("part {i} with an odd length{}", "x".repeat(i * 37)));
        }
        assert_eq!(whole.sha256(), hex::encode(plain.finalize()));
        assert!(ManifestState::from_bytes(b"{}").is_err());
    }
}
