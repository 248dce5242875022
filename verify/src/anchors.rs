//! The service's anchors, as an auditor with read access to the anchor bucket copies them
//! (`aws s3 sync s3://<AnchorBucketName> DIR`; `--anchors DIR`): every head the service signed
//! or sealed for the customer, each checked (a signed checkpoint's signature; a sealed head
//! against the signed seal that lists it) and then held like a checkpoint the auditor saved
//! ([`check_held`](activity_log::domain::integrity::check_held)). So the API mode checks the
//! chain against all of the customer's anchors, not only the latest one the service itself
//! checks before it signs.

use std::path::{Path, PathBuf};

use activity_log::domain::integrity::anchor::{self, Anchor};
use activity_log::domain::integrity::{HeldHead, Seal, seal};

use crate::{Error, Key};

/// The customer's anchored heads in `dir` (a copy of the anchor bucket), oldest first. A name
/// that is not an anchor, a signature that does not hold, or a sealed head whose seal the copy
/// lacks or that does not list it is a failure; a directory that cannot be read is a usage
/// error.
pub fn heads(
    dir: &Path,
    partner: &str,
    customer: &str,
    key_id: &str,
    key: &Key,
) -> Result<Vec<HeldHead>, Error> {
    let prefix = anchor::customer_prefix(partner, customer);
    let customer_dir = dir.join(&prefix);
    let names = match std::fs::read_dir(&customer_dir) {
        Ok(entries) => entries
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| crate::read_error(&customer_dir, &e))?,
        // Nothing anchored for the customer in this copy.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(crate::read_error(&customer_dir, &e)),
    };
    let failed = |m: String| Error::Failed(format!("{customer}: {m}"));
    let mut heads = Vec::new();
    for name in names {
        let Some(name) = name.to_str() else {
            return Err(failed(format!(
                "{} holds a name that is not text",
                customer_dir.display()
            )));
        };
        let object_key = format!("{prefix}{name}");
        let a = anchor::from_key(&object_key, partner, customer, key_id, key).map_err(failed)?;
        if a.checkpoint.is_none() {
            check_sealed(dir, &object_key, partner, customer, &a, key).map_err(failed)?;
        }
        heads.push(a.head);
    }
    heads.sort_by_key(|h| h.sequence);
    Ok(heads)
}

/// A head anchored by a seal: the seal its name gives is in the copy, signed by `key`, and lists
/// the head, sealed when the name says.
fn check_sealed(
    dir: &Path,
    object_key: &str,
    partner: &str,
    customer: &str,
    a: &Anchor,
    key: &Key,
) -> Result<(), String> {
    let number: u64 = object_key
        .rsplit_once(".!")
        .and_then(|(_, n)| n.parse().ok())
        .ok_or_else(|| format!("anchor {object_key}: no seal in its name"))?;
    let path: PathBuf = dir.join(seal::key(number));
    let bytes = std::fs::read(&path).map_err(|e| {
        format!(
            "anchor {object_key} was sealed by seal {number}, which the copy does not hold ({}: {e})",
            path.display()
        )
    })?;
    let s: Seal = serde_json::from_slice(&bytes)
        .map_err(|e| format!("seal {number} ({}): {e}", path.display()))?;
    if !s.verify(key) {
        return Err(format!(
            "seal {number} is not signed by this key: it was altered, or another key signed it"
        ));
    }
    let listed = s.heads.iter().any(|h| {
        (
            h.partner_id.as_str(),
            h.customer_id.as_str(),
            h.sequence,
            h.hash.as_str(),
        ) == (partner, customer, a.head.sequence, a.head.hash.as_str())
    });
    let sealed_at = activity_log::domain::time::parse_timestamp(&s.sealed_at).ok();
    if s.sequence != number || !listed || sealed_at != Some(a.head.issued_at) {
        return Err(format!(
            "anchor {object_key} is not a head seal {number} lists: it was added by someone else"
        ));
    }
    Ok(())
}
