//! The record: what an activity's hash covers. Its members are defined once, here: the
//! [`Record`] struct (how the service builds and reads it) and [`MEMBERS`] (how each member is
//! written, for the verifier's fast path and the page); a test holds the two to each other and
//! to `shared/spec/chain-vectors.json`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::ChainError;
use super::link::decode_hash;

/// How a member is written in the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Presence {
    /// Always, as the row has it.
    Required,
    /// Always; `null` when the row does not have it.
    NullWhenAbsent,
    /// Only when the row has it and it is not `null`.
    OmittedWhenNull,
    /// The tenant's id (not in the rows: the checkpoint's or the manifest's).
    Tenant,
    /// The activity's sequence.
    Sequence,
}

/// The members of a record, in JCS order, and how each is written.
pub const MEMBERS: [(&str, Presence); 14] = [
    ("action", Presence::Required),
    ("customerId", Presence::Required),
    ("customerName", Presence::Required),
    ("details", Presence::OmittedWhenNull),
    ("id", Presence::Required),
    ("occurredAt", Presence::Required),
    ("partnerId", Presence::Tenant),
    ("partnerUser", Presence::Required),
    ("previousRecordedAt", Presence::NullWhenAbsent),
    ("recordedAt", Presence::Required),
    ("recordedBy", Presence::NullWhenAbsent),
    ("resourceType", Presence::OmittedWhenNull),
    ("sequence", Presence::Sequence),
    ("status", Presence::Required),
];

/// An activity's record without its sequence (what its hash covers but its place), as the
/// rows of the API and of JSON Lines exports show it: [`MEMBERS`] but `sequence`. Members are
/// JSON values, not typed, because a verifier hashes what a row shows: a row altered to a
/// number where the service wrote a string must still be read, and named as altered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    pub action: Value,
    pub customer_id: Value,
    pub customer_name: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<Value>,
    pub id: Value,
    pub occurred_at: Value,
    #[serde(default, skip_deserializing)]
    pub partner_id: String,
    pub partner_user: Value,
    /// When the activity before it in the chain was recorded (`null` for sequence 1): what
    /// tells an expired start of the chain from a deleted one.
    #[serde(default)]
    pub previous_recorded_at: Value,
    pub recorded_at: Value,
    #[serde(default)]
    pub recorded_by: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_type: Option<Value>,
    pub status: Value,
}

/// A record at its place: what is canonicalized and hashed.
#[derive(Serialize)]
struct AtSequence<'a> {
    #[serde(flatten)]
    record: &'a Record,
    sequence: u64,
}

impl Record {
    /// The record of a row of the API or of a JSON Lines export of `partner`.
    pub fn from_row(partner: &str, row: &Map<String, Value>) -> Result<Self, ChainError> {
        let mut record = Self::deserialize(row)
            .map_err(|e| ChainError::BadRecord(e.to_string().replace("field", "member")))?;
        partner.clone_into(&mut record.partner_id);
        Ok(record)
    }

    /// JCS (RFC 8785) of the record at `sequence`.
    pub fn canonical(&self, sequence: u64) -> Result<Vec<u8>, ChainError> {
        serde_json_canonicalizer::to_vec(&AtSequence {
            record: self,
            sequence,
        })
        .map_err(|e| ChainError::BadRecord(e.to_string()))
    }

    /// `SHA-256(bytes(previous) ‖ JCS(record at sequence))`, lower-case hex.
    pub fn hash(&self, previous: &str, sequence: u64) -> Result<String, ChainError> {
        let previous = decode_hash(previous)?;
        let mut h = Sha256::new();
        h.update(previous);
        h.update(self.canonical(sequence)?);
        Ok(hex::encode(h.finalize()))
    }
}
