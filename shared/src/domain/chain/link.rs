//! Where an activity stands in its customer's chain, and the head that new activities are
//! appended to.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{ChainError, Record};
use crate::domain::time;

/// `previousHash` of sequence 1.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Where an activity stands in its customer's chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub sequence: u64,
    pub hash: String,
    pub previous_hash: String,
    /// When the activity before it was recorded (`None` for sequence 1).
    pub previous_recorded_at: Option<DateTime<Utc>>,
}

/// The last link of a customer's chain (sequence 0 and the genesis hash before the first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub sequence: u64,
    pub hash: String,
    /// When its activity was recorded (`None` before the first).
    pub recorded_at: Option<DateTime<Utc>>,
}

impl Head {
    pub fn genesis() -> Self {
        Self {
            sequence: 0,
            hash: GENESIS_HASH.to_owned(),
            recorded_at: None,
        }
    }

    /// Appends the next activity, whose record is `record`; the head moves to it. Recording
    /// times never go back along a chain (so everything before an expired activity has expired
    /// too): an activity recorded by a clock behind the head's is recorded at the head's time.
    /// The record gains its place's members (`recordedAt` so kept, `previousRecordedAt`);
    /// returns its link (its recording time is then the head's).
    pub fn append(&mut self, record: &mut Record) -> Result<Link, ChainError> {
        let recorded_at = record
            .recorded_at
            .as_str()
            .and_then(|t| time::parse_timestamp(t).ok())
            .ok_or_else(|| ChainError::BadRecord("recordedAt is not a time".into()))?;
        let recorded_at = self.recorded_at.map_or(recorded_at, |r| r.max(recorded_at));
        record.recorded_at = Value::String(time::format(recorded_at));
        record.previous_recorded_at = self
            .recorded_at
            .map_or(Value::Null, |t| Value::String(time::format(t)));
        let sequence = self.sequence + 1;
        let hash = record.hash(&self.hash, sequence)?;
        let link = Link {
            sequence,
            hash: hash.clone(),
            previous_hash: std::mem::replace(&mut self.hash, hash),
            previous_recorded_at: self.recorded_at,
        };
        self.sequence = sequence;
        self.recorded_at = Some(recorded_at);
        Ok(link)
    }
}

/// The 32 bytes a hash's 64 lower-case hex digits spell.
pub fn decode_hash(hash: &str) -> Result<[u8; 32], ChainError> {
    let mut bytes = [0u8; 32];
    if hash.len() != 64 || hash.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(ChainError::BadHash);
    }
    hex::decode_to_slice(hash, &mut bytes).map_err(|_| ChainError::BadHash)?;
    Ok(bytes)
}
