//! AWS KMS adapter of [`Signer`]: an asymmetric `ECC_NIST_P256` key used with `ECDSA_SHA_256`.
//! Only the functions that sign checkpoints and manifests are allowed to use it.

use std::sync::OnceLock;

use aws_sdk_kms::Client;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{MessageType, SigningAlgorithmSpec};

use super::sdk_error::classify;
use super::{Signed, Signer, StoreError};
use crate::domain::integrity::PublicKey;

#[derive(Debug)]
pub struct KmsSigner {
    client: Client,
    /// The key's id, ARN or alias.
    key: String,
    /// The public key, read once per execution environment.
    public: OnceLock<PublicKey>,
}

impl KmsSigner {
    pub fn new(client: Client, key: impl Into<String>) -> Self {
        Self {
            client,
            key: key.into(),
            public: OnceLock::new(),
        }
    }
}

impl Signer for KmsSigner {
    async fn sign(&self, message: &[u8]) -> Result<Signed, StoreError> {
        let out = self
            .client
            .sign()
            .key_id(&self.key)
            .message(Blob::new(message))
            .message_type(MessageType::Raw)
            .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
            .send()
            .await
            .map_err(classify)?;
        match (out.key_id, out.signature) {
            (Some(key_id), Some(sig)) => Ok(Signed {
                key_id,
                der: sig.into_inner(),
            }),
            _ => Err(StoreError::Other("KMS Sign returned no signature".into())),
        }
    }

    async fn public_key(&self) -> Result<PublicKey, StoreError> {
        if let Some(key) = self.public.get() {
            return Ok(key.clone());
        }
        let out = self
            .client
            .get_public_key()
            .key_id(&self.key)
            .send()
            .await
            .map_err(classify)?;
        let (Some(key_id), Some(der)) = (out.key_id, out.public_key) else {
            return Err(StoreError::Other("KMS GetPublicKey returned no key".into()));
        };
        let key = PublicKey::from_spki_der(&key_id, der.as_ref())
            .map_err(|e| StoreError::Other(format!("the signing key: {e}")))?;
        Ok(self.public.get_or_init(|| key).clone())
    }
}
