//! What an export's manifest says of the file beside it, signed as a whole.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Checkpoint;
use crate::domain::chain::ChainError;

/// Version of the export manifest format.
pub const MANIFEST_VERSION: u32 = 1;

/// What an export's manifest says of the file beside it, signed as a whole: the file's digest
/// and, per customer, the sequences it holds and a signed checkpoint at or after the last.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Manifest {
    pub version: u32,
    pub export_id: String,
    pub partner_id: String,
    /// `csv` or `jsonl`.
    pub format: String,
    pub file: ManifestFile,
    /// Rows without a sequence (recorded before the chain and not backfilled).
    pub unchained_rows: u64,
    /// By customer id.
    pub customers: Vec<ManifestCustomer>,
    pub created_at: String,
    pub key_id: String,
    /// Standard base64 of the DER signature of [`Self::message`].
    #[serde(default)]
    pub signature: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ManifestFile {
    /// The download's file name.
    pub name: String,
    /// SHA-256 of the file's bytes, lower-case hex.
    pub sha256: String,
    pub bytes: u64,
    pub rows: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ManifestCustomer {
    pub customer_id: String,
    /// Rows of the customer in the file (with a sequence).
    pub rows: u64,
    pub first_sequence: u64,
    pub last_sequence: u64,
    /// The customer's head when the export ended: at or after `last_sequence`.
    pub checkpoint: Checkpoint,
}

impl Manifest {
    /// The signed message: JCS of the manifest without its `signature` member.
    pub fn message(&self) -> Result<Vec<u8>, ChainError> {
        let mut value =
            serde_json::to_value(self).map_err(|e| ChainError::BadRecord(e.to_string()))?;
        if let Value::Object(m) = &mut value {
            m.remove("signature");
        }
        serde_json_canonicalizer::to_vec(&value).map_err(|e| ChainError::BadRecord(e.to_string()))
    }
}
