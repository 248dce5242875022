//! What vouches for the chain: the service's key ([`key`]), a customer's head signed by it
//! ([`checkpoint`]) and anchored ([`anchor`]), the heads sealed together on a schedule
//! ([`seal`]), the checkpoints a verifier already holds ([`held`]) and an export's signed
//! manifest ([`manifest`]).

pub mod anchor;
pub mod checkpoint;
pub mod held;
pub mod key;
pub mod manifest;
pub mod seal;

pub use checkpoint::{Checkpoint, checkpoint_message};
pub use held::{HeldHead, HeldSummary, check_held};
pub use key::{Key, PublicKey};
pub use manifest::{
    DataFile, LeftOut, MANIFEST_VERSION, Manifest, ManifestCustomer, ManifestExport, ManifestFile,
    ManifestHead,
};
pub use seal::{Seal, SealedHead};
