//! The tamper-evident log: each customer's activities form a hash chain in recording order.
//!
//! Activity `n` of a customer (sequence 1, 2, 3, … per tenant and customer, no gaps) has
//! `hash = SHA-256(bytes(previousHash) ‖ JCS(record))`, lower-case hex, where `bytes(…)` is the
//! 32 bytes the previous hash's hex spells (64 zeros for sequence 1) and JCS is RFC 8785. The
//! record ([`Record`], its members in [`MEMBERS`]) is what a row's hash covers; [`link`] says
//! how rows hang together and [`verify`] checks a customer's rows against a signed head.
//!
//! The rules are held as data too: `shared/spec/chain-vectors.json` (rows → JCS → hash →
//! expected finding) is read by these tests, the verifier's fast path and the page's tests.

mod link;
mod record;
mod verify;

pub use link::{GENESIS_HASH, Head, Link, decode_hash};
pub use record::{MEMBERS, Presence, Record};
pub use verify::{
    ChainRow, ChainSummary, Expiry, Finding, Linked, SignedHead, verify, verify_linked,
};

/// What cannot be hashed or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    #[error("a hash must be 64 lower-case hexadecimal digits")]
    BadHash,
    #[error("{0}")]
    BadRecord(String),
    #[error("{0}")]
    BadKey(String),
}

#[cfg(test)]
mod tests;
