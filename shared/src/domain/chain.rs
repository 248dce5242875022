//! The tamper-evident log: each customer's activities form a hash chain in recording order.
//!
//! Activity `n` of a customer (sequence 1, 2, 3, … per tenant and customer, no gaps) has
//! `hash = SHA-256(bytes(previousHash) ‖ JCS(record))`, lower-case hex, where `bytes(…)` is the
//! 32 bytes the previous hash's hex spells (64 zeros for sequence 1) and JCS is RFC 8785. The
//! record is the JSON object of [`RECORD_MEMBERS`] (README, "Tamper-evident log"). A signed
//! checkpoint vouches for a customer's head; the checks here need nothing but the rows.

use std::collections::HashMap;
use std::fmt;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::activity::{Activity, Details};
use super::ids::PartnerId;
use super::time;

/// `previousHash` of sequence 1.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The members of a record, in JCS order. `resourceType` and `details` only when present;
/// `recordedBy` is `null` for activities recorded before writers were recorded.
pub const RECORD_MEMBERS: [&str; 13] = [
    "action",
    "customerId",
    "customerName",
    "details",
    "id",
    "occurredAt",
    "partnerId",
    "partnerUser",
    "recordedAt",
    "recordedBy",
    "resourceType",
    "sequence",
    "status",
];

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

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    #[error("a hash must be 64 lower-case hexadecimal digits")]
    BadHash,
    #[error("{0}")]
    BadRecord(String),
    #[error("{0}")]
    BadKey(String),
}

/// An activity's record without its sequence: what its hash covers but its place.
#[derive(Debug, Clone, PartialEq)]
pub struct Record(Map<String, Value>);

impl Record {
    /// The record of `a`, recorded for `partner`; `details` is its details document (the
    /// activity holds only a key of details kept in the bucket).
    pub fn of(
        partner: &PartnerId,
        a: &Activity,
        details: Option<&str>,
    ) -> Result<Self, ChainError> {
        let inline = match &a.details {
            Details::Inline(json) => Some(json.as_str()),
            _ => None,
        };
        let details = match (details.or(inline), &a.details) {
            (Some(json), _) => Some(
                serde_json::from_str::<Value>(json)
                    .map_err(|e| ChainError::BadRecord(format!("details: {e}")))?,
            ),
            (None, Details::None | Details::Inline(_)) => None,
            (None, Details::External { .. }) => {
                return Err(ChainError::BadRecord(
                    "the details kept in the bucket are needed".into(),
                ));
            }
        };
        let mut m = Map::new();
        let text = |s: &str| Value::String(s.to_owned());
        m.insert("partnerId".into(), text(partner.as_str()));
        m.insert("customerId".into(), text(a.customer_id.as_str()));
        m.insert("id".into(), text(a.id.as_str()));
        m.insert("customerName".into(), text(&a.customer_name));
        m.insert("action".into(), text(&a.action));
        m.insert("partnerUser".into(), text(&a.partner_user));
        m.insert(
            "occurredAt".into(),
            Value::String(time::format(a.occurred_at)),
        );
        m.insert(
            "recordedAt".into(),
            Value::String(time::format(a.recorded_at)),
        );
        m.insert(
            "recordedBy".into(),
            a.recorded_by.as_deref().map_or(Value::Null, text),
        );
        m.insert("status".into(), text(a.status.as_str()));
        if let Some(r) = &a.resource_type {
            m.insert("resourceType".into(), text(r));
        }
        if let Some(d) = details {
            m.insert("details".into(), d);
        }
        Ok(Self(m))
    }

    /// The record of an activity as the API and JSON Lines exports show it (camelCase
    /// members); `partner` is the tenant it belongs to.
    pub fn from_row(partner: &str, row: &Map<String, Value>) -> Result<Self, ChainError> {
        let mut m = Map::new();
        m.insert("partnerId".into(), Value::String(partner.to_owned()));
        for name in RECORD_MEMBERS {
            if matches!(name, "partnerId" | "sequence") {
                continue;
            }
            match row.get(name) {
                Some(Value::Null) | None if matches!(name, "resourceType" | "details") => {}
                Some(v) => {
                    m.insert(name.to_owned(), v.clone());
                }
                None if name == "recordedBy" => {
                    m.insert(name.to_owned(), Value::Null);
                }
                None => return Err(ChainError::BadRecord(format!("{name} is missing"))),
            }
        }
        Ok(Self(m))
    }

    /// JCS (RFC 8785) of the record at `sequence`.
    pub fn canonical(&self, sequence: u64) -> Result<Vec<u8>, ChainError> {
        let mut m = self.0.clone();
        m.insert("sequence".into(), Value::from(sequence));
        serde_json_canonicalizer::to_vec(&m).map_err(|e| ChainError::BadRecord(e.to_string()))
    }

    /// `SHA-256(bytes(previous) ‖ JCS(record at sequence))`, lower-case hex.
    pub fn hash(&self, previous: &str, sequence: u64) -> Result<String, ChainError> {
        let previous = decode_hash(previous)?;
        let mut h = Sha256::new();
        h.update(previous);
        h.update(self.canonical(sequence)?);
        Ok(hex::encode(h.finalize()))
    }

    /// `recordedAt`, if it is a timestamp.
    fn recorded_at(&self) -> Option<DateTime<Utc>> {
        self.0
            .get("recordedAt")
            .and_then(Value::as_str)
            .and_then(|t| time::parse_timestamp(t).ok())
    }
}

fn decode_hash(hash: &str) -> Result<[u8; 32], ChainError> {
    let mut bytes = [0u8; 32];
    if hash.len() != 64 || hash.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(ChainError::BadHash);
    }
    hex::decode_to_slice(hash, &mut bytes).map_err(|_| ChainError::BadHash)?;
    Ok(bytes)
}

/// The signed message of a checkpoint: `JCS({partnerId, customerId, sequence, hash, issuedAt})`.
pub fn checkpoint_message(
    partner: &str,
    customer: &str,
    sequence: u64,
    hash: &str,
    issued_at: &str,
) -> Result<Vec<u8>, ChainError> {
    let message = serde_json::json!({
        "partnerId": partner,
        "customerId": customer,
        "sequence": sequence,
        "hash": hash,
        "issuedAt": issued_at,
    });
    serde_json_canonicalizer::to_vec(&message).map_err(|e| ChainError::BadRecord(e.to_string()))
}

/// A customer's chain head signed by the service's key (`GET /customers/{id}/checkpoint`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Checkpoint {
    pub partner_id: String,
    pub customer_id: String,
    pub sequence: u64,
    pub hash: String,
    /// RFC 3339 UTC with milliseconds, as signed.
    pub issued_at: String,
    /// The signing key (its KMS key ARN in AWS).
    pub key_id: String,
    /// Standard base64 of the DER-encoded ECDSA P-256 / SHA-256 signature of [`Self::message`].
    pub signature: String,
}

impl Checkpoint {
    /// The signed message: `JCS({partnerId, customerId, sequence, hash, issuedAt})`.
    pub fn message(&self) -> Result<Vec<u8>, ChainError> {
        checkpoint_message(
            &self.partner_id,
            &self.customer_id,
            self.sequence,
            &self.hash,
            &self.issued_at,
        )
    }
}

/// The public half of the signing key (`GET /integrity/public-key`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PublicKey {
    pub key_id: String,
    /// SubjectPublicKeyInfo, PEM.
    pub pem: String,
    /// The same key as a JSON Web Key (`kty` EC, `crv` P-256, `x`, `y`).
    pub jwk: Value,
}

impl PublicKey {
    /// The key `key_id` from its DER SubjectPublicKeyInfo (what KMS `GetPublicKey` returns).
    pub fn from_spki_der(key_id: &str, der: &[u8]) -> Result<Self, ChainError> {
        use base64::Engine as _;
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        use p256::pkcs8::DecodePublicKey as _;
        use p256::pkcs8::EncodePublicKey as _;
        use p256::pkcs8::LineEnding;

        let key = p256::PublicKey::from_public_key_der(der)
            .map_err(|e| ChainError::BadKey(format!("not a P-256 public key: {e}")))?;
        let pem = key
            .to_public_key_pem(LineEnding::LF)
            .map_err(|e| ChainError::BadKey(e.to_string()))?;
        let point = p256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(&key, false);
        let (Some(x), Some(y)) = (point.x(), point.y()) else {
            return Err(ChainError::BadKey("the key has no coordinates".into()));
        };
        Ok(Self {
            key_id: key_id.to_owned(),
            pem,
            jwk: serde_json::json!({
                "kty": "EC",
                "crv": "P-256",
                "x": URL_SAFE_NO_PAD.encode(x),
                "y": URL_SAFE_NO_PAD.encode(y),
            }),
        })
    }

    /// Whether `signature` (standard base64 of a DER ECDSA P-256 / SHA-256 signature) is this
    /// key's over `message`.
    pub fn verifies(&self, message: &[u8], signature: &str) -> bool {
        use base64::Engine as _;
        use p256::ecdsa::signature::Verifier as _;
        use p256::pkcs8::DecodePublicKey as _;

        let Ok(key) = p256::ecdsa::VerifyingKey::from_public_key_pem(&self.pem) else {
            return false;
        };
        let Ok(der) = base64::engine::general_purpose::STANDARD.decode(signature) else {
            return false;
        };
        let Ok(sig) = p256::ecdsa::Signature::from_der(&der) else {
            return false;
        };
        key.verify(message, &sig).is_ok()
    }
}

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

/// One activity as a verifier reads it: its place and hash as shown, and its record.
#[derive(Debug, Clone)]
pub struct ChainRow {
    pub id: String,
    pub link: Link,
    pub record: Record,
}

impl ChainRow {
    /// A row of the API or of a JSON Lines export of `partner`.
    pub fn from_row(partner: &str, row: &Map<String, Value>) -> Result<Self, ChainError> {
        let text = |name: &str| {
            row.get(name)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| ChainError::BadRecord(format!("{name} is missing")))
        };
        let sequence = row
            .get("sequence")
            .and_then(Value::as_u64)
            .filter(|s| *s > 0)
            .ok_or_else(|| ChainError::BadRecord("sequence is missing".into()))?;
        Ok(Self {
            id: text("id")?,
            link: Link {
                sequence,
                hash: text("hash")?,
                previous_hash: text("previousHash")?,
            },
            record: Record::from_row(partner, row)?,
        })
    }
}

/// The first thing wrong with a customer's chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// The activity's content is not what its hash was computed over.
    Altered { id: String, sequence: u64 },
    /// The activity's hash is not the one the next activity was chained to: it was changed
    /// and its hash recomputed.
    Rehashed {
        id: String,
        sequence: u64,
        next_id: String,
    },
    /// Sequences between `after` and `sequence` are missing (and not old enough to have expired).
    Missing {
        id: String,
        sequence: u64,
        after: u64,
    },
    /// The activity was chained after one that now shows a later sequence.
    OutOfOrder {
        id: String,
        sequence: u64,
        follows_id: String,
        follows_sequence: u64,
    },
    /// Two activities show the same sequence.
    Duplicate {
        id: String,
        sequence: u64,
        other_id: String,
    },
    /// The activity at a signed checkpoint's sequence does not have the signed hash.
    NotSigned { id: String, sequence: u64 },
    /// Sequences after the last activity up to a signed checkpoint are missing.
    MissingBeforeCheckpoint { last: u64, checkpoint: u64 },
}

impl Finding {
    /// The activity named (id, sequence), if the finding is about one.
    pub fn activity(&self) -> Option<(&str, u64)> {
        match self {
            Self::Altered { id, sequence }
            | Self::Rehashed { id, sequence, .. }
            | Self::Missing { id, sequence, .. }
            | Self::OutOfOrder { id, sequence, .. }
            | Self::Duplicate { id, sequence, .. }
            | Self::NotSigned { id, sequence } => Some((id, *sequence)),
            Self::MissingBeforeCheckpoint { .. } => None,
        }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Altered { id, sequence } => write!(
                f,
                "activity {id} (sequence {sequence}) was altered: its content does not match its hash"
            ),
            Self::Rehashed {
                id,
                sequence,
                next_id,
            } => write!(
                f,
                "activity {id} (sequence {sequence}) was altered: its hash is not the one activity {next_id} (sequence {}) was chained to",
                sequence + 1
            ),
            Self::Missing {
                id,
                sequence,
                after,
            } => {
                let (from, to) = (after + 1, sequence - 1);
                if from == to {
                    write!(
                        f,
                        "sequence {from} is missing (before activity {id}, sequence {sequence})"
                    )
                } else {
                    write!(
                        f,
                        "sequences {from} to {to} are missing (missing between {after} and {sequence}; before activity {id})"
                    )
                }
            }
            Self::OutOfOrder {
                id,
                sequence,
                follows_id,
                follows_sequence,
            } => write!(
                f,
                "activity {id} (sequence {sequence}) is out of order: it was chained after activity {follows_id}, which shows sequence {follows_sequence}"
            ),
            Self::Duplicate {
                id,
                sequence,
                other_id,
            } => write!(
                f,
                "activity {id} (sequence {sequence}) is out of order: activity {other_id} shows the same sequence"
            ),
            Self::NotSigned { id, sequence } => write!(
                f,
                "activity {id} (sequence {sequence}) was altered: its hash is not the one of the signed checkpoint"
            ),
            Self::MissingBeforeCheckpoint { last, checkpoint } => write!(
                f,
                "sequences {} to {checkpoint} are missing (missing between {last} and the signed checkpoint at {checkpoint})",
                last + 1
            ),
        }
    }
}

/// What may excuse a gap: activities expire `retention` after they were recorded, so a gap
/// followed by an activity recorded more than `retention` before `now` held only expired ones.
#[derive(Debug, Clone, Copy)]
pub struct Expiry {
    pub now: DateTime<Utc>,
    pub retention: TimeDelta,
}

/// A signed head the rows must agree with (its signature checked by the caller).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHead {
    pub sequence: u64,
    pub hash: String,
}

/// What a verified chain holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainSummary {
    pub rows: usize,
    pub first: u64,
    pub last: u64,
    /// Gaps excused by expiry (sequences missing).
    pub expired: u64,
    /// Whether the rows reach the signed checkpoint (its row is among them).
    pub reaches_checkpoint: bool,
}

/// Checks one customer's rows, in any order: every hash, every link between consecutive
/// sequences, and the signed head. `contiguous` says the rows should be the whole retained
/// chain (the API), so any gap is a finding unless expiry excuses it; an export's rows may
/// leave sequences out (its period and filters), and then only consecutive ones are linked.
pub fn verify(
    rows: &mut [ChainRow],
    checkpoint: Option<&SignedHead>,
    contiguous: Option<Expiry>,
) -> Result<ChainSummary, Finding> {
    rows.sort_by_key(|r| r.link.sequence);
    let by_hash: HashMap<&str, usize> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| (r.link.hash.as_str(), i))
        .collect();
    let mut expired = 0;
    for i in 0..rows.len() {
        let row = &rows[i];
        let seq = row.link.sequence;
        if i > 0 {
            let prev = &rows[i - 1];
            if prev.link.sequence == seq {
                return Err(Finding::Duplicate {
                    id: row.id.clone(),
                    sequence: seq,
                    other_id: prev.id.clone(),
                });
            }
            if let Some(&j) = by_hash.get(row.link.previous_hash.as_str())
                && rows[j].link.sequence >= seq
            {
                return Err(Finding::OutOfOrder {
                    id: row.id.clone(),
                    sequence: seq,
                    follows_id: rows[j].id.clone(),
                    follows_sequence: rows[j].link.sequence,
                });
            }
            if prev.link.sequence + 1 < seq {
                if let Some(expiry) = contiguous {
                    let all_expired = row
                        .record
                        .recorded_at()
                        .is_some_and(|t| t + expiry.retention <= expiry.now);
                    if !all_expired {
                        return Err(Finding::Missing {
                            id: row.id.clone(),
                            sequence: seq,
                            after: prev.link.sequence,
                        });
                    }
                    expired += seq - prev.link.sequence - 1;
                }
            } else if row.link.previous_hash != prev.link.hash {
                return Err(Finding::Rehashed {
                    id: prev.id.clone(),
                    sequence: prev.link.sequence,
                    next_id: row.id.clone(),
                });
            }
        } else if seq == 1 && row.link.previous_hash != GENESIS_HASH {
            return Err(Finding::Altered {
                id: row.id.clone(),
                sequence: seq,
            });
        }
        let recomputed = row.record.hash(&row.link.previous_hash, seq);
        if recomputed.as_deref() != Ok(row.link.hash.as_str()) {
            return Err(Finding::Altered {
                id: row.id.clone(),
                sequence: seq,
            });
        }
    }
    let (first, last) = match (rows.first(), rows.last()) {
        (Some(f), Some(l)) => (f.link.sequence, l.link.sequence),
        _ => (0, 0),
    };
    let mut reaches_checkpoint = false;
    if let Some(cp) = checkpoint {
        if let Some(row) = rows.iter().find(|r| r.link.sequence == cp.sequence) {
            if row.link.hash != cp.hash {
                return Err(Finding::NotSigned {
                    id: row.id.clone(),
                    sequence: row.link.sequence,
                });
            }
            reaches_checkpoint = true;
        } else if contiguous.is_some() && last < cp.sequence {
            return Err(Finding::MissingBeforeCheckpoint {
                last,
                checkpoint: cp.sequence,
            });
        }
    }
    Ok(ChainSummary {
        rows: rows.len(),
        first,
        last,
        expired,
        reaches_checkpoint,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::fixtures::synthetic_activity;
    use serde_json::json;

    fn jcs(v: Value) -> String {
        String::from_utf8(serde_json_canonicalizer::to_vec(&v).unwrap()).unwrap()
    }

    /// RFC 8785 §3.2.2 (sorting, with non-ASCII keys by UTF-16 code units), §3.2.2.3 (numbers)
    /// and §3.2.2.2 (strings), and the example of its appendix.
    #[test]
    fn jcs_follows_rfc_8785() {
        let numbers: Value = serde_json::from_str(
            r#"[333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001, -0, 1e21, 1e-7, 100]"#,
        )
        .unwrap();
        assert_eq!(
            jcs(numbers),
            "[333333333.3333333,1e+30,4.5,0.002,1e-27,0,1e+21,1e-7,100]"
        );
        let sorting: Value = serde_json::from_str(
            "{\"\\u20ac\":\"Euro Sign\",\"\\r\":\"Carriage Return\",\"\\ufb33\":\"Hebrew Letter Dalet With Dagesh\",\"1\":\"One\",\"\\ud83d\\ude00\":\"Emoji: Grinning Face\",\"\\u0080\":\"Control\",\"\\u00f6\":\"Latin Small Letter O With Diaeresis\"}",
        )
        .unwrap();
        let sorted: Vec<String> = match serde_json::from_str::<Value>(&jcs(sorting)).unwrap() {
            Value::Object(m) => m.values().map(|v| v.as_str().unwrap().to_owned()).collect(),
            _ => unreachable!(),
        };
        assert_eq!(
            sorted,
            [
                "Carriage Return",
                "One",
                "Control",
                "Latin Small Letter O With Diaeresis",
                "Euro Sign",
                "Emoji: Grinning Face",
                "Hebrew Letter Dalet With Dagesh"
            ]
        );
        let strings: Value =
            serde_json::from_str(r#"{"string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/"}"#)
                .unwrap();
        assert_eq!(
            jcs(strings),
            "{\"string\":\"€$\\u000f\\nA'B\\\"\\\\\\\\\\\"/\"}"
        );
        let example: Value = serde_json::from_str(
            r#"{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
                "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
                "literals": [null, true, false]}"#,
        )
        .unwrap();
        assert_eq!(
            jcs(example),
            "{\"literals\":[null,true,false],\"numbers\":[333333333.3333333,1e+30,4.5,0.002,1e-27],\"string\":\"€$\\u000f\\nA'B\\\"\\\\\\\\\\\"/\"}"
        );
    }

    fn partner() -> PartnerId {
        PartnerId::parse("p1").unwrap()
    }

    fn activity(n: u64) -> Activity {
        let mut a = synthetic_activity(
            n,
            "客戶 #1",
            time::parse_timestamp("2026-11-25T01:02:03.004Z").unwrap(),
        );
        a.recorded_at = time::parse_timestamp("2026-11-25T01:02:04Z").unwrap();
        a.recorded_by = Some("writer-1".into());
        a
    }

    #[test]
    fn the_record_is_exactly_the_documented_members_in_jcs() {
        let mut a = activity(1);
        a.details = Details::Inline(r#"{"z":1,"a":{"名稱":"台積電","n":1.50}}"#.into());
        let record = Record::of(&partner(), &a, None).unwrap();
        let text = String::from_utf8(record.canonical(7).unwrap()).unwrap();
        assert_eq!(
            text,
            format!(
                r#"{{"action":"{}","customerId":"客戶 #1","customerName":"{}","details":{{"a":{{"n":1.5,"名稱":"台積電"}},"z":1}},"id":"{}","occurredAt":"2026-11-25T01:02:03.004Z","partnerId":"p1","partnerUser":"{}","recordedAt":"2026-11-25T01:02:04.000Z","recordedBy":"writer-1","resourceType":"{}","sequence":7,"status":"{}"}}"#,
                a.action,
                a.customer_name,
                a.id,
                a.partner_user,
                a.resource_type.as_deref().unwrap(),
                a.status.as_str()
            )
        );
        // Without optional members they are left out; a writer unknown is null.
        a.details = Details::None;
        a.resource_type = None;
        a.recorded_by = None;
        let text = String::from_utf8(
            Record::of(&partner(), &a, None)
                .unwrap()
                .canonical(1)
                .unwrap(),
        )
        .unwrap();
        assert!(!text.contains("details") && !text.contains("resourceType"));
        assert!(text.contains(r#""recordedBy":null"#));
    }

    #[test]
    fn hashes_chain_from_sixty_four_zeros() {
        let record = Record::of(&partner(), &activity(1), None).unwrap();
        let mut head = Head::genesis();
        let first = head.append(&record).unwrap();
        assert_eq!(first.sequence, 1);
        assert_eq!(first.previous_hash, GENESIS_HASH);
        let mut expected = Sha256::new();
        expected.update([0u8; 32]);
        expected.update(record.canonical(1).unwrap());
        assert_eq!(first.hash, hex::encode(expected.finalize()));
        let second = head.append(&record).unwrap();
        assert_eq!((second.sequence, &second.previous_hash), (2, &first.hash));
        assert_ne!(
            second.hash, first.hash,
            "the sequence is part of the record"
        );
        assert_eq!(
            head,
            Head {
                sequence: 2,
                hash: second.hash
            }
        );
        assert_eq!(record.hash("ABC", 1), Err(ChainError::BadHash));
        assert_eq!(record.hash(&"AB".repeat(32), 1), Err(ChainError::BadHash));
        assert!(record.hash(&"ab".repeat(32), 1).is_ok());
    }

    #[test]
    fn the_signed_message_is_jcs_of_the_five_members() {
        let m = checkpoint_message("p1", "c1", 42, "ab", "2026-11-28T10:00:00.000Z").unwrap();
        assert_eq!(
            String::from_utf8(m).unwrap(),
            r#"{"customerId":"c1","hash":"ab","issuedAt":"2026-11-28T10:00:00.000Z","partnerId":"p1","sequence":42}"#
        );
    }

    /// The rows of a chain of `n`, as the API shows them.
    fn chain(n: u64) -> Vec<ChainRow> {
        let mut head = Head::genesis();
        (1..=n)
            .map(|i| {
                let a = activity(i);
                let link = head
                    .append(&Record::of(&partner(), &a, None).unwrap())
                    .unwrap();
                row_of(&a, &link)
            })
            .collect()
    }

    fn row_of(a: &Activity, link: &Link) -> ChainRow {
        let mut v = json!({
            "id": a.id.as_str(), "customerId": a.customer_id.as_str(), "customerName": a.customer_name,
            "action": a.action, "partnerUser": a.partner_user, "occurredAt": time::format(a.occurred_at),
            "recordedAt": time::format(a.recorded_at), "recordedBy": a.recorded_by, "status": a.status.as_str(),
            "resourceType": a.resource_type, "detailsIncluded": true,
            "details": match &a.details { Details::Inline(d) => serde_json::from_str::<Value>(d).unwrap(), _ => Value::Null },
            "sequence": link.sequence, "hash": link.hash, "previousHash": link.previous_hash,
        });
        ChainRow::from_row("p1", v.as_object_mut().unwrap()).unwrap()
    }

    fn set(row: &mut ChainRow, name: &str, value: Value) {
        row.record.0.insert(name.into(), value);
    }

    #[test]
    fn an_intact_chain_passes_in_any_order() {
        let mut rows = chain(5);
        rows.reverse();
        let head = SignedHead {
            sequence: 5,
            hash: rows[0].link.hash.clone(),
        };
        let s = verify(&mut rows, Some(&head), Some(expiry())).unwrap();
        assert_eq!(
            (s.rows, s.first, s.last, s.expired, s.reaches_checkpoint),
            (5, 1, 5, 0, true)
        );
    }

    fn expiry() -> Expiry {
        Expiry {
            now: time::parse_timestamp("2026-11-28T00:00:00Z").unwrap(),
            retention: TimeDelta::days(365),
        }
    }

    #[test]
    fn a_changed_field_names_the_activity() {
        let mut rows = chain(5);
        set(&mut rows[2], "action", json!("deleted everything"));
        let found = verify(&mut rows, None, Some(expiry())).unwrap_err();
        assert_eq!(
            found,
            Finding::Altered {
                id: rows[2].id.clone(),
                sequence: 3
            }
        );
        assert!(found.to_string().contains("altered"), "{found}");
    }

    #[test]
    fn a_changed_field_with_its_hash_recomputed_breaks_the_next_link() {
        let mut rows = chain(5);
        set(&mut rows[2], "action", json!("deleted everything"));
        rows[2].link.hash = rows[2].record.hash(&rows[2].link.previous_hash, 3).unwrap();
        let found = verify(&mut rows, None, Some(expiry())).unwrap_err();
        assert!(
            matches!(found, Finding::Rehashed { sequence: 3, .. }),
            "{found}"
        );
    }

    #[test]
    fn a_removed_activity_is_a_named_gap_unless_expired() {
        let mut rows = chain(5);
        rows.remove(2);
        let found = verify(&mut rows.clone(), None, Some(expiry())).unwrap_err();
        assert_eq!(
            found,
            Finding::Missing {
                id: rows[2].id.clone(),
                sequence: 4,
                after: 2
            }
        );
        assert!(
            found.to_string().contains("sequence 3 is missing"),
            "{found}"
        );
        // An export may leave sequences out.
        assert!(verify(&mut rows.clone(), None, None).is_ok());
        // Long after, the gap held only expired activities.
        let later = Expiry {
            now: expiry().now + TimeDelta::days(400),
            ..expiry()
        };
        assert_eq!(verify(&mut rows, None, Some(later)).unwrap().expired, 1);
    }

    #[test]
    fn swapped_sequences_are_out_of_order() {
        let mut rows = chain(5);
        let (a, b) = (rows[1].link.sequence, rows[3].link.sequence);
        rows[1].link.sequence = b;
        rows[3].link.sequence = a;
        let found = verify(&mut rows, None, Some(expiry())).unwrap_err();
        assert!(
            matches!(
                found,
                Finding::OutOfOrder {
                    sequence: 2,
                    follows_sequence: 3,
                    ..
                }
            ),
            "{found}"
        );
    }

    #[test]
    fn a_chain_may_start_later_but_must_reach_the_checkpoint() {
        let mut rows = chain(6);
        let head = SignedHead {
            sequence: 6,
            hash: rows[5].link.hash.clone(),
        };
        let mut tail = rows.split_off(2);
        let s = verify(&mut tail.clone(), Some(&head), Some(expiry())).unwrap();
        assert_eq!((s.first, s.last), (3, 6));
        tail.pop();
        assert_eq!(
            verify(&mut tail, Some(&head), Some(expiry())).unwrap_err(),
            Finding::MissingBeforeCheckpoint {
                last: 5,
                checkpoint: 6
            }
        );
        let other = SignedHead {
            sequence: 2,
            hash: GENESIS_HASH.into(),
        };
        assert!(matches!(
            verify(&mut rows, Some(&other), None),
            Err(Finding::NotSigned { sequence: 2, .. })
        ));
    }

    #[test]
    fn a_row_without_its_place_is_refused() {
        let row = json!({"id": "a", "customerId": "c"});
        assert!(ChainRow::from_row("p1", row.as_object().unwrap()).is_err());
    }
}
