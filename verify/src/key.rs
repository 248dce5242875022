//! The service's signing key: ECDSA P-256 with SHA-256, signatures as standard base64 of DER
//! (what AWS KMS `Sign` returns for `ECDSA_SHA_256` over a raw message).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use p256::ecdsa::signature::Verifier as _;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::pkcs8::DecodePublicKey as _;

/// A public key that checks the service's signatures.
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
