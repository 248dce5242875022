//! What an export's manifest says of the file beside it, signed as a whole: one signature per
//! export, however many customers it holds.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::domain::chain::ChainError;

/// Version of the export manifest format.
pub const MANIFEST_VERSION: u32 = 2;

/// What an export's manifest says of the file beside it, signed as a whole: which export it is
/// (its period, customer, filters, format and language), the file's digest, and per customer
/// the sequences the file holds, those it leaves out, and the head they lead to, checked to
/// extend the customer's latest anchor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Manifest {
    pub version: u32,
    pub export_id: String,
    pub partner_id: String,
    /// What was asked for.
    pub export: ManifestExport,
    /// The file; of an export that is a set of files (Parquet), the files one after another
    /// in the order `files` lists them.
    pub file: ManifestFile,
    /// The files of an export that is a set of files (Parquet), in the order they were written.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<DataFile>,
    /// The retention the activities are kept for: a gap after which an activity shows the one
    /// before it recorded longer ago than this, before `createdAt`, held only expired ones.
    pub retention_days: u32,
    /// By customer id.
    pub customers: Vec<ManifestCustomer>,
    pub created_at: String,
    pub key_id: String,
    /// Standard base64 of the DER signature of [`Self::message`].
    #[serde(default)]
    pub signature: String,
}

/// The export as it was asked for: every row of the log that matches is in the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ManifestExport {
    /// `null`: every customer of the partner.
    pub customer_id: Option<String>,
    /// The period (`occurredAt` from, inclusive, to, exclusive), RFC 3339 UTC.
    pub from: String,
    pub to: String,
    pub action: Option<String>,
    pub partner_user: Option<String>,
    pub resource_type: Option<String>,
    pub status: Option<String>,
    /// `csv` or `jsonl`.
    pub format: String,
    /// The time zone and language times and headers are written in.
    pub time_zone: String,
    pub locale: String,
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

/// One file of an export that is a set of files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DataFile {
    /// Its key under the export's prefix (`region=…/accountId=…/eventDay=YYYYMMDD/<name>`).
    pub path: String,
    /// SHA-256 of its bytes, lower-case hex.
    pub sha256: String,
    pub bytes: u64,
    pub rows: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ManifestCustomer {
    pub customer_id: String,
    /// Rows of the customer in the file.
    pub rows: u64,
    pub first_sequence: u64,
    pub last_sequence: u64,
    /// Runs of sequences between the first and the last that the file leaves out although the
    /// log held every one of them when the export was made (outside the period or the
    /// filters), in order. Any other sequence missing in between is missing from the log.
    pub left_out: Vec<LeftOut>,
    /// The customer's head when the export was sealed: at or after `last_sequence`.
    pub head: ManifestHead,
    /// The customer's latest anchor, which the chain from its sequence up to `head` was checked
    /// to extend: its object key in the anchor bucket (a signed checkpoint, or a head a signed
    /// seal lists). `null`: nothing was anchored yet.
    pub anchor: Option<String>,
}

/// Sequences `first` to `last` (inclusive), left out of the file: activity `first` links to
/// `previousHash` (the hash of the row before, in the file), and the row after, in the file,
/// links to `hash` (activity `last`'s).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LeftOut {
    pub first: u64,
    pub last: u64,
    pub previous_hash: String,
    pub hash: String,
}

/// A chain head: a sequence and its activity's hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ManifestHead {
    pub sequence: u64,
    pub hash: String,
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

impl ManifestCustomer {
    /// The run left out that ends just before `sequence`, if the manifest lists one.
    pub fn left_out_before(&self, sequence: u64) -> Option<&LeftOut> {
        let i = self.left_out.partition_point(|l| l.last + 1 < sequence);
        self.left_out.get(i).filter(|l| l.last + 1 == sequence)
    }
}
