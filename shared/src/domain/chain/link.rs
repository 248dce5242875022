//! Where an activity stands in its customer's chain, and the head that new activities are
//! appended to.

use super::{ChainError, Record};

/// `previousHash` of sequence 1.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Where an activity stands in its customer's chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub sequence: u64,
    pub hash: String,
    pub previous_hash: String,
}

/// The last link of a customer's chain (sequence 0 and the genesis hash before the first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub sequence: u64,
    pub hash: String,
}

impl Head {
    pub fn genesis() -> Self {
        Self {
            sequence: 0,
            hash: GENESIS_HASH.to_owned(),
        }
    }

    /// The link of the next activity, whose record is `record`; the head moves to it.
    pub fn append(&mut self, record: &Record) -> Result<Link, ChainError> {
        let sequence = self.sequence + 1;
        let hash = record.hash(&self.hash, sequence)?;
        let link = Link {
            sequence,
            hash: hash.clone(),
            previous_hash: std::mem::replace(&mut self.hash, hash),
        };
        self.sequence = sequence;
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
