//! Key vaults for Strongroom (DESIGN.md R9, R10, R17): keys and secrets
//! with versions and attributes, access policies per principal, soft delete
//! with recovery and purge protection, wrap and unwrap done inside the
//! vault, key and secret backups that restore only into a vault of the same
//! owner ([`OwnerKey`]), and a tamper-evident audit log of every call,
//! allowed or denied. Secrets and backups are shown in `README.md`
//! ("Secrets, and backups of keys and secrets").
//!
//! # Wrap a DEK under a customer-managed key
//!
//! ```
//! use strongroom_envelope::WrapAlgorithm;
//! use strongroom_keyvault::{
//!     KeyOptions, KeyType, KeyVault, MemoryKeyVault, Permission, Permissions, Principal,
//!     VaultError, VaultProperties,
//! };
//!
//! let vault = MemoryKeyVault::new(VaultProperties::new("contoso-kv"))?;
//! let admin = Principal::new("admin@contoso");
//! vault.set_access_policy(&admin, Permissions::all())?;
//! let key = vault.create_key(&admin, "cmk", KeyType::Rsa2048, KeyOptions::default())?;
//! assert!(key.public.is_some()); // public part only, never the private key
//!
//! // The backup vault's identity may get, wrap and unwrap: nothing else.
//! let identity = Principal::new("backup-vault-7/system");
//! vault.set_access_policy(&identity, Permissions::key_user())?;
//! let dek = [0x42; 32];
//! let wrapped = vault.wrap_key(&identity, "cmk", None, WrapAlgorithm::RsaOaep256, &dek)?;
//! assert_eq!(wrapped.version, key.version); // versionless: the latest enabled version
//! let back = vault.unwrap_key(&identity, "cmk", &wrapped.version, WrapAlgorithm::RsaOaep256, &wrapped.wrapped)?;
//! assert_eq!(back.as_slice(), dek);
//!
//! // Revoked: refused on the very next call, naming who, what and which key.
//! vault.set_access_policy(&identity, Permissions::key_user().without(Permission::UnwrapKey))?;
//! let err = vault
//!     .unwrap_key(&identity, "cmk", &wrapped.version, WrapAlgorithm::RsaOaep256, &wrapped.wrapped)
//!     .unwrap_err();
//! assert!(matches!(err, VaultError::AccessDenied { permission: Permission::UnwrapKey, .. }));
//! assert_eq!(
//!     err.to_string(),
//!     "access denied: principal backup-vault-7/system lacks the unwrapKey permission on key cmk; grant it in the vault's access policy"
//! );
//!
//! // Every call, allowed or denied, is in the MAC-chained audit log.
//! assert_eq!(vault.audit_log()?.len(), 7);
//! vault.verify_audit_log()?;
//! # Ok::<(), VaultError>(())
//! ```
//!
//! # A vault key as the envelope's key-encryption key
//!
//! [`VaultKeyWrapper`] makes a vault key a
//! [`KeyWrapper`](strongroom_envelope::KeyWrapper): the envelope wraps each
//! recovery point's DEK through the vault, as the vault's identity, and
//! records the exact key version in the header.
//!
//! ```
//! use std::io::{Read, Write};
//! use std::sync::Arc;
//! use strongroom_envelope::{Decryptor, Encryptor, HeaderOptions, KeyWrapper, WrapAlgorithm};
//! use strongroom_keyvault::{
//!     KeyOptions, KeyType, KeyVault, MemoryKeyVault, Permissions, Principal, VaultKeyWrapper,
//!     VaultProperties,
//! };
//!
//! let vault = Arc::new(MemoryKeyVault::new(VaultProperties::new("contoso-kv"))?);
//! let admin = Principal::new("admin@contoso");
//! vault.set_access_policy(&admin, Permissions::all())?;
//! vault.create_key(&admin, "cmk", KeyType::Rsa2048, KeyOptions::default())?;
//! let identity = Principal::new("backup-vault-7/system");
//! vault.set_access_policy(&identity, Permissions::key_user())?;
//!
//! let kek = VaultKeyWrapper::new(vault.clone(), identity, "cmk", None, WrapAlgorithm::RsaOaep256)?;
//! assert_eq!(kek.key_ref().vault, "contoso-kv");
//! let mut encryptor = Encryptor::new(Vec::new(), &[&kek], &HeaderOptions::default())?;
//! encryptor.write_all(b"disk block 0")?;
//! let stored = encryptor.finish()?;
//!
//! let mut plain = Vec::new();
//! Decryptor::new(stored.as_slice(), &[&kek])?.read_to_end(&mut plain)?;
//! assert_eq!(plain, b"disk block 0");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Backends
//!
//! - [`MemoryKeyVault`]: in memory, for tests and examples.
//! - [`FileKeyVault`]: a directory, key material sealed at rest under a
//!   root key (key file or passphrase), crash-safe and safe for several
//!   processes; the embedded default.
//! - `Pkcs11KeyVault` (feature `pkcs11`): keys generated and used inside a
//!   PKCS#11 token (HSM).
//!
//! All three implement [`KeyVault`] through one shared implementation of
//! the rules (access, key states, versions, soft delete, audit), so they
//! behave the same; one conformance suite runs against each.
//!
//! # Security
//!
//! Software RSA (memory and file backends) uses the `rsa` crate 0.10, which
//! is still under RUSTSEC-2023-0071 (the Marvin timing side channel); every
//! private-key operation is blinded with the operating system's generator.
//! See `SECURITY.md` for what this means for each backend.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod audit;
mod backup;
mod clock;
mod error;
mod file;
mod import;
pub mod limits;
mod memory;
mod model;
#[cfg(feature = "pkcs11")]
mod pkcs11;
mod secrets;
mod software;
mod state;
mod vault;
mod wrapper;

pub use audit::{AuditEntry, AuditError, AuditHead, AuditOutcome, AuditSegment};
pub use backup::OwnerKey;
/// Test hook (feature `testing`): a backup sealed around any payload, for
/// the fuzz target of the backup parser.
#[cfg(feature = "testing")]
pub use backup::seal_backup_for_tests;
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::VaultError;
pub use memory::MemoryKeyVault;
pub use model::{
    AttributeUpdate, DeletedKeyInfo, DeletedSecretInfo, KeyAttributes, KeyOperation, KeyOptions,
    KeyType, KeyVersionInfo, Permission, Permissions, Principal, RsaPublicParts, Secret,
    SecretAttributes, SecretOptions, SecretUpdate, SecretValue, SecretVersionInfo, UnixTime,
    VaultProperties,
};
/// Test hook (feature `testing`): RSA-OAEP decryption outside any vault,
/// for the Wycheproof tests.
#[cfg(feature = "testing")]
pub use software::rsa_oaep_decrypt_for_tests;
pub use vault::{KeyImport, KeyVault, Wrapped};
pub use wrapper::VaultKeyWrapper;

pub use file::{FileKeyVault, FileVaultOptions, KdfParams, Passphrase, RootKeySource};
#[cfg(feature = "pkcs11")]
pub use pkcs11::{Pkcs11Config, Pkcs11KeyVault, Pkcs11Pin};

/// The examples in `README.md`, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
