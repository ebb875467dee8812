//! Encrypted backups kept as a Recovery Services vault keeps them.
//!
//! A [`RecoveryVault`] holds protected items and their recovery points.
//! Each point is encrypted under its own data-encryption key (AES-256-GCM
//! in a chunked STREAM, DESIGN.md R1–R3), wrapped by the vault's key: a
//! platform-managed AES-256 key (A256KW) by default, kept in a key vault
//! the facade makes. Points are stored through `object_store` (the local
//! filesystem by default) and committed atomically: a manifest written
//! last with a create-only put.
//!
//! ```
//! # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let tmp = tempfile::tempdir()?;
//! # let dir = tmp.path().join(".strongroom");
//! use strongroom::{BackupOptions, RecoveryVault};
//!
//! let vault = RecoveryVault::open_or_create(&dir).await?;
//! let item = vault.protect("vm-42/disk-0").await?;
//!
//! let disk = vec![7u8; 3 * 1024 * 1024 + 5];
//! let point = vault.backup(&item, disk.as_slice(), BackupOptions::default()).await?;
//!
//! let mut restored = Vec::new();
//! vault.restore(&point, &mut restored).await?;
//! assert_eq!(restored, disk);
//!
//! // A byte range reads only the chunks that hold it.
//! let mut block = Vec::new();
//! vault.restore_range(&point, 4096..8192, &mut block).await?;
//! assert_eq!(block, &disk[4096..8192]);
//! # Ok(())
//! # }
//! ```
//!
//! Synchronous programs use [`blocking::RecoveryVault`], which owns its
//! runtime and takes `Read` / `Write`.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod backup;
pub mod blocking;
mod error;
mod layout;
pub mod remote;
mod restore;
mod rewrap;
mod settings;
pub mod source;
mod store;
mod vault;

pub use backup::{BackupOptions, Progress, ProgressFn};
pub use error::Error;
pub use remote::{Store, StoreKind, StoreOptions};
pub use rewrap::{RewrapOptions, RewrapProgress, RewrapReport, SkippedPoint};
pub use source::{
    KeyReference, MissingPermission, RestoredDiskKeys, RestoredKey, SecretReference,
    SourceEncryption,
};
pub use vault::{Item, RecoveryPoint, RecoveryVault, VaultConfig};

/// The AES-256-GCM primitive (`strongroom-aes`).
pub use strongroom_aes as aes;
/// The envelope format and streams (`strongroom-envelope`).
pub use strongroom_envelope as envelope;
/// Key vaults (`strongroom-keyvault`).
pub use strongroom_keyvault as keyvault;
/// The encryption rules: settings, preflight, key health (`strongroom-policy`).
pub use strongroom_policy as policy;

/// `object_store`, re-exported: build a [`VaultConfig`] over any store.
pub use object_store;

/// The examples in `README.md`, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
