//! Checkpoints the auditor already holds (`--checkpoint FILE`, repeatable): each one the
//! service signed earlier, saved as `GET /customers/{id}/checkpoint` answered it (or with
//! `--save-checkpoint`). The chain checked now must extend every one of them
//! ([`check_held`](activity_log::domain::integrity::check_held)).

use std::path::{Path, PathBuf};

use activity_log::domain::integrity::{Checkpoint, HeldHead, HeldSummary};

use crate::{Error, Key};

/// A held checkpoint and the file it came from.
#[derive(Debug, Clone)]
pub struct HeldFile {
    pub path: PathBuf,
    pub checkpoint: Checkpoint,
}

/// Reads each file as a checkpoint (a file that cannot be read or is not one is a usage error).
pub fn read(paths: &[PathBuf]) -> Result<Vec<HeldFile>, Error> {
    paths
        .iter()
        .map(|path| {
            let bytes = std::fs::read(path).map_err(|e| crate::read_error(path, &e))?;
            let checkpoint = serde_json::from_slice(&bytes).map_err(|e| {
                Error::Usage(format!(
                    "{}: not a checkpoint as GET /customers/{{id}}/checkpoint answers it: {e}",
                    path.display()
                ))
            })?;
            Ok(HeldFile {
                path: path.clone(),
                checkpoint,
            })
        })
        .collect()
}

/// The heads of the held checkpoints of `customer` of `partner`, each signature checked with
/// `key`. `only_this_customer`: a checkpoint of another customer is a usage error (the API
/// mode checks one customer); otherwise it is left for its own customer (an export's).
pub fn heads(
    held: &[HeldFile],
    partner: &str,
    customer: &str,
    key: &Key,
    only_this_customer: bool,
) -> Result<Vec<HeldHead>, Error> {
    let mut heads = Vec::new();
    for HeldFile { path, checkpoint } in held {
        let of = (
            checkpoint.partner_id.as_str(),
            checkpoint.customer_id.as_str(),
        );
        if of != (partner, customer) {
            if only_this_customer || of.0 != partner {
                return Err(Error::Usage(format!(
                    "{}: a checkpoint of partner {}, customer {}; this check is of partner {partner}, customer {customer}",
                    path.display(),
                    of.0,
                    of.1
                )));
            }
            continue;
        }
        if !checkpoint.verify(key) {
            return Err(Error::Failed(format!(
                "{customer}: the held checkpoint {} is not signed by this key: it was altered, or another key signed it",
                path.display()
            )));
        }
        heads.push(
            checkpoint
                .held()
                .map_err(|e| Error::Usage(format!("{}: {e}", path.display())))?,
        );
    }
    Ok(heads)
}

/// `2 held checkpoints extended, 1 expired` (`None` when none were held).
pub fn line(held: usize, summary: &HeldSummary) -> Option<String> {
    if held == 0 {
        return None;
    }
    let mut parts = vec![format!(
        "{} the signed chain extends",
        checkpoints(summary.extended)
    )];
    if summary.expired > 0 {
        parts.push(format!(
            "{} whose activity has expired",
            checkpoints(summary.expired)
        ));
    }
    if summary.not_covered > 0 {
        parts.push(format!(
            "{} these rows do not reach: not checked",
            checkpoints(summary.not_covered)
        ));
    }
    Some(format!("held: {}", parts.join("; ")))
}

fn checkpoints(n: usize) -> String {
    if n == 1 {
        "1 checkpoint".to_owned()
    } else {
        format!("{n} checkpoints")
    }
}

/// Writes `checkpoint` to `path` as the API answered it, for the next check to hold.
pub fn save(path: &Path, checkpoint: &Checkpoint) -> Result<(), Error> {
    let json = serde_json::to_vec_pretty(checkpoint)
        .map_err(|e| Error::Usage(format!("{}: {e}", path.display())))?;
    std::fs::write(path, json).map_err(|e| crate::read_error(path, &e))
}
