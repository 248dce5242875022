//! Checking a customer's rows: every hash, every link between consecutive sequences, and the
//! signed head. One check, [`verify_linked`], over anything [`Linked`]: the rows the API and
//! JSON Lines exports show ([`ChainRow`]) and the verifier's compact rows.

use std::collections::HashMap;
use std::fmt;

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;
use serde_json::{Map, Value};

use super::link::{GENESIS_HASH, Link};
use super::{ChainError, Record};
use crate::domain::time;

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
        let record = Record::from_row(partner, row)?;
        Ok(Self {
            id: text("id")?,
            link: Link {
                sequence,
                hash: text("hash")?,
                previous_hash: text("previousHash")?,
                // As shown, if it reads as a time: what the hash covers is the record's.
                previous_recorded_at: record
                    .previous_recorded_at
                    .as_str()
                    .and_then(|t| time::parse_timestamp(t).ok()),
            },
            record,
        })
    }
}

/// What the chain check needs of a row.
pub trait Linked {
    type Hash: Eq + std::hash::Hash;
    fn sequence(&self) -> u64;
    fn hash(&self) -> &Self::Hash;
    fn previous(&self) -> &Self::Hash;
    /// Whether `previous` is the genesis hash.
    fn follows_genesis(&self) -> bool;
    /// Whether the row's hash is `hex` (a signed head's).
    fn has_hash(&self, hex: &str) -> bool;
    /// Whether the row's content is what its hash was computed over.
    fn intact(&self) -> bool;
    /// When it was recorded, if known.
    fn recorded_at(&self) -> Option<DateTime<Utc>>;
    /// When the activity before it was recorded (for expiry), if known.
    fn previous_recorded_at(&self) -> Option<DateTime<Utc>>;
    /// Its id, to name it in a finding.
    fn id(&self) -> &str;
}

impl Linked for ChainRow {
    type Hash = String;
    fn sequence(&self) -> u64 {
        self.link.sequence
    }
    fn hash(&self) -> &String {
        &self.link.hash
    }
    fn previous(&self) -> &String {
        &self.link.previous_hash
    }
    fn follows_genesis(&self) -> bool {
        self.link.previous_hash == GENESIS_HASH
    }
    fn has_hash(&self, hex: &str) -> bool {
        self.link.hash == hex
    }
    fn intact(&self) -> bool {
        self.record
            .hash(&self.link.previous_hash, self.link.sequence)
            .is_ok_and(|h| h == self.link.hash)
    }
    fn recorded_at(&self) -> Option<DateTime<Utc>> {
        self.record
            .recorded_at
            .as_str()
            .and_then(|t| time::parse_timestamp(t).ok())
    }
    fn previous_recorded_at(&self) -> Option<DateTime<Utc>> {
        self.link.previous_recorded_at
    }
    fn id(&self) -> &str {
        &self.id
    }
}

/// The first thing wrong with a customer's chain. Its JSON form (`kind` and camelCase members)
/// is the one `shared/spec/chain-vectors.json` and the page use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(
    tag = "kind",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
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
    /// The chain's first activities, up to `sequence`, are missing, and the last of them was
    /// recorded (at `previous_recorded_at`) less than the signed retention ago: deleted, not
    /// expired.
    MissingAtStart {
        id: String,
        sequence: u64,
        previous_recorded_at: String,
    },
    /// The activity was recorded before the one it follows: recording times never go back
    /// along a chain.
    TimeWentBack { id: String, sequence: u64 },
    /// The activity shows no place in the chain (no sequence, hash or previous hash): every
    /// activity is chained when it is recorded, so its chain members were stripped.
    Unchained { id: String },
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
    /// A signed checkpoint is at a lower sequence than a held one issued before it: activities
    /// the service had signed for were taken away.
    RolledBack {
        sequence: u64,
        issued_at: String,
        held_sequence: u64,
        held_issued_at: String,
    },
    /// The activity at a held checkpoint's sequence is not the one it signed.
    HeldRewritten {
        id: String,
        sequence: u64,
        held_issued_at: String,
    },
    /// The activity at a held checkpoint's sequence is gone, and not old enough to have expired.
    HeldMissing {
        sequence: u64,
        held_issued_at: String,
    },
}

impl Finding {
    /// The activity named (id, sequence), if the finding is about one.
    pub fn activity(&self) -> Option<(&str, u64)> {
        match self {
            Self::Altered { id, sequence }
            | Self::Rehashed { id, sequence, .. }
            | Self::Missing { id, sequence, .. }
            | Self::MissingAtStart { id, sequence, .. }
            | Self::TimeWentBack { id, sequence }
            | Self::OutOfOrder { id, sequence, .. }
            | Self::Duplicate { id, sequence, .. }
            | Self::NotSigned { id, sequence }
            | Self::HeldRewritten { id, sequence, .. } => Some((id, *sequence)),
            Self::MissingBeforeCheckpoint { .. }
            | Self::Unchained { .. }
            | Self::RolledBack { .. }
            | Self::HeldMissing { .. } => None,
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
            Self::MissingAtStart {
                id,
                sequence,
                previous_recorded_at,
            } => {
                let to = sequence - 1;
                let which = if to == 1 {
                    "sequence 1 is".to_owned()
                } else {
                    format!("sequences 1 to {to} are")
                };
                write!(
                    f,
                    "{which} missing (before activity {id}, sequence {sequence}): the last of them was recorded at {previous_recorded_at}, less than the signed retention ago, so it cannot have expired"
                )
            }
            Self::Unchained { id } => write!(
                f,
                "activity {id} was altered: its sequence, hash and previousHash were removed (every activity is chained when it is recorded)"
            ),
            Self::TimeWentBack { id, sequence } => write!(
                f,
                "activity {id} (sequence {sequence}) was altered: its recording times do not follow the activity before it (they never go back along a chain)"
            ),
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
            Self::RolledBack {
                sequence,
                issued_at,
                held_sequence,
                held_issued_at,
            } => write!(
                f,
                "history changed since {held_issued_at}: the checkpoint signed at {issued_at} is at sequence {sequence}, behind the held checkpoint's sequence {held_sequence}"
            ),
            Self::HeldRewritten {
                id,
                sequence,
                held_issued_at,
            } => write!(
                f,
                "history changed since {held_issued_at}: activity {id} (sequence {sequence}) is not the one the held checkpoint signed"
            ),
            Self::HeldMissing {
                sequence,
                held_issued_at,
            } => write!(
                f,
                "history changed since {held_issued_at}: sequence {sequence}, which the held checkpoint signed, is missing"
            ),
        }
    }
}

/// What may excuse a gap: activities expire `retention` after they were recorded (the retention
/// a signed checkpoint carries), so a gap after which an activity shows the one before it
/// recorded more than `retention` before `now` held only expired ones (recording times never go
/// back along a chain).
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChainSummary {
    /// Rows checked (those up to the signed head).
    pub rows: usize,
    pub first: u64,
    pub last: u64,
    /// Gaps excused by expiry (sequences missing).
    pub expired: u64,
    /// Whether the rows reach the signed checkpoint (its row is among them).
    pub reaches_checkpoint: bool,
    /// Rows after the signed head: recorded after it was signed, so nothing vouches for them.
    /// They are set aside, not checked (the same in every tool).
    pub past_checkpoint: u64,
}

/// [`verify_linked`] on the rows the API and JSON Lines exports show.
pub fn verify(
    rows: &mut [ChainRow],
    checkpoint: Option<&SignedHead>,
    contiguous: Option<Expiry>,
) -> Result<ChainSummary, Finding> {
    verify_linked(rows, checkpoint, contiguous)
}

/// Checks one customer's rows, in any order: every hash, every link between consecutive
/// sequences, and the signed head. Rows after the signed head are set aside (sorted last and
/// counted). `contiguous` says the rows should be the whole retained chain (the
/// API), so any gap is a finding unless expiry excuses it; an export's rows may leave
/// sequences out (its period and filters), and then only consecutive ones are linked.
pub fn verify_linked<R: Linked>(
    rows: &mut [R],
    checkpoint: Option<&SignedHead>,
    contiguous: Option<Expiry>,
) -> Result<ChainSummary, Finding> {
    rows.sort_by_key(Linked::sequence);
    let keep = checkpoint.map_or(rows.len(), |cp| {
        rows.partition_point(|r| r.sequence() <= cp.sequence)
    });
    let past_checkpoint = (rows.len() - keep) as u64;
    let rows = &rows[..keep];
    let by_hash: HashMap<&R::Hash, usize> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| (r.hash(), i))
        .collect();
    let mut expired = 0;
    for (i, row) in rows.iter().enumerate() {
        let prev = i.checked_sub(1).map(|p| &rows[p]);
        expired += link(prev, row, |h| by_hash.get(h).map(|&j| &rows[j]), contiguous)?;
        if !row.intact() {
            return Err(Finding::Altered {
                id: row.id().to_owned(),
                sequence: row.sequence(),
            });
        }
    }
    let reaches_checkpoint = match checkpoint {
        Some(cp) => reaches(rows, cp, contiguous.is_some())?,
        None => false,
    };
    Ok(ChainSummary {
        rows: rows.len(),
        first: rows.first().map_or(0, Linked::sequence),
        last: rows.last().map_or(0, Linked::sequence),
        expired,
        reaches_checkpoint,
        past_checkpoint,
    })
}

/// The link of `row` to `prev`, the row before it in sequence order (`None`: it is the first),
/// given the row whose hash is a given one (`by_hash`): a duplicate sequence, a link to a later
/// row, a gap (a finding in a contiguous chain unless expiry excuses it: then the sequences it
/// excuses) or a broken link; sequence 1 chained to the genesis hash.
fn link<'a, R: Linked + 'a>(
    prev: Option<&R>,
    row: &R,
    by_hash: impl Fn(&R::Hash) -> Option<&'a R>,
    contiguous: Option<Expiry>,
) -> Result<u64, Finding> {
    let seq = row.sequence();
    let went_back = || Finding::TimeWentBack {
        id: row.id().to_owned(),
        sequence: seq,
    };
    if let (Some(before), Some(at)) = (row.previous_recorded_at(), row.recorded_at())
        && at < before
    {
        return Err(went_back());
    }
    let expired = |expiry: Expiry| {
        row.previous_recorded_at()
            .is_some_and(|t| t + expiry.retention <= expiry.now)
    };
    let Some(prev) = prev else {
        if seq == 1 && !row.follows_genesis() {
            return Err(Finding::Altered {
                id: row.id().to_owned(),
                sequence: seq,
            });
        }
        return match contiguous {
            // The whole retained chain: whatever is missing at its start expired.
            Some(expiry) if seq > 1 && !expired(expiry) => Err(Finding::MissingAtStart {
                id: row.id().to_owned(),
                sequence: seq,
                previous_recorded_at: row
                    .previous_recorded_at()
                    .map_or_else(|| "an unknown time".to_owned(), time::format),
            }),
            // Said by the summary's `first`; `expired` counts gaps inside.
            _ => Ok(0),
        };
    };
    if prev.sequence() == seq {
        return Err(Finding::Duplicate {
            id: row.id().to_owned(),
            sequence: seq,
            other_id: prev.id().to_owned(),
        });
    }
    if let Some(follows) = by_hash(row.previous()).filter(|f| f.sequence() >= seq) {
        return Err(Finding::OutOfOrder {
            id: row.id().to_owned(),
            sequence: seq,
            follows_id: follows.id().to_owned(),
            follows_sequence: follows.sequence(),
        });
    }
    if prev.sequence() + 1 == seq {
        if row.previous() != prev.hash() {
            return Err(Finding::Rehashed {
                id: prev.id().to_owned(),
                sequence: prev.sequence(),
                next_id: row.id().to_owned(),
            });
        }
        if row.previous_recorded_at().is_some() && row.previous_recorded_at() != prev.recorded_at()
        {
            return Err(went_back());
        }
        return Ok(0);
    }
    let Some(expiry) = contiguous else {
        // Sequences left out (an export's period and filters) leave nothing to link.
        return Ok(0);
    };
    if expired(expiry) {
        Ok(seq - prev.sequence() - 1)
    } else {
        Err(Finding::Missing {
            id: row.id().to_owned(),
            sequence: seq,
            after: prev.sequence(),
        })
    }
}

/// Whether the rows (sorted, none after the signed head) reach the signed head: its row must
/// have the signed hash; a contiguous chain must reach it.
fn reaches<R: Linked>(rows: &[R], cp: &SignedHead, contiguous: bool) -> Result<bool, Finding> {
    match rows.last() {
        Some(row) if row.sequence() == cp.sequence => {
            if row.has_hash(&cp.hash) {
                Ok(true)
            } else {
                Err(Finding::NotSigned {
                    id: row.id().to_owned(),
                    sequence: row.sequence(),
                })
            }
        }
        last => {
            let last = last.map_or(0, Linked::sequence);
            if contiguous && last < cp.sequence {
                Err(Finding::MissingBeforeCheckpoint {
                    last,
                    checkpoint: cp.sequence,
                })
            } else {
                Ok(false)
            }
        }
    }
}
