//! What one run of an export leaves for the next is authenticated before the service signs a
//! manifest over it: the resume point (the upload's parts, the rows written, the last activity
//! read) is signed with the service's key, and names the SHA-256 of each object it holds (the
//! tail encoded after the last part, the manifest's state). Someone able to write the table and
//! the bucket, but not to sign, can then neither make a run skip rows (a later `after`, which
//! the manifest would otherwise list as left out) nor slip rows or a hash state into the file
//! the manifest vouches for. One signature per saved point: one per part, one per hand-over.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};

use crate::domain::integrity::Key;
use crate::domain::{ExportId, PartnerId, ResumePoint};
use crate::store::{Signer, StoreError};

/// What the signed message starts with: nothing else the key signs starts so.
const LABEL: &str = "activity-log export resume point v1";

/// Why a saved point is not gone on from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("the resume point is not signed by the service's key")]
    Signature,
    #[error("{0} is not the object the resume point names (its SHA-256 differs)")]
    Object(String),
}

/// SHA-256 of `bytes`, lower-case hex.
pub fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The signed message of `point` (its own `signature` left out) for export `id` of `partner`.
fn message(partner: &PartnerId, id: &ExportId, point: &ResumePoint) -> Option<Vec<u8>> {
    let unsigned = ResumePoint {
        signature: None,
        ..point.clone()
    };
    let mut m = format!("{LABEL}\n{partner}\n{id}\n").into_bytes();
    serde_json::to_writer(&mut m, &unsigned).ok()?;
    Some(m)
}

/// Signs `point` with the service's key.
pub async fn sign<S: Signer>(
    signer: &S,
    partner: &PartnerId,
    id: &ExportId,
    point: &mut ResumePoint,
) -> Result<(), StoreError> {
    let m = message(partner, id, point)
        .ok_or_else(|| StoreError::Other("a resume point that cannot be written".into()))?;
    point.signature = Some(STANDARD.encode(signer.sign(&m).await?.der));
    Ok(())
}

/// Whether `point` carries the service's signature of it as it stands.
pub fn check(
    key: &Key,
    partner: &PartnerId,
    id: &ExportId,
    point: &ResumePoint,
) -> Result<(), Refused> {
    let signed = point.signature.as_deref().is_some_and(|signature| {
        message(partner, id, point).is_some_and(|m| key.verifies(&m, signature))
    });
    if signed {
        Ok(())
    } else {
        Err(Refused::Signature)
    }
}

/// Whether `bytes`, read back from `key`, are what the point says (`expected`: its SHA-256).
pub fn check_object(key: &str, bytes: &[u8], expected: Option<&str>) -> Result<(), Refused> {
    if expected == Some(sha256(bytes).as_str()) {
        Ok(())
    } else {
        Err(Refused::Object(key.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::doubles::LocalSigner;

    fn point() -> ResumePoint {
        ResumePoint {
            upload_id: "u1".into(),
            etags: vec!["e1".into()],
            uploaded_bytes: 10,
            rows: 3,
            after: None,
            tail_key: Some("t".into()),
            tail_sha256: Some(sha256(b"tail")),
            manifest_state: None,
            manifest_state_sha256: None,
            files: Vec::new(),
            signature: None,
        }
    }

    #[tokio::test]
    async fn a_point_the_service_signed_is_taken_and_any_change_is_refused() {
        let signer = LocalSigner::new("resume", 9);
        let key = signer.public_key().await.unwrap().key().unwrap();
        let partner = PartnerId::parse("p1").unwrap();
        let id = ExportId::generate();
        let mut p = point();
        assert_eq!(
            check(&key, &partner, &id, &p),
            Err(Refused::Signature),
            "unsigned"
        );
        sign(&signer, &partner, &id, &mut p).await.unwrap();
        assert_eq!(check(&key, &partner, &id, &p), Ok(()));
        let mut skipped = p.clone();
        skipped.rows += 1;
        assert_eq!(
            check(&key, &partner, &id, &skipped),
            Err(Refused::Signature)
        );
        let other = ExportId::generate();
        assert_eq!(
            check(&key, &partner, &other, &p),
            Err(Refused::Signature),
            "another export's"
        );
        let stranger = LocalSigner::new("someone else", 10);
        let mut forged = point();
        sign(&stranger, &partner, &id, &mut forged).await.unwrap();
        assert_eq!(check(&key, &partner, &id, &forged), Err(Refused::Signature));
        assert_eq!(check_object("t", b"tail", p.tail_sha256.as_deref()), Ok(()));
        assert_eq!(
            check_object("t", b"tail with a row slipped in", p.tail_sha256.as_deref()),
            Err(Refused::Object("t".into()))
        );
    }
}
