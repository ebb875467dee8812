//! Key vaults for Strongroom (DESIGN.md R9, R10).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod audit;
mod clock;
mod error;
mod model;
mod state;
mod vault;

pub use audit::{AuditEntry, AuditError, AuditHead, AuditOutcome, verify_chain};
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::VaultError;
pub use model::{
    AttributeUpdate, DeletedKeyInfo, KeyAttributes, KeyOperation, KeyOptions, KeyType,
    KeyVersionInfo, Permission, Permissions, Principal, RsaPublicParts, UnixTime, VaultProperties,
};
pub use vault::{KeyImport, KeyVault, Wrapped};
