//! The service's signing key: ECDSA P-256 with SHA-256, signatures as standard base64 of DER
//! (what AWS KMS `Sign` returns for `ECDSA_SHA_256` over a raw message).

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use p256::ecdsa::signature::Verifier as _;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::pkcs8::{DecodePublicKey as _, EncodePublicKey as _, LineEnding};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::domain::chain::ChainError;

/// The public half of the signing key as the API hands it out (`GET /integrity/public-key`).
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

    /// The key that checks signatures.
    pub fn key(&self) -> Result<Key, String> {
        Key::from_pem(&self.pem)
    }

    /// Whether `signature` is this key's over `message` (a key that cannot be read verifies
    /// nothing).
    pub fn verifies(&self, message: &[u8], signature: &str) -> bool {
        self.key().is_ok_and(|k| k.verifies(message, signature))
    }
}

/// A public key, read once, that checks the service's signatures.
#[derive(Debug, Clone)]
pub struct Key(VerifyingKey);

impl Key {
    /// A SubjectPublicKeyInfo PEM (`-----BEGIN PUBLIC KEY-----`) of a P-256 key.
    pub fn from_pem(pem: &str) -> Result<Self, String> {
        VerifyingKey::from_public_key_pem(pem.trim())
            .map(Self)
            .map_err(|e| format!("not a P-256 public key in PEM (SubjectPublicKeyInfo): {e}"))
    }

    /// Whether `signature` (standard base64 of a DER ECDSA signature) signs `message`. A
    /// signature that is not base64 or not DER is simply not valid.
    pub fn verifies(&self, message: &[u8], signature: &str) -> bool {
        let Ok(der) = STANDARD.decode(signature.trim()) else {
            return false;
        };
        let Ok(signature) = Signature::from_der(&der) else {
            return false;
        };
        self.0.verify(message, &signature).is_ok()
    }
}
