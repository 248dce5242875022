//! Signed fixtures for the verifier's tests: a signing key, chains of activities hashed the way
//! the service hashes them ([`Activity::record`]) and shown the way the API and JSON Lines exports show
//! them, signed checkpoints and signed export manifests. Nothing here is used by the checks.

use crate::domain::chain::Head;
use crate::domain::integrity::{
    Checkpoint, MANIFEST_VERSION, Manifest, ManifestCustomer, ManifestExport, ManifestFile,
    ManifestHead, PublicKey,
};
use crate::domain::{Activity, ActivityId, CustomerId, Details, PartnerId, Status};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::{DateTime, TimeDelta, Utc};
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::{EncodePublicKey as _, LineEnding};
use serde_json::{Map, Value, json};

use sha2::{Digest, Sha256};

use crate::http::response::{ActivityView, Links};

/// The retention test checkpoints carry unless told otherwise: the service's default.
const RETENTION_DAYS: u32 = crate::config::DEFAULT_RETENTION_DAYS;

/// A P-256 key that signs as the service's KMS key does (DER, standard base64).
#[derive(Debug, Clone)]
pub struct Signer {
    key: SigningKey,
    pub key_id: String,
}

impl Signer {
    /// The key whose secret scalar is `secret` (big-endian; not zero, below the group order).
    pub fn new(secret: [u8; 32], key_id: &str) -> Result<Self, String> {
        let key = SigningKey::from_slice(&secret).map_err(|e| e.to_string())?;
        Ok(Self {
            key,
            key_id: key_id.to_owned(),
        })
    }

    /// Standard base64 of the DER ECDSA P-256 / SHA-256 signature of `message`.
    pub fn sign(&self, message: &[u8]) -> String {
        let signature: Signature = self.key.sign(message);
        STANDARD.encode(signature.to_der().as_bytes())
    }

    /// SubjectPublicKeyInfo, PEM.
    pub fn public_key_pem(&self) -> Result<String, String> {
        self.key
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .map_err(|e| e.to_string())
    }

    /// What `GET /integrity/public-key` answers.
    pub fn public_key(&self) -> Result<PublicKey, String> {
        let point = self.key.verifying_key().to_encoded_point(false);
        let (Some(x), Some(y)) = (point.x(), point.y()) else {
            return Err("the key has no coordinates".into());
        };
        Ok(PublicKey {
            key_id: self.key_id.clone(),
            pem: self.public_key_pem()?,
            jwk: json!({
                "kty": "EC", "crv": "P-256",
                "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y),
            }),
        })
    }

    /// A checkpoint of `head`, signed, with the service's default retention.
    pub fn checkpoint(
        &self,
        partner: &str,
        customer: &str,
        head: &Head,
        issued_at: &str,
    ) -> Result<Checkpoint, String> {
        self.checkpoint_retained(partner, customer, head, issued_at, RETENTION_DAYS)
    }

    /// [`Self::checkpoint`] with a retention of `retention_days`.
    pub fn checkpoint_retained(
        &self,
        partner: &str,
        customer: &str,
        head: &Head,
        issued_at: &str,
        retention_days: u32,
    ) -> Result<Checkpoint, String> {
        let mut cp = Checkpoint {
            partner_id: partner.to_owned(),
            customer_id: customer.to_owned(),
            sequence: head.sequence,
            hash: head.hash.clone(),
            issued_at: issued_at.to_owned(),
            retention_days,
            key_id: self.key_id.clone(),
            signature: String::new(),
        };
        cp.signature = self.sign(&cp.message().map_err(|e| e.to_string())?);
        Ok(cp)
    }

    /// Signs `seal` (again), after it was built or changed.
    pub fn sign_seal(&self, seal: &mut crate::domain::integrity::Seal) -> Result<(), String> {
        seal.key_id = self.key_id.clone();
        seal.signature = self.sign(&seal.message().map_err(|e| e.to_string())?);
        Ok(())
    }

    /// Signs `manifest` (again), after it was built or changed.
    pub fn sign_manifest(&self, manifest: &mut Manifest) -> Result<(), String> {
        manifest.key_id = self.key_id.clone();
        manifest.signature = self.sign(&manifest.message().map_err(|e| e.to_string())?);
        Ok(())
    }
}

/// Activity `n` of `customer`, recorded at `recorded_at`: varied labels (some in Chinese),
/// details with a nested object and numbers, every third without a resource type.
pub fn activity(customer: &str, n: u64, recorded_at: DateTime<Utc>) -> Result<Activity, String> {
    let id = format!("act-{n:06}");
    Ok(Activity {
        feed_position: None,
        id: ActivityId::parse(&id).map_err(|e| format!("{id}: {e}"))?,
        customer_id: CustomerId::parse(customer).map_err(|e| format!("{customer}: {e}"))?,
        customer_name: if n.is_multiple_of(2) {
            "台北雲端科技股份有限公司".into()
        } else {
            "Contoso, Ltd.".into()
        },
        action: format!("placed order ORD-{n}"),
        partner_user: "chen.wei@partner.example".into(),
        occurred_at: recorded_at - TimeDelta::seconds(30),
        recorded_at,
        resource_type: (!n.is_multiple_of(3)).then(|| "order".into()),
        status: if n.is_multiple_of(5) {
            Status::Failed
        } else {
            Status::Succeeded
        },
        details: Details::Inline(format!(
            r#"{{"sku":"CFQ7TTC0LH18","orderId":"ORD-{n}","seats":{},"price":{{"amount":12.50,"currency":"TWD"}},"名稱":"訂閱"}}"#,
            n % 50
        )),
        content_hash: format!("synthetic-{n}"),
        expires_at: (recorded_at + TimeDelta::days(365)).timestamp(),
        recorded_by: Some("synthetic-writer".into()),
        chain: None,
    })
}

/// The row of `a` as the API and JSON Lines exports show it, appended to the chain at `head`
/// (`None`: without its chain members, as a row stripped of them in storage shows).
pub fn row(
    partner: &str,
    a: &Activity,
    head: Option<&mut Head>,
) -> Result<Map<String, Value>, String> {
    let p = PartnerId::parse(partner).map_err(|e| format!("{partner}: {e}"))?;
    let (link, recorded_at) = match head {
        Some(head) => (
            Some(
                head.append(&mut a.record(&p, None).map_err(|e| e.to_string())?)
                    .map_err(|e| e.to_string())?,
            ),
            head.recorded_at.unwrap_or(a.recorded_at),
        ),
        None => (None, a.recorded_at),
    };
    // Shown as the API shows it.
    let shown = Activity {
        chain: link,
        recorded_at,
        ..a.clone()
    };
    let links = Links::new("https://portal.example/customers/{customerId}/subscriptions");
    match serde_json::to_value(ActivityView::new(&shown, None, &links)) {
        Ok(Value::Object(m)) => Ok(m),
        other => Err(format!("a row is an object: {other:?}")),
    }
}

/// A chain of `n` activities of `customer`, sequences 1 to `n`, recorded a second apart from
/// `first_recorded_at` on: the rows (oldest first) and the head after them.
pub fn chain(
    partner: &str,
    customer: &str,
    n: u64,
    first_recorded_at: DateTime<Utc>,
) -> Result<(Vec<Map<String, Value>>, Head), String> {
    let mut head = Head::genesis();
    let mut rows = Vec::with_capacity(usize::try_from(n).unwrap_or(0));
    for i in 1..=n {
        let at = first_recorded_at + TimeDelta::seconds(i64::try_from(i).unwrap_or(i64::MAX));
        rows.push(row(partner, &activity(customer, i, at)?, Some(&mut head))?);
    }
    Ok((rows, head))
}

/// One row a line, each line ending with a newline: a JSON Lines export.
pub fn jsonl(rows: &[Map<String, Value>]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    for r in rows {
        serde_json::to_writer(&mut out, r).map_err(|e| e.to_string())?;
        out.push(b'\n');
    }
    Ok(out)
}

/// The signed manifest of `file` (a JSON Lines export of `rows`, of every customer over the
/// whole of time), with a customer for each checkpoint (its head the checkpoint's, nothing
/// anchored, nothing left out), in their order.
pub fn manifest(
    signer: &Signer,
    partner: &str,
    file: &[u8],
    rows: &[Map<String, Value>],
    checkpoints: &[Checkpoint],
    created_at: &str,
) -> Result<Manifest, String> {
    let sequence = |r: &Map<String, Value>| r.get("sequence").and_then(Value::as_u64);
    let customers = checkpoints
        .iter()
        .map(|cp| {
            let seqs: Vec<u64> = rows
                .iter()
                .filter(|r| r.get("customerId").and_then(Value::as_str) == Some(&cp.customer_id))
                .filter_map(sequence)
                .collect();
            ManifestCustomer {
                customer_id: cp.customer_id.clone(),
                rows: seqs.len() as u64,
                first_sequence: seqs.iter().copied().min().unwrap_or(0),
                last_sequence: seqs.iter().copied().max().unwrap_or(0),
                left_out: Vec::new(),
                head: ManifestHead {
                    sequence: cp.sequence,
                    hash: cp.hash.clone(),
                },
                anchor: None,
            }
        })
        .collect();
    let mut manifest = Manifest {
        version: MANIFEST_VERSION,
        export_id: "exp-synthetic".into(),
        partner_id: partner.to_owned(),
        export: ManifestExport {
            customer_id: None,
            from: "2000-01-01T00:00:00.000Z".into(),
            to: "2100-01-01T00:00:00.000Z".into(),
            action: None,
            partner_user: None,
            resource_type: None,
            status: None,
            format: "jsonl".into(),
            time_zone: "UTC".into(),
            locale: "en".into(),
        },
        file: ManifestFile {
            name: "activity-log.jsonl".into(),
            sha256: hex::encode(Sha256::digest(file)),
            bytes: file.len() as u64,
            rows: rows.len() as u64,
        },
        files: Vec::new(),
        retention_days: checkpoints.first().map_or(365, |cp| cp.retention_days),
        customers,
        created_at: created_at.to_owned(),
        key_id: signer.key_id.clone(),
        signature: String::new(),
    };
    signer.sign_manifest(&mut manifest)?;
    Ok(manifest)
}
