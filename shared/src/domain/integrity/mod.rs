//! What vouches for the chain: the service's key ([`key`]), a customer's head signed by it
//! ([`checkpoint`]) and an export's signed manifest ([`manifest`]).

pub mod checkpoint;
pub mod key;
pub mod manifest;

pub use checkpoint::{Checkpoint, checkpoint_message};
pub use key::{Key, PublicKey};
pub use manifest::{MANIFEST_VERSION, Manifest, ManifestCustomer, ManifestFile};
